"""pytest fixtures that give a test suite real Redis servers: standalone and Redis Cluster.

Registered as a ``pytest11`` entry point, so any project that installs aiorpatterns gets them:

- ``redis_server`` / ``redis_cluster_server`` (session): a real server / 3-master cluster started by
  :mod:`aiorpatterns.server`, or the external ones named by ``REDIS_URL`` / ``REDIS_CLUSTER_URL``.
- ``redis_standalone_client`` / ``redis_cluster_client``: a fresh ``redis.asyncio`` client per
  test, on an empty keyspace (FLUSHALL before the test).
- ``redis_client``: the same, parametrised over both topologies, so one test runs on both.
- ``redis_client_text``: parametrised over topology and ``decode_responses`` (False/True), for
  tests whose results must be identical either way.
- ``redis_docker_url``: a server in a Docker container via testcontainers, skipped with the
  reason when no Docker engine (or testcontainers) is reachable.

A server that cannot be started fails the tests that need it; nothing is skipped silently.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from .server import ClusterServer, RedisServer

__all__ = ["Endpoint"]


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


async def open_client(endpoint: Endpoint, topology: str, **options: Any) -> Any:
    """Connect a fresh ``redis.asyncio`` client and empty the keyspace."""
    if topology == "cluster":
        cluster = RedisCluster.from_url(endpoint.url, **options)
        await cluster.flushall(target_nodes=RedisCluster.PRIMARIES)
        return cluster
    client = Redis.from_url(endpoint.url, **options)
    await client.flushall()
    return client


@pytest.fixture
async def redis_standalone_client(redis_server: Endpoint) -> AsyncIterator[Redis]:
    """A ``redis.asyncio.Redis`` on an empty standalone server."""
    client = await open_client(redis_server, "standalone")
    yield client
    await client.aclose()


@pytest.fixture
async def redis_cluster_client(redis_cluster_server: Endpoint) -> AsyncIterator[RedisCluster]:
    """A ``redis.asyncio.RedisCluster`` on an empty cluster."""
    client = await open_client(redis_cluster_server, "cluster")
    yield client
    await client.aclose()


@pytest.fixture(params=["standalone", "cluster"])
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A client on an empty server, once per topology."""
    endpoint = request.getfixturevalue(_SERVER_FIXTURE[request.param])
    client = await open_client(endpoint, request.param)
    yield client
    await client.aclose()


@pytest.fixture(
    params=[("standalone", False), ("standalone", True), ("cluster", False), ("cluster", True)],
    ids=["standalone-bytes", "standalone-text", "cluster-bytes", "cluster-text"],
)
async def redis_client_text(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A client per topology and per ``decode_responses`` setting."""
    topology, decode = request.param
    endpoint = request.getfixturevalue(_SERVER_FIXTURE[topology])
    client = await open_client(endpoint, topology, decode_responses=decode)
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
