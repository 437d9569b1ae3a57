"""Test the ``queue-crash`` benchmark (``benchmarks/queue_crash.py``) against a real server.

Its scenario SIGKILLs a worker process mid-run and starts a fresh one. For our TaskQueue and
Worker, no task may be lost: delivery is at least once (a correctness property, so asserted
here). A peer's row only has to complete: its losses are what the benchmark measures, never
asserted. Every key a row writes is deleted after it, and nothing is written outside ``bench:``
but the peers' own keys of the run, deleted too.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from aiorpatterns.testing.pytest_plugin import Endpoint
from benchmarks.queue_crash import run_crash

TASKS = 40
#: Generous: the rows end as soon as every task is done and none is in flight.
WINDOW = 60.0


async def _keys(url: str) -> set[bytes]:
    client = Redis.from_url(url)
    try:
        return {key async for key in client.scan_iter(count=1000)}
    finally:
        await client.aclose()


async def test_ours_loses_no_task_when_its_worker_is_killed(redis_server: Endpoint) -> None:
    before = await _keys(redis_server.url)
    result = await run_crash(redis_server.url, ["aiorpatterns"], tasks=TASKS, window=WINDOW)
    assert result.skipped == []
    (row,) = result.rows
    assert row.system == "aiorpatterns"
    assert row.enqueued == TASKS
    assert row.before_kill >= TASKS // 4  # killed once a quarter was done
    assert row.lost == 0
    assert row.done == TASKS
    assert row.runs >= TASKS
    after = await _keys(redis_server.url)
    assert {key for key in after - before if not key.startswith(b"bench:")} == set()
    assert {key for key in after if b"crash" in key} <= before  # the row's keys are deleted


async def test_a_peer_row_completes_and_cleans_up(redis_server: Endpoint) -> None:
    pytest.importorskip("streaq")
    before = await _keys(redis_server.url)
    result = await run_crash(redis_server.url, ["streaq"], tasks=TASKS, window=WINDOW)
    assert result.skipped == []
    (row,) = result.rows
    assert row.system == "streaq"
    assert row.enqueued == TASKS
    assert row.done + row.lost == TASKS
    assert row.runs >= row.done
    after = await _keys(redis_server.url)
    assert after - before == set()
