"""The scripts under ``examples/`` run to the end and do what they print (each starts its own
server through :mod:`aiorpatterns.testing.server`, on whichever engine the suite uses)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_locks_and_semaphores_example() -> None:
    out = run_example("locks_and_semaphores.py")
    assert "lock: counter = 100 (expected 100)" in out
    peak = re.search(r"semaphore: at most (\d+) of 20 tasks inside at once \(limit 5\)", out)
    assert peak is not None, out
    assert 1 <= int(peak.group(1)) <= 5


def test_producer_worker_example() -> None:
    """A producer and a worker: five e-mails sent (one after two retries), one dead letter."""
    out = run_example("producer_worker.py")
    assert out.count("sent ") == 5, out
    assert "sent 'receipt' to flaky@example.com" in out
    assert "worker stats: WorkerStats(acked=5, retried=2, dead=1, released=0, lost=0)" in out
    assert "dead letter ['send_sms', ['+1 555 0100'], {}]: unknown task name 'send_sms'" in out
    assert re.search(r"left: QueueCounts\(\D*0\D*0\D*0\D*0\)", out), out


def test_streaming_filters_example() -> None:
    """Two filtered readers of a social network's status stream, one of them resumed."""
    out = run_example("streaming_filters.py")
    assert "follow-bob-or-london (resumed): deleted 1:1 @alice: Learning Redis streams" in out
    assert "track-redis: created 2:2 @bob: REDIS, the database" in out
