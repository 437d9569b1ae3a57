"""Test the compact-encoding helpers: OBJECT ENCODING, MEMORY USAGE, CONFIG GET limits.

Redis in Action §9.1.1 (the ``ziplist-test`` and ``intset-test`` sessions, read with DEBUG
OBJECT there) replayed with OBJECT ENCODING, and :meth:`CompactLimits.stays_compact` compared
with what the real server does. The encoding names expected depend on the engine under test:
Redis 7.0 keeps every LIST a quicklist and non-integer SETs a hashtable; Redis 7.2+ and Valkey
have listpack LISTs and SETs. Every test runs on a standalone server and a cluster.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from helpers import NO_REDIS, text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.core.errors import LimitsMismatchError
from aiorpatterns.memory.encodings import (
    COMPACT_ENCODINGS,
    CompactLimits,
    compact_limits,
    encoding,
    is_compact,
    listpack_bytes,
    memory_usage,
)
from aiorpatterns.testing.server import free_port

_PROPERTY = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
DEFAULTS = {
    "list_max_listpack_size": -2,
    "hash_max_listpack_entries": 512,
    "hash_max_listpack_value": 64,
    "zset_max_listpack_entries": 128,
    "zset_max_listpack_value": 64,
    "set_max_intset_entries": 512,
}


async def engine(redis: Any) -> tuple[str, tuple[int, ...]]:
    """``(name, version)`` of the server (one node of a cluster)."""
    if isinstance(redis, RedisCluster):
        info = await redis.info("server", target_nodes=redis.get_random_node())
    else:
        info = await redis.info("server")
    name = "valkey" if "valkey_version" in info else "redis"
    raw = str(info.get("valkey_version") or info["redis_version"])
    return name, tuple(int(part) for part in re.findall(r"\d+", raw)[:3])


async def listpack_lists(redis: Any) -> bool:
    """Whether this engine has listpack LISTs and SETs (Redis 7.2+, every Valkey)."""
    name, version = await engine(redis)
    return name == "valkey" or version >= (7, 2)


def offline() -> Redis:
    """A client on a port nobody listens on: any command would raise ConnectionError."""
    return Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))


# -- the book's sessions --------------------------------------------------------------------


async def test_book_ziplist_session(redis_client_text: Any) -> None:
    """§9.1.1 ``ziplist-test``: a short LIST stays compact; the 64-byte value limit is gone."""
    r = redis_client_text
    key = "aiorp:enc:{test}"
    compact = "listpack" if await listpack_lists(r) else "quicklist"
    assert await r.rpush(key, "a", "b", "c", "d") == 4
    assert await encoding(r, key) == compact
    small = await memory_usage(r, key)
    assert small is not None
    assert small > 0
    assert await r.rpush(key, "e", "f", "g", "h") == 8
    assert await encoding(r, key) == compact
    # The book's LIST became a linkedlist when a 65-byte item came; list nodes are limited in
    # bytes now (list-max-listpack-size -2: 8 KB), so it stays as it was.
    assert await r.rpush(key, 65 * "a") == 9
    assert await encoding(r, key) == compact
    bigger = await memory_usage(r, key, samples=0)
    assert bigger is not None
    assert bigger > small
    assert text(await r.rpop(key)) == 65 * "a"
    assert await encoding(r, key) == compact


async def test_book_intset_session(redis_client: Any) -> None:
    """§9.1.1 ``intset-test``: 500 integers are an intset, 1000 a hashtable."""
    key = "aiorp:enc:{set-object}"
    assert await redis_client.sadd(key, *range(500)) == 500
    assert await encoding(redis_client, key) == "intset"
    assert await redis_client.sadd(key, *range(500, 1000)) == 500
    assert await encoding(redis_client, key) == "hashtable"
    limits = await compact_limits(redis_client)
    assert limits.stays_compact("set", count=500, max_size=3, integers=True)
    assert not limits.stays_compact("set", count=1000, max_size=3, integers=True)


# -- encoding and memory_usage --------------------------------------------------------------


async def test_encodings_of_each_type(redis_client: Any) -> None:
    r = redis_client
    new = await listpack_lists(r)
    await r.rpush("aiorp:enc:{l}", *range(10))
    await r.hset("aiorp:enc:{h}", mapping={f"f{i}": i for i in range(10)})
    await r.zadd("aiorp:enc:{z}", {f"m{i}": i for i in range(10)})
    await r.sadd("aiorp:enc:{si}", *range(10))
    await r.sadd("aiorp:enc:{ss}", *(f"m{i}" for i in range(10)))
    await r.set("aiorp:enc:{n}", 12345)
    await r.set("aiorp:enc:{e}", "short")
    expected = {
        "l": "listpack" if new else "quicklist",
        "h": "listpack",
        "z": "listpack",
        "si": "intset",
        "ss": "listpack" if new else "hashtable",
        "n": "int",
        "e": "embstr",
    }
    for name, want in expected.items():
        assert await encoding(r, f"aiorp:enc:{{{name}}}") == want, name
    assert is_compact("listpack")
    assert is_compact("intset")
    assert not is_compact("quicklist")
    assert not is_compact(None)
    assert {"listpack", "ziplist", "intset"} == COMPACT_ENCODINGS


async def test_big_values_leave_the_compact_encodings(redis_client: Any) -> None:
    r = redis_client
    await r.rpush("aiorp:enc:{l}", *(("x" * 100) for _ in range(200)))
    await r.hset("aiorp:enc:{h}", "f", "v" * 65)
    await r.zadd("aiorp:enc:{z}", {f"m{i}": i for i in range(129)})
    expected = {"l": "quicklist", "h": "hashtable", "z": "skiplist"}
    for name, want in expected.items():
        assert await encoding(r, f"aiorp:enc:{{{name}}}") == want, name


async def test_missing_keys_are_none(redis_client: Any) -> None:
    assert await encoding(redis_client, "aiorp:enc:{missing}") is None
    assert await memory_usage(redis_client, "aiorp:enc:{missing}") is None
    assert await memory_usage(redis_client, b"aiorp:enc:{missing}", samples=0) is None


async def test_memory_grows_with_the_value(redis_client_text: Any) -> None:
    r = redis_client_text
    key = "aiorp:enc:{grow}"
    await r.hset(key, mapping={f"f{i}": "v" for i in range(10)})
    small = await memory_usage(r, key)
    await r.hset(key, mapping={f"f{i}": "v" for i in range(10, 1000)})
    big = await memory_usage(r, key, samples=0)
    assert isinstance(small, int)
    assert isinstance(big, int)
    assert big > small > 0
    assert await encoding(r, key.encode()) == "hashtable"


# -- compact_limits -------------------------------------------------------------------------


async def test_compact_limits_are_the_defaults(redis_client_text: Any) -> None:
    limits = await compact_limits(redis_client_text)
    for name, value in DEFAULTS.items():
        assert getattr(limits, name) == value, name
    if await listpack_lists(redis_client_text):
        assert (limits.set_max_listpack_entries, limits.set_max_listpack_value) == (128, 64)
        assert limits.listpack_lists
    else:
        assert (limits.set_max_listpack_entries, limits.set_max_listpack_value) == (None, None)
        assert not limits.listpack_lists


async def test_cluster_nodes_must_agree(redis_client: Any) -> None:
    if not isinstance(redis_client, RedisCluster):
        pytest.skip("a standalone server has one configuration")
    node = redis_client.get_primaries()[0]
    await redis_client.config_set("hash-max-listpack-entries", 100, target_nodes=node)
    try:
        with pytest.raises(LimitsMismatchError) as caught:
            await compact_limits(redis_client)
        assert set(caught.value.differences) == {"hash_max_listpack_entries"}
        values = caught.value.differences["hash_max_listpack_entries"]
        assert values[node.name] == "100"
        assert set(values) == {n.name for n in redis_client.get_nodes()}
        assert "hash_max_listpack_entries" in str(caught.value)
    finally:
        await redis_client.config_set("hash-max-listpack-entries", 512, target_nodes=node)
    assert (await compact_limits(redis_client)).hash_max_listpack_entries == 512


async def test_a_changed_limit_is_read_and_obeyed(redis_client: Any) -> None:
    where = (
        {"target_nodes": RedisCluster.ALL_NODES} if isinstance(redis_client, RedisCluster) else {}
    )
    # Set under the old alias: both names are one setting.
    await redis_client.config_set("zset-max-ziplist-entries", 4, **where)
    try:
        limits = await compact_limits(redis_client)
        assert limits.zset_max_listpack_entries == 4
        await redis_client.zadd("aiorp:enc:{z}", {f"m{i}": i for i in range(5)})
        assert not limits.stays_compact("zset", count=5, max_size=2)
        assert await encoding(redis_client, "aiorp:enc:{z}") == "skiplist"
    finally:
        await redis_client.config_set("zset-max-listpack-entries", 128, **where)


async def test_a_cancelled_read_changes_nothing(redis_client: Any) -> None:
    """Cancelled at successive await points: a read either ends whole or not at all."""
    cancelled = 0
    for steps in range(12):
        task = asyncio.create_task(compact_limits(redis_client))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        try:
            limits = await task
        except asyncio.CancelledError:
            cancelled += 1
        else:
            assert limits.hash_max_listpack_entries == 512
    assert cancelled > 0
    limits = await compact_limits(redis_client)  # the client still answers correctly
    assert limits.hash_max_listpack_entries == 512
    assert await encoding(redis_client, "aiorp:enc:{none}") is None


# -- stays_compact against the server -------------------------------------------------------


def test_stays_compact_by_hand() -> None:
    limits = CompactLimits(**DEFAULTS)
    assert limits.stays_compact("hash", count=512, max_size=64)
    assert not limits.stays_compact("hash", count=513, max_size=1)
    assert not limits.stays_compact("hash", count=1, max_size=65)
    assert limits.stays_compact("zset", count=128, max_size=64)
    assert not limits.stays_compact("zset", count=129, max_size=1)
    assert limits.stays_compact("set", count=512, max_size=20, integers=True)
    assert not limits.stays_compact("set", count=10, max_size=1)  # no listpack sets (7.0)
    new = CompactLimits(**DEFAULTS, set_max_listpack_entries=128, set_max_listpack_value=64)
    assert new.stays_compact("set", count=128, max_size=64)
    assert not new.stays_compact("set", count=129, max_size=1)
    assert not new.stays_compact("set", count=513, max_size=3, integers=True)
    # -2 = 8 KB a node; an entry of 60 bytes takes 1 + 60 + 1, of 100 bytes 2 + 100 + 1.
    assert listpack_bytes(132, 60) == 7 + 132 * 62 == 8191
    assert listpack_bytes(1, 100) == 7 + 103
    assert limits.stays_compact("list", count=132, max_size=60)
    assert not limits.stays_compact("list", count=133, max_size=60)
    counted = CompactLimits(**{**DEFAULTS, "list_max_listpack_size": 10})
    assert counted.stays_compact("list", count=10, max_size=10)
    assert not counted.stays_compact("list", count=11, max_size=1)
    assert not counted.stays_compact("list", count=10, max_size=1000)  # over 8 KB


@_PROPERTY
@given(
    kind=st.sampled_from(["hash", "zset", "set", "intset", "list"]),
    offset=st.integers(-3, 3),
    size=st.sampled_from([8, 40, 63, 64, 65, 100]),
)
async def test_stays_compact_matches_the_server(
    redis_client: Any, kind: str, offset: int, size: int
) -> None:
    r = redis_client
    limits = await compact_limits(r)
    key = "aiorp:enc:{prop}"
    await r.delete(key)

    def member(i: int) -> str:
        return f"m{i}".ljust(size, "x")

    integers = kind == "intset"
    if kind == "hash":
        count = limits.hash_max_listpack_entries + offset
        await r.hset(key, mapping={member(i): "v" for i in range(count)})
    elif kind == "zset":
        count = limits.zset_max_listpack_entries + offset
        await r.zadd(key, {member(i): i for i in range(count)})
    elif kind == "intset":
        count = limits.set_max_intset_entries + offset
        size = len(str(count - 1))
        await r.sadd(key, *range(count))
    elif kind == "set":
        count = (limits.set_max_listpack_entries or 128) + offset
        await r.sadd(key, *(member(i) for i in range(count)))
    else:
        count = 80 + offset
        for i in range(count):  # one at a time: the usual way a list grows
            await r.rpush(key, member(i))
    predicted = limits.stays_compact(
        "set" if integers else kind,  # type: ignore[arg-type]
        count=count,
        max_size=size,
        integers=integers,
    )
    got = await encoding(r, key)
    if kind == "list" and not limits.listpack_lists:
        assert got == "quicklist"  # 7.0: one node or many, the name is the same
    elif kind == "list":
        if predicted:  # conservative: True is a promise, False a maybe
            assert got == "listpack"
    else:
        assert is_compact(got) == predicted, (kind, count, size, got)
    await r.delete(key)


# -- bad input ------------------------------------------------------------------------------


async def test_bad_input_is_refused_before_redis() -> None:
    client = offline()
    try:
        for bad_key, error in [
            (None, TypeError),
            (1, TypeError),
            ("", ValueError),
            (b"", ValueError),
        ]:
            with pytest.raises(error):
                await encoding(client, bad_key)  # type: ignore[arg-type]
            with pytest.raises(error):
                await memory_usage(client, bad_key)  # type: ignore[arg-type]
        for samples, error in [(-1, ValueError), (True, TypeError), (1.5, TypeError)]:
            with pytest.raises(error):
                await memory_usage(client, "k", samples=samples)  # type: ignore[arg-type]
        for call in (encoding(None, "k"), memory_usage(None, "k"), compact_limits(None)):
            with pytest.raises(TypeError):
                await call
    finally:
        await client.aclose()
    limits = CompactLimits(**DEFAULTS)
    with pytest.raises(ValueError, match="kind"):
        limits.stays_compact("stream", count=1, max_size=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        limits.stays_compact("hash", count=-1, max_size=1)
    with pytest.raises(TypeError):
        limits.stays_compact("hash", count=1, max_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        limits.stays_compact("set", count=1, max_size=1, integers=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_size"):
        listpack_bytes(1, -1)


async def test_samples_out_of_range_are_refused_before_redis() -> None:
    with pytest.raises(ValueError, match="samples"):
        await memory_usage(NO_REDIS, "k", samples=2**63)
    with pytest.raises(ValueError, match="samples"):
        await memory_usage(NO_REDIS, "k", samples=-1)
    with pytest.raises(ValueError, match="count"):
        listpack_bytes(2**63, 1)
