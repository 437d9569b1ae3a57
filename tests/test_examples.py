"""The scripts under ``examples/`` run to the end and do what they print (each starts its own
server through :mod:`aiorpatterns.testing.server`, on whichever engine the suite uses).

Every ``examples/*.py`` is run, found by name, so a new example is tested without editing this
file; the ``guide_*.py`` ones are the code the documentation site includes, checked by their own
asserts.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ALL_EXAMPLES = sorted(path.name for path in EXAMPLES.glob("*.py"))


@functools.cache
def run_example(name: str) -> str:
    """Run ``examples/<name>`` once per session; fail unless it exits 0; return its output."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_examples_are_found() -> None:
    assert "locks_and_semaphores.py" in ALL_EXAMPLES
    assert "guide_core.py" in ALL_EXAMPLES


@pytest.mark.parametrize("name", ALL_EXAMPLES)
def test_example_exits_0(name: str) -> None:
    run_example(name)


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
    assert "worker stats: WorkerStats(acked=5, retried=2, dead=1, released=0, lost=0," in out
    assert "dead letter ['send_sms', ['+1 555 0100'], {}]: unknown task name 'send_sms'" in out
    assert re.search(r"left: QueueCounts\(\D*0\D*0\D*0\D*0\)", out), out


def test_streaming_filters_example() -> None:
    """Two filtered readers of a social network's status stream, one of them resumed."""
    out = run_example("streaming_filters.py")
    assert "follow-bob-or-london (resumed): deleted 1:1 @alice: Learning Redis streams" in out
    assert "track-redis: created 2:2 @bob: REDIS, the database" in out


def test_streaming_http_example() -> None:
    """uvicorn serves the streaming API; an httpx client resumes with Last-Event-ID."""
    out = run_example("streaming_http.py")
    assert "client: connected, HTTP 200" in out
    assert out.count("client: created 1:1 @alice: Learning Redis streams") == 1, out
    assert "client: created 2:2 @bob: REDIS, the database" in out
    assert "client: deleted 1:1 @alice: Learning Redis streams" in out
    assert "Lunch time" not in out
    assert "client: notice {'kind': 'closing', 'reason': 'shutdown'}" in out
    assert "client: after aclose, HTTP 503: the server is shutting down" in out
