"""Test the sharded HASH (Redis in Action §9.2.1) and sharded LIST (§11.4) on both topologies."""

from __future__ import annotations

import asyncio
import math
import uuid
import zlib
from collections import deque
from typing import Any

import pytest
from helpers import NO_REDIS

from aiorpatterns.memory.sharding import ShardedHash, ShardedList, ShardedSet, shard_of


def test_shard_of_is_stable_crc32() -> None:
    assert shard_of("hello", shards=7) == zlib.crc32(b"hello") % 7
    assert shard_of(1, shards=3) == shard_of("1", shards=3)


async def test_sharded_hash_round_trip(redis_client_text: Any) -> None:
    h = ShardedHash(redis_client_text, "test", total_elements=50, shard_size=10)
    for i in range(50):
        await h.set(f"k{i}", i)
        await h.set(i, str(i))
    for i in range(50):
        assert await h.get(f"k{i}") == str(i)
        assert await h.get(i) == str(i)
    assert await h.get("missing") is None


async def test_sharded_list_matches_a_deque(redis_client_text: Any) -> None:
    lst = ShardedList(redis_client_text, "lst", chunk_size=4)
    model: deque[str] = deque()
    await lst.lpush(*range(10))
    model.extendleft(str(i) for i in range(10))
    await lst.rpush(*range(-1, -11, -1))
    model.extend(str(i) for i in range(-1, -11, -1))
    assert await lst.llen() == len(model) == 20
    for k in range(25):
        got = await (lst.lpop() if k % 2 else lst.rpop())
        want = (model.popleft() if k % 2 else model.pop()) if model else None
        assert got == want
    assert await lst.llen() == 0


async def test_concurrent_pushers_and_blocking_poppers(redis_client: Any) -> None:
    lst = ShardedList(redis_client, "conc", chunk_size=5)
    got: list[str] = []

    async def popper() -> None:
        while (item := await lst.blpop(timeout=0.5)) is not None:
            got.append(item)

    tasks = [asyncio.create_task(popper()) for _ in range(4)]
    await asyncio.gather(*(lst.rpush(*(f"{p}:{i}" for i in range(20))) for p in range(5)))
    await asyncio.gather(*tasks)
    assert sorted(got) == sorted(f"{p}:{i}" for p in range(5) for i in range(20))


async def test_bad_input_before_redis() -> None:
    lst = ShardedList(NO_REDIS, "x")
    with pytest.raises(ValueError, match="items"):
        await lst.lpush()
    with pytest.raises(TypeError):
        await lst.rpush(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await ShardedHash(NO_REDIS, "h", total_elements=10).get(None)  # type: ignore[arg-type]
    for bad, error in [
        (-1, ValueError),
        (math.nan, ValueError),
        ("1", TypeError),
        (True, TypeError),
    ]:
        with pytest.raises(error, match="timeout"):
            await lst.blpop(timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size"):
        ShardedList(NO_REDIS, "x", chunk_size=0)
    with pytest.raises(ValueError, match="chunk_size"):
        ShardedList(NO_REDIS, "x", chunk_size=2**63)


async def test_book_placement_keeps_sequential_ids_together(redis_client_text: Any) -> None:
    """§9.2.1 shard_key: a numeric key goes to id // shard_size, any other by CRC-32."""
    book = ShardedHash(
        redis_client_text, "ids", total_elements=1000, shard_size=100, placement="book"
    )
    for i in range(250):
        await book.set(i, f"v{i}")
    assert {book.shard_number(i) for i in range(100)} == {0}
    assert {book.shard_number(i) for i in range(100, 200)} == {1}
    assert book.shard_number("250") == 2  # a string of digits is numeric too
    assert book.shard_number("k7") == shard_of("k7", shards=book.shards)
    sizes = [await redis_client_text.hlen(book.shard_key(n * 100)) for n in range(3)]
    assert sizes == [100, 100, 50]
    assert await book.get(123) == "v123"
    spread = ShardedHash(redis_client_text, "crc", total_elements=1000, shard_size=100)
    assert len({spread.shard_number(i) for i in range(100)}) > 1  # CRC-32 spreads ids
    with pytest.raises(ValueError, match="placement"):
        ShardedHash(NO_REDIS, "x", total_elements=10, placement="modulo")  # type: ignore[arg-type]


async def test_set_many_writes_one_hset_per_shard(redis_client_text: Any) -> None:
    """set_many: every pair lands in its shard; the count is of new keys; input checked first."""
    book = ShardedHash(
        redis_client_text, f"many-{uuid.uuid4().hex[:6]}", total_elements=1000, shard_size=100,
        placement="book",
    )  # fmt: skip
    assert await book.set_many([(i, f"v{i}") for i in range(250)]) == 250
    assert await book.set_many([(5, "five"), ("k", 1.5), (300, 3)]) == 2
    assert [await book.get(k) for k in (5, 199, "k", 300)] == ["five", "v199", "1.5", "3"]
    beside = book.shard_number("k") == 1  # "k" goes by CRC-32, maybe into shard 1
    assert await redis_client_text.hlen(book.shard_key(150)) == 100 + beside
    assert await book.set_many([]) == 0
    with pytest.raises(TypeError, match="value"):
        await book.set_many([(1, "ok"), (2, None)])  # type: ignore[list-item]
    assert await book.get(1) == "v1"  # nothing of the refused call was written
    for bad in ("ab", [(1,)], [[1, "x"]], 7):
        with pytest.raises(TypeError, match="items"):
            await ShardedHash(NO_REDIS, "x", total_elements=10).set_many(bad)  # type: ignore[arg-type]


async def test_sharded_set(redis_client: Any) -> None:
    """§9.2.1 shard_sadd: members spread by CRC-32 of "x" + member; small integer sets."""
    members = ShardedSet(redis_client, "visitors", total_elements=1000, shard_size=100)
    assert members.shards == 20
    added = [await members.sadd(i) for i in range(1000)]
    assert all(added)
    assert not await members.sadd(5)  # already there
    assert await members.sismember(999)
    assert not await members.sismember(1000)
    assert await members.scard() == 1000
    assert await members.srem(5)
    assert await members.scard() == 999
    shard = members.shard_key(7)
    assert shard.endswith(f":{zlib.crc32(b'x7') % 20}}}")
    assert await redis_client.object("encoding", shard) in (b"intset", "intset")
    with pytest.raises(TypeError):
        await ShardedSet(NO_REDIS, "s", total_elements=10).sadd(None)  # type: ignore[arg-type]
