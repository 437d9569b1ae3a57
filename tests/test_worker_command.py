"""The worker command as a service: ``python -m aiorpatterns worker tasks:worker`` (issue 14).

Each test serves ``examples/service/tasks.py`` (the README's handler module) in a subprocess
against the suite's standalone server, and stops it as a process manager does: SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import until

from aiorpatterns import TaskQueue
from aiorpatterns.testing.pytest_plugin import Endpoint

SERVICE = Path(__file__).resolve().parents[1] / "examples" / "service"
SENT = "aiorp:example:sent"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aiorpatterns", "worker", "tasks:worker", *args]


def environment(url: str, send_seconds: float) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": url, "SEND_SECONDS": str(send_seconds)}


def serve(url: str, *args: str, send_seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command("--health-interval", "0.2", *args),
        cwd=SERVICE,
        env=environment(url, send_seconds),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def exit_status(process: subprocess.Popen[str], seconds: float = 60) -> tuple[int, str]:
    """Wait for the process to exit (without blocking the loop); its status and output."""
    out, _ = await asyncio.to_thread(process.communicate, timeout=seconds)
    return process.returncode, out


async def running(queue: TaskQueue, n: int) -> None:
    async def check() -> bool:
        return (await queue.counts()).running == n

    await until(check, f"{n} task(s) running", limit=60)


async def test_sigterm_lets_a_running_task_finish_and_exits_0(
    redis_server: Endpoint, redis_standalone_client: Any
) -> None:
    queue = TaskQueue(redis_standalone_client, "emails")
    process = serve(redis_server.url, "--grace", "30", send_seconds=1.0)
    try:
        await queue.put_call("send_welcome", ["ada@example.com"])
        await running(queue, 1)
        process.send_signal(signal.SIGTERM)
        status, out = await exit_status(process)
    finally:
        process.kill()
    assert status == 0, out
    assert await redis_standalone_client.lrange(SENT, 0, -1) == [b"ada@example.com"]
    counts = await queue.counts()
    assert (counts.ready, counts.running, counts.dead) == (0, 0, 0)
    assert "SIGTERM: stopping" in out
    assert "1 acked" in out


async def test_sigterm_past_the_grace_gives_the_task_back_at_once(
    redis_server: Endpoint, redis_standalone_client: Any
) -> None:
    queue = TaskQueue(redis_standalone_client, "emails")
    process = serve(redis_server.url, "--grace", "0.2", send_seconds=300)
    try:
        await queue.put_call("send_welcome", ["bob@example.com"])
        await running(queue, 1)
        process.send_signal(signal.SIGTERM)
        status, out = await exit_status(process)
    finally:
        process.kill()
    assert status == 0, out
    # Back in the queue as the process exits, not after its 60 s visibility timeout.
    counts = await queue.counts()
    assert (counts.ready, counts.running) == (1, 0)
    assert await redis_standalone_client.llen(SENT) == 0
    assert "1 given back" in out
    task = await queue.get()
    assert task is not None
    assert task.attempts == 1  # given back uncounted: this is its first run


async def test_check_exits_0_while_that_worker_beats_and_1_once_it_stopped(
    redis_server: Endpoint, redis_standalone_client: Any
) -> None:
    async def check(name: str = "one") -> tuple[int, str]:
        # The spelling of the command: python -m aiorpatterns.worker TARGET ...
        target = [sys.executable, "-m", "aiorpatterns.worker", "tasks:worker"]
        done = await asyncio.to_thread(
            subprocess.run,
            [*target, "--health-interval", "0.2", "--name", name, "--check"],
            cwd=SERVICE,
            env=environment(redis_server.url, 0.05),
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.returncode, done.stdout + done.stderr

    assert (await check())[0] == 1  # nobody serves yet
    process = serve(redis_server.url, "--name", "one", send_seconds=0.05)
    try:
        keys: list[Any] = []

        async def beating() -> bool:
            keys[:] = await redis_standalone_client.keys("aiorp:worker:*:health:*")
            return bool(keys)

        await until(beating, "the first health beat", limit=60)
        assert keys == [b"aiorp:worker:{emails}:health:one"]
        status, out = await check()
        assert status == 0, out
        assert json.loads(out)["pid"] == process.pid
        assert (await check("two"))[0] == 1  # another replica's beat answers for it alone
        process.send_signal(signal.SIGTERM)
        assert (await exit_status(process))[0] == 0
    finally:
        process.kill()

    async def lapsed() -> bool:
        return not await redis_standalone_client.exists(*keys)

    await until(lapsed, "the last beat to lapse", limit=60)
    assert (await check())[0] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuchmodule:worker"], "cannot import 'nosuchmodule'"),
        (["tasks:nothing"], "has no attribute 'nothing'"),
        (["tasks:emails"], "is not a Worker"),
        (["tasks"], "expected package.module:attribute"),
        (["tasks:worker", "--queues", "sms"], "--queues names ['sms']"),
        (["tasks:worker", "--concurrency", "0"], "--concurrency must be at least 1"),
    ],
)
async def test_a_bad_command_line_exits_2_with_the_reason(
    redis_server: Endpoint, args: list[str], message: str
) -> None:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "aiorpatterns", "worker", *args],
        cwd=SERVICE,
        env=environment(redis_server.url, 0.05),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
