"""Kill a worker mid-run, count the tasks each queue loses (``python -m benchmarks queue-crash``).

Redis in Action §6.4.1's worker pops a task and then runs it: a worker that dies in between loses
it. This benchmark measures what each job queue a user would pick does instead. For each system
it enqueues N tasks (200 by default) whose handler sleeps a little (20 ms), then records its task
key in Redis (``HINCRBY bench:crash:<system>-<run>:runs <key> 1`` and ``SADD ...:done <key>`` in
one MULTI); starts a worker for that system in a separate OS process (concurrency 4); once a
quarter of the tasks are done, SIGKILLs that process (its whole process group) with tasks in
flight; then starts a fresh worker process and waits until every task is done and the system
holds none in flight, or a bounded recovery window (30 s by default) passes. It reports, per
system: tasks enqueued, done before the kill, done at least once, lost (never done within the
window), done more than once, handler runs in all, and the recovery time (from the kill to
every task done and nothing left in flight, the fresh worker's start included).

Each system is configured for at-least-once delivery as its documentation says, with a short
recovery window; the mechanism and what its defaults would do:

- ``aiorpatterns``: :class:`~aiorpatterns.TaskQueue` + :class:`~aiorpatterns.Worker`. A claimed
  task carries a visibility deadline that the worker's heartbeat extends; once it passes, the
  next claim takes the task again. ``visibility_timeout=2`` s here (default 30 s);
  ``max_attempts`` 5 (default).
- ``saq`` 0.26.4: a dequeued job sits on the ``active`` list; a worker's upkeep ``sweep`` (every
  ``timers["sweep"]`` s, default 60) aborts an active job that is past its ``timeout`` (default
  10 s; its ``heartbeat`` is off by default and only ``job.update()`` in the handler beats),
  waits up to 5 s for it to finish, then retries it if ``retries > attempts``. Here
  ``timeout=2``, ``timers={"sweep": 1}`` and ``retries=3``: SAQ's default ``retries=1`` means
  no retry, so with its defaults a swept job is finished as aborted, i.e. lost.
- ``streaq`` 7.2.0: a task is a stream entry read by a consumer group; a running task's entry is
  re-claimed (``XCLAIM``) by its worker every 0.9 ``idle_timeout``, and workers take entries
  idle longer than ``idle_timeout`` (``XAUTOCLAIM`` in its Lua library, or ``XREADGROUP ...
  CLAIM`` on servers that have it). Here ``idle_timeout=2`` s (default 60 s); ``max_tries`` 3
  (default).
- ``taskiq`` (taskiq-redis 1.2.4, ``RedisStreamBroker``): a stream entry is acked after the
  task ran (``ack_type`` ``when_saved``, the default); ``listen()`` takes other consumers'
  entries idle longer than ``idle_timeout`` with ``XAUTOCLAIM``, but only right after an
  ``XREADGROUP`` that returned new entries (``if not fetched: continue``), so with nothing new
  enqueued after the crash the dead consumer's entries (up to ``xread_count``, 100 by default,
  read ahead) wait for the next enqueue: its row depends on whether the fresh worker still reads
  new entries once they have been idle that long (in a smoke run with 400 tasks it did). Here
  ``idle_timeout=2000`` ms (default 600000, ten minutes) and ``unacknowledged_lock_timeout=5``
  s (default none: its docstring advises it for workers that crash or get killed).
- ``arq`` 0.28.0 (in its own uv environment, :mod:`benchmarks.peers._isolated`): a job stays in
  the queue ZSET while it runs, guarded by an ``arq:in-progress:<id>`` key that expires
  ``job_timeout + 10`` s after the start (``in_progress_timeout``); once it has expired, any
  polling worker runs the job again (``max_tries`` 5, default). Here ``job_timeout=1`` s
  (default 300 s, so 310 s before a killed job runs again).

Not a :class:`~benchmarks.runner.Table`: the runner's rows are timed loops of per-client
operations (ops/s, latency), while this result is a handful of counts from one scripted
scenario (enqueue, start a process, kill it, start another), so it has its own small driver and
table here and ``python -m benchmarks queue-crash`` hands its arguments over (it is not part of
``all``). Worker processes run ``python -m benchmarks.queue_crash --worker <system> ...``
(arq's through ``uv run --isolated``), so this module imports only the standard library at
module level: arq's environment imports it too.

Every key written is under ``bench:`` or is a peer's own key of this run (``saq:bench:...``,
``streaq:bench:...``, ``autoclaim:taskiq:bench:...``, ``arq:*:<run>-*``); all are deleted
after each system's row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["SYSTEMS", "CrashRow", "main", "run_crash"]

#: The systems, in the order they run and print.
SYSTEMS = ("aiorpatterns", "saq", "streaq", "taskiq", "arq")
PREFIX = "bench:"
ROOT = Path(__file__).resolve().parents[1]

OURS_VISIBILITY = 2.0
SAQ_TIMEOUT = 2
SAQ_SWEEP = 1
SAQ_RETRIES = 3
STREAQ_IDLE = 2.0
TASKIQ_IDLE_MS = 2000
TASKIQ_LOCK = 5.0
ARQ_JOB_TIMEOUT = 1

#: What each system recovers with, as printed under the table.
MECHANISMS = {
    "aiorpatterns": f"visibility deadline, heartbeat; visibility_timeout={OURS_VISIBILITY:g}s",
    "saq": f"sweep of stuck active jobs; timeout={SAQ_TIMEOUT}s sweep={SAQ_SWEEP}s "
    f"retries={SAQ_RETRIES}",
    "streaq": f"XAUTOCLAIM of idle entries; idle_timeout={STREAQ_IDLE:g}s",
    "taskiq": f"XAUTOCLAIM after a read of new entries; idle_timeout={TASKIQ_IDLE_MS}ms",
    "arq": f"in-progress key expiry (job_timeout+10s); job_timeout={ARQ_JOB_TIMEOUT}s",
}
#: Seconds a worker process may take to start and finish a quarter of the tasks (arq's
#: environment is built before, not in this time).
START = 120.0


@dataclass(slots=True)
class CrashRow:
    """What one system did: counts of tasks, and the recovery time (None: not in the window)."""

    system: str
    enqueued: int
    before_kill: int
    mid_run: int
    done: int
    lost: int
    twice: int
    runs: int
    recovery_s: float | None
    window_s: float
    mechanism: str


# -- in the worker processes ---------------------------------------------------------------------

Record = Callable[[str], Awaitable[None]]


def _keys(run: str, tasks: int) -> list[str]:
    return [f"{run}-{n}" for n in range(tasks)]


def done_key(system: str, run: str) -> str:
    """The SET of task keys whose handler ran."""
    return f"{PREFIX}crash:{system}-{run}:done"


def started_key(system: str, run: str) -> str:
    """The SET of task keys whose handler started."""
    return f"{PREFIX}crash:{system}-{run}:started"


def runs_key(system: str, run: str) -> str:
    """The HASH counting each task's handler runs."""
    return f"{PREFIX}crash:{system}-{run}:runs"


def _recorder(args: argparse.Namespace) -> Record:
    from redis.asyncio import Redis

    client = Redis.from_url(args.url)
    started, done = started_key(args.worker, args.run), done_key(args.worker, args.run)
    runs, pause = runs_key(args.worker, args.run), args.sleep

    async def record(key: str) -> None:
        await client.sadd(started, key)
        await asyncio.sleep(pause)
        async with client.pipeline(transaction=True) as pipe:
            pipe.hincrby(runs, key, 1)
            pipe.sadd(done, key)
            await pipe.execute()

    return record


async def _ours(args: argparse.Namespace, record: Record) -> None:
    from redis.asyncio import Redis

    from aiorpatterns.core.keys import Keyspace
    from aiorpatterns.queues.taskqueue import TaskQueue
    from aiorpatterns.queues.worker import Worker

    client = Redis.from_url(args.url)
    queue = TaskQueue(
        client, args.queue, keyspace=Keyspace(PREFIX[:-1]), visibility_timeout=OURS_VISIBILITY
    )
    if args.role == "enqueue":
        for key in _keys(args.run, args.tasks):
            await queue.put_call("crash", [key], task_id=key)
        await client.aclose()
        return

    async def crash(key: str) -> None:
        await record(key)

    await Worker(queue, {"crash": crash}, concurrency=args.concurrency).run()


async def _saq(args: argparse.Namespace, record: Record) -> None:
    from saq import Queue, Worker

    queue = Queue.from_url(args.url, name=args.queue)
    if args.role == "enqueue":
        await queue.connect()
        for key in _keys(args.run, args.tasks):
            await queue.enqueue(
                "crash", key=key, timeout=SAQ_TIMEOUT, retries=SAQ_RETRIES, token=key
            )
        await queue.disconnect()
        return

    async def crash(ctx: Any, *, token: str) -> None:
        await record(token)

    # SAQ's PartialTimersDict inherits TimersDict's required keys: a plain dict, untyped.
    timers: Any = {"sweep": SAQ_SWEEP}
    worker: Any = Worker(
        queue,
        functions=[("crash", crash)],
        concurrency=args.concurrency,
        timers=timers,
    )
    await worker.start()


async def _streaq(args: argparse.Namespace, record: Record) -> None:
    from streaq import Worker

    if args.role == "enqueue":
        client: Any = Worker(
            redis_url=args.url,
            queue_name=args.queue,
            idle_timeout=STREAQ_IDLE,
            handle_signals=False,
        )

        async def noop(token: str) -> None:  # never run here
            pass

        task = client.task(name="crash")(noop)
        async with client:
            for key in _keys(args.run, args.tasks):
                await task.enqueue(key)
        return

    worker: Any = Worker(
        redis_url=args.url,
        queue_name=args.queue,
        concurrency=args.concurrency,
        idle_timeout=STREAQ_IDLE,
    )

    async def crash(token: str) -> None:
        await record(token)

    worker.task(name="crash")(crash)
    await worker.run_async()


async def _taskiq(args: argparse.Namespace, record: Record) -> None:
    from taskiq.api import run_receiver_task
    from taskiq_redis import RedisStreamBroker

    broker: Any = RedisStreamBroker(
        url=args.url,
        queue_name=args.queue,
        idle_timeout=TASKIQ_IDLE_MS,
        unacknowledged_lock_timeout=TASKIQ_LOCK,
    )

    async def crash(token: str) -> None:
        await record(token)

    task = broker.register_task(crash, task_name="crash")
    if args.role == "enqueue":
        await broker.startup()  # creates the consumer group before the entries
        for key in _keys(args.run, args.tasks):
            await task.kiq(key)
        await broker.shutdown()
        return
    broker.is_worker_process = True  # what `taskiq worker` sets before startup
    await broker.startup()
    await run_receiver_task(broker, max_async_tasks=args.concurrency)


async def _arq(args: argparse.Namespace, record: Record) -> None:
    # arq is only in its own environment: no types for mypy.
    from arq.connections import RedisSettings, create_pool  # type: ignore[import-not-found]
    from arq.worker import Worker, func  # type: ignore[import-not-found]

    settings = RedisSettings.from_dsn(args.url)
    if args.role == "enqueue":
        pool = await create_pool(settings, default_queue_name=args.queue)
        for key in _keys(args.run, args.tasks):
            await pool.enqueue_job("crash", key, _job_id=key)
        await pool.aclose()
        return

    async def crash(ctx: Any, token: str) -> None:
        await record(token)

    worker = Worker(
        functions=[func(crash, name="crash")],
        queue_name=args.queue,
        redis_settings=settings,
        max_jobs=args.concurrency,
        job_timeout=ARQ_JOB_TIMEOUT,
    )
    await worker.main()


CHILDREN: dict[str, Callable[[argparse.Namespace, Record], Coroutine[Any, Any, None]]] = {
    "aiorpatterns": _ours,
    "saq": _saq,
    "streaq": _streaq,
    "taskiq": _taskiq,
    "arq": _arq,
}


def _child(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.ERROR)  # the peers' info logs would flood the parent's
    asyncio.run(CHILDREN[args.worker](args, _recorder(args)))
    return 0


# -- in the parent --------------------------------------------------------------------------------


def queue_name(system: str, run: str) -> str:
    """The system's queue: ours inside the ``bench`` keyspace, the peers' under ``bench:``."""
    return f"crash-{run}" if system == "aiorpatterns" else f"{PREFIX}{system}-crash-{run}"


def leftovers(system: str, run: str) -> tuple[str, ...]:
    """``SCAN MATCH`` patterns of every key of the run, ``bench:`` and the peers' own."""
    queue = queue_name(system, run)
    own = {
        "saq": (f"saq:{queue}:*", f"saq:job:{queue}:*", f"saq:abort:{run}-*"),
        "streaq": (f"streaq:{queue}*",),
        "taskiq": (f"autoclaim:taskiq:{queue}",),
        "arq": (f"arq:*:{run}-*",),
    }
    return (f"{PREFIX}*{run}*", *own.get(system, ()))


def _available(system: str) -> str | None:
    """Why ``system`` cannot run here, or None."""
    import importlib.util

    if system == "arq":
        from .peers.arq_queue import PEER

        try:
            PEER.environment()
        except Exception as exc:
            return str(exc)
        return None
    module = {"aiorpatterns": "aiorpatterns", "saq": "saq", "streaq": "streaq"}.get(
        system, "taskiq_redis"
    )
    return None if importlib.util.find_spec(module) else f"{module} is not installed"


class _Process:
    """A worker (or enqueuer) process of one system, in a process group of its own."""

    def __init__(self, system: str, role: str, argv: Sequence[str]) -> None:
        self.system = system
        self.role = role
        self.argv = ["-m", "benchmarks.queue_crash", "--worker", system, "--role", role, *argv]
        self.proc: asyncio.subprocess.Process | None = None
        self.errors: IO[bytes] | None = None

    async def start(self) -> None:
        if self.system == "arq":
            from .peers.arq_queue import PEER

            command, env = PEER.command(*self.argv), PEER.environ()
        else:
            command, env = [sys.executable, *self.argv], dict(os.environ)
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed in kill())
        self.proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self.errors,
            cwd=ROOT,
            env=env,
            start_new_session=True,  # its own group: SIGKILL reaches uv's child python too
        )

    def failed(self) -> str | None:
        """Why the process ended, if it did."""
        if self.proc is None or self.proc.returncode is None:
            return None
        return f"{self.system} {self.role} exited {self.proc.returncode}: {self.stderr()}"

    def stderr(self) -> str:
        if self.errors is None:
            return ""
        self.errors.seek(0)
        lines = [x for x in self.errors.read().decode(errors="replace").splitlines() if x.strip()]
        return lines[-1] if lines else "(no output)"

    async def wait(self, seconds: float) -> int:
        assert self.proc is not None
        async with asyncio.timeout(seconds):
            return await self.proc.wait()

    async def kill(self) -> None:
        """SIGKILL the process group (no handler runs, nothing is given back)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        if self.errors is not None:
            self.errors.close()
            self.errors = None


async def _in_flight(client: Any, system: str, run: str) -> int:
    """How many tasks the system still holds (queued, running or unacked)."""
    queue = queue_name(system, run)
    if system == "aiorpatterns":
        from aiorpatterns.core.keys import Keyspace
        from aiorpatterns.queues.taskqueue import TaskQueue

        counts = await TaskQueue(client, queue, keyspace=Keyspace(PREFIX[:-1])).counts()
        return counts.ready + counts.delayed + counts.running
    if system == "saq":
        return int(await client.zcard(f"saq:{queue}:incomplete"))
    if system == "arq":
        return int(await client.zcard(queue))
    streams = (
        [key async for key in client.scan_iter(match=f"streaq:{queue}:queues:*", _type="stream")]
        if system == "streaq"
        else [queue]
    )
    pending = 0
    for stream in streams:
        with contextlib.suppress(Exception):  # no stream yet
            pending += sum(int(group["pending"]) for group in await client.xinfo_groups(stream))
    return pending


async def _done(client: Any, system: str, run: str) -> int:
    return int(await client.scard(done_key(system, run)))


async def _progress(client: Any, system: str, run: str) -> tuple[int, int]:
    """How many tasks are done, and how many handlers run now (started, not done)."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.scard(done_key(system, run))
        pipe.scard(started_key(system, run))
        done, started = await pipe.execute()
    return int(done), int(started) - int(done)


async def crash_one(
    url: str,
    system: str,
    *,
    tasks: int,
    concurrency: int,
    sleep: float,
    window: float,
    poll: float = 0.05,
) -> CrashRow:
    """Run the crash scenario for one system and count what it lost."""
    from redis.asyncio import Redis

    run = uuid.uuid4().hex[:8]
    argv = [
        *("--url", url, "--queue", queue_name(system, run), "--run", run),
        *("--tasks", str(tasks), "--concurrency", str(concurrency), "--sleep", str(sleep)),
    ]
    client = Redis.from_url(url)
    processes: list[_Process] = []
    try:
        enqueue = _Process(system, "enqueue", argv)
        processes.append(enqueue)
        await enqueue.start()
        if await enqueue.wait(START) != 0:
            raise RuntimeError(enqueue.failed())

        first = _Process(system, "work", argv)
        processes.append(first)
        await first.start()
        # Kill once a quarter is done and some handlers are mid-run (a worker that takes tasks
        # in batches, as arq's poll does, may hold none for a while).
        async with asyncio.timeout(START):
            while True:
                done, running = await _progress(client, system, run)
                if done >= max(1, tasks // 4) and running > 0:
                    break
                if first.failed():
                    raise RuntimeError(first.failed())
                await asyncio.sleep(0.005)
        await first.kill()
        killed = time.perf_counter()
        before_kill, mid_run = await _progress(client, system, run)

        second = _Process(system, "work", argv)
        processes.append(second)
        await second.start()
        recovery: float | None = None
        while time.perf_counter() - killed < window:
            if second.failed():
                raise RuntimeError(second.failed())
            if await _done(client, system, run) >= tasks and not await _in_flight(
                client, system, run
            ):
                recovery = time.perf_counter() - killed
                break
            await asyncio.sleep(poll)
        await second.kill()

        done = await _done(client, system, run)
        counts = [int(v) for v in (await client.hgetall(runs_key(system, run))).values()]
        return CrashRow(
            system=system,
            enqueued=tasks,
            before_kill=before_kill,
            mid_run=mid_run,
            done=done,
            lost=tasks - done,
            twice=sum(1 for n in counts if n > 1),
            runs=sum(counts),
            recovery_s=None if recovery is None else round(recovery, 2),
            window_s=window,
            mechanism=MECHANISMS[system],
        )
    finally:
        for process in processes:
            await process.kill()
        for pattern in leftovers(system, run):
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(keys), 500):
                await client.unlink(*keys[start : start + 500])
        await client.aclose()


@dataclass(slots=True)
class CrashResult:
    """Every system's row, the run's parameters and what could not run."""

    rows: list[CrashRow]
    skipped: list[str]
    params: dict[str, float]
    engine: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "table": "queue-crash",
            "engine": self.engine,
            "params": self.params,
            "rows": [asdict(row) for row in self.rows],
            "skipped": self.skipped,
        }


async def run_crash(
    url: str,
    systems: Sequence[str] = SYSTEMS,
    *,
    tasks: int = 200,
    concurrency: int = 4,
    sleep: float = 0.02,
    window: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> CrashResult:
    """Run the crash scenario for each of ``systems`` against ``url``; skip what cannot run."""
    from .runner import Target, engine_of

    result = CrashResult(
        rows=[],
        skipped=[],
        params={"tasks": tasks, "concurrency": concurrency, "sleep": sleep, "window": window},
        engine=await engine_of(Target(url)),
    )
    for system in systems:
        if progress is not None:
            progress(system)
        why = await asyncio.to_thread(_available, system)
        if why is not None:
            result.skipped.append(f"queue-crash: skipped {system}: {why}")
            continue
        try:
            result.rows.append(
                await crash_one(
                    url,
                    system,
                    tasks=tasks,
                    concurrency=concurrency,
                    sleep=sleep,
                    window=window,
                )
            )
        except Exception as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            result.skipped.append(f"queue-crash: {system} failed: {detail}")
    return result


def print_crash(console: Any, result: CrashResult) -> None:
    """The rows as a compact rich table (fits 100 columns), the mechanisms and notes under it."""
    from rich import box
    from rich.padding import Padding
    from rich.table import Table as RichTable
    from rich.text import Text

    p = result.params
    table = RichTable(
        title="[bold]queue-crash[/]: tasks lost to a SIGKILLed worker (§6.4)",
        box=box.SIMPLE_HEAD,
        padding=(0, 0, 0, 1),
        show_edge=False,
        header_style="bold cyan",
        title_justify="left",
        caption=f"{result.engine.get('name', 'redis')} {result.engine.get('version', '?')}, "
        f"{p['tasks']:g} tasks of {p['sleep'] * 1000:g} ms, concurrency {p['concurrency']:g}, "
        f"window {p['window']:g} s",
        caption_justify="left",
    )
    for i, title in enumerate(
        ("system", "enqueued", "at kill", "mid-run", "done", "lost", "twice", "runs", "recovered s")
    ):
        table.add_column(title, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in result.rows:
        recovered = "-" if row.recovery_s is None else f"{row.recovery_s:.1f}"
        table.add_row(
            row.system,
            *(str(n) for n in (row.enqueued, row.before_kill, row.mid_run, row.done, row.lost)),
            *(str(n) for n in (row.twice, row.runs)),
            recovered,
            style="green" if row.system == "aiorpatterns" else None,
        )
    console.print(table)
    notes = [
        "at kill = done when the first worker process was SIGKILLed (its whole process group, "
        "once a quarter was done and some handlers were running); mid-run = handlers started "
        "and not done at the kill; "
        "lost = never done by the end of the window; twice = done more than once; runs = "
        "handler runs in all; recovered = seconds from the kill until every task was done "
        "and none was left in flight (the fresh worker's start included), - if not in the "
        "window. Each system's recovery mechanism and setting:",
        *(f"  {row.system}: {row.mechanism}" for row in result.rows),
    ]
    for note in notes:
        console.print(Padding(Text(note, style="dim"), (0, 0, 0, 2)))
    for note in result.skipped:
        console.print(Padding(Text(note, style="yellow"), (0, 0, 0, 2)))
    console.print()


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _systems(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in chosen if name not in SYSTEMS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"systems are some of {','.join(SYSTEMS)}: {text!r}")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks queue-crash",
        description="Count the tasks each job queue loses when a worker is SIGKILLed mid-run.",
    )
    p.add_argument("--tasks", type=int, default=200, help="tasks enqueued (default 200)")
    p.add_argument("--concurrency", type=int, default=4, help="tasks per worker (default 4)")
    p.add_argument(
        "--sleep", type=float, default=0.02, help="seconds each handler sleeps (default 0.02)"
    )
    p.add_argument(
        "--window",
        type=_positive,
        default=30.0,
        help="seconds after the kill a system may take to recover (default 30)",
    )
    p.add_argument(
        "--systems",
        type=_systems,
        default=SYSTEMS,
        help=f"comma-separated, some of {','.join(SYSTEMS)} (default all)",
    )
    p.add_argument("--url", help="use this server instead of starting one (standalone)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--json", type=Path, metavar="F", help="write the rows as JSON to F")
    child = p.add_argument_group("worker process (started by this benchmark)")
    child.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    child.add_argument("--role", choices=("enqueue", "work"), help=argparse.SUPPRESS)
    child.add_argument("--queue", help=argparse.SUPPRESS)
    child.add_argument("--run", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, one worker process); return the exit status."""
    args = parser().parse_args(argv)
    if args.tasks < 4 or args.concurrency < 1:
        parser().error("--tasks must be 4 or more and --concurrency 1 or more")
    if args.worker is not None:
        return _child(args)

    from rich.console import Console

    from aiorpatterns.testing.server import RedisServer

    console = Console()
    if not console.is_terminal:
        console = Console(width=100)
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(RedisServer()).url
        status = None if args.quiet else stack.enter_context(console.status("queue-crash"))

        def progress(system: str) -> None:
            if status is not None:
                status.update(f"queue-crash: {system}")

        result = asyncio.run(
            run_crash(
                url,
                args.systems,
                tasks=args.tasks,
                concurrency=args.concurrency,
                sleep=args.sleep,
                window=args.window,
                progress=progress,
            )
        )
    print_crash(console, result)
    if args.json is not None:
        args.json.write_text(json.dumps(result.as_json(), indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
