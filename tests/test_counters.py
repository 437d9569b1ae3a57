"""Test Counters, Stats and AccessTimer: time-series counters, their cleaner, aggregate stats.

Redis in Action §5.2.1-§5.2.3, with the book's tests (TestCh05 ``test_counters``,
``test_stats``, ``test_access_time``) adapted: explicit ``now`` values replace its patched
``time.time``. Every test runs on a standalone server and a cluster; the ``_text`` ones also
with ``decode_responses`` on and off.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import statistics
import uuid
from collections import defaultdict
from typing import Any

import pytest
from helpers import NO_REDIS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.ops.counters import (
    PRECISIONS,
    AccessTimer,
    Counters,
    Sample,
    Stats,
    slowest,
)

LONG = 10**9  # a period no real boundary crosses during a run
DAY = 86400
NOW = 1_700_000_003.25  # a fixed time for counters written with an explicit now


async def test_book_counters_and_cleaner(redis_client_text: Any) -> None:
    counters = Counters(redis_client_text, "test")
    counts = [random.randrange(1, 5) for _ in range(10)]
    for delta, count in enumerate(counts):
        await counters.update("test", count, now=NOW + delta)
    per_second = await counters.get("test", precision=1)
    assert per_second == [Sample(float(int(NOW) + d), c) for d, c in enumerate(counts)]
    per_five = await counters.get("test", precision=5)
    assert len(per_five) >= 2
    assert sum(s.count for s in per_five) == sum(counts)
    assert await counters.names() == ["test"]
    # The book sets SAMPLE_COUNT = 0 and moves the clock two days on; the cleaner empties it.
    emptying = Counters(redis_client_text, "test", samples=0)
    assert await emptying.clean(now=NOW + 2 * DAY) == 10 + len(per_five) + 5
    assert await counters.get("test", precision=DAY) == []
    assert await counters.names() == []
    assert not await redis_client_text.exists(counters.known_key)


async def test_server_clock_is_the_default(redis_client: Any) -> None:
    counters = Counters(redis_client)
    await counters.update("hits", 3)
    (sample,) = await counters.get("hits", precision=60)
    assert sample.count == 3
    assert sample.start % 60 == 0
    server = float((await redis_client.time())[0])
    assert server - 120 < sample.start <= server


async def test_fifty_concurrent_updaters_count_exactly(redis_client: Any) -> None:
    counters = Counters(redis_client, "busy")
    await asyncio.gather(*(counters.update("hits", 1 + i % 3, now=NOW) for i in range(50)))
    total = sum(1 + i % 3 for i in range(50))
    for precision in PRECISIONS:
        assert [s.count for s in await counters.get("hits", precision=precision)] == [total]


async def test_cleaner_keeps_the_newest_samples(redis_client: Any) -> None:
    counters = Counters(redis_client, "keep", precisions=(1, 60), samples=3)
    for delta in range(10):
        await counters.update("c", now=NOW + delta)
    await counters.update("c", now=NOW + 1000)  # a future sample counts toward the cap
    assert await counters.clean(now=NOW + 9) == 8 + 0
    assert [s.start for s in await counters.get("c", precision=1)] == [
        float(int(NOW) + d) for d in (8, 9, 1000)
    ]
    assert len(await counters.get("c", precision=60)) == 2  # both within 3 minutes


async def test_cleaner_walks_every_counter_while_removing(redis_client_text: Any) -> None:
    # The book's index walk skips the counter after each one it removes.
    counters = Counters(redis_client_text, "walk", precisions=(1,), samples=1)
    names = [f"c{i:03d}" for i in range(250)]  # more than one page of the index
    for name in names:
        await counters.update(name, now=NOW)
    assert await counters.names() == names
    assert await counters.clean(now=NOW + 10) == 250
    assert await counters.names() == []


async def test_cleaner_with_concurrent_updaters_loses_no_live_count(redis_client: Any) -> None:
    counters = Counters(redis_client, "live", samples=100)
    stop = asyncio.Event()
    passes = 0

    async def cleaner() -> None:
        nonlocal passes
        while not stop.is_set():
            await counters.clean()
            passes += 1

    async def updater(i: int) -> None:
        for j in range(20):
            await counters.update("live", 1)
            await counters.update(f"old{i % 5}", 1, now=1000 + j)  # trimmed as it is written

    task = asyncio.create_task(cleaner())
    await asyncio.gather(*(updater(i) for i in range(50)))
    stop.set()
    await task
    assert passes > 0
    for precision in PRECISIONS:
        assert sum(s.count for s in await counters.get("live", precision=precision)) == 1000
    await counters.clean()
    assert await counters.names() == ["live"]
    # The index and the samples agree: every indexed counter has samples, and no others do.
    members = {m.decode() for m in await redis_client.zrange(counters.known_key, 0, -1)}
    assert members == {f"{p}:live" for p in PRECISIONS}
    for i in range(5):
        for precision in PRECISIONS:
            assert not await redis_client.exists(counters.counter_key(f"old{i}", precision))


async def test_run_cleaner_cleans_until_cancelled(redis_client: Any) -> None:
    counters = Counters(redis_client, "bg", precisions=(1, 3600), samples=2)
    await counters.update("c", now=1000)
    task = asyncio.create_task(counters.run_cleaner(interval=0.05))

    async def empty() -> bool:
        return await counters.names() == []

    for _ in range(200):
        if await empty():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await empty()


async def test_a_cancelled_update_is_all_or_nothing(redis_client: Any) -> None:
    counters = Counters(redis_client, "cancel")
    for delay in (0, 0.0001, 0.001, 0.01):
        task = asyncio.create_task(counters.update("c", 1, now=NOW))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.05)
    totals = {sum(s.count for s in await counters.get("c", precision=p)) for p in PRECISIONS}
    assert len(totals) == 1
    members = await redis_client.zcard(counters.known_key)
    assert members == (len(PRECISIONS) if totals != {0} else 0)


async def test_every_key_shares_the_group_slot(redis_client: Any) -> None:
    counters = Counters(redis_client, "grp", keyspace=Keyspace("app"))
    await counters.update("a:b", now=NOW)
    keys = [counters.known_key, *(counters.counter_key("a:b", p) for p in PRECISIONS)]
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"{grp}")}
    assert all(k.startswith("app:counter:{grp}:") for k in keys)
    assert await counters.names() == ["a:b"]


_PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_PROPERTY
@given(
    updates=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c:d"]),
            st.integers(1, 1000),
            st.floats(0, 4000, allow_nan=False),
        ),
        max_size=30,
    ),
    samples=st.integers(0, 5),
    clean_at=st.floats(0, 5000, allow_nan=False),
)
async def test_counters_equal_a_brute_force_model(
    redis_client: Any, updates: list[tuple[str, int, float]], samples: int, clean_at: float
) -> None:
    precisions = (1, 5, 60, 300)
    counters = Counters(redis_client, uuid.uuid4().hex[:8], precisions=precisions, samples=samples)
    model: dict[tuple[str, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for name, count, now in updates:
        await counters.update(name, count, now=100_000 + now)
        for p in precisions:
            seconds = math.floor(100_000 + now)
            model[name, p][seconds - seconds % p] += count
    for (name, p), data in model.items():
        got = await counters.get(name, precision=p)
        assert got == [Sample(float(k), v) for k, v in sorted(data.items())]
    # The cleaner keeps samples that started after now - samples * precision, newest `samples`.
    now = math.floor(100_000 + clean_at)
    removed = 0
    for (name, p), data in model.items():
        live = sorted((k for k in data if k > now - samples * p), reverse=True)[:samples]
        removed += len(data) - len(live)
        model[name, p] = {k: data[k] for k in live}
    assert await counters.clean(now=100_000 + clean_at) == removed
    for (name, p), data in model.items():
        got = await counters.get(name, precision=p)
        assert got == [Sample(float(k), v) for k, v in sorted(data.items())]
    assert await counters.names() == sorted({n for (n, _), d in model.items() if d})


# -- aggregate statistics -------------------------------------------------------------------


async def test_book_stats(redis_client_text: Any) -> None:
    stats = Stats(redis_client_text, "temp", period=LONG)
    values = [random.randrange(5, 15) for _ in range(5)]
    for value in values:
        last = await stats.update("example", value)
    got = await stats.get("example")
    assert got == last
    assert got is not None
    assert got.count == 5
    assert (got.min, got.max, got.sum) == (min(values), max(values), sum(values))
    assert got.sumsq == sum(v * v for v in values)
    assert got.average == pytest.approx(statistics.mean(values))
    assert got.stddev == pytest.approx(statistics.stdev(values))
    assert got.start % LONG == 0


async def test_stats_of_nothing_are_none(redis_client: Any) -> None:
    stats = Stats(redis_client, "empty")
    assert await stats.get("x") is None
    assert await stats.previous("x") is None
    one = await stats.update("x", -2.5)
    assert (one.count, one.min, one.max, one.stddev) == (1, -2.5, -2.5, 0.0)


async def test_stats_rotate_to_previous(redis_client: Any) -> None:
    stats = Stats(redis_client, "rot", period=LONG)
    await stats.update("t", 1)
    await stats.update("t", 3)
    start_key = stats.keyspace.key("stats", "rot", "start", "t")
    old = int(await redis_client.get(start_key)) - LONG
    await redis_client.set(start_key, old)
    assert await stats.get("t") is None  # the period is over: nothing yet in the new one
    previous = await stats.previous("t")
    assert previous is not None
    assert (previous.start, previous.count, previous.min, previous.max) == (old, 2, 1, 3)
    fresh = await stats.update("t", 10)
    assert (fresh.start, fresh.count, fresh.min, fresh.max) == (old + LONG, 1, 10, 10)
    assert await stats.previous("t") == previous


async def test_concurrent_stats_are_exact(redis_client: Any) -> None:
    stats = Stats(redis_client, "conc", period=LONG)
    values = [float(i % 17) - 4.0 for i in range(50)]
    await asyncio.gather(*(stats.update("v", v) for v in values))
    got = await stats.get("v")
    assert got is not None
    assert (got.count, got.min, got.max) == (50, min(values), max(values))
    assert got.sum == sum(values)
    assert got.sumsq == sum(v * v for v in values)


async def test_stats_keys_share_the_context_slot(redis_client: Any) -> None:
    stats = Stats(redis_client, "/cart", period=LONG)
    await stats.update("AccessTime", 0.5)
    keys = [stats.keyspace.key("stats", "/cart", p, "AccessTime") for p in ("current", "start")]
    assert keys[0] == stats.stats_key("AccessTime")
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"{/cart}")}


async def test_book_access_time(redis_client_text: Any) -> None:
    for i in range(10):
        async with AccessTimer(redis_client_text, f"req-{i}", period=LONG) as timer:
            await asyncio.sleep(0.001 * (i + 1))
        assert timer.elapsed is not None
        assert timer.elapsed >= 0.001 * (i + 1)
        assert timer.stats is not None
        assert timer.stats.count == 1
    ranked = await slowest(redis_client_text, count=100)
    assert len(ranked) == 10
    assert all(type(c) is str and type(a) is float for c, a in ranked)
    assert [a for _, a in ranked] == sorted((a for _, a in ranked), reverse=True)
    assert {c for c, _ in ranked} == {f"req-{i}" for i in range(10)}


async def test_access_time_keeps_the_slowest(redis_client: Any) -> None:
    averages = {}
    for i in range(5):
        async with AccessTimer(redis_client, f"r{i}", keep=3, period=LONG) as timer:
            await asyncio.sleep(0.002 * (i + 1))
        assert timer.stats is not None
        averages[f"r{i}"] = timer.stats.average
    kept = await slowest(redis_client)
    assert kept == sorted(averages.items(), key=lambda kv: (-kv[1], kv[0]))[:3]


async def test_access_time_records_failed_and_cancelled_blocks(redis_client: Any) -> None:
    timer = AccessTimer(redis_client, "fails", period=LONG)
    with pytest.raises(ZeroDivisionError):
        async with timer:
            _ = 1 / 0
    assert timer.stats is not None
    assert timer.stats.count == 1

    async def slow() -> None:
        async with AccessTimer(redis_client, "fails", period=LONG):
            await asyncio.sleep(10)

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    got = await Stats(redis_client, "fails", period=LONG).get("AccessTime")
    assert got is not None
    assert got.count == 2
    assert await slowest(redis_client) == [("fails", pytest.approx(got.average))]


async def test_access_timer_is_one_block_at_a_time() -> None:
    timer = AccessTimer(NO_REDIS, "x")
    await timer.__aenter__()
    with pytest.raises(RuntimeError):
        await timer.__aenter__()


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.update("", 1), ValueError),
        (lambda c: c.update(5, 1), TypeError),
        (lambda c: c.update("a}b", 1), ValueError),
        (lambda c: c.update("a", -1), ValueError),
        (lambda c: c.update("a", 0), ValueError),
        (lambda c: c.update("a", 1.5), TypeError),
        (lambda c: c.update("a", True), TypeError),
        (lambda c: c.update("a", 1, now=-1), ValueError),
        (lambda c: c.update("a", 1, now=math.inf), ValueError),
        (lambda c: c.update("a", 1, now="now"), TypeError),
        (lambda c: c.get("a", precision=7), ValueError),
        (lambda c: c.get("a", precision=0), ValueError),
        (lambda c: c.get("a", precision=1.0), TypeError),
        (lambda c: c.get("", precision=1), ValueError),
        (lambda c: c.clean(now=math.nan), ValueError),
        (lambda c: c.run_cleaner(interval=0), ValueError),
        (lambda c: c.run_cleaner(interval="1"), TypeError),
    ],
)
async def test_bad_counter_input_is_rejected_before_redis(call: Any, error: type) -> None:
    counters = Counters(NO_REDIS)  # any Redis call would fail with AttributeError
    with pytest.raises(error):
        await call(counters)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.update("", 1), ValueError),
        (lambda s: s.update(None, 1), TypeError),
        (lambda s: s.update("m", "1"), TypeError),
        (lambda s: s.update("m", True), TypeError),
        (lambda s: s.update("m", math.nan), ValueError),
        (lambda s: s.update("m", 1e200), ValueError),
        (lambda s: s.get(""), ValueError),
        (lambda s: s.previous(3), TypeError),
    ],
)
async def test_bad_stats_input_is_rejected_before_redis(call: Any, error: type) -> None:
    stats = Stats(NO_REDIS, "ctx")
    with pytest.raises(error):
        await call(stats)


async def test_bad_slowest_input_is_rejected_before_redis() -> None:
    with pytest.raises(ValueError, match="count"):
        await slowest(NO_REDIS, count=0)
    with pytest.raises(TypeError):
        await slowest(None)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Counters(None), TypeError),
        (lambda: Counters(NO_REDIS, ""), ValueError),
        (lambda: Counters(NO_REDIS, precisions=()), ValueError),
        (lambda: Counters(NO_REDIS, precisions=(1, 1)), ValueError),
        (lambda: Counters(NO_REDIS, precisions=(0,)), ValueError),
        (lambda: Counters(NO_REDIS, precisions=(1.5,)), TypeError),
        (lambda: Counters(NO_REDIS, precisions="15"), TypeError),
        (lambda: Counters(NO_REDIS, samples=-1), ValueError),
        (lambda: Counters(NO_REDIS, keyspace="app"), TypeError),
        (lambda: Stats(NO_REDIS, ""), ValueError),
        (lambda: Stats(NO_REDIS, "c", period=0), ValueError),
        (lambda: AccessTimer(NO_REDIS, "c", keep=0), ValueError),
        (lambda: AccessTimer(NO_REDIS, "c", metric=""), ValueError),
        (lambda: AccessTimer(None, "c"), TypeError),
    ],
)
def test_bad_construction_is_rejected(make: Any, error: type) -> None:
    with pytest.raises(error):
        make()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: Counters(NO_REDIS).update("a", 2**63), ValueError),
        (lambda: Counters(NO_REDIS).update("a", 1, now=2.0**60), ValueError),
        (lambda: Counters(NO_REDIS).update("a", 1, now=10**400), ValueError),
        (lambda: Counters(NO_REDIS).get("a", precision=2**63), ValueError),
        (lambda: Counters(NO_REDIS).clean(now=-0.5), ValueError),
        (lambda: Counters(NO_REDIS).run_cleaner(interval=math.inf), ValueError),
        (lambda: Stats(NO_REDIS, "c").update("m", 10**400), ValueError),
        (lambda: Stats(NO_REDIS, "c").update("m", -math.inf), ValueError),
        (lambda: slowest(NO_REDIS, count=2**63), ValueError),
    ],
)
async def test_numbers_out_of_range_are_refused_before_redis(call: Any, error: type) -> None:
    with pytest.raises(error):
        await call()


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda: Counters(NO_REDIS, precisions=(1, 2**40)), "precision"),
        (lambda: Counters(NO_REDIS, samples=2**63), "samples"),
        (lambda: Stats(NO_REDIS, "c", period=2**40), "period"),
        (lambda: AccessTimer(NO_REDIS, "c", keep=2**63 - 1), "keep"),
        (lambda: AccessTimer(NO_REDIS, "c", period=2**63), "period"),
    ],
)
def test_sizes_out_of_range_are_refused(make: Any, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        make()
