"""Test the ``cache`` benchmark table (ours beside cashews and aiocache) and ``cache-stampede``.

The table runs 0.3 s a row against the session's real servers, standalone and cluster; speed is
never asserted, only the rows' shape, that every variant served calls, that the peers the topology
cannot run say why, and that nothing is left behind. The stampede benchmark runs small (2
processes of 5 callers): our cache calls the origin once, and every system reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import bench_keys_left, ops_by_variant, run_table

from aiorpatterns.testing.pytest_plugin import Endpoint
from benchmarks import cache as table
from benchmarks.cache_stampede import SYSTEMS, run_stampede
from benchmarks.runner import Target

OURS = {"aiorpatterns", "aiorpatterns-autopipeline", "aiorpatterns-near", "aiorpatterns-miss"}
PEERS = {"cashews", "cashews-miss", "aiocache", "aiocache-miss"}
CLUSTERLESS = {"aiocache", "aiocache-miss"}


@pytest.fixture(params=["standalone", "cluster"])
def target(request: pytest.FixtureRequest) -> Target:
    fixture = "redis_server" if request.param == "standalone" else "redis_cluster_server"
    found: Endpoint = request.getfixturevalue(fixture)
    return Target(found.url, request.param)


def test_cache_table_rows(target: Target, tmp_path: Path) -> None:
    pytest.importorskip("cashews")
    pytest.importorskip("aiocache")
    args = ["--url", target.url, "--topology", target.topology, "--duration", "0.3"]
    data = run_table(tmp_path, "cache", *args)
    expected = OURS | PEERS | {"limit"}
    if target.topology == "cluster":
        expected -= CLUSTERLESS
        assert "aiocache has no Redis Cluster backend" in (tmp_path / "out.md").read_text()
    assert {row["variant"] for row in data["rows"]} == expected
    assert sorted((r["variant"], r["clients"]) for r in data["rows"]) == sorted(
        (v, n) for v in expected for n in table.CLIENTS
    )
    for row in data["rows"]:
        assert row["book"] is None, "the book has no cache-aside table"
    # Each variant served calls, if not in every row (CI once saw the cluster's 10 callers of
    # the limit row end a loaded 0.3 s row with not one pipeline of 100 GETs done).
    served = ops_by_variant(data["rows"])
    assert all(served.values()), served
    assert "### `cache`" in (tmp_path / "out.md").read_text()
    assert bench_keys_left(target.url, target.topology) == [], "the table left keys behind"


async def test_the_stampede_benchmark_counts_origin_calls(redis_server: Endpoint) -> None:
    pytest.importorskip("cashews")
    pytest.importorskip("aiocache")
    rows, skipped = await run_stampede(redis_server.url, processes=2, callers=5, origin=0.05)
    assert skipped == []
    by_system = {row.system: row for row in rows}
    assert set(by_system) == set(SYSTEMS)
    assert by_system["aiorpatterns"].origin_calls == 1
    for row in rows:
        assert row.callers == 10
        assert 1 <= row.origin_calls <= 10, row
        assert 0 < row.p50_ms <= row.p99_ms <= row.max_ms, row
    assert bench_keys_left(redis_server.url, "standalone") == []
