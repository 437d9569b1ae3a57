"""The ``limits`` rows of the ``ratelimit`` table: its async strategies on its async Redis storage.

limits (PyPI ``limits``, alisaifee/limits) is the rate limiter Python users pick (Flask-Limiter,
SlowAPI and others build on it). Its async API (``limits.aio``) runs three strategies on Redis:
``FixedWindowRateLimiter`` (``INCRBY`` + ``EXPIRE`` in one script), ``MovingWindowRateLimiter``
(a LIST of the *client's* timestamps, one per unit, trimmed to the limit: O(limit) memory) and
``SlidingWindowCounterRateLimiter`` (two counter keys, the previous one weighed by its TTL).
Each row is used as its documentation shows it: a storage from a URL (``async+redis://...``,
``async+redis+cluster://...`` on a cluster), ``limits.parse("1000/second")``, ``await
limiter.hit(item, "hot")``; ``key_prefix`` puts its keys under ``bench:``. One storage (one
connection pool) per client, as ours have a connection each.

Its storage runs on redis-py (``implementation="redispy"``), the client every other row uses:
limits' default asyncio client is coredis through its ``async-redis`` extra, which pins
``coredis<6``, and the ``lock`` table's coredis row needs coredis 6.9 (with 6.9, limits' coredis
storage fails: "Connection pool is not initialized"); its ``redis`` extra pins ``redis<8``. So
limits 5.8 is installed without extras, beside redis-py 8.2, which its redispy storage accepts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..runner import BENCH_PREFIX, ClientStats, Job, Op, Target

__all__ = ["KEY_PREFIX", "STRATEGIES", "limits_ratelimit", "limits_storage"]

#: Every key limits writes starts with this (``<prefix>:LIMITER/<identifier>/...``).
KEY_PREFIX = BENCH_PREFIX + "limits"
#: Our row names' strategy words -> limits' strategy classes (in ``limits.aio.strategies``).
STRATEGIES = {
    "fixed": "FixedWindowRateLimiter",
    "moving": "MovingWindowRateLimiter",
    "sliding": "SlidingWindowCounterRateLimiter",
}


def limits_storage(target: Target) -> Any:
    """limits' async Redis storage (on redis-py) for ``target``: standalone or cluster."""
    from limits.storage import storage_from_string

    scheme = "async+redis+cluster" if target.topology == "cluster" else "async+redis"
    url = scheme + target.url[target.url.index("://") :]
    if target.url.startswith("unix:"):
        url = "async+redis+unix" + target.url[target.url.index("://") :]
    return storage_from_string(url, implementation="redispy", key_prefix=KEY_PREFIX)


async def close_storage(storage: Any) -> None:
    """Close the redis-py client inside a limits storage."""
    await storage.bridge.storage.aclose()


class LimitsRateLimit:
    """One process' clients of a ``limits-*`` row: a storage and a limiter each, one key."""

    def __init__(self, job: Job, *, strategy: str, limit: str, key: str) -> None:
        self.job = job
        self.strategy = strategy
        self.limit = limit
        self.key = key
        self.storages: list[Any] = []

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        from limits import parse
        from limits.aio import strategies

        cls = getattr(strategies, STRATEGIES[self.strategy])
        item = parse(self.limit)
        ops = []
        for st in stats:
            storage = limits_storage(self.job.target)
            self.storages.append(storage)
            assert await storage.check(), "limits' storage does not answer"
            ops.append(_op(cls(storage), item, self.key, st))
        return ops

    async def close(self) -> None:
        for storage in self.storages:
            await close_storage(storage)
        self.storages.clear()


def _op(limiter: Any, item: Any, key: str, st: ClientStats) -> Op:
    async def op(deadline: float) -> None:
        t = time.perf_counter()
        allowed = await limiter.hit(item, key)
        st.tries += 1  # a decision is one try: it never retries
        st.success(t)
        if allowed:
            st.count("allowed")

    return op


def limits_ratelimit(strategy: str, limit: str, key: str) -> Callable[[Job], LimitsRateLimit]:
    """The row's workload factory: limits' ``strategy`` (fixed, moving, sliding) at ``limit``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {strategy!r}")

    def factory(job: Job) -> LimitsRateLimit:
        return LimitsRateLimit(job, strategy=strategy, limit=limit, key=key)

    return factory
