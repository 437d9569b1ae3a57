"""The scaling guide's examples: client-side sharding over several servers, scatter-gather, and
search over sharded indexes (Redis in Action §10), on two Redis servers this script starts.

Run: ``uv run python examples/guide_scaling.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import SearchIndex, ShardedClients, ShardedSearch, sharded_zrangebyscore
from aiorpatterns.testing.server import RedisServer


# --8<-- [start:shards]
async def shards_example(clients: list[Redis]) -> None:
    """Route each key to one server; ask every server and merge the answers."""
    shards = ShardedClients(clients, timeout=5.0)
    for user in ("ann", "bob", "eve", "joe"):
        await shards.client_for(user).set(f"app:user:{user}", user.upper())
    assert await shards.client_for("eve").get("app:user:eve") == b"EVE"

    sizes = await shards.scatter(lambda redis: redis.dbsize())
    assert sum(n or 0 for n in sizes.replies) == 4
    assert sizes.missing == ()

    for shard, client in enumerate(clients):  # one sorted set per server, merged on read
        await client.zadd("app:scores", {f"s{shard}-low": shard, f"s{shard}-high": 10 + shard})
    merged = await sharded_zrangebyscore(shards, "app:scores", min=0, max=100, num=10)
    assert [member for member, _ in merged] == ["s0-low", "s1-low", "s0-high", "s1-high"]


# --8<-- [end:shards]


# --8<-- [start:search]
async def sharded_search_example(clients: list[Redis]) -> None:
    """One SearchIndex per server; a query runs on all and the pages are merged."""
    search = ShardedSearch([SearchIndex(client, "docs") for client in clients])
    for docid, updated in (("a", 1), ("b", 2), ("c", 3), ("d", 4)):
        await search.index_document(docid, "redis in action", fields={"updated": updated})
    result = await search.search("redis", sort="-updated", num=3)
    assert (result.total, result.ids, result.missing) == (4, ["d", "c", "b"], ())


# --8<-- [end:search]


async def main() -> None:
    with RedisServer() as first, RedisServer() as second:
        clients = [Redis.from_url(first.url), Redis.from_url(second.url)]
        try:
            await shards_example(clients)
            await sharded_search_example(clients)
        finally:
            for client in clients:
                await client.aclose()
    print("scaling: ok")


if __name__ == "__main__":
    asyncio.run(main())
