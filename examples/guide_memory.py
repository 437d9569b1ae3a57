"""The memory guide's examples: compact encodings, sharded structures, unique visitors, packed
locations (Redis in Action §9, §11.4), on a Redis server this script starts itself.

Run: ``uv run python examples/guide_memory.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import (
    Locations,
    ShardedHash,
    ShardedList,
    UniqueVisitors,
    compact_limits,
    encoding,
    memory_usage,
)
from aiorpatterns.testing.server import RedisServer


# --8<-- [start:encodings]
async def encodings_example(redis: Redis) -> None:
    """See how Redis stores a key, and whether a structure of a given shape stays compact."""
    await redis.rpush("app:small", *range(10))
    assert await encoding(redis, "app:small") in ("listpack", "quicklist")
    assert (await memory_usage(redis, "app:small") or 0) > 0
    limits = await compact_limits(redis)  # read from the server (every node on a cluster)
    assert limits.stays_compact("hash", count=100, max_size=16)
    assert not limits.stays_compact("hash", count=10**6, max_size=16)


# --8<-- [end:encodings]


# --8<-- [start:sharding]
async def sharding_example(redis: Redis) -> None:
    """Many small HASHes instead of one big one; a LIST split into compact chunks."""
    phones = ShardedHash(redis, "phones", total_elements=100_000, shard_size=512)
    await phones.set("ann", "+1 555 0100")
    assert await phones.get("ann") == "+1 555 0100"

    jobs = ShardedList(redis, "jobs", chunk_size=64)
    await jobs.rpush(*range(200))  # spread over several chunks
    assert await jobs.llen() == 200
    assert await jobs.lpop() == "0"
    assert await jobs.brpop(timeout=1) == "199"


# --8<-- [end:sharding]


# --8<-- [start:visitors]
async def visitors_example(redis: Redis) -> None:
    """Count unique visitors per day: exact (sharded SETs) or approximate (HyperLogLog)."""
    visitors = UniqueVisitors(redis, expected=10_000)
    for session in ("s1", "s2", "s1"):
        await visitors.count_visit(session, day="2026-12-04")
    assert await visitors.count("2026-12-04") == 2


# --8<-- [end:visitors]


# --8<-- [start:locations]
async def locations_example(redis: Redis) -> None:
    """Each user's country and state packed in two bytes, aggregated per country."""
    places = Locations(redis)
    await places.set_location(1, "USA", "CA")
    await places.set_location(2, "USA", "NY")
    await places.set_location(3, "CAN")
    location = await places.get_location(1)
    assert location is not None
    assert (location.country, location.state) == ("USA", "CA")
    counts = await places.aggregate()
    assert counts.countries == {"USA": 2, "CAN": 1}


# --8<-- [end:locations]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await encodings_example(redis)
            await sharding_example(redis)
            await visitors_example(redis)
            await locations_example(redis)
        finally:
            await redis.aclose()
    print("memory: ok")


if __name__ == "__main__":
    asyncio.run(main())
