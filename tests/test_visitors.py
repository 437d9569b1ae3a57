"""Test UniqueVisitors: exact sharded-SET and approximate HyperLogLog daily unique counts.

Redis in Action §9.2.2 (and §10.3.2), with the book's ``test_unique_visitors`` (TestCh09)
adapted: explicit days replace ``date.today()``. Every test runs on a standalone server and a
3-master cluster; the ``_text`` ones with ``decode_responses`` on and off.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import uuid
from typing import Any

import pytest
from helpers import NO_REDIS, keys_of
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.core.scripts import script
from aiorpatterns.memory.sharding import shard_of
from aiorpatterns.memory.visitors import (
    HLL_STANDARD_ERROR,
    UniqueVisitors,
    expected_size,
    visitor_id,
)
from aiorpatterns.testing.server import free_port

DAY = dt.date(2024, 5, 2)


async def _shard_total(redis: Any, visitors: UniqueVisitors, day: dt.date) -> int:
    prefix = visitors.count_key(day).removesuffix(":count")
    keys = [k for k in await keys_of(redis) if k.startswith(prefix + ":shard:")]
    return sum([await redis.scard(k) for k in keys])


def test_visitor_id_is_the_books_first_15_hex_digits() -> None:
    for _ in range(100):
        session = str(uuid.uuid4())
        assert visitor_id(session) == int(session.replace("-", "")[:15], 16)
        assert visitor_id(uuid.UUID(session)) == visitor_id(session)
    assert 0 <= visitor_id("not a uuid") < 2**60
    assert visitor_id("not a uuid") == visitor_id("not a uuid") != visitor_id("another")


def test_expected_size_is_the_books_power_of_two() -> None:
    # 2 ** ceil(log2(1.5 * yesterday)), with the default for a missing (or zero) yesterday.
    assert expected_size(1000) == 2048
    assert expected_size(None, 10000) == 16384
    assert expected_size(0, 10000) == 16384
    assert expected_size(1) == 2
    assert expected_size(2) == 4  # 3 rounds up to 4
    assert expected_size(4096) == 8192  # 6144 -> 8192
    assert expected_size(1365) == 2048  # 2047.5
    assert expected_size(1366) == 4096  # 2049
    for n in range(1, 3000):
        want = 1
        while want < 1.5 * n:
            want *= 2
        assert expected_size(n) == want


async def test_book_unique_visitors(redis_client_text: Any) -> None:
    first = UniqueVisitors(redis_client_text, "test", expected=10000)
    for _ in range(179):
        assert await first.count_visit(str(uuid.uuid4()), DAY - dt.timedelta(days=7))
    assert await first.count(DAY - dt.timedelta(days=7)) == 179
    assert await redis_client_text.get(first.expected_key(DAY - dt.timedelta(days=7))) in (
        "16384",
        b"16384",
    )
    # Yesterday had 1000 visitors: today's expected size is 2 ** ceil(log2(1500)) = 2048.
    await redis_client_text.set(first.count_key(DAY - dt.timedelta(days=1)), 1000)
    second = UniqueVisitors(redis_client_text, "test", expected=10000)
    for _ in range(183):
        await second.count_visit(str(uuid.uuid4()), DAY)
    assert await second.count(DAY) == 183
    assert int(await redis_client_text.get(second.expected_key(DAY))) == 2048
    assert await _shard_total(redis_client_text, second, DAY) == 183


async def test_exact_count_equals_a_set_under_concurrent_duplicates(redis_client: Any) -> None:
    visitors = UniqueVisitors(redis_client, "site", expected=300, shard_size=64)
    pool = [str(uuid.uuid4()) for _ in range(300)]
    seen: set[str] = set()
    news: list[str] = []
    in_flight = peak = 0

    async def browse(rng: random.Random) -> None:
        nonlocal in_flight, peak
        for session in rng.choices(pool, k=60):
            seen.add(session)
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                if await visitors.count_visit(session, DAY):
                    news.append(session)
            finally:
                in_flight -= 1

    await asyncio.gather(*(browse(random.Random(seed)) for seed in range(20)))
    assert peak > 1, "the visitors never overlapped"
    assert await visitors.count(DAY) == len(seen)
    assert sorted(news) == sorted(seen)  # each visitor was new exactly once
    assert await _shard_total(redis_client, visitors, DAY) == len(seen)
    # expected = 2 ** ceil(log2(450)) = 512, so 2 * 512 / 64 = 16 shards
    assert visitors.shards(512) == 16


async def test_every_key_expires_and_shares_one_slot(redis_client: Any) -> None:
    visitors = UniqueVisitors(
        redis_client, "ttl", keyspace=Keyspace("app"), expected=100, shard_size=4, retention=3600
    )
    for _ in range(50):
        await visitors.count_visit(uuid.uuid4(), "2024-01-31")
    names = [k async for k in redis_client.scan_iter(match="app:*")]
    assert len(names) > 3
    for key in names:
        ttl = await redis_client.ttl(key)
        assert 0 < ttl <= 3600
        name = key.decode() if isinstance(key, bytes) else key
        assert name.startswith("app:unique:{ttl:2024-01-31}:")
        assert key_slot(name.encode()) == key_slot(b"{ttl:2024-01-31}")
    assert await visitors.count(dt.date(2024, 1, 31)) == 50
    assert await visitors.count("2024-02-01") == 0


async def test_the_stored_expected_size_wins_over_a_stale_cache(redis_client: Any) -> None:
    async def flush() -> None:
        for key in await keys_of(redis_client):
            await redis_client.delete(key)

    mine = UniqueVisitors(redis_client, "race", expected=100_000)
    theirs = UniqueVisitors(redis_client, "race", expected=10)
    sessions = [str(uuid.uuid4()) for _ in range(40)]
    assert await mine.count_visit(sessions[0], DAY)  # caches 2 ** 18 for the day
    await flush()
    assert await theirs.count_visit(sessions[0], DAY)  # fixes the day's size at 16
    for session in sessions:
        await mine.count_visit(session, DAY)  # the script refuses 2 ** 18; 16 is adopted
    assert int(await redis_client.get(mine.expected_key(DAY))) == 16
    assert await mine.count(DAY) == 40
    assert await _shard_total(redis_client, mine, DAY) == 40
    shard_keys = {mine.shard_key(DAY, visitor_id(s), 16) for s in sessions}
    assert {k for k in await keys_of(redis_client) if ":shard:" in k} == shard_keys
    # Emptied behind the process's cache: nothing is stored, so the cached size is stored again.
    await flush()
    assert await mine.count_visit(sessions[1], DAY)
    assert int(await redis_client.get(mine.expected_key(DAY))) == 16
    # A rival's value stored meanwhile wins over the cache.
    await flush()
    await redis_client.set(mine.expected_key(DAY), 2)
    assert await mine.count_visit(sessions[1], DAY)
    assert await mine.count(DAY) == 1
    assert [k for k in await keys_of(redis_client) if ":shard:" in k] == [
        mine.count_key(DAY).removesuffix("count") + "shard:0"
    ]


async def test_cancelled_visits_are_all_or_nothing(redis_client: Any) -> None:
    sessions = [str(uuid.uuid4()) for _ in range(12)]
    for steps, session in enumerate(sessions):
        visitors = UniqueVisitors(redis_client, "cancel", expected=50, shard_size=8)
        task = asyncio.create_task(visitors.count_visit(session, DAY))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)
        assert await visitors.count(DAY) == await _shard_total(redis_client, visitors, DAY)
    checker = UniqueVisitors(redis_client, "cancel", expected=50, shard_size=8)
    before = await checker.count(DAY)
    fresh = [s for s in sessions if await checker.count_visit(s, DAY)]
    assert before + len(fresh) == len(sessions) == await checker.count(DAY)


async def test_approximate_mode_is_within_the_documented_error(redis_client: Any) -> None:
    visitors = UniqueVisitors(redis_client, "hll", mode="approximate", retention=600)
    sessions = [str(uuid.uuid4()) for _ in range(20_000)]
    for start in range(0, len(sessions), 40):
        batch = sessions[start : start + 40]
        await asyncio.gather(*(visitors.count_visit(s, DAY) for s in batch))
    # Visiting again barely moves the estimate: repeat visitors are not counted twice.
    for session in sessions[:500]:
        await visitors.count_visit(session, DAY)
    estimate = await visitors.count(DAY)
    assert abs(estimate - 20_000) <= 3 * HLL_STANDARD_ERROR * 20_000
    assert 0 < await redis_client.ttl(visitors.hll_key(DAY)) <= 600
    assert await visitors.count(DAY + dt.timedelta(days=1)) == 0
    # Beside the HyperLogLog, only the receipts of new visitors (retry safety), which expire.
    receipts = [k for k in await keys_of(redis_client) if k.startswith(visitors.hll_key(DAY) + ":")]
    for key in receipts[:20]:
        assert 0 < await redis_client.pttl(key) <= 120_000
    assert [k for k in await keys_of(redis_client) if k not in receipts] == [visitors.hll_key(DAY)]


async def test_approximate_repeat_visits_are_never_new(redis_client_text: Any) -> None:
    visitors = UniqueVisitors(redis_client_text, "hll", mode="approximate")
    rng = random.Random(11)
    sessions = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(100)]
    new = sum([await visitors.count_visit(s) for s in sessions])
    estimate = await visitors.count()
    # A repeat never changes a register, so it is never new and never moves the estimate.
    assert not any([await visitors.count_visit(s) for s in sessions])
    assert await visitors.count() == estimate
    assert abs(estimate - 100) <= 3
    assert abs(new - 100) <= 3


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda v: v.count_visit(""), ValueError),
        (lambda v: v.count_visit(42), TypeError),
        (lambda v: v.count_visit(None), TypeError),
        (lambda v: v.count_visit(b"abc"), TypeError),
        (lambda v: v.count_visit("s", "2024-13-01"), ValueError),
        (lambda v: v.count_visit("s", "20240101"), ValueError),
        (lambda v: v.count_visit("s", 20240101), TypeError),
        (lambda v: v.count("yesterday"), ValueError),
        (lambda v: v.count(1.5), TypeError),
    ],
)
async def test_bad_input_is_rejected_before_redis(call: Any, error: type[Exception]) -> None:
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    try:
        for mode in ("exact", "approximate"):
            with pytest.raises(error):
                await call(UniqueVisitors(client, "v", mode=mode))
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"redis": None}, TypeError),
        ({"name": ""}, ValueError),
        ({"name": "a}b"}, ValueError),
        ({"mode": "fuzzy"}, ValueError),
        ({"mode": None}, TypeError),
        ({"expected": 0}, ValueError),
        ({"expected": 1.5}, TypeError),
        ({"shard_size": 0}, ValueError),
        ({"retention": 0}, ValueError),
        ({"retention": "1d"}, TypeError),
        ({"keyspace": "app"}, TypeError),
    ],
)
def test_bad_construction_is_rejected(kwargs: dict[str, Any], error: type[Exception]) -> None:
    options: dict[str, Any] = {"redis": NO_REDIS, "name": "v", **kwargs}
    with pytest.raises(error):
        UniqueVisitors(options.pop("redis"), options.pop("name"), **options)


@pytest.mark.parametrize(
    "kwargs",
    [{"expected": 2**63}, {"shard_size": 2**63}, {"retention": 2e9}, {"retention": float("nan")}],
)
def test_numbers_out_of_range_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        UniqueVisitors(NO_REDIS, **kwargs)


# -- §10.3.2: the day's shards on several servers, the counter on another ----------------------


async def _held(clients: list[Any], visitors: UniqueVisitors, day: str) -> list[int]:
    """How many ids each shard server holds for ``day`` (over every shard key it has)."""
    prefix = visitors.count_key(day).removesuffix(":count") + ":shard:"
    held = []
    for client in dict.fromkeys(clients):  # the cluster topology repeats one client
        keys = [k for k in await keys_of(client) if k.startswith(prefix)]
        keys = [k for k in keys if k.removeprefix(prefix).isdigit()]  # not the receipts
        held.append(sum([await client.scard(k) for k in keys]))
    return held


async def test_book_count_visit_over_servers(redis_client: Any, shard_clients: list[Any]) -> None:
    """The book's test_count_visit: 100 visits, the shards' SCARDs sum to 100, counter 100."""
    counter, servers = shard_clients[0], shard_clients[1:]
    visitors = UniqueVisitors(counter, "book", expected=1000, shard_size=128, servers=servers)
    day = "2024-06-01"
    for _ in range(100):
        assert await visitors.count_visit(str(uuid.uuid4()), day)
    assert await visitors.count(day) == 100
    held = await _held(servers, visitors, day)
    assert sum(held) == 100
    if len(held) == 2:  # standalone: two shard servers of their own, each holding some
        assert min(held) > 0
        assert await _shard_total(counter, visitors, dt.date(2024, 6, 1)) == 0
    assert int(await counter.get(visitors.expected_key(day))) == 2048
    for shard in range(visitors.shards(2048)):
        key = visitors.shard_key(day, 0, 2048).rsplit(":", 1)[0] + f":{shard}"
        assert visitors.server_for(key) is servers[shard_of(key, shards=len(servers))]


async def test_concurrent_duplicate_visits_over_servers(shard_clients: list[Any]) -> None:
    counter, servers = shard_clients[0], shard_clients[1:]
    visitors = UniqueVisitors(counter, "dup", expected=200, shard_size=16, servers=servers)
    pool = [str(uuid.uuid4()) for _ in range(200)]
    seen: set[str] = set()
    news: list[str] = []

    async def browse(rng: random.Random) -> None:
        for session in rng.choices(pool, k=40):
            seen.add(session)
            if await visitors.count_visit(session, DAY):
                news.append(session)

    await asyncio.gather(*(browse(random.Random(seed)) for seed in range(20)))
    assert await visitors.count(DAY) == len(seen)
    assert sorted(news) == sorted(seen)  # each visitor was new exactly once
    assert sum(await _held(servers, visitors, DAY.isoformat())) == len(seen)


async def test_a_visit_cut_off_between_servers_is_counted_later(shard_clients: list[Any]) -> None:
    """A crash after the shard's SADD, before the counter heard of it: sync or the next new
    visitor of that shard counts it; nothing is ever counted twice."""
    counter, servers = shard_clients[0], shard_clients[1:]
    visitors = UniqueVisitors(counter, "cut", expected=4, shard_size=16, servers=servers)
    day = "2024-07-01"
    assert visitors.shards(8) == 1  # expected 2 ** ceil(log2(6)) = 8: one shard
    for _ in range(3):
        await visitors.count_visit(uuid.uuid4(), day)
    # What a process that died between the two servers leaves: the id in its shard only.
    lost = visitor_id(uuid.uuid4())
    shard = visitors.shard_key(day, lost, 8)
    await script("visitors_shard_add")(visitors.server_for(shard), [shard], [lost, 60, "t1"])
    assert await visitors.count(day) == 3
    assert await visitors.sync(day) == 4
    assert await visitors.sync(day) == 4  # reported twice: no change
    # Again, and this time the next new visitor of the shard carries the size along.
    lost = visitor_id(uuid.uuid4())
    await script("visitors_shard_add")(visitors.server_for(shard), [shard], [lost, 60, "t2"])
    assert await visitors.count_visit(uuid.uuid4(), day)
    assert await visitors.count(day) == 6


async def test_cancelled_visits_over_servers_never_overcount(shard_clients: list[Any]) -> None:
    counter, servers = shard_clients[0], shard_clients[1:]
    visitors = UniqueVisitors(counter, "cancel", expected=100, shard_size=8, servers=servers)
    day = "2024-08-01"
    rng = random.Random(5)
    for _ in range(40):
        task = asyncio.create_task(visitors.count_visit(uuid.uuid4(), day))
        for _ in range(rng.randrange(6)):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    held = sum(await _held(servers, visitors, day))
    assert await visitors.count(day) <= held
    assert await visitors.sync(day) == held


async def test_servers_option_is_checked() -> None:
    with pytest.raises(ValueError, match="servers"):
        UniqueVisitors(NO_REDIS, "x", servers=[])
    with pytest.raises(ValueError, match="mode"):
        UniqueVisitors(NO_REDIS, "x", servers=[NO_REDIS], mode="approximate")
    with pytest.raises(TypeError, match="servers"):
        UniqueVisitors(NO_REDIS, "x", servers="redis://localhost")  # type: ignore[arg-type]
