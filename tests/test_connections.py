"""RedisConnections (issue 16, §5.4.3 redis_connection): a client per component from stored
settings, rebuilt when they change; sharded_from_config (§10.2): a shard per stored setting.
The settings live on both topologies (``redis_client``); the clients they describe talk to
standalone servers (the suite's, or three of the test's own for the shards).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import NO_REDIS, until
from redis.asyncio import Redis

from aiorpatterns import Config, RedisConnections, sharded_from_config
from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.testing.server import RedisServer


async def test_one_client_per_component_until_its_settings_change(
    redis_client: Any, redis_server: Endpoint
) -> None:
    config = Config(redis_client, refresh=0)
    await config.set_config("redis", "logs", {"url": redis_server.url, "decode_responses": True})
    async with RedisConnections(config, grace=0.05) as connections:
        first = await connections.get("logs")
        assert await connections.get("logs") is first
        await first.set("aiorp:conn", "ok")
        assert await first.get("aiorp:conn") == "ok"
        # New settings (another writer, say): the next call builds a new client...
        await Config(redis_client).set_config("redis", "logs", {"url": redis_server.url})
        second = await connections.get("logs")
        assert second is not first
        assert await second.get("aiorp:conn") == b"ok"  # (no decode_responses any more)
        assert await first.ping()  # ...and the old one still serves within its grace

        async def retired() -> bool:
            return not connections._closing

        await until(retired, "the old client's close")
        await second.delete("aiorp:conn")


async def test_concurrent_callers_share_one_build(
    redis_client: Any, redis_server: Endpoint
) -> None:
    config = Config(redis_client)
    await config.set_config("redis", "main", {"url": redis_server.url})
    async with RedisConnections(config) as connections:
        clients = await asyncio.gather(*(connections.get("main") for _ in range(20)))
        assert all(c is clients[0] for c in clients)
        assert isinstance(clients[0], Redis)


async def test_the_decorator_passes_the_client_first(
    redis_client: Any, redis_server: Endpoint
) -> None:
    config = Config(redis_client)
    await config.set_config("redis", "main", {"url": redis_server.url})
    async with RedisConnections(config) as connections:

        @connections.connection("main")
        async def log(conn: Redis, message: str) -> int:
            return int(await conn.rpush("aiorp:log", message))

        assert await log("one") == 1
        assert await log(message="two") == 2
        await (await connections.get("main")).delete("aiorp:log")


async def test_missing_settings_and_bad_input(redis_client: Any) -> None:
    async with RedisConnections(Config(redis_client)) as connections:
        with pytest.raises(LookupError, match="no settings"):
            await connections.get("absent")
    with pytest.raises(TypeError, match="Config"):
        RedisConnections(redis_client)
    offline = RedisConnections(Config(NO_REDIS))
    with pytest.raises(ValueError, match="component"):
        await offline.get("")
    with pytest.raises(ValueError, match="component"):
        offline.connection("a}b")
    with pytest.raises(ValueError, match="grace"):
        RedisConnections(Config(NO_REDIS), grace=-1)


@pytest.fixture(scope="module")
def three_servers() -> Iterator[list[RedisServer]]:
    """Three standalone servers of their own: the shards."""
    servers: list[RedisServer] = []
    try:
        for _ in range(3):
            servers.append(RedisServer().start())
        yield servers
    finally:
        for server in servers:
            server.stop()


async def test_sharded_clients_from_stored_settings(
    redis_client: Any, three_servers: list[RedisServer]
) -> None:
    """§10.2: config:redis:<component>:<n> names each shard's server; keys land by shard."""
    config = Config(redis_client, refresh=0)
    for n, server in enumerate(three_servers):
        await config.set_config("redis", f"logs:{n}", {"url": server.url})
    async with RedisConnections(config) as connections:
        shards = await sharded_from_config(connections, "logs", 3)
        assert len(shards) == 3
        for i in range(30):
            await shards.client_for(f"k{i}").set(f"aiorp:k{i}", i)
        for n, server in enumerate(three_servers):
            direct = Redis.from_url(server.url)
            try:
                keys = await direct.keys("aiorp:*")
                held = sorted(int(k.decode().removeprefix("aiorp:k")) for k in keys)
                assert held == sorted(i for i in range(30) if shards.shard_for(f"k{i}") == n)
                await direct.flushall()
            finally:
                await direct.aclose()
        # One shard moves to another server: the next call follows the stored settings.
        await config.set_config("redis", "logs:2", {"url": three_servers[0].url})
        moved = await sharded_from_config(connections, "logs", 3)
        assert moved[2] is not shards[2]
        assert moved[0] is shards[0]
    with pytest.raises(ValueError, match="shards"):
        await sharded_from_config(RedisConnections(Config(NO_REDIS)), "logs", 0)
