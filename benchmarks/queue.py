"""Enqueue and process tasks: the book's list queue and ours (table ``queue``).

Redis in Action §6.4 has no benchmark table; this one measures what a queue user sizes: how many
tasks per second go through, and how long a task waits between ``put`` and its handler. With 1,
2, 5 and 10 clients, rows:

- ``book-list``: the §6.4.1 queue as the book ran it (:mod:`benchmarks.baselines.sync.ch06_queues`,
  one process per client): a client ``RPUSH``es a JSON ``[identifier, queue, name, args]``
  (``execute_later`` with no delay) and pops with ``BLPOP``, decodes, and calls the callback,
  as ``worker_watch_queue`` does (ops = tasks handled: it has no ack, so a crash loses the
  task);
- ``book-list-async``: the same listings on ``redis.asyncio``, clients as coroutines;
- ``aiorpatterns-get``: per client ``put_call`` → ``get`` → ``ack`` (ops = tasks acked), the
  reliable queue's round trips without a worker around them;
- ``aiorpatterns-worker``: N :class:`~aiorpatterns.Worker` objects (concurrency 1, own
  connections) serve one queue while N producers each keep one task in flight: ``put_call``, then
  wait for the worker's ack (ops = tasks acked);
- ``saq``, ``streaq``, ``taskiq``, ``arq``: the job queues Python users pick, each used as its
  README shows (:mod:`benchmarks.peers`): N of the peer's workers (concurrency 1) and N
  producers with one no-op task in flight each, as ``aiorpatterns-worker`` (ops = tasks whose
  handler ran). SAQ 0.26.4 (``saq[hiredis]``), streaQ 7.2.0 (on coredis) and taskiq-redis
  1.2.4 (``RedisStreamBroker``, with acks) run in this process; arq 0.28.0 pins ``redis<6``,
  so its clients run in an environment of its own (``uv run --isolated --with arq==0.28.0``);
- ``aiorpatterns-batch``: per client ``put_many`` of 10 calls → ``get_many(10)`` →
  ``ack_many`` (ops = tasks acked): the reliable queue's three steps, each for ten tasks;
- ``aiorpatterns-get-procs`` / ``aiorpatterns-worker-procs``: the same with one OS process per
  client (each process a worker and a producer on a queue of its own), as ``book-list`` runs;
- ``limit``: ``RPUSH`` + ``LPOP`` pairs on one list, 100 pairs per pipeline, per client.

Every row counts tasks that went all the way through (acked), not tasks merely enqueued.
Latency is from the start of ``put`` to the start of the handler (to ``get`` returning, for the
rows without a worker). Ratios are to ``book-list`` (sync, processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

from .baselines import ch06_queues as book
from .baselines.sync import ch06_queues as sync_book
from .peers import arq_queue
from .peers.saq_queue import saq_queue
from .peers.streaq_queue import streaq_queue
from .peers.taskiq_queue import taskiq_queue
from .runner import (
    BENCH_PREFIX,
    ClientPerCoroutine,
    ClientStats,
    Job,
    Op,
    SyncClientPerProcess,
    SyncOp,
    Table,
    Variant,
    connect,
    pipelined_limit,
)

__all__ = ["TABLE"]

BATCH = 100
#: Tasks per step of the ``aiorpatterns-batch`` row.
BATCH_TASKS = 10
#: The book's queue name, and its list (``execute_later`` pushes onto ``queue:<name>``); the
#: hash tag keeps it in one slot like ours.
BOOK_NAME = "{book}"
BOOK_QUEUE = BENCH_PREFIX + "queue:" + BOOK_NAME
SCRIPTS = (
    "queue_put",
    "queue_claim",
    "queue_ack",
    "queue_settle",
    "queue_extend",
    "queue_promote",
    "queue_dead",
    "queue_inspect",
    "queue_abort",
)


#: Why a peer row does not run on a cluster.
SAQ_CLUSTER = {"cluster": "SAQ has no cluster support (its scripts span slots)"}
STREAQ_CLUSTER = {
    "cluster": "the streaq row is not wired for a cluster (streaQ takes cluster_nodes)"
}
TASKIQ_CLUSTER = {
    "cluster": "the taskiq row uses RedisStreamBroker, taskiq-redis' single-node broker"
}
ARQ_CLUSTER = {"cluster": "arq has no cluster support"}


def _keyspace() -> Any:
    from aiorpatterns.core.keys import Keyspace

    return Keyspace(BENCH_PREFIX.rstrip(":"))


# -- the book's queue (Redis in Action §6.4.1) -----------------------------------------------


def _book(job: Job) -> ClientPerCoroutine:
    """``book-list-async``: each client queues a task and works it, as coroutines."""

    def make(client: Any, st: ClientStats, _: int) -> Op:
        started: list[float] = []
        callbacks = {"bench": lambda *args: started.append(time.perf_counter())}

        async def op(deadline: float) -> None:
            t = time.perf_counter()
            st.tries += 1
            await book.execute_later(client, BOOK_NAME, "bench", [1], key_prefix=BENCH_PREFIX)
            if await book.work_one(client, BOOK_QUEUE, callbacks):
                st.ops += 1
                st.latencies.append(started.pop() - t)

        return op

    return ClientPerCoroutine(job, make)


def _book_sync(job: Job) -> SyncClientPerProcess:
    """``book-list``: the same with the sync port, a process per client."""

    def make(client: Any, st: ClientStats, _: int) -> SyncOp:
        started: list[float] = []
        callbacks = {"bench": lambda *args: started.append(time.perf_counter())}

        def op(deadline: float) -> None:
            t = time.perf_counter()
            st.tries += 1
            sync_book.execute_later(client, BOOK_NAME, "bench", [1], key_prefix=BENCH_PREFIX)
            if sync_book.work_one(client, BOOK_QUEUE, callbacks):
                st.ops += 1
                st.latencies.append(started.pop() - t)

        return op

    return SyncClientPerProcess(job, make)


# -- ours -------------------------------------------------------------------------------------


def _get(job: Job) -> ClientPerCoroutine:
    from aiorpatterns.queues.taskqueue import TaskQueue

    def make(client: Any, st: ClientStats, _: int) -> Op:
        queue = TaskQueue(client, "get", keyspace=_keyspace())

        async def op(deadline: float) -> None:
            t = time.perf_counter()
            st.tries += 1
            await queue.put_call("bench", [1])
            task = await queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            if task is None:
                return
            handler_start = time.perf_counter()
            if await queue.ack(task):
                st.ops += 1
                st.latencies.append(handler_start - t)

        return op

    return ClientPerCoroutine(job, make)


def _batch(job: Job) -> ClientPerCoroutine:
    """``aiorpatterns-batch``: ``put_many`` of BATCH_TASKS, ``get_many``, ``ack_many``."""
    from aiorpatterns.queues.taskqueue import TaskQueue

    def make(client: Any, st: ClientStats, _: int) -> Op:
        queue = TaskQueue(client, "batch", keyspace=_keyspace())
        calls = [["bench", [1], {}]] * BATCH_TASKS

        async def op(deadline: float) -> None:
            t = time.perf_counter()
            st.tries += BATCH_TASKS
            await queue.put_many(calls)
            tasks = await queue.get_many(BATCH_TASKS, timeout=max(0.0, deadline - t))
            handler_start = time.perf_counter()
            acked = sum(await queue.ack_many(tasks))
            st.ops += acked
            st.latencies.extend([handler_start - t] * acked)

        return op

    return ClientPerCoroutine(job, make)


class WorkerWorkload:
    """N workers (concurrency 1) and N producers on one queue of this process."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.clients: list[Any] = []
        self.workers: list[Any] = []
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.started: dict[str, float] = {}
        # One queue per process: a task must be acked by a worker of the process that waits.
        self.name = f"worker-{uuid.uuid4().hex[:8]}"

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        from aiorpatterns.queues.taskqueue import TaskQueue
        from aiorpatterns.queues.worker import Worker

        waiting, started = self.waiting, self.started

        def notify(task: Any, acked: bool) -> None:
            future = waiting.pop(task.id, None)
            if acked and future is not None and not future.done():
                future.set_result(None)

        class NotifyingQueue(TaskQueue):
            """Tells the producer waiting for a task once it is acked: a worker acks through
            its hand-over step (TaskQueue.ack_and_get, with the result serialized and the wait
            hint)."""

            async def _hand_over(self, task: Any, data: str, *, claim: bool = True) -> Any:
                acked, following, hint = await super()._hand_over(task, data, claim=claim)
                notify(task, acked)
                return acked, following, hint

        async def bench(key: str) -> None:
            started[key] = time.perf_counter()

        ops = []
        for st in stats:
            worker_client = await connect(self.job.target)
            producer_client = await connect(self.job.target)
            self.clients += [worker_client, producer_client]
            worker = Worker(
                NotifyingQueue(worker_client, self.name, keyspace=_keyspace()), {"bench": bench}
            )
            await worker.start()
            self.workers.append(worker)
            ops.append(self._op(TaskQueue(producer_client, self.name, keyspace=_keyspace()), st))
        return ops

    def _op(self, queue: Any, st: ClientStats) -> Op:
        async def op(deadline: float) -> None:
            key = uuid.uuid4().hex
            done = asyncio.get_running_loop().create_future()
            self.waiting[key] = done
            t = time.perf_counter()
            st.tries += 1
            try:
                await queue.put_call("bench", [key], task_id=key)
                await done
            finally:
                self.waiting.pop(key, None)
            st.ops += 1
            st.latencies.append(self.started.pop(key) - t)

        return op

    async def close(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                await worker.aclose(grace=1.0)
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self.workers.clear()
        self.clients.clear()


def _rpush_lpop(pipe: Any, key: str) -> None:
    pipe.rpush(key, "1")
    pipe.lpop(key)


_limit = pipelined_limit(BENCH_PREFIX + "limit:queue", _rpush_lpop, BATCH)


async def _prepare(client: Any) -> None:
    from aiorpatterns.core.scripts import script

    for name in SCRIPTS:
        await script(name).load(client)


async def _prepare_if_available(client: Any) -> None:
    with contextlib.suppress(ImportError, AttributeError):  # not there yet: the rows skip
        await _prepare(client)


TABLE = Table(
    name="queue",
    title="Task queue: enqueue and process (Redis in Action §6.4)",
    unit="tasks",
    variants=(
        Variant("book-list", _book_sync, runs="sync"),
        Variant("book-list-async", _book),
        Variant("aiorpatterns-get", _get, requires="aiorpatterns.queues.taskqueue:TaskQueue"),
        Variant(
            "aiorpatterns-worker", WorkerWorkload, requires="aiorpatterns.queues.worker:Worker"
        ),
        Variant("aiorpatterns-batch", _batch, requires="aiorpatterns.queues.taskqueue:TaskQueue"),
        Variant(
            "aiorpatterns-get-procs",
            _get,
            requires="aiorpatterns.queues.taskqueue:TaskQueue",
            runs="processes",
        ),
        Variant(
            "aiorpatterns-worker-procs",
            WorkerWorkload,
            requires="aiorpatterns.queues.worker:Worker",
            runs="processes",
        ),
        Variant("saq", saq_queue, requires="saq:Worker", unsupported=SAQ_CLUSTER),
        Variant("streaq", streaq_queue, requires="streaq:Worker", unsupported=STREAQ_CLUSTER),
        Variant(
            "taskiq",
            taskiq_queue,
            requires="taskiq_redis:RedisStreamBroker",
            unsupported=TASKIQ_CLUSTER,
        ),
        Variant(
            "arq",
            arq_queue.PEER.workload,
            requires="benchmarks.peers.arq_queue:environment",
            unsupported=ARQ_CLUSTER,
        ),
        Variant("limit", _limit),
    ),
    references=("book-list",),
    prepare=_prepare_if_available,
    notes=(
        "No book numbers (§6.4 has no table). ops = tasks acked (book-list: handled, it has no "
        "ack). book-list and aiorpatterns-get: each client puts one task and takes it; "
        "aiorpatterns-worker: N workers, N producers with one task in flight each; "
        "saq, streaq, taskiq, arq: the peer's N workers (concurrency 1) and N producers as "
        "aiorpatterns-worker, each with its defaults (arq polls every 0.5 s); ops = tasks whose "
        "handler ran; arq runs in its own uv environment (it pins redis<6). "
        "aiorpatterns-batch: put_many 10, get_many 10, ack_many per client step; "
        "latency = put start to handler start. "
        f"limit = {BATCH} RPUSH + LPOP pairs per pipeline, per client."
    ),
)
