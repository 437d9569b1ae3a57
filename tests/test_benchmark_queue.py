"""Test the ``queue`` benchmark table and its port of the book's list queue.

The table (Redis in Action §6.4) runs for 0.2 s a row with 1 and 2 clients against the session's
real servers, standalone and cluster; speed is never asserted, only the shape of its JSON, that
every row moved tasks, and that nothing is left behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import bench_keys_left, ops_by_variant, run_table

from aiorpatterns.testing.pytest_plugin import Endpoint
from benchmarks import queue as table
from benchmarks.baselines import ch06_queues

ROW_KEYS = helpers.ROW_KEYS
TOP_KEYS = helpers.TOP_KEYS
VARIANTS = {
    "book-list",
    "book-list-async",
    "aiorpatterns-get",
    "aiorpatterns-worker",
    "aiorpatterns-batch",
    "aiorpatterns-get-procs",
    "aiorpatterns-worker-procs",
    "limit",
}
#: The peers' rows (their smoke tests are in test_benchmark_peers.py): standalone only, and
#: arq, polling every 0.5 s, may finish no task in a 0.2 s row.
PEERS = {"saq", "streaq", "taskiq", "arq"}


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_queue_table_rows(topology: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    endpoint: Endpoint = request.getfixturevalue(fixture)
    args = ["--url", endpoint.url, "--topology", topology, "--duration", "0.2", "--clients", "1,2"]
    data = run_table(tmp_path, "queue", *args)
    assert set(data) >= TOP_KEYS
    assert (data["table"], data["topology"], data["duration"]) == ("queue", topology, 0.2)
    rows = [r for r in data["rows"] if r["variant"] not in PEERS]
    assert {r["variant"] for r in data["rows"]} - PEERS == VARIANTS
    assert sorted((r["variant"], r["clients"]) for r in rows) == sorted(
        (v, n) for v in VARIANTS for n in (1, 2)
    )
    for row in rows:
        assert set(row) >= ROW_KEYS, row
        runs = "processes" if row["variant"].endswith("-procs") else "coroutines"
        assert row["runs"] == ("sync" if row["variant"] == "book-list" else runs), row
        assert row["tries"] >= row["ops"]
        assert row["book"] is None, "the book has no queue table"
        p50, p99 = row["latency_ms"]["p50"], row["latency_ms"]["p99"]
        if row["variant"] == "limit":
            assert p50 is None
            continue
        assert row["ops"] > 0, row
        assert 0 < p50 <= p99
    # Pipelines of 100 pushes and pops: a loaded 0.2 s row may end before one of them does.
    assert ops_by_variant(rows)["limit"] > 0
    assert "### `queue`" in (tmp_path / "out.md").read_text()
    assert bench_keys_left(endpoint.url, topology) == [], "the table left keys behind"


async def test_book_port_round_trip(redis_client: Any) -> None:
    """The §6.4.1 port: RPUSH a JSON task, BLPOP it, call the registered callback."""
    called: list[tuple[Any, ...]] = []
    callbacks = {"send": lambda *args: called.append(args)}
    queue = table.BOOK_QUEUE
    await ch06_queues.execute_later(
        redis_client, table.BOOK_NAME, "send", ["a@b.c", 3], key_prefix="bench:"
    )
    assert await ch06_queues.work_one(redis_client, queue, callbacks) is True
    assert called == [("a@b.c", 3)]
    await ch06_queues.execute_later(
        redis_client, table.BOOK_NAME, "unknown", [], key_prefix="bench:"
    )
    assert await ch06_queues.work_one(redis_client, queue, callbacks) is False
    assert await redis_client.llen(queue) == 0
