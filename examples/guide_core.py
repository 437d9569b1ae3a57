"""The core guide's examples: clients (standalone, cluster, AutoPipeline), key names, Lua scripts,
errors, on a Redis server and a Redis Cluster this script starts itself.

Run: ``uv run python examples/guide_core.py``. The docs include the code between the ``--8<--``
markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

import redis as sync_redis
from redis.asyncio import Redis, RedisCluster

from aiorpatterns import (
    AcquireTimeoutError,
    AiorpatternsError,
    AutoPipeline,
    Keyspace,
    Lock,
    Script,
    Semaphore,
)
from aiorpatterns.testing.server import ClusterServer, RedisServer


# --8<-- [start:clients]
async def clients_example(url: str, cluster_url: str) -> None:
    """Every pattern takes a redis.asyncio client: Redis, RedisCluster or an AutoPipeline."""
    standalone = Redis.from_url(url)
    cluster = RedisCluster.from_url(cluster_url)
    batched = AutoPipeline(standalone)  # coalesces concurrent commands into one pipeline
    try:
        for client in (standalone, cluster, batched):
            async with Lock(client, "report", timeout=5) as lock:
                assert lock.fence is not None
        # Concurrent commands through an AutoPipeline share round trips.
        await asyncio.gather(*(batched.incr("app:hits") for _ in range(100)))
        assert int(await standalone.get("app:hits") or 0) == 100
        assert batched.stats.commands >= 100
        assert batched.stats.batches < 100
    finally:
        await batched.aclose()  # flushes what is queued; the wrapped client stays open
        await cluster.aclose()
        await standalone.aclose()  # the client is yours: patterns never close it

    refused = ""
    try:
        Lock(sync_redis.Redis.from_url(url), "report")  # type: ignore[arg-type]
    except TypeError as error:  # a sync client is refused at once, saying what to pass
        refused = str(error)
    assert "redis.asyncio" in refused


# --8<-- [end:clients]


# --8<-- [start:keyspace]
async def keyspace_example(redis: Redis) -> None:
    """One prefix for every key; one hash tag for every key of one object."""
    keys = Keyspace("myapp")
    assert keys.key("lock", "cart:42") == "myapp:lock:{cart:42}"
    assert keys.key("lock", "cart:42", "queue") == "myapp:lock:{cart:42}:queue"
    async with Lock(redis, "cart:42", keyspace=keys):
        names = [key.decode() async for key in redis.scan_iter(match=keys.pattern)]
        assert names
        assert all(name.startswith("myapp:lock:{cart:42}") for name in names)


# --8<-- [end:keyspace]


# --8<-- [start:scripts]
CAPPED_PUSH = Script(
    "capped_push",
    """
    redis.call('LPUSH', KEYS[1], ARGV[1])
    redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
    return redis.call('LLEN', KEYS[1])
    """,
    nkeys=1,
)


async def scripts_example(redis: Redis) -> None:
    """A Lua script run by EVALSHA, loaded again if the server forgot it (NOSCRIPT)."""
    assert await CAPPED_PUSH(redis, ["app:recent"], ["a", 2]) == 1
    await redis.script_flush()  # the server forgets every script...
    assert await CAPPED_PUSH(redis, ["app:recent"], ["b", 2]) == 2  # ...it is reloaded
    assert await CAPPED_PUSH(redis, ["app:recent"], ["c", 2]) == 2  # capped at two


# --8<-- [end:scripts]


# --8<-- [start:errors]
async def errors_example(redis: Redis) -> None:
    """Our errors share one base class; bad arguments fail before any command is sent."""
    caught: Exception | None = None
    async with Semaphore(redis, "exports", limit=1):
        try:
            async with Semaphore(redis, "exports", limit=1, acquire_timeout=0.1):
                raise AssertionError("unreachable: the only slot is held")
        except AiorpatternsError as error:  # catches every error of ours
            caught = error
    assert isinstance(caught, AcquireTimeoutError)
    assert isinstance(caught, TimeoutError)  # also a TimeoutError, for generic handlers

    message = ""
    try:
        Semaphore(redis, "exports", limit=0)
    except ValueError as error:
        message = str(error)
    assert "limit" in message  # the message names the argument


# --8<-- [end:errors]


async def main() -> None:
    with RedisServer() as server, ClusterServer() as cluster:
        await clients_example(server.url, cluster.url)
        redis = Redis.from_url(server.url)
        try:
            await keyspace_example(redis)
            await scripts_example(redis)
            await errors_example(redis)
        finally:
            await redis.aclose()
    print("core: ok")


if __name__ == "__main__":
    asyncio.run(main())
