"""The scaling guide's examples: client-side sharding over several servers, scatter-gather,
search over sharded indexes, unique visitors and the social network over shard servers (Redis in
Action §10), on three Redis servers this script starts.

Run: ``uv run python examples/guide_scaling.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import (
    SearchIndex,
    ShardedClients,
    ShardedSearch,
    ShardedSocial,
    UniqueVisitors,
    sharded_zrangebyscore,
)
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


# --8<-- [start:visitors]
async def visitors_example(counter: Redis, servers: list[Redis]) -> None:
    """A day's SET shards on several servers, the counter on another (§10.3.2)."""
    visitors = UniqueVisitors(counter, "site", expected=10_000, servers=servers)
    for session in ("s1", "s2", "s3", "s1"):
        await visitors.count_visit(session, day="2026-12-06")
    assert await visitors.count("2026-12-06") == 3
    # After a crash between a shard's server and the counter's, count what the shards hold:
    assert await visitors.sync("2026-12-06") == 3


# --8<-- [end:visitors]


# --8<-- [start:social]
async def social_example(main: Redis, servers: list[Redis]) -> None:
    """Users on one server; timelines by key and follows by user pair on the shards (§10.3.3)."""
    timelines = ShardedClients([servers[i % len(servers)] for i in range(8)])
    followers = ShardedClients([servers[i % len(servers)] for i in range(4)])
    social = ShardedSocial(main, timelines=timelines, followers=followers)
    ann, bob = await social.create_user("ann", "Ann"), await social.create_user("bob", "Bob")
    assert await social.follow_user(bob, ann)  # one step on the (ann, bob) pair's server
    status = await social.post_status(ann, "hello, shards")  # then to every follower's home
    assert [s.id for s in await social.get_status_messages(bob)] == [status]
    user = await social.get_user(ann)
    assert user is not None
    assert user.followers == 1
    [(follower, since)] = await social.get_followers(ann)  # merged over the shards
    assert follower == bob
    assert since > 0


# --8<-- [end:social]


async def main() -> None:
    with RedisServer() as first, RedisServer() as second, RedisServer() as third:
        clients = [Redis.from_url(first.url), Redis.from_url(second.url)]
        clients.append(Redis.from_url(third.url))
        try:
            await shards_example(clients[:2])
            await sharded_search_example(clients[:2])
            await visitors_example(clients[0], clients[1:])
            await social_example(clients[0], clients[1:])
        finally:
            for client in clients:
                await client.aclose()
    print("scaling: ok")


if __name__ == "__main__":
    asyncio.run(main())
