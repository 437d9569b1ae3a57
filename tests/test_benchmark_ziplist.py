"""Test the ``ziplist`` benchmark table: the book's long-ziplist RPOPLPUSH run, with LMOVE.

The table (Redis in Action §9.1.2, inventory §2e) runs for 0.2 s a row against the session's
real servers, standalone and cluster; speed is never asserted, only the shape of its JSON, that
every row moved elements without losing any, the list's encoding as the engine names it, and
that nothing is left behind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import bench_keys_left, run_table

from aiorpatterns.testing.pytest_plugin import Endpoint
from benchmarks import ziplist as table
from benchmarks.runner import ClientStats, Job, Target

ROW_KEYS = helpers.ROW_KEYS | {"encoding", "listpack", "length", "memory_bytes"}
TOP_KEYS = helpers.TOP_KEYS | {"params"}
BOOK = {1: 52_093, 100: 51_501, 1_000: 49_732, 5_000: 43_424, 10_000: 36_727}
BOOK |= {50_000: 16_695, 100_000: 553}


def _length(variant: str) -> int:
    return 1 if variant == "limit" else int(variant.rsplit("-", 1)[1])


def _check_intset(row: dict[str, Any]) -> None:
    """long_intset_performance: members added, the set an intset or a hashtable past 512."""
    assert row["ops"] > 0, row
    assert row["ops"] % 1000 == 0, "every SADD adds 1,000 new members"
    assert row["book"] is None
    assert 0 < row["length"] <= 1_000_000
    assert row["encoding"] in ("intset", "hashtable", "listpack"), row


def _listpack_lists(engine: dict[str, str]) -> bool:
    version = tuple(int(x) for x in re.findall(r"\d+", engine["version"])[:2])
    return engine["name"] == "valkey" or version >= (7, 2)


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_ziplist_table_rows(topology: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    endpoint: Endpoint = request.getfixturevalue(fixture)
    args = ["--url", endpoint.url, "--topology", topology, "--duration", "0.2", "--clients", "1,2"]
    data = run_table(tmp_path, "ziplist", *args)
    assert set(data) >= TOP_KEYS
    assert (data["table"], data["topology"], data["duration"]) == ("ziplist", topology, 0.2)
    assert data["params"]["pipeline"] == table.PIPELINE
    variants = [f"lmove-{n}" for n in BOOK] + ["book-rpoplpush-100000"]
    variants += [f"lindex-{n}" for n in table.INDEX_LENGTHS] + ["intset-sadd", "limit"]
    assert [row["variant"] for row in data["rows"]] == variants, "one row each, 1 client"
    new = _listpack_lists(data["engine"])
    for row in data["rows"]:
        if row["variant"] == "intset-sadd":
            _check_intset(row)
            continue
        n = _length(row["variant"])
        assert set(row) >= ROW_KEYS, row
        assert row["clients"] == 1
        assert row["ops"] > 0, row
        assert row["ops"] % table.PIPELINE == 0, "only whole pipelines count"
        assert row["tries"] >= row["ops"]
        if row["variant"] == "limit" or row["variant"].startswith("lindex"):
            assert row["book"] is None
        else:
            assert int(row["book"]) == BOOK[n]
        assert row["length"] == n, "a rotation must not lose or add elements"
        assert row["memory_bytes"] > 0
        # Integers up to 999 fit one 8 KB node; from 5,000 on a list has many nodes.
        want = "listpack" if new and n <= 1000 else "quicklist"
        assert (row["encoding"], row["listpack"]) == (want, int(want == "listpack")), row
        assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p99"]
    assert "### `ziplist`" in (tmp_path / "out.md").read_text()
    assert bench_keys_left(endpoint.url, topology) == [], "the table left keys behind"


@pytest.mark.parametrize("command", ["lmove", "rpoplpush", "limit"])
async def test_book_scenario_rotates_without_loss(
    redis_client: Any, request: pytest.FixtureRequest, command: str
) -> None:
    """TestCh09 ``test_long_ziplist_performance``: 5 items, 10 passes of 10; LLEN stays 5."""
    topology = request.node.callspec.params["redis_client"]
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    endpoint: Endpoint = request.getfixturevalue(fixture)
    job = Job("ziplist", "x", 1, 1, 1.0, Target(endpoint.url, topology))
    workload = table.RotateWorkload(job, 5, command)
    stats = [ClientStats()]
    key = table.list_key(5)
    try:
        [op] = await workload.open(stats)
        assert await redis_client.lrange(key, 0, -1) == [b"0", b"1", b"2", b"3", b"4"]
        for _ in range(3):
            await op(float("inf"))
        assert stats[0].ops == stats[0].tries == 3 * table.PIPELINE
        assert await redis_client.llen(key) == 5
        # 300 moves of the last element to the front of 5: a rotation by 300 % 5 = 0
        # (and the limit row's LLEN moves nothing).
        assert await redis_client.lrange(key, 0, -1) == [b"0", b"1", b"2", b"3", b"4"]
        await redis_client.rpoplpush(key, key)
        assert await redis_client.lrange(key, 0, -1) == [b"4", b"0", b"1", b"2", b"3"]
        await redis_client.delete(key)
        with pytest.raises(RuntimeError, match="empty"):
            await op(float("inf"))
    finally:
        await workload.close()
        await redis_client.delete(key)
