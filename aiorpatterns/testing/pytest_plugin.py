"""pytest fixtures that give a test suite real Redis servers: standalone and Redis Cluster.

Registered as a ``pytest11`` entry point, so any project that installs aiorpatterns gets them:

- ``redis_server`` / ``redis_cluster_server`` (session): a real server / 3-master cluster started by
  :mod:`aiorpatterns.testing.server`, or the external ones named by ``REDIS_URL`` /
  ``REDIS_CLUSTER_URL``.
- ``redis_standalone_client`` / ``redis_cluster_client``: a fresh ``redis.asyncio`` client per
  test, on an empty keyspace: FLUSHALL on servers the plugin started; on external servers only
  the keys under ``redis_key_prefixes`` (default ``aiorp``) are deleted, so whatever else they
  hold survives. Override that session fixture in your ``conftest.py`` to add your prefixes.
- ``redis_client``: the same, parametrised over both topologies, so one test runs on both.
- ``redis_client_text``: parametrised over topology and ``decode_responses`` (False/True), for
  tests whose results must be identical either way.
- ``redis_docker_url``: a server in a Docker container via testcontainers, skipped with the
  reason when no Docker engine (or testcontainers) is reachable.

The async fixtures are ``pytest_asyncio`` fixtures, so they work in strict and auto mode alike;
pytest-asyncio is needed only when they are used (without it, they fail and say so).

A server that cannot be started fails the tests that need it; nothing is skipped silently.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from ..core.keys import DEFAULT_KEYSPACE, Keyspace
from .server import ClusterServer, RedisServer

__all__ = ["Endpoint"]


def _failing_fixture(*args: Any, **kwargs: Any) -> Any:
    """Stand in for ``pytest_asyncio.fixture``: a fixture that fails and names the fix."""

    def decorate(function: Callable[..., Any]) -> Any:
        def missing(*_: Any, **__: Any) -> None:
            pytest.fail(f"{function.__name__} needs pytest-asyncio: pip install pytest-asyncio")

        missing.__name__ = missing.__qualname__ = function.__name__
        missing.__doc__ = function.__doc__
        return pytest.fixture(*args, **kwargs)(missing)

    return decorate


def _async_fixture() -> Any:
    """``pytest_asyncio.fixture`` (strict and auto mode alike), or a stand-in without it."""
    try:
        from pytest_asyncio import fixture
    except ImportError:  # the plugin still loads; only tests using the async fixtures fail
        return _failing_fixture
    return fixture


_ASYNC_FIXTURE = _async_fixture()
_F = TypeVar("_F", bound=Callable[..., Any])


def async_fixture(**options: Any) -> Callable[[_F], _F]:
    """Declare an async fixture, whatever the user's ``asyncio_mode``."""
    return cast("Callable[[_F], _F]", _ASYNC_FIXTURE(**options))


@dataclass(frozen=True)
class Endpoint:
    """Where a test server listens, and the process behind it when we started it."""

    url: str
    server: RedisServer | ClusterServer | None = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Endpoint]:
    """A standalone server for the session (``REDIS_URL`` to use an external one)."""
    if url := os.environ.get("REDIS_URL"):
        yield Endpoint(url)
        return
    with RedisServer() as server:
        yield Endpoint(server.url, server)


@pytest.fixture(scope="session")
def redis_cluster_server() -> Iterator[Endpoint]:
    """A 3-master Redis Cluster for the session (``REDIS_CLUSTER_URL`` for an external one)."""
    if url := os.environ.get("REDIS_CLUSTER_URL"):
        yield Endpoint(url)
        return
    with ClusterServer(masters=3) as cluster:
        yield Endpoint(cluster.url, cluster)


@pytest.fixture(scope="session")
def redis_key_prefixes() -> Sequence[str]:
    """Key prefixes the client fixtures empty on external servers (override to add yours)."""
    return (DEFAULT_KEYSPACE.prefix,)


async def open_client(
    endpoint: Endpoint, topology: str, prefixes: Sequence[str] = (), **options: Any
) -> Any:
    """Connect a fresh ``redis.asyncio`` client and empty the keyspace.

    A server we started is flushed; an external one (``endpoint.server is None``) loses only the
    keys under ``prefixes``.
    """
    cluster = topology == "cluster"
    client = (RedisCluster if cluster else Redis).from_url(endpoint.url, **options)
    try:
        if endpoint.server is None:
            for prefix in prefixes:
                await unlink_matching(client, Keyspace(prefix).pattern)
        elif cluster:
            await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        else:
            await client.flushall()
    except BaseException:
        await client.aclose()
        raise
    return client


async def unlink_matching(client: Any, pattern: str, batch: int = 500) -> None:
    """UNLINK every key matching ``pattern`` (SCAN MATCH; on a cluster, on every primary)."""
    where = {"target_nodes": RedisCluster.PRIMARIES} if isinstance(client, RedisCluster) else {}
    keys = [key async for key in client.scan_iter(match=pattern, count=1000, **where)]
    for start in range(0, len(keys), batch):
        await client.unlink(*keys[start : start + batch])  # a cluster client splits by slot


@async_fixture()
async def redis_standalone_client(
    redis_server: Endpoint, redis_key_prefixes: Sequence[str]
) -> AsyncIterator[Redis]:
    """A ``redis.asyncio.Redis`` on an empty standalone server."""
    client = await open_client(redis_server, "standalone", redis_key_prefixes)
    yield client
    await client.aclose()


@async_fixture()
async def redis_cluster_client(
    redis_cluster_server: Endpoint, redis_key_prefixes: Sequence[str]
) -> AsyncIterator[RedisCluster]:
    """A ``redis.asyncio.RedisCluster`` on an empty cluster."""
    client = await open_client(redis_cluster_server, "cluster", redis_key_prefixes)
    yield client
    await client.aclose()


@async_fixture(params=["standalone", "cluster"])
async def redis_client(
    request: pytest.FixtureRequest, redis_key_prefixes: Sequence[str]
) -> AsyncIterator[Any]:
    """A client on an empty server, once per topology."""
    endpoint = request.getfixturevalue(_SERVER_FIXTURE[request.param])
    client = await open_client(endpoint, request.param, redis_key_prefixes)
    yield client
    await client.aclose()


@async_fixture(
    params=[("standalone", False), ("standalone", True), ("cluster", False), ("cluster", True)],
    ids=["standalone-bytes", "standalone-text", "cluster-bytes", "cluster-text"],
)
async def redis_client_text(
    request: pytest.FixtureRequest, redis_key_prefixes: Sequence[str]
) -> AsyncIterator[Any]:
    """A client per topology and per ``decode_responses`` setting."""
    topology, decode = request.param
    endpoint = request.getfixturevalue(_SERVER_FIXTURE[topology])
    client = await open_client(endpoint, topology, redis_key_prefixes, decode_responses=decode)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def redis_docker_url() -> Iterator[str]:
    """A Redis in a Docker container (testcontainers); skipped when no engine is reachable."""
    try:
        from testcontainers.redis import RedisContainer  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        pytest.skip("testcontainers is not installed (pip install testcontainers)")
    try:
        import docker  # type: ignore[import-untyped,import-not-found,unused-ignore]

        docker.from_env().ping()
    except Exception as exc:  # any failure to reach the engine means: no Docker here
        pytest.skip(f"no Docker engine reachable: {exc}")
    with RedisContainer("redis:7") as container:
        host = container.get_container_host_ip()
        yield f"redis://{host}:{container.get_exposed_port(6379)}"


_SERVER_FIXTURE = {"standalone": "redis_server", "cluster": "redis_cluster_server"}
