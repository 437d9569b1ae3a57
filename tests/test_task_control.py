"""Following and steering tasks on real servers: context, timeouts, results, status, abort,
hooks and serializers.

Every test runs on a standalone server and on a 3-master cluster. Waits are on conditions
(``until``, a result, an event), never on sleeps, so a loaded machine only makes them slower.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from typing import Any

import pytest

from aiorpatterns import TaskAbortedError, TaskContext, TaskFailedError
from aiorpatterns.core.serializers import JSON, MsgspecJSON
from aiorpatterns.queues.taskqueue import TaskQueue
from aiorpatterns.queues.worker import Worker
from tests.helpers import until


async def test_a_handler_with_ctx_gets_its_task_context(redis_client: Any) -> None:
    """A ``ctx`` parameter receives the task's id, attempt, queue, name and deadline."""
    q = TaskQueue(redis_client, "ctx", retry_backoff=0.0)
    seen: list[TaskContext] = []

    async def flaky(n: int, *, ctx: TaskContext) -> None:
        seen.append(ctx)
        if ctx.attempt == 1:
            raise RuntimeError("first try fails")

    before = time.time()
    task_id = await q.put_call("flaky", [1], handler_timeout=30)
    async with Worker(q, {"flaky": flaky}) as worker:
        await until(lambda: _true(worker.stats.acked == 1), "the retry acked")
    assert [c.attempt for c in seen] == [1, 2]
    ctx = seen[-1]
    assert (ctx.task_id, ctx.queue, ctx.name) == (task_id, "ctx", "flaky")
    assert ctx.max_attempts == 5
    assert ctx.priority == "normal"
    assert ctx.task.id == task_id
    assert ctx.task.last_error == "RuntimeError: first try fails"
    assert ctx.deadline is not None
    assert before + 29 < ctx.deadline < time.time() + 31
    assert abs(ctx.enqueued_at - before) < 60  # the server's clock, near ours


async def test_a_handler_past_its_timeout_fails_and_retries(redis_client: Any) -> None:
    """The worker's default timeout and a task's own: a hung handler is cancelled and the
    task fails like any failure (retried, then dead with the timeout as reason)."""
    q = TaskQueue(redis_client, "slow", retry_backoff=0.0, max_attempts=2)
    runs: list[str] = []

    async def hang(label: str) -> None:
        runs.append(label)
        await asyncio.Event().wait()

    async def quick(label: str) -> None:
        runs.append(label)

    own = await q.put_call("hang", ["own"], handler_timeout=0.2)
    async with Worker(q, {"hang": hang, "quick": quick}, timeout=0.3, concurrency=2) as worker:
        default = await q.put_call("hang", ["default"])
        await q.put_call("quick", ["fine"])
        await until(lambda: _true(worker.stats.dead == 2), "both hung tasks dead")
        assert worker.stats.timed_out == 4
        assert worker.stats.acked == 1
    assert sorted(runs) == ["default", "default", "fine", "own", "own"]
    reasons = {d.id: d.reason for d in await q.dead_letters()}
    assert reasons[own] == "TimeoutError: the handler ran past its timeout of 0.2 s"
    assert reasons[default] == "TimeoutError: the handler ran past its timeout of 0.3 s"


async def test_results_and_status_follow_a_task_to_its_end(redis_client: Any) -> None:
    """status() walks queued -> running -> done; result() waits for the value (no polling);
    a dead task's result raises with its reason; nothing kept without result_ttl."""
    q = TaskQueue(redis_client, "results", result_ttl=60, max_attempts=1)
    plain = TaskQueue(redis_client, "plain")
    gate = asyncio.Event()

    async def add(a: int, b: int) -> dict[str, int]:
        await gate.wait()
        return {"sum": a + b}

    async def boom() -> None:
        raise ValueError("no")

    assert await q.status("never-put") == "unknown"
    task_id = await q.put_call("add", [2, 3])
    later = await q.put_call("add", [1, 1], delay=3600)
    assert await q.status(task_id) == "queued"
    assert await q.status(later) == "delayed"
    waiter = asyncio.create_task(q.result(task_id, timeout=30))
    async with Worker(q, {"add": add, "boom": boom}):
        await until(lambda: _is(q.status(task_id), "running"), "running")
        assert not waiter.done()
        gate.set()
        assert await waiter == {"sum": 5}
        assert await q.status(task_id) == "done"
        dead = await q.put_call("boom")
        with pytest.raises(TaskFailedError, match="ValueError: no"):
            await q.result(dead, timeout=30)
        assert await q.status(dead) == "dead"
    with pytest.raises(TimeoutError):
        await q.result(later, timeout=0.05)
    assert await redis_client.pttl(q._base + "result:" + task_id) > 50_000
    # A queue without result_ttl keeps nothing once a task is acked; a task may opt in.
    async with Worker(plain, {"add": add}):
        gone = await plain.put_call("add", [1, 2])
        kept = await plain.put_call("add", [1, 2], result_ttl=60)
        assert await plain.result(kept, timeout=30) == {"sum": 3}
        await until(lambda: _is(plain.status(gone), "unknown"), "the plain task acked")


async def test_abort_a_queued_and_a_running_task(redis_client: Any) -> None:
    """A queued task is deleted at once; a running one's handler is cancelled by its worker
    (through the abort stream), the task deleted and its status aborted; the worker serves on."""
    q = TaskQueue(redis_client, "abort", visibility_timeout=60)
    started = asyncio.Event()
    cancelled = asyncio.Event()
    failures: list[BaseException] = []

    async def long(n: int) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def short(n: int) -> int:
        return n

    queued = await q.put_call("long", [1], delay=3600)
    assert await q.abort(queued)
    assert await q.status(queued) == "aborted"
    assert await q.abort(queued)  # again: still aborted
    assert not await q.abort("never-put")
    running = await q.put_call("long", [2])
    async with Worker(q, {"long": long, "short": short}, on_failure=_append(failures)) as worker:
        await asyncio.wait_for(started.wait(), 30)
        assert await q.abort(running)
        await asyncio.wait_for(cancelled.wait(), 30)
        await until(lambda: _true(worker.stats.aborted == 1), "the worker's abort")
        assert await q.status(running) == "aborted"
        after = await q.put_call("short", [3], result_ttl=60)
        assert await q.result(after, timeout=30) == 3
    with pytest.raises(TaskAbortedError):
        await q.result(running, timeout=1)
    assert (await q.counts()).total == 0
    assert len(failures) == 1
    assert isinstance(failures[0], asyncio.CancelledError)


async def test_an_abort_the_stream_did_not_deliver_reaches_the_heartbeat(
    redis_client: Any,
) -> None:
    """The abort stream lost (deleted): the handler's next heartbeat still stops it."""
    q = TaskQueue(redis_client, "abortbeat", visibility_timeout=0.6)
    started = asyncio.Event()

    async def long() -> None:
        started.set()
        await asyncio.Event().wait()

    task_id = await q.put_call("long")
    async with Worker(q, {"long": long}) as worker:
        await asyncio.wait_for(started.wait(), 30)
        await q.abort(task_id)
        await redis_client.delete(q.aborts_key)
        await until(lambda: _true(worker.stats.aborted == 1), "the heartbeat's abort")
    assert await q.status(task_id) == "aborted"


async def test_hooks_run_around_each_task(redis_client: Any) -> None:
    """on_start, on_success and on_failure (plain or async) see the context; a hook that
    raises is logged and changes nothing."""
    q = TaskQueue(redis_client, "hooks", max_attempts=1)
    events: list[tuple[str, str, Any]] = []

    def on_start(ctx: TaskContext) -> None:
        events.append(("start", ctx.name, None))
        raise RuntimeError("a broken hook")

    async def on_success(ctx: TaskContext, result: Any) -> None:
        events.append(("success", ctx.name, result))

    def on_failure(ctx: TaskContext, exc: BaseException) -> None:
        events.append(("failure", ctx.name, type(exc).__name__))

    async def good() -> str:
        return "fine"

    def bad() -> None:
        raise KeyError("x")

    await q.put_call("good")
    await q.put_call("bad")
    hooks = {"on_start": on_start, "on_success": on_success, "on_failure": on_failure}
    async with Worker(q, {"good": good, "bad": bad}, **hooks) as worker:
        await until(lambda: _true(worker.stats.acked + worker.stats.dead == 2), "both settled")
    assert sorted(events) == [
        ("failure", "bad", "KeyError"),
        ("start", "bad", None),
        ("start", "good", None),
        ("success", "good", "fine"),
    ]


@pytest.mark.parametrize("name", ["json", "msgspec"])
async def test_serializers_carry_payloads_and_results(redis_client: Any, name: str) -> None:
    """JSON by default, msgspec as an option: the same text, so either side can read it."""
    if name == "msgspec" and importlib.util.find_spec("msgspec") is None:
        pytest.skip("msgspec is not installed")
    serializer = JSON if name == "json" else MsgspecJSON()
    q = TaskQueue(redis_client, "ser", serializer=serializer, result_ttl=60)

    async def echo(value: Any) -> Any:
        return {"got": value}

    task_id = await q.put_call("echo", [{"a": [1, 2.5, "é", None]}])
    assert await redis_client.hget(q.keys[3], task_id) in (
        b'["echo",[{"a":[1,2.5,"\xc3\xa9",null]}],{}]',
        '["echo",[{"a":[1,2.5,"é",null]}],{}]',
    )
    async with Worker(q, {"echo": echo}):
        assert await q.result(task_id, timeout=30) == {"got": {"a": [1, 2.5, "é", None]}}
    with pytest.raises(TypeError):
        await q.put(object())


async def test_bad_arguments_fail_before_redis(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "bad")
    with pytest.raises(ValueError, match="handler_timeout"):
        await q.put(1, handler_timeout=-1)
    with pytest.raises(ValueError, match="result_ttl"):
        await q.put(1, result_ttl=0)
    with pytest.raises(TypeError):
        await q.status(b"id")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="task_id"):
        await q.abort("")
    with pytest.raises(TypeError):
        TaskQueue(redis_client, "bad", serializer=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Worker(q, {"x": print}, on_start=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        Worker(q, {"x": print}, timeout=0)
    assert (await q.counts()).total == 0


def _true(value: bool) -> Any:
    async def answer() -> bool:
        return value

    return answer()


async def _is(status: Any, expected: str) -> bool:
    return bool(await status == expected)


def _append(into: list[BaseException]) -> Any:
    def hook(ctx: TaskContext, exc: BaseException) -> None:
        into.append(exc)

    return hook
