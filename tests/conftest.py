"""Test configuration: the fixtures come from aiorpatterns' own pytest plugin (real servers)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from helpers import Restricted
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from retrysafe import TwiceCluster, TwiceRedis

from aiorpatterns.core.keys import DEFAULT_KEYSPACE
from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.testing.server import RedisServer


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


@pytest.fixture
async def twice_client(request: pytest.FixtureRequest, redis_client: Any) -> AsyncIterator[Any]:
    """A client on ``redis_client``'s server that sends every script call twice (retrysafe.py).

    The scripts named by the test's ``@pytest.mark.retry_safe(...)`` must each have run twice.
    """
    topology = request.node.callspec.params["redis_client"]
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    endpoint: Endpoint = request.getfixturevalue(fixture)
    kind = TwiceCluster if topology == "cluster" else TwiceRedis
    decode = redis_client.get_encoder().decode_responses
    client = kind.from_url(endpoint.url, decode_responses=decode)
    try:
        yield client
    finally:
        await client.aclose()
    marker = request.node.get_closest_marker("retry_safe")
    missed = [name for name in (marker.args if marker else ()) if not client.doubled[name]]
    assert not missed, f"marked retry_safe but never ran twice: {missed}"


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


@pytest.fixture(scope="session")
def extra_servers() -> Iterator[list[RedisServer]]:
    """Two more standalone servers of the run: the other shards of client-side sharding tests."""
    servers: list[RedisServer] = []
    try:
        for _ in range(2):
            servers.append(RedisServer().start())
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
async def shard_clients(
    request: pytest.FixtureRequest, redis_client: Any, extra_servers: list[RedisServer]
) -> AsyncIterator[list[Any]]:
    """Three shard clients: three servers (standalone), or the cluster client three times."""
    if request.node.callspec.params["redis_client"] == "cluster":
        yield [redis_client] * 3
        return
    extras = [Redis.from_url(s.url) for s in extra_servers]
    try:
        for extra in extras:
            await extra.flushall()
        yield [redis_client, *extras]
    finally:
        for extra in extras:
            await extra.aclose()


_LOAD = pytest.StashKey[list["subprocess.Popen[bytes]"]]()

USER = "aiorp-acl-test"
PASSWORD = "aiorp-acl-secret"


@pytest.fixture
async def restricted(
    redis_standalone_client: Redis, redis_server: Endpoint
) -> AsyncIterator[Restricted]:
    """A client logged in as a user allowed only the default keyspace; deleted afterwards."""
    admin = redis_standalone_client
    rules = [
        "reset", "on", f">{PASSWORD}",
        f"~{DEFAULT_KEYSPACE.pattern}",  # keys: only ours
        "&*",  # channels: all (pub/sub patterns will need them)
        "+@all", "-@dangerous", "+@scripting", "+@blocking",
    ]  # fmt: skip
    await admin.acl_setuser(USER, reset=True)  # start from nothing, then apply our rules
    await admin.execute_command("ACL", "SETUSER", USER, *rules)
    client = Redis.from_url(redis_server.url, username=USER, password=PASSWORD)
    try:
        assert await client.ping()
        yield Restricted(client, admin)
    finally:
        await client.aclose()
        await admin.acl_deluser(USER)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-load",
        type=int,
        default=int(os.environ.get("AIORP_CPU_LOAD", "0")),
        metavar="N",
        help="run N CPU-bound processes beside the suite, as on a busy CI machine "
        "(default: $AIORP_CPU_LOAD or 0)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "retry_safe(*scripts): the test runs these Lua scripts twice (retrysafe.py)"
    )
    load = config.getoption("--cpu-load")
    if load < 0:
        raise pytest.UsageError(f"--cpu-load must be at least 0, got {load}")
    # Busy loops of their own (not threads of this process): they compete with the servers
    # and the test process for the cores, as other jobs on a shared CI machine do.
    config.stash[_LOAD] = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)
    ]


def pytest_report_header(config: pytest.Config) -> str | None:
    load = len(config.stash.get(_LOAD, []))
    return f"cpu load: {load} busy processes beside the suite" if load else None


def pytest_unconfigure(config: pytest.Config) -> None:
    for process in config.stash.get(_LOAD, []):
        process.kill()
        process.wait()
