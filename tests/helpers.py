"""Small helpers shared by the test modules (imported as ``from helpers import ...``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.testing.server import ClusterServer, RedisServer


class Tripwire(Redis):
    """A client that fails the test if anything reaches Redis through it.

    Bad-input tests build patterns on it: every argument check must come before the first
    command, so nothing is half-written. It never connects (no command gets that far).
    """

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        raise AssertionError(
            f"reached Redis: {args[0]!r} was sent before the arguments were checked"
        )

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        raise AssertionError(
            "reached Redis: a pipeline was opened before the arguments were checked"
        )


#: The client of every bad-input test: anything sent through it fails the test.
NO_REDIS = Tripwire()


def text(value: bytes | str) -> str:
    """A reply as str, whatever the client's decode_responses."""
    return value.decode() if isinstance(value, bytes) else value


async def keys_of(redis: Any) -> list[str]:
    """Every key under the default prefix, sorted (on every node of a cluster)."""
    return sorted([text(key) async for key in redis.scan_iter(match="aiorp:*")])


async def until(check: Callable[[], Awaitable[bool]], what: str, limit: float = 15.0) -> None:
    """Wait (bounded) for a state the test cannot be told about directly."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not await check():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.01)


async def outcome(task: asyncio.Task[Any]) -> Any:
    """The task's result, or None if it was cancelled."""
    try:
        return await task
    except asyncio.CancelledError:
        return None


async def ends_after_cancel(task: asyncio.Task[Any], what: str) -> None:
    """Cancel a waiting ``task`` and assert it ends, cancelled, within a bound.

    A cancel that redis-py swallows mid-command is honoured once that command returns; on a
    cluster the command may first run the client's whole retry schedule (several tries with a
    backoff of up to 1 s each) when a loaded machine makes a short socket timeout fire. The
    bound is that schedule's length, with room: what it proves is that the wait ends at all.
    """
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=30)
    assert done, f"{what} still running 30 s after a cancel"
    assert task.cancelled(), f"{what} ended without honouring the cancel"


#: The keys every row of a benchmark table's JSON has (issue 3's format), and the top level's.
ROW_KEYS = frozenset(
    {"variant", "clients", "ops", "tries", "retries", "seconds", "ops_per_s", "latency_ms"}
    | {"fairness", "book", "runs"}
)
TOP_KEYS = frozenset({"table", "topology", "mode", "duration", "engine", "client", "rows"})


def run_table(tmp_path: Path, table: str, *args: str) -> dict[str, Any]:
    """Run ``python -m benchmarks <table> ARGS`` quietly, writing every output; return its JSON."""
    from benchmarks.cli import main

    argv = [table, *args, "--quiet", "--json", str(tmp_path / "out.json")]
    argv += ["--plot", str(tmp_path / "out.png"), "--markdown", str(tmp_path / "out.md")]
    assert main(argv) == 0
    data: dict[str, Any] = json.loads((tmp_path / "out.json").read_text())
    return data


def ops_by_variant(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The operations each variant of a table counted over all its rows.

    A short row on a loaded machine may end before any operation of it does (several clients
    each sending a pipeline of 100 to a cluster): a test asks each variant to have worked, not
    each of its rows.
    """
    served: dict[str, int] = {}
    for row in rows:
        served[row["variant"]] = served.get(row["variant"], 0) + row["ops"]
    return served


def bench_keys_left(url: str, topology: str) -> list[bytes]:
    """The keys a benchmark run left under ``bench:`` (on every node of a cluster)."""
    client: Any = (
        redis.RedisCluster.from_url(url) if topology == "cluster" else redis.Redis.from_url(url)
    )
    try:
        return list(client.scan_iter(match="bench:*"))
    finally:
        client.close()


def retrying_client(url: str, topology: str) -> Any:
    """A client that reconnects through a restart (``from_url`` clients do not retry by default)."""
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 30)
    if topology == "cluster":
        return RedisCluster.from_url(url, retry=retry)
    return Redis.from_url(url, retry=retry)


async def restart_owner(endpoint: Endpoint, client: Any, key: str) -> None:
    """Restart the server (or cluster node) holding ``key``, empty, and wait until it serves."""
    server = endpoint.server
    if isinstance(server, RedisServer):
        await asyncio.to_thread(server.restart)
        return
    assert isinstance(server, ClusterServer)
    port = client.get_node_from_key(key).port
    node = next(n for n in server.nodes if n.port == port)
    await asyncio.to_thread(node.restart)

    async def cluster_ok() -> bool:
        def views() -> list[bool]:
            states = []
            for n in server.nodes:
                with n.client() as c:
                    info = text(c.execute_command("CLUSTER", "INFO"))
                    states.append("cluster_state:ok" in info)
            return states

        return all(await asyncio.to_thread(views))

    await until(cluster_ok, "the cluster to serve again", limit=30)


@dataclass
class Restricted:
    """The restricted user's client, and an admin client on the same server."""

    client: Redis
    admin: Redis


#: What :func:`cancel_after` answers for a task that was cancelled.
CANCELLED: Any = object()


async def cancel_after(coro: Awaitable[Any], iterations: int) -> tuple[bool, Any]:
    """Run ``coro`` as a task, cancel it after ``iterations`` event-loop turns.

    Returns whether it had finished by itself first, and its result (or ``CANCELLED``).
    """
    task = asyncio.ensure_future(coro)
    for _ in range(iterations):
        await asyncio.sleep(0)
    finished = task.done()
    task.cancel()
    try:
        result = await task
    except asyncio.CancelledError:
        result = CANCELLED
    return finished, result


async def blocked_clients(redis: Any) -> int:
    """Connections blocked in a command right now, over every primary."""
    if isinstance(redis, RedisCluster):
        infos = await redis.info("clients", target_nodes=RedisCluster.PRIMARIES)
        return sum(int(info["blocked_clients"]) for info in infos.values())
    return int((await redis.info("clients"))["blocked_clients"])
