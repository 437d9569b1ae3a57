"""A tour of Redis' data structures and commands, async, as Redis in Action chapters 1-3 give
them: strings, lists, sets, hashes, sorted sets, publish/subscribe, SORT, MULTI/EXEC and
expiry, on plain ``redis.asyncio`` (no aiorpatterns class), on a Redis server this script
starts itself.

Run: ``uv run python examples/guide_tour.py``. The docs include the code between the
``--8<--`` markers (docs/guide/tour.md), so the page shows exactly what this script runs and
checks.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns.testing.server import RedisServer


# --8<-- [start:strings]
async def strings(r: Redis) -> None:
    """§1.2.1, §3.1: GET/SET/DEL, counters, substrings and bits."""
    assert await r.set("hello", "world")
    assert await r.get("hello") == "world"
    assert await r.delete("hello") == 1
    assert await r.get("hello") is None
    assert await r.incr("counter") == 1
    assert await r.incrby("counter", 15) == 16
    assert await r.decrby("counter", 5) == 11
    assert await r.incrbyfloat("counter", 0.5) == 11.5
    assert await r.append("greeting", "hello ") == 6
    assert await r.append("greeting", "world!") == 12
    assert await r.getrange("greeting", 3, 7) == "lo wo"
    assert await r.setrange("greeting", 0, "H") == 12
    assert await r.get("greeting") == "Hello world!"
    assert await r.setbit("bits", 2, 1) == 0
    assert await r.setbit("bits", 7, 1) == 0
    assert await r.get("bits") == "!"  # 0b00100001


# --8<-- [end:strings]


# --8<-- [start:lists]
async def lists(r: Redis) -> None:
    """§1.2.2, §3.2: pushes and pops at both ends, ranges, trims, blocking pops."""
    assert await r.rpush("list", "item") == 1
    assert await r.rpush("list", "item2", "item") == 3
    assert await r.lrange("list", 0, -1) == ["item", "item2", "item"]
    assert await r.lindex("list", 1) == "item2"
    assert await r.lpop("list") == "item"
    assert await r.lpush("list", "first", "zeroth") == 4
    assert await r.lrange("list", 0, -1) == ["zeroth", "first", "item2", "item"]
    assert await r.ltrim("list", 1, 2)
    assert await r.lrange("list", 0, -1) == ["first", "item2"]
    await r.rpush("list2", "item3")
    assert await r.brpoplpush("list2", "list", 1) == "item3"
    assert await r.blpop(["list", "list2"], 1) == ("list", "item3")


# --8<-- [end:lists]


# --8<-- [start:sets]
async def sets(r: Redis) -> None:
    """§1.2.3, §3.3: members, moves, and the set algebra."""
    assert await r.sadd("set", "item", "item2", "item3") == 3
    assert await r.sadd("set", "item") == 0
    assert await r.smembers("set") == {"item", "item2", "item3"}
    assert await r.sismember("set", "item4") == 0
    assert await r.srem("set", "item2") == 1
    assert await r.smove("set", "set2", "item3")
    assert await r.scard("set") == 1
    await r.sadd("skey1", "a", "b", "c", "d")
    await r.sadd("skey2", "c", "d", "e", "f")
    assert await r.sdiff(["skey1", "skey2"]) == {"a", "b"}
    assert await r.sinter(["skey1", "skey2"]) == {"c", "d"}
    assert await r.sunion(["skey1", "skey2"]) == {"a", "b", "c", "d", "e", "f"}


# --8<-- [end:sets]


# --8<-- [start:hashes]
async def hashes(r: Redis) -> None:
    """§1.2.4, §3.4: fields, increments, whole-hash reads."""
    assert await r.hset("hash", mapping={"k1": "v1", "k2": "v2", "k3": "v3"}) == 3
    assert await r.hmget("hash", ["k2", "k3"]) == ["v2", "v3"]
    assert await r.hlen("hash") == 3
    assert await r.hdel("hash", "k1", "k3") == 2
    await r.hset("hash", mapping={"short": "hello", "long": "1000" * 10})
    assert sorted(await r.hkeys("hash")) == ["k2", "long", "short"]
    assert await r.hexists("hash", "num") == 0
    assert await r.hincrby("hash", "num") == 1
    assert await r.hgetall("hash") == {
        "k2": "v2",
        "short": "hello",
        "long": "1000" * 10,
        "num": "1",
    }


# --8<-- [end:hashes]


# --8<-- [start:zsets]
async def sorted_sets(r: Redis) -> None:
    """§1.2.5, §3.5: scores, ranks, ranges and the weighted unions of sets."""
    assert await r.zadd("zset", {"a": 3, "b": 2, "c": 1}) == 3
    assert await r.zcard("zset") == 3
    assert await r.zincrby("zset", 3, "c") == 4.0
    assert await r.zscore("zset", "b") == 2.0
    assert await r.zrank("zset", "c") == 2
    assert await r.zcount("zset", 0, 3) == 2
    assert await r.zrem("zset", "b") == 1
    assert await r.zrange("zset", 0, -1, withscores=True) == [("a", 3.0), ("c", 4.0)]
    await r.zadd("zset-1", {"a": 1, "b": 2, "c": 3})
    await r.zadd("zset-2", {"b": 4, "c": 1, "d": 0})
    assert await r.zinterstore("zset-i", ["zset-1", "zset-2"]) == 2
    assert await r.zrange("zset-i", 0, -1, withscores=True) == [("c", 4.0), ("b", 6.0)]
    assert await r.zunionstore("zset-u", ["zset-1", "zset-2"], aggregate="MIN") == 4
    assert await r.zrange("zset-u", 0, -1, withscores=True) == [
        ("d", 0.0), ("a", 1.0), ("c", 1.0), ("b", 2.0),
    ]  # fmt: skip


# --8<-- [end:zsets]


# --8<-- [start:pubsub]
async def publish_subscribe(r: Redis) -> None:
    """§3.6: a subscriber gets what is published after it subscribed."""
    pubsub = r.pubsub()
    await pubsub.subscribe("channel")
    confirm = await pubsub.get_message(timeout=1)
    assert confirm is not None
    assert confirm["type"] == "subscribe"
    for n in range(3):
        assert await r.publish("channel", str(n)) == 1  # one subscriber got it
    got = []
    while len(got) < 3:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is not None:
            got.append(message["data"])
    assert got == ["0", "1", "2"]
    await pubsub.unsubscribe("channel")
    await pubsub.aclose()


# --8<-- [end:pubsub]


# --8<-- [start:sort]
async def sorting(r: Redis) -> None:
    """§3.7.1: SORT numerically, alphabetically, and by or with fields of other keys."""
    await r.rpush("sort-input", 23, 15, 110, 7)
    assert await r.sort("sort-input") == ["7", "15", "23", "110"]
    assert await r.sort("sort-input", alpha=True) == ["110", "15", "23", "7"]
    for n, weight in ((7, 5), (15, 1), (23, 9), (110, 3)):
        await r.hset(f"d-{n}", "field", weight)
    assert await r.sort("sort-input", by="d-*->field") == ["15", "110", "7", "23"]
    assert await r.sort("sort-input", by="d-*->field", get="d-*->field") == ["1", "3", "5", "9"]


# --8<-- [end:sort]


# --8<-- [start:multi]
async def transactions(r: Redis) -> None:
    """§3.7.2: MULTI/EXEC runs the queued commands together, nothing in between."""

    async def trans() -> int:
        async with r.pipeline(transaction=True) as pipe:
            pipe.incr("trans:")
            await asyncio.sleep(0.01)
            pipe.incr("trans:", -1)
            incremented, _ = await pipe.execute()
            return int(incremented)

    # Each INCR is followed by its DECR inside one transaction: every caller sees 1.
    assert await asyncio.gather(*(trans() for _ in range(3))) == [1, 1, 1]
    assert await r.get("trans:") == "0"


# --8<-- [end:multi]


# --8<-- [start:expire]
async def expiration(r: Redis) -> None:
    """§3.7.3: keys that delete themselves."""
    await r.set("key", "value")
    assert await r.expire("key", 2)
    assert 0 < await r.ttl("key") <= 2
    assert await r.persist("key")
    assert await r.ttl("key") == -1  # no expiry any more
    await r.set("key", "value", px=50)
    # Gone within about 50 ms, by the server alone (a blocking pop on an empty list waits).
    assert await r.blpop(["nothing"], 0.2) is None
    assert await r.get("key") is None


# --8<-- [end:expire]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url, decode_responses=True)
        try:
            for step in (
                strings,
                lists,
                sets,
                hashes,
                sorted_sets,
                publish_subscribe,
                sorting,
                transactions,
                expiration,
            ):
                await step(redis)
        finally:
            await redis.aclose()
    print("tour: every step ran")


if __name__ == "__main__":
    asyncio.run(main())
