"""Test RecentLog and CommonLog: capped recent logs and per-period common-message counts.

Redis in Action §5.1.1 (``log_recent``) and §5.1.2 (``log_common``), with the book's tests
(TestCh05 ``test_log_recent``, ``test_log_common``) adapted. Every test runs on a standalone
server and a cluster; the ``_text`` ones also with ``decode_responses`` on and off. Rotation is
forced by moving a log's stored period start back, as the passing of an hour would; tests that
count exactly use a period so long that no real boundary falls inside a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest
from helpers import NO_REDIS
from redis.crc import key_slot

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.ops.logs import CommonLog, CommonMessages, RecentLog, severity_name

#: A period no real clock boundary crosses during a test run (next one in 2033).
LONG = 10**9


def start_key(log: CommonLog, severity: str = "info") -> str:
    return log.keyspace.key("log", log.name, "start", severity)


async def age(redis: Any, log: CommonLog, periods: int = 1, severity: str = "info") -> float:
    """Move the stored current period back, as if ``periods`` periods had passed; return it."""
    stored = float(await redis.get(start_key(log, severity)))
    await redis.set(start_key(log, severity), int(stored) - periods * log.period)
    return stored - periods * log.period


async def test_book_log_recent(redis_client_text: Any) -> None:
    log = RecentLog(redis_client_text, "test")
    for i in range(5):
        await log.log(f"this is message {i}")
    recent = await log.recent()
    assert [e.message for e in recent] == [f"this is message {i}" for i in range(4, -1, -1)]
    assert all(type(e.message) is str and type(e.at) is float for e in recent)


async def test_recent_is_capped_newest_first_and_server_stamped(redis_client: Any) -> None:
    log = RecentLog(redis_client, "app", keep=3)
    stamps = [await log.log(f"m{i}", severity="error") for i in range(5)]
    recent = await log.recent(severity=logging.ERROR)
    assert [e.message for e in recent] == ["m4", "m3", "m2"]
    assert [e.at for e in recent] == stamps[:1:-1]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] - time.time()) < 60  # the server's clock, on this machine
    assert await log.recent(severity="info") == []
    assert [e.message for e in await log.recent(severity="ERROR", count=2)] == ["m4", "m3"]


async def test_messages_keep_spaces_and_unicode(redis_client_text: Any) -> None:
    log = RecentLog(redis_client_text, "u")
    await log.log("  two  spaces, ünïcode ✓ \n newline")
    (entry,) = await log.recent()
    assert entry.message == "  two  spaces, ünïcode ✓ \n newline"


async def test_book_log_common(redis_client_text: Any) -> None:
    log = CommonLog(redis_client_text, "test", period=LONG)
    for count in range(1, 6):
        for _ in range(count):
            await log.log(f"message-{count}")
    current = await log.current()
    assert current.counts == [(f"message-{k}", k) for k in range(5, 0, -1)]
    assert current.start % LONG == 0
    assert (await log.current(count=2)).counts == [("message-5", 5), ("message-4", 4)]
    assert await log.previous() is None
    # The common log also writes the recent log, as in the book.
    assert len(await log.recent()) == 15
    assert [e.message for e in await RecentLog(redis_client_text, "test").recent(count=1)] == [
        "message-5"
    ]


async def test_log_returns_the_count_in_the_period(redis_client: Any) -> None:
    log = CommonLog(redis_client, "c", period=LONG)
    assert [await log.log("x") for _ in range(3)] == [1, 2, 3]
    assert await log.log("y", severity="debug") == 1
    assert (await log.current(severity="debug")).counts == [("y", 1)]


async def test_rotation_moves_the_period_to_previous(redis_client_text: Any) -> None:
    r = redis_client_text
    log = CommonLog(r, "rot", period=LONG)
    await log.log("a")
    await log.log("a")
    await log.log("b")
    old = await age(r, log)
    # A read after the period ended shows the rotation before any write makes it.
    assert await log.current() == CommonMessages(start=old + LONG, counts=[])
    assert await log.previous() == CommonMessages(start=old, counts=[("a", 2), ("b", 1)])
    assert await log.log("c") == 1
    assert await log.current() == CommonMessages(start=old + LONG, counts=[("c", 1)])
    assert await log.previous() == CommonMessages(start=old, counts=[("a", 2), ("b", 1)])


async def test_rotation_after_idle_periods_labels_the_true_period(redis_client: Any) -> None:
    log = CommonLog(redis_client, "idle", period=LONG)
    await log.log("a")
    old = await age(redis_client, log, periods=3)
    await log.log("b")
    previous = await log.previous()
    assert previous == CommonMessages(start=old, counts=[("a", 1)])
    current = await log.current()
    assert current.start == old + 3 * LONG


async def test_rotation_of_a_missing_zset_empties_previous(redis_client: Any) -> None:
    # The book's RENAME of a missing ZSET fails inside EXEC after the other commands ran.
    log = CommonLog(redis_client, "ev", period=LONG)
    await log.log("a")
    await age(redis_client, log)
    await log.log("b")  # 'a' is now the previous period
    await age(redis_client, log)
    await redis_client.delete(log.common_key())  # evicted, say
    assert await log.log("c") == 1
    previous = await log.previous()
    assert previous is not None
    assert previous.counts == []
    assert (await log.current()).counts == [("c", 1)]


async def test_concurrent_rotation_loses_and_duplicates_nothing(redis_client: Any) -> None:
    log = CommonLog(redis_client, "race", period=LONG, keep=1000)
    for i in range(10):
        await log.log(f"old-{i % 3}")
    old = await age(redis_client, log)
    await asyncio.gather(*(log.log(f"new-{i % 4}") for i in range(50)))
    previous = await log.previous()
    assert previous == CommonMessages(start=old, counts=[("old-0", 4), ("old-2", 3), ("old-1", 3)])
    current = await log.current()
    assert current.start == old + LONG
    assert sorted(current.counts) == [(f"new-{k}", 13 if k < 2 else 12) for k in range(4)]
    assert len(await log.recent()) == 60


async def test_severities_are_separate_logs(redis_client: Any) -> None:
    log = CommonLog(redis_client, "sev", period=LONG)
    await log.log("x", severity="warning")
    await log.log("x", severity=logging.WARNING)
    await log.log("x", severity="critical")
    assert (await log.current(severity="WARNING")).counts == [("x", 2)]
    assert (await log.current(severity=logging.CRITICAL)).counts == [("x", 1)]
    assert (await log.current()).counts == []


async def test_real_hour_period_works(redis_client: Any) -> None:
    log = CommonLog(redis_client, "hourly")
    await log.log("x")
    current = await log.current()
    assert current.start % 3600 == 0
    assert abs(current.start - time.time()) <= 3600 + 60
    assert (
        sum(c for _, c in current.counts)
        + sum(c for _, c in ((await log.previous()) or CommonMessages(0, [])).counts)
        == 1
    )


async def test_every_key_shares_one_slot_under_the_prefix(redis_client: Any) -> None:
    log = CommonLog(redis_client, "svc:web", keyspace=Keyspace("app"), period=LONG)
    await log.log("x")
    await age(redis_client, log)
    await log.log("y")
    keys = [log.keyspace.key("log", "svc:web", p, "info") for p in ("common", "start", "last")]
    keys += [log.keyspace.key("log", "svc:web", "pstart", "info"), log.recent_key()]
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"{svc:web}")}
    assert all(k.startswith("app:log:{svc:web}:") for k in keys)
    for key in keys:
        assert await redis_client.exists(key)


async def test_a_cancelled_log_is_all_or_nothing(redis_client: Any) -> None:
    log = CommonLog(redis_client, "cancel", period=LONG, keep=1000)
    for delay in (0, 0.0001, 0.001, 0.01):
        task = asyncio.create_task(log.log(f"m{delay}"))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.05)
    counted = dict((await log.current()).counts)
    listed = [e.message for e in await log.recent()]
    assert all(counted.get(m, 0) == listed.count(m) for m in set(listed) | set(counted))


@pytest.mark.parametrize(
    ("value", "name"),
    [("debug", "debug"), ("INFO", "info"), (logging.WARNING, "warning"), (50, "critical")],
)
def test_severity_names(value: Any, name: str) -> None:
    assert severity_name(value) == name


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda log: log.log(""), ValueError),
        (lambda log: log.log(b"x"), TypeError),
        (lambda log: log.log(None), TypeError),
        (lambda log: log.log("x", severity="loud"), ValueError),
        (lambda log: log.log("x", severity=15), ValueError),
        (lambda log: log.log("x", severity=True), TypeError),
        (lambda log: log.log("x", severity=1.5), TypeError),
        (lambda log: log.recent(count=0), ValueError),
        (lambda log: log.recent(count="1"), TypeError),
        (lambda log: log.recent(severity="nope"), ValueError),
    ],
)
@pytest.mark.parametrize("cls", [RecentLog, CommonLog])
async def test_bad_input_is_rejected_before_redis(cls: Any, call: Any, error: type) -> None:
    log = cls(NO_REDIS, "x")  # any Redis call would fail with AttributeError
    with pytest.raises(error):
        await call(log)


async def test_bad_reads_of_common_are_rejected_before_redis() -> None:
    log = CommonLog(NO_REDIS, "x")
    with pytest.raises(ValueError, match="count"):
        await log.current(count=0)
    with pytest.raises(ValueError, match="severity"):
        await log.previous(severity="whatever")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"redis": None}, TypeError),
        ({"name": ""}, ValueError),
        ({"name": 3}, TypeError),
        ({"name": "a}b"}, ValueError),
        ({"keep": 0}, ValueError),
        ({"keep": 1.5}, TypeError),
        ({"period": 0}, ValueError),
        ({"period": -5}, ValueError),
        ({"period": 60.0}, TypeError),
        ({"keyspace": "app"}, TypeError),
    ],
)
def test_bad_construction_is_rejected(kwargs: dict[str, Any], error: type) -> None:
    options: dict[str, Any] = {"redis": NO_REDIS, "name": "log", **kwargs}
    redis, name = options.pop("redis"), options.pop("name")
    with pytest.raises(error):
        CommonLog(redis, name, **options)
    if "period" not in options:
        with pytest.raises(error):
            RecentLog(redis, name, **options)


@pytest.mark.parametrize(
    "call",
    [
        lambda: RecentLog(NO_REDIS, "x").recent(count=2**63),
        lambda: CommonLog(NO_REDIS, "x").current(count=2**63),
        lambda: CommonLog(NO_REDIS, "x").previous(count=0),
    ],
)
async def test_counts_out_of_range_are_refused_before_redis(call: Any) -> None:
    with pytest.raises(ValueError, match="count"):
        await call()


@pytest.mark.parametrize(
    ("make", "what"),
    [
        # LTRIM's stop is computed in Lua: past 2**53 it is no integer and the LPUSH before it
        # would have run (a half-written step).
        (lambda: RecentLog(NO_REDIS, "x", keep=2**63 - 1), "keep"),
        (lambda: CommonLog(NO_REDIS, "x", keep=2**60), "keep"),
        (lambda: CommonLog(NO_REDIS, "x", period=2**40), "period"),
    ],
)
def test_sizes_out_of_range_are_refused(make: Any, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        make()
