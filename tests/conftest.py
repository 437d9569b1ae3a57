"""Test configuration: the fixtures come from aiorpatterns' own pytest plugin (real servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from aiorpatterns.pytest_plugin import Endpoint


@pytest.fixture
async def new_client(
    request: pytest.FixtureRequest, redis_client: Any
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Make extra clients (own connection pools) on the same topology as ``redis_client``."""
    topology = request.node.callspec.params["redis_client"]
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    endpoint: Endpoint = request.getfixturevalue(fixture)
    made: list[Any] = []

    async def make(**options: Any) -> Any:
        kind = RedisCluster if topology == "cluster" else Redis
        client = kind.from_url(endpoint.url, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture(params=["standalone", "cluster"])
def endpoint(request: pytest.FixtureRequest) -> tuple[Endpoint, str]:
    """A server this run started (standalone, or a cluster), which a test may restart."""
    topology = request.param
    found: Endpoint = request.getfixturevalue(
        "redis_server" if topology == "standalone" else "redis_cluster_server"
    )
    if found.server is None:
        pytest.skip("the server is external (REDIS_URL / REDIS_CLUSTER_URL): cannot restart it")
    return found, topology
