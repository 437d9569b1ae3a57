"""Test Config: the maintenance flag, JSON settings and their bounded local cache.

Redis in Action §5.4, with the book's tests (TestCh05 ``test_is_under_maintenance`` and
``test_config``) adapted: a short ``refresh`` replaces its one-second sleeps. Redis reads are
counted by the server itself (``INFO commandstats`` on the node that owns the key), not by a
mock. Every test runs on a standalone server and a cluster; the ``_text`` ones also with
``decode_responses`` on and off.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest
from helpers import NO_REDIS
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.ops.config import Config, redis_from_config
from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.testing.server import free_port


async def gets(client: Any, key: str) -> int:
    """How many GETs the server that owns ``key`` has run since its stats were reset."""
    if isinstance(client, RedisCluster):
        info = await client.info("commandstats", target_nodes=client.get_node_from_key(key))
    else:
        info = await client.info("commandstats")
    return int(info.get("cmdstat_get", {}).get("calls", 0))


def dead_client() -> Redis:
    return Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))


# -- the book's tests ---------------------------------------------------------------------------


async def test_book_is_under_maintenance(redis_client_text: Any) -> None:
    config = Config(redis_client_text, refresh=0.05)
    assert await config.is_under_maintenance() is False
    other = Config(redis_client_text, refresh=0.05)
    await other.set_maintenance(True)
    await asyncio.sleep(0.06)  # the book sleeps one refresh period
    assert await config.is_under_maintenance() is True
    await other.set_maintenance(False)
    await asyncio.sleep(0.06)
    assert await config.is_under_maintenance() is False


async def test_book_config(redis_client_text: Any) -> None:
    config = Config(redis_client_text)
    await config.set_config("redis", "test", {"db": 15})
    assert await config.get_config("redis", "test") == {"db": 15}
    assert await Config(redis_client_text).get_config("redis", "test") == {"db": 15}
    key = config.config_key("redis", "test")
    assert key == "aiorp:config:{redis}:test"
    assert await redis_client_text.get(key) in ('{"db":15}', b'{"db":15}')


# -- staleness bounds ---------------------------------------------------------------------------


async def test_a_cached_value_is_seen_again_until_it_is_older_than_refresh(
    redis_client: Any,
) -> None:
    reader = Config(redis_client, refresh=3600)
    writer = Config(redis_client)
    await writer.set_config("app", "web", {"v": 1})
    assert await reader.get_config("app", "web") == {"v": 1}
    await writer.set_config("app", "web", {"v": 2})
    assert await reader.get_config("app", "web") == {"v": 1}  # cached: within an hour
    assert await reader.get_config("app", "web", wait=0) == {"v": 2}  # a fresh read
    assert await reader.get_config("app", "web") == {"v": 2}  # and it refreshed the cache


async def test_a_value_set_elsewhere_is_seen_once_refresh_has_passed(redis_client: Any) -> None:
    reader = Config(redis_client, refresh=0.05)
    writer = Config(redis_client)
    for version in range(5):
        assert await reader.get_config("app", "api") == (None if version == 0 else version - 1)
        await writer.set_config("app", "api", version)
        # The entry was read before the write: once it is older than refresh, it is re-read.
        await asyncio.sleep(0.06)
        assert await reader.get_config("app", "api") == version


async def test_own_writes_are_seen_at_once_and_not_undone_by_an_older_read(
    redis_client: Any,
) -> None:
    config = Config(redis_client, refresh=3600)
    await config.set_config("app", "c", "old")
    assert await config.get_config("app", "c", wait=0) == "old"
    # A read sent before the write completes after it may answer "old" to its caller, but the
    # cache keeps the write.
    await asyncio.gather(
        config.get_config("app", "c", wait=0), config.set_config("app", "c", "new")
    )
    assert await config.get_config("app", "c") == "new"
    await config.delete_config("app", "c")
    assert await config.get_config("app", "c", default="gone") == "gone"
    await config.set_maintenance(True)
    assert await config.is_under_maintenance() is True
    assert await redis_client.get(config.maintenance_key) == b"yes"


async def test_caches_are_per_object(redis_client: Any) -> None:
    one = Config(redis_client, refresh=3600)
    two = Config(redis_client, refresh=3600)
    await one.set_config("app", "x", 1)
    assert await two.get_config("app", "x") == 1
    await one.set_config("app", "x", 2)
    assert await one.get_config("app", "x") == 2
    assert await two.get_config("app", "x") == 1
    other = Config(redis_client, keyspace=Keyspace("other"), refresh=3600)
    assert await other.get_config("app", "x") is None


async def test_returned_values_do_not_share_the_cache(redis_client_text: Any) -> None:
    config = Config(redis_client_text, refresh=3600)
    await config.set_config("app", "m", {"hosts": ["a"]})
    first = await config.get_config("app", "m")
    first["hosts"].append("b")
    assert await config.get_config("app", "m") == {"hosts": ["a"]}


# -- concurrency: one read per refresh ----------------------------------------------------------


async def test_concurrent_callers_share_one_read_per_refresh(redis_client: Any) -> None:
    config = Config(redis_client, refresh=0.05)
    writer = Config(redis_client)
    key = config.config_key("app", "hot")
    await writer.set_maintenance(True)
    for turn in range(4):
        await writer.set_config("app", "hot", {"n": turn})
        await asyncio.sleep(0.06)  # every cached entry is now stale
        before = await gets(redis_client, key)
        results = await asyncio.gather(
            *(config.get_config("app", "hot", expect=dict) for _ in range(100))
        )
        assert results == [{"n": turn}] * 100  # all saw the write: none was served stale
        assert await gets(redis_client, key) - before == 1
        before = await gets(redis_client, config.maintenance_key)
        flags = await asyncio.gather(*(config.is_under_maintenance() for _ in range(100)))
        assert flags == [True] * 100
        assert await gets(redis_client, config.maintenance_key) - before == 1


async def test_cancelling_the_caller_that_started_a_read_spares_the_others(
    redis_client: Any,
) -> None:
    config = Config(redis_client, refresh=3600)
    await Config(redis_client).set_config("app", "k", [1, 2])
    key = config.config_key("app", "k")
    before = await gets(redis_client, key)
    first = asyncio.create_task(config.get_config("app", "k"))
    await asyncio.sleep(0)  # the first caller starts the read
    rest = [asyncio.create_task(config.get_config("app", "k")) for _ in range(20)]
    await asyncio.sleep(0)  # they all join it
    first.cancel()
    assert await asyncio.gather(*rest) == [[1, 2]] * 20
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await gets(redis_client, key) - before == 1
    # Cancel every caller: the read still completes and fills the cache, no task is left.
    fresh = Config(redis_client, refresh=3600)
    tasks = [asyncio.create_task(fresh.get_config("app", "k")) for _ in range(5)]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert await fresh.get_config("app", "k") == [1, 2]


async def test_a_failed_read_reaches_every_caller_and_is_retried() -> None:
    client = dead_client()
    config = Config(client)
    results = await asyncio.gather(
        *(config.get_config("app", "k") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    with pytest.raises(RedisConnectionError):
        await config.is_under_maintenance()
    await client.aclose()


# -- typed results ------------------------------------------------------------------------------


async def test_expect_checks_the_json_type(redis_client_text: Any) -> None:
    config = Config(redis_client_text)
    await config.set_config("t", "dict", {"a": 1})
    await config.set_config("t", "int", 3)
    await config.set_config("t", "bool", True)
    await config.set_config("t", "str", "x")
    assert await config.get_config("t", "dict", expect=dict) == {"a": 1}
    assert await config.get_config("t", "int", expect=int) == 3
    value = await config.get_config("t", "int", expect=float)
    assert value == 3.0
    assert isinstance(value, float)
    assert await config.get_config("t", "bool", expect=bool) is True
    assert await config.get_config("t", "missing", expect=dict) is None
    assert await config.get_config("t", "missing", expect=dict, default={}) == {}
    with pytest.raises(TypeError, match="holds a dict, expected list"):
        await config.get_config("t", "dict", expect=list)
    with pytest.raises(TypeError, match="holds a bool, expected int"):
        await config.get_config("t", "bool", expect=int)
    with pytest.raises(TypeError, match="holds a str"):
        await config.get_config("t", "str", expect=int)
    await redis_client_text.set(config.config_key("t", "junk"), "{not json")
    with pytest.raises(ValueError, match="does not hold JSON"):
        await config.get_config("t", "junk")


# -- building a client from a stored config -----------------------------------------------------


async def test_redis_from_config_with_host_and_overrides(redis_server: Endpoint) -> None:
    store = Redis.from_url(redis_server.url)
    config = Config(store)
    parts = urlsplit(redis_server.url)
    await config.set_config("redis", "main", {"host": parts.hostname, "port": parts.port, "db": 0})
    # The book passed host= beside **config: a stored host was a duplicate keyword.
    client = await redis_from_config(config, "main", host=parts.hostname, decode_responses=True)
    assert await client.ping()
    await client.set("aiorp:from-config", "ok")
    assert await client.get("aiorp:from-config") == "ok"
    await client.aclose()
    await config.set_config("redis", "by-url", {"url": redis_server.url, "decode_responses": True})
    client = await redis_from_config(config, "by-url")
    assert await client.get("aiorp:from-config") == "ok"
    await client.aclose()
    await store.delete("aiorp:from-config")
    with pytest.raises(LookupError, match="no settings"):
        await redis_from_config(config, "absent")
    await config.set_config("redis", "bad", {"hostt": "x"})
    with pytest.raises(TypeError):
        await redis_from_config(config, "bad")
    await config.set_config("redis", "list", [1])
    with pytest.raises(TypeError, match="expected dict"):
        await redis_from_config(config, "list")
    await store.aclose()


# -- bad input ----------------------------------------------------------------------------------


async def test_bad_input_is_refused_before_redis() -> None:
    client = dead_client()
    config = Config(client)
    with pytest.raises(ValueError, match="value"):
        await config.set_config("a", "b", float("nan"))
    with pytest.raises(TypeError, match="value"):
        await config.set_config("a", "b", {1, 2})
    with pytest.raises(ValueError, match="kind"):
        await config.set_config("", "b", 1)
    with pytest.raises(ValueError, match="component"):
        await config.get_config("a", "b}c")
    with pytest.raises(TypeError, match="component"):
        await config.get_config("a", None)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="wait"):
        await config.get_config("a", "b", wait=-1)
    with pytest.raises(TypeError, match="wait"):
        await config.is_under_maintenance(wait="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expect"):
        await config.get_config("a", "b", expect=set)
    with pytest.raises(TypeError, match="on"):
        await config.set_maintenance("yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config"):
        await redis_from_config(client, "main")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refresh"):
        Config(client, refresh=float("inf"))
    with pytest.raises(TypeError, match="refresh"):
        Config(client, refresh=True)
    with pytest.raises(TypeError, match="keyspace"):
        Config(client, keyspace="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="redis"):
        Config(None)
    await client.aclose()


async def test_waits_out_of_range_are_refused_before_redis() -> None:
    config = Config(NO_REDIS)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="wait"):
            await config.get_config("redis", "x", wait=bad)
        with pytest.raises(ValueError, match="wait"):
            await config.is_under_maintenance(wait=bad)
        with pytest.raises(ValueError, match="refresh"):
            Config(NO_REDIS, refresh=bad)
    with pytest.raises(TypeError, match="wait"):
        await config.get_config("redis", "x", wait=True)
