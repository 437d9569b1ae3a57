"""Worker on real servers: dispatch, concurrency, dead letters, retries, shutdown, a killed worker.

Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster.
The killed worker is a separate Python process, SIGKILLed while its handler runs; the task must
come back after its (1 s) visibility timeout and be acked once by the survivor. Nothing here
asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.queues.taskqueue import QueueCounts, TaskQueue
from aiorpatterns.queues.worker import BadTaskError, Worker, decode_call


async def until(check: Callable[[], Awaitable[bool] | bool], what: str, limit: float = 15) -> None:
    """Wait (bounded) for a state the test cannot be told about directly."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.01)


def counts_are(queue: TaskQueue, expected: QueueCounts) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await queue.counts() == expected

    return check


EMPTY = QueueCounts(0, 0, 0, 0)


async def test_worker_calls_registered_handlers(redis_client: Any) -> None:
    """The book's callback table (§6.4.1): name -> handler, args and kwargs from the payload."""
    q = TaskQueue(redis_client, "calls")
    results: list[Any] = []

    async def add(a: int, b: int = 0) -> None:
        results.append(("add", a + b))

    def mul(a: int, b: int) -> None:  # plain callables work too
        results.append(("mul", a * b))

    await q.put_call("add", [1], {"b": 2})
    await q.put_call("mul", [3, 4])
    await q.put(["add", [10]])  # the book's two-element form
    async with Worker(q, {"add": add, "mul": mul}, concurrency=2) as worker:
        await until(counts_are(q, EMPTY), "every task acked")
        await until(lambda: worker.stats.acked == 3, "the acks counted")
    assert sorted(results) == [("add", 3), ("add", 10), ("mul", 12)]
    assert worker.closed
    assert worker.running == 0


async def test_concurrency_is_bounded_and_reached(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "conc")
    inside = peak = 0
    gate = asyncio.Event()

    async def job(i: int) -> None:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await gate.wait()
        inside -= 1

    for i in range(10):
        await q.put_call("job", [i])
    async with Worker(q, {"job": job}, concurrency=3) as worker:
        await until(lambda: inside == 3, "three handlers inside")
        assert worker.running == 3
        assert await q.counts() == QueueCounts(7, 0, 3, 0)
        gate.set()
        await until(counts_are(q, EMPTY), "every task done")
    assert peak == 3
    assert worker.stats.acked == 10


async def test_unknown_names_and_undecodable_payloads_are_dead_lettered(
    redis_client_text: Any,
) -> None:
    q = TaskQueue(redis_client_text, "bad")
    ran: list[str] = []

    async def ok() -> None:
        ran.append("ok")

    await q.put_call("nope", [1])
    await q.put_raw("{not json")
    await q.put({"not": "a call"})
    await q.put(["", [], {}])
    await q.put(["ok", "not a list"])
    await q.put(["ok", [], []])
    await q.put_call("ok")
    async with Worker(q, {"ok": ok}) as worker:
        await until(counts_are(q, QueueCounts(0, 0, 0, 6)), "six dead letters")
        await until(lambda: worker.stats.acked == 1, "the good one acked")
    letters = await q.dead_letters()
    reasons = {d.data: d.reason for d in letters}
    assert reasons.pop('["nope",[1],{}]') == "unknown task name 'nope'"
    assert reasons.pop("{not json").startswith("undecodable payload (not JSON)")
    assert len(reasons) == 4
    assert all(r.startswith("undecodable payload:") for r in reasons.values())
    assert all(d.attempts == 1 for d in letters), "a data error is never retried"
    assert ran == ["ok"]
    assert worker.stats.dead == 6


async def test_failing_handler_is_retried_with_backoff_then_dead_lettered(
    redis_client: Any,
) -> None:
    q = TaskQueue(redis_client, "flaky", max_attempts=3, retry_backoff=0.02)
    calls = 0

    async def explode(what: str) -> None:
        nonlocal calls
        calls += 1
        raise ValueError(f"bad {what}")

    await q.put_call("explode", ["input"])
    async with Worker(q, {"explode": explode}) as worker:
        await until(counts_are(q, QueueCounts(0, 0, 0, 1)), "the dead letter")
    [dead] = await q.dead_letters()
    assert (dead.reason, dead.attempts) == ("ValueError: bad input", 3)
    assert calls == 3
    assert (worker.stats.retried, worker.stats.dead, worker.stats.acked) == (2, 1, 0)


async def test_a_handler_raising_cancelled_error_fails_and_the_worker_serves_on(
    redis_client: Any,
) -> None:
    """CancelledError from the handler itself (nobody cancelled the worker) is a failure: the
    task is retried, then dead-lettered, and the next task still runs."""
    q = TaskQueue(redis_client, "selfcancel", max_attempts=2, retry_backoff=0.02)
    done: list[str] = []

    async def doomed() -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.cancel()
        await future  # raises CancelledError inside the handler

    async def fine() -> None:
        done.append("fine")

    await q.put_call("doomed")
    async with Worker(q, {"doomed": doomed, "fine": fine}) as worker:
        await until(counts_are(q, QueueCounts(0, 0, 0, 1)), "the dead letter")
        await q.put_call("fine")
        await until(lambda: done == ["fine"], "the next task")
        await until(counts_are(q, QueueCounts(0, 0, 0, 1)), "the next task acked")
    [dead] = await q.dead_letters()
    assert (dead.reason, dead.attempts) == ("CancelledError raised by the handler", 2)
    assert (worker.stats.retried, worker.stats.dead, worker.stats.acked) == (1, 1, 1)
    assert worker.stats.released == 0


async def test_shutdown_lets_running_handlers_finish_within_grace(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "grace")
    started = 0
    gate = asyncio.Event()

    async def work() -> None:
        nonlocal started
        started += 1
        await gate.wait()

    for _ in range(3):
        await q.put_call("work")
    worker = Worker(q, {"work": work}, concurrency=2, grace=30)
    await worker.start()
    await until(lambda: started == 2, "two handlers running")
    closing = asyncio.create_task(worker.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done()
    gate.set()
    await closing
    assert worker.stats.acked == 2
    assert worker.stats.released == 0
    assert await q.counts() == QueueCounts(1, 0, 0, 0), "the third task was never taken"
    assert started == 2


async def test_shutdown_gives_back_what_does_not_finish_in_time(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "stuck")
    started, cancelled = 0, 0

    async def quick() -> None:
        nonlocal started
        started += 1

    async def stuck() -> None:
        nonlocal started, cancelled
        started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise

    await q.put_call("stuck")
    worker = Worker(q, {"quick": quick, "stuck": stuck}, concurrency=2, grace=0.2)
    await worker.start()
    await until(lambda: started == 1, "the stuck handler running")
    await q.put_call("quick")
    await until(lambda: worker.stats.acked == 1, "the quick one done")
    await worker.aclose()
    await worker.aclose()  # again: a no-op
    assert (cancelled, worker.stats.released) == (1, 1)
    assert await q.counts() == QueueCounts(1, 0, 0, 0)
    again = await q.get(timeout=0)
    assert again is not None
    assert again.attempts == 1, "the interrupted delivery was counted"
    assert await q.ack(again)


async def test_run_serves_until_cancelled(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "run")
    done = asyncio.Event()

    async def job() -> None:
        done.set()

    worker = Worker(q, {"job": job})
    serving = asyncio.create_task(worker.run())
    await q.put_call("job")
    await asyncio.wait_for(done.wait(), 15)
    await until(counts_are(q, EMPTY), "the ack")
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert worker.closed
    with pytest.raises(RuntimeError):
        await worker.start()


async def test_one_worker_serves_several_queues(redis_client: Any) -> None:
    """With one slot, a busy queue still gets served while another stays empty."""
    busy, empty = TaskQueue(redis_client, "busy"), TaskQueue(redis_client, "idle")
    seen: list[int] = []

    async def job(i: int) -> None:
        seen.append(i)

    for i in range(5):
        await busy.put_call("job", [i])
    async with Worker([empty, busy], {"job": job}, concurrency=1):
        await until(counts_are(busy, EMPTY), "the busy queue drained")
        await empty.put_call("job", [99])
        await until(counts_are(empty, EMPTY), "the other queue served")
    assert sorted(seen) == [0, 1, 2, 3, 4, 99]


async def test_heartbeat_keeps_a_long_task_with_its_worker(redis_client: Any) -> None:
    """A handler running past its visibility timeout keeps the task: no second delivery."""
    q = TaskQueue(redis_client, "long")
    calls = 0

    async def long() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1.5)

    await q.put_call("long", visibility_timeout=0.9)
    async with Worker(q, {"long": long}), Worker(q, {"long": long}):
        await until(counts_are(q, EMPTY), "the long task done")
    assert calls == 1


async def test_many_workers_start_and_stop_while_tasks_flow(
    redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten workers on one queue, closed together mid-stream: all stop, no task lost or doubled.

    (Stopping cancels fetch loops blocked in get(); a cancellation that redis-py swallows on
    Python 3.11 must still end the loop.)
    """
    q = TaskQueue(redis_client, "churn")
    handled: list[int] = []

    async def job(i: int) -> None:
        handled.append(i)

    expected = 0
    for _ in range(3):
        workers = [Worker(q, {"job": job}, concurrency=2) for _ in range(10)]
        for worker in workers:
            await worker.start()
        for _ in range(40):
            await q.put_call("job", [expected])
            expected += 1
        async with asyncio.timeout(30):
            await asyncio.gather(*(w.aclose() for w in workers))
    # Ours only: asyncio's "Unclosed client" errors are about other tests' garbage.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "asyncio"]
    assert not errors, "a loop did not stop"
    async with Worker(q, {"job": job}):
        await until(counts_are(q, EMPTY), "the rest handled")
    assert sorted(handled) == list(range(expected))


WORKER_SCRIPT = """
import asyncio, sys
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from aiorpatterns.queues.taskqueue import TaskQueue
from aiorpatterns.queues.worker import Worker

async def main(url, topology, name):
    client = RedisCluster.from_url(url) if topology == "cluster" else Redis.from_url(url)
    queue = TaskQueue(client, name, visibility_timeout=1.0)

    async def hang(tag):
        print("started", tag, flush=True)
        await asyncio.Event().wait()

    async with Worker(queue, {"hang": hang}):
        await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_killed_worker_process_loses_no_task(
    redis_client: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """SIGKILL a worker process mid-task: the task comes back and the survivor acks it once."""
    topology = "cluster" if isinstance(redis_client, RedisCluster) else "standalone"
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    url = request.getfixturevalue(fixture).url
    q = TaskQueue(redis_client, "killed", visibility_timeout=1.0)
    task_id = await q.put_call("hang", ["payload"])
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), url, topology, "killed", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.decode().split() == ["started", "payload"]
    finally:
        proc.kill()
        await proc.wait()
    assert await q.counts() == QueueCounts(0, 0, 1, 0), "the dead worker's task is running"
    handled: list[str] = []

    async def hang(tag: str) -> None:
        handled.append(tag)

    async with Worker(q, {"hang": hang}) as survivor:
        await until(counts_are(q, EMPTY), "the survivor's ack")
    assert handled == ["payload"]
    assert (survivor.stats.acked, survivor.stats.lost) == (1, 0)
    assert await q.get(timeout=0) is None
    assert task_id not in [d.id for d in await q.dead_letters()]


# -- decoding and bad input -------------------------------------------------------------------


def test_decode_call() -> None:
    assert decode_call('["f", [1], {"a": 2}]') == ("f", [1], {"a": 2})
    assert decode_call('["f", []]') == ("f", [], {})
    for bad in [
        "",
        "{",
        "[]",
        '["f"]',
        "[1, []]",
        '["f", {}]',
        '["f", [], []]',
        '["f", [], {}, 1]',
    ]:
        with pytest.raises(BadTaskError, match="undecodable"):
            decode_call(bad)


async def _writes(client: Any, command: str, *args: Any) -> None:
    """``CLIENT PAUSE ... WRITE`` / ``CLIENT UNPAUSE`` on the server, or every primary."""
    if isinstance(client, RedisCluster):
        await client.execute_command(command, *args, target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.execute_command(command, *args)


@pytest.mark.parametrize("fails", [False, True], ids=["ack", "dead-letter"])
async def test_a_settle_redis_fails_is_retried_not_left_to_redelivery(
    redis_client: Any,
    new_client: Callable[..., Awaitable[Any]],
    caplog: pytest.LogCaptureFixture,
    fails: bool,
) -> None:
    """The server holds every write while a handler finishes, so the step that settles its
    task (the ack, or the dead-lettering of a failure) times out: the worker sends the step
    again until Redis answers, and the task is settled once, run once, long before its
    visibility timeout would have handed it to another run."""
    client = await new_client(socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
    q = TaskQueue(client, "settleretry", visibility_timeout=3600)
    await q.put_call("job", [], max_attempts=1)
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        await _writes(redis_client, "CLIENT PAUSE", 60_000, "WRITE")
        if fails:
            raise ValueError("the handler fails")

    def settle_failed() -> bool:
        return any("settling its" in r.getMessage() for r in caplog.records)

    def settled() -> bool:
        return (worker.stats.dead if fails else worker.stats.acked) == 1

    with caplog.at_level(logging.WARNING, logger="aiorpatterns.queues.worker"):
        try:
            async with Worker(q, {"job": job}) as worker:
                await until(settle_failed, "the settling step to time out", limit=30)
                await _writes(redis_client, "CLIENT UNPAUSE")
                await until(settled, "the settling step sent again", limit=30)
        finally:
            await _writes(redis_client, "CLIENT UNPAUSE")
    assert runs == 1
    assert await q.counts() == (QueueCounts(0, 0, 0, 1) if fails else EMPTY)


@pytest.fixture
def queue() -> TaskQueue:
    return TaskQueue(Redis(host="127.0.0.1", port=1), "q")  # never reached


async def noop() -> None:
    pass


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda q: Worker([], {"f": noop}), ValueError),
        (lambda q: Worker("q", {"f": noop}), TypeError),
        (lambda q: Worker([q, "q"], {"f": noop}), TypeError),
        (lambda q: Worker(q, {}), ValueError),
        (lambda q: Worker(q, [("f", noop)]), TypeError),
        (lambda q: Worker(q, {"f": 1}), TypeError),
        (lambda q: Worker(q, {"": noop}), ValueError),
        (lambda q: Worker(q, {"f": noop}, concurrency=0), ValueError),
        (lambda q: Worker(q, {"f": noop}, concurrency=1.5), TypeError),
        (lambda q: Worker(q, {"f": noop}, grace=-1), ValueError),
        (lambda q: Worker(q, {"f": noop}, grace=float("nan")), ValueError),
    ],
)
def test_bad_worker_arguments(
    queue: TaskQueue, make: Callable[[TaskQueue], Worker], error: type
) -> None:
    with pytest.raises(error):
        make(queue)
