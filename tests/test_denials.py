"""Test ``RateLimiter(remember_denials=...)`` and its :class:`DenialMemory`.

A remembered denial answers without a round trip until its retry time (and at most the span),
for the same key and cost only; a reset here forgets it; a reset elsewhere is seen within the
span. Counted by the runs of the hit script, against the session's real servers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from helpers import NO_REDIS, until

from aiorpatterns.coordination.denials import DenialMemory
from aiorpatterns.coordination.ratelimit import STRATEGIES, RateDecision, RateLimiter, RateStrategy


class Asking(RateLimiter):
    """A limiter that counts the runs of its hit script (the round trips)."""

    asked = 0

    async def _ask(self, keys: Any, cost: int) -> RateDecision:
        self.asked += 1
        return await super()._ask(keys, cost)


def _denial(retry_after: float, *, at: float = 1000.0) -> RateDecision:
    return RateDecision(False, 5, 0, retry_after, retry_after + 1, at)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_denial_is_answered_again_without_a_round_trip(
    redis_client: Any, strategy: RateStrategy
) -> None:
    limiter = Asking(redis_client, "mem", limit="2/day", strategy=strategy, remember_denials=60)
    assert await limiter.hit("k")
    assert await limiter.hit("k")
    first = await limiter.hit("k")
    assert not first.allowed
    assert limiter.asked == 3
    again = [await limiter.hit("k") for _ in range(20)]
    assert limiter.asked == 3, "a remembered denial went to Redis"
    assert all(not d.allowed and d.remaining == first.remaining for d in again)
    assert all(0 < d.retry_after <= first.retry_after for d in again)
    assert all(d.at >= first.at for d in again)
    assert await limiter.hit("other")  # another key asks Redis
    assert limiter.asked == 4


async def test_a_smaller_cost_is_asked_and_a_reset_here_forgets(redis_client: Any) -> None:
    limiter = Asking(redis_client, "cost", limit="3/day", strategy="fixed_window",
                     remember_denials=60)  # fmt: skip
    assert await limiter.hit("k", cost=2)
    assert not await limiter.hit("k", cost=2)  # remembered for cost 2 only
    assert not await limiter.hit("k", cost=2)
    assert limiter.asked == 2
    assert await limiter.hit("k", cost=1)  # one unit still fits: asked, and allowed
    assert limiter.asked == 3
    await limiter.reset("k")
    assert await limiter.hit("k", cost=2), "reset here, the denial must be forgotten"
    assert limiter.asked == 4


async def test_a_reset_elsewhere_is_seen_within_the_span(
    redis_client: Any, new_client: Any
) -> None:
    here = Asking(redis_client, "far", limit="1/day", strategy="gcra", remember_denials=0.3)
    there = RateLimiter(await new_client(), "far", limit="1/day", strategy="gcra")
    assert await here.hit("k")
    denied_at = time.monotonic()
    assert not await here.hit("k")
    await there.reset("k")

    async def allowed() -> bool:
        return bool(await here.hit("k"))

    await until(allowed, "the limiter to see a reset made by another")
    assert time.monotonic() - denied_at >= 0.3, "the denial was not remembered"
    assert here.asked == 3, "asked Redis while the denial was remembered"


async def test_the_memory_ends_at_the_retry_time(redis_client: Any) -> None:
    """A short window: the remembered denial ends and wait() is admitted by Redis."""
    limiter = Asking(redis_client, "short", limit="1/300ms", strategy="fixed_window",
                     remember_denials=60)  # fmt: skip
    assert await limiter.hit("k")
    denied = await limiter.hit("k")
    if denied.allowed:  # the window turned between the two hits (a loaded machine)
        denied = await limiter.hit("k")
    assert not denied.allowed
    assert denied.retry_after <= 0.3
    assert (await limiter.wait("k", timeout=10)).allowed


async def test_a_hit_loop_on_a_remembered_denial_lets_other_tasks_run(redis_client: Any) -> None:
    limiter = RateLimiter(redis_client, "loop", limit="1/day", remember_denials=60)
    assert await limiter.hit("k")
    other = asyncio.create_task(asyncio.sleep(0))
    for _ in range(1000):
        assert not await limiter.hit("k")
        if other.done():
            break
    assert other.done(), "a remembered denial never yielded to the event loop"


def test_remember_denials_is_checked_before_redis() -> None:
    assert RateLimiter(NO_REDIS, "a", limit="1/s", remember_denials=0)._denials is None
    for bad, error in ((-1, ValueError), (float("inf"), ValueError), ("1", TypeError)):
        with pytest.raises(error, match="remember_denials"):
            RateLimiter(NO_REDIS, "a", limit="1/s", remember_denials=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="remember_denials"):
        RateLimiter(NO_REDIS, "a", limit="1/s", remember_denials=2e9)


def test_the_memory_keeps_at_most_its_size_dropping_the_expired_then_the_oldest() -> None:
    memory = DenialMemory(span=10.0, size=3)
    memory.remember("a", 1, 0.0, _denial(0.5))  # ends at 0.5
    memory.remember("b", 1, 0.0, _denial(5.0))
    memory.remember("c", 1, 0.0, _denial(5.0))
    memory.remember("d", 1, 1.0, _denial(5.0))  # full: "a" has expired and goes
    assert len(memory) == 3
    assert memory.recall("a", 1, 1.0) is None
    memory.remember("e", 1, 1.0, _denial(5.0))  # full, none expired: the oldest ("b") goes
    assert len(memory) == 3
    assert memory.recall("b", 1, 1.0) is None
    assert [memory.recall(k, 1, 1.0) is not None for k in "cde"] == [True] * 3
    for n in range(5_000):  # a flood of new keys: the newest stay
        memory.remember(f"flood{n}", 1, 2.0, _denial(5.0))
    assert len(memory) == 3
    assert memory.recall("flood4999", 1, 2.0) is not None


def test_a_recalled_denial_counts_from_when_its_hit_was_sent() -> None:
    memory = DenialMemory(span=2.0)
    memory.remember("k", 1, 100.0, _denial(5.0, at=1000.0))
    got = memory.recall("k", 1, 101.5)
    assert got is not None
    assert (got.allowed, got.retry_after, got.reset_after, got.at) == (False, 3.5, 4.5, 1001.5)
    assert memory.recall("k", 1, 102.0) is None, "kept past its span"
    assert memory.recall("k", 2, 100.5) is None, "another cost"
    memory.remember("k", 1, 100.0, _denial(0.0))
    assert len(memory) == 0, "a denial that frees at once is not kept"
