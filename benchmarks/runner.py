"""Run benchmark tables: clients as coroutines or spread over processes, rows of counts.

The driver behind every table of Redis in Action's §4.5 (pipelines) and §11.2 (locks), and the
§6.3 semaphores, reconstructed as inventory §2 describes. A *table* (one module per table) lists
*variants*; each variant opens one *workload* per process, which hands back one coroutine per
client. Every client runs ``await op(deadline)`` in a loop; at the deadline the runner cancels
whatever is still in flight, so no variant's own timeout rules shape the end of a run, and only
operations finished before the deadline count. Counters live in one :class:`ClientStats` per
client: ``ops`` (successes), ``tries`` (attempts, counted where the attempt is made) and latency
samples of successful operations.

How a variant's clients run is its ``runs``:

- ``"coroutines"``: every client a coroutine on one event loop in this process (with
  ``processes=P``, split over P spawned worker processes instead);
- ``"processes"``: one spawned process per client, each with its own event loop and connection;
- ``"sync"``: one spawned process per client running a *sync* workload (sync redis-py,
  ``time.sleep``), as the book ran its own code (Redis in Action §6.2, §11.2).

Worker processes start together at one wall-clock instant and their counts are summed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import multiprocessing
import platform
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

__all__ = [
    "BENCH_PREFIX",
    "NO_CLUSTER_WATCH",
    "RUNS",
    "ClientStats",
    "CountingClient",
    "Job",
    "Row",
    "RunPlan",
    "SyncClientPerProcess",
    "SyncOp",
    "SyncWorkload",
    "Table",
    "Target",
    "Variant",
    "Workload",
    "connect",
    "connect_sync",
    "lease_op",
    "run_plan",
]

#: Why a row whose clients WATCH cannot run on a cluster: redis-py's asyncio cluster client runs
#: a WATCH transaction's commands on a private event loop in a thread and joins it, blocking the
#: caller's loop; with concurrent clients on one loop that join can wait for ever (redis-py
#: documents the hazard in ``_run_coroutine_in_thread``). Seen as a hung ``market`` table.
NO_CLUSTER_WATCH = {
    "cluster": "redis-py's asyncio cluster WATCH blocks the event loop and can deadlock under "
    "concurrent clients"
}
#: Every key a benchmark writes starts with this, and is deleted between rows.
BENCH_PREFIX = "bench:"
#: Seconds given to in-flight operations to unwind after the deadline before a row is abandoned.
_UNWIND = 15.0
#: Extra seconds a whole row may take beyond its duration before it counts as wedged.
_GRACE = 60.0

Op = Callable[[float], Awaitable[None]]
"""One operation of one client; gets the run's deadline (``time.perf_counter()`` seconds)."""
SyncOp = Callable[[float], None]
"""One operation of one sync client (a ``"sync"`` variant); gets the run's deadline."""
#: How a variant's clients run (see the module docstring).
RUNS = ("coroutines", "processes", "sync")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the clients connect: a URL, its topology and its transport (tcp or unix)."""

    url: str
    topology: str = "standalone"
    transport: str = "tcp"


@dataclass(slots=True)
class ClientStats:
    """What one client did during a run."""

    ops: int = 0
    tries: int = 0
    latencies: list[float] = field(default_factory=list)
    #: Other numbers a table's clients count (the market's listings, misses); summed per row
    #: into the row's JSON.
    counts: dict[str, float] = field(default_factory=dict)

    def count(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` to the counter ``name``."""
        self.counts[name] = self.counts.get(name, 0) + amount

    def try_(self) -> None:
        """Count one attempt (passed as the ``on_try`` hook of the book ports)."""
        self.tries += 1

    def success(self, started: float) -> None:
        """Count one success that started at ``started`` (``perf_counter``)."""
        self.ops += 1
        self.latencies.append(time.perf_counter() - started)


class Workload(Protocol):
    """What one process runs for one row: its clients' connections and operations."""

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        """Connect and return one operation per client (``stats[i]`` is client i's)."""
        ...

    async def close(self) -> None:
        """Close every connection the workload opened."""
        ...


class SyncWorkload(Protocol):
    """What one process runs for one row of a ``"sync"`` variant (sync redis-py clients)."""

    def open(self, stats: Sequence[ClientStats]) -> list[SyncOp]:
        """Connect and return one operation per client (``stats[i]`` is client i's)."""
        ...

    def close(self) -> None:
        """Close every connection the workload opened."""
        ...


@dataclass(frozen=True, slots=True)
class Variant:
    """One row family of a table: a name, how to build its workload, the book's numbers."""

    name: str
    #: Builds one process' share: a :class:`Workload`, or a :class:`SyncWorkload` when
    #: ``runs == "sync"``.
    workload: Callable[[Job], Any]
    #: The book's published rate (ops/s) by ``(transport, clients)``; transport ``"*"`` = any.
    book: Mapping[tuple[str, int], float] = field(default_factory=dict)
    #: The book's published tries per acquire by ``(transport, clients)`` (lock table only).
    book_tries: Mapping[tuple[str, int], float] = field(default_factory=dict)
    #: Run only at these client counts (e.g. 100 for the autopipeline), whatever ``--clients``.
    clients: tuple[int, ...] | None = None
    #: Also run at these client counts, on top of ``--clients`` (e.g. 100 for a table's target).
    also_clients: tuple[int, ...] = ()
    #: ``"module:attribute"`` that must import, else the variant is skipped with a note.
    requires: str | None = None
    #: Topologies the variant cannot run on, with the reason (printed as a note).
    unsupported: Mapping[str, str] = field(default_factory=dict)
    #: How its clients run: ``"coroutines"``, ``"processes"`` or ``"sync"`` (module docstring).
    runs: str = "coroutines"

    def __post_init__(self) -> None:
        if self.runs not in RUNS:
            raise ValueError(f"variant {self.name!r}: runs is one of {RUNS}, not {self.runs!r}")

    @property
    def one_process_per_client(self) -> bool:
        return self.runs != "coroutines"

    def book_rate(self, transport: str, clients: int) -> float | None:
        return self.book.get((transport, clients), self.book.get(("*", clients)))

    def book_tries_per_op(self, transport: str, clients: int) -> float | None:
        return self.book_tries.get((transport, clients), self.book_tries.get(("*", clients)))


@dataclass(frozen=True, slots=True)
class Table:
    """A benchmark table: its variants, what a row's ratio is taken against, how to print it."""

    name: str
    title: str
    unit: str
    variants: tuple[Variant, ...]
    #: Variants every row is compared with (same transport, same clients, else 1 client).
    references: tuple[str, ...]
    #: Run once over each transport of an embedded standalone server ("tcp", "unix").
    transports: tuple[str, ...] = ("tcp",)
    #: Label rows with their transport (``book-plain@unix``).
    label_transport: bool = False
    #: Prepare the server before the timed rows (load scripts, ...).
    prepare: Callable[[Any], Awaitable[None]] | None = None
    #: Extra text printed under the table.
    notes: str = ""
    #: Workload parameters, recorded in the JSON as ``"params"`` (guild size, seeds, ...).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Wraps each row after its cleanup, given a connection: prepares the row's data, then fills
    #: the dict it yields with numbers measured after the row (e.g. leaked keys), which become
    #: keys of the row's JSON.
    around_row: Callable[[Any], AbstractAsyncContextManager[dict[str, float | None]]] | None = None
    #: Numbers computed from a measured row (e.g. an average over its counts), merged into
    #: the row's JSON after its counts.
    derive: Callable[[Row], Mapping[str, float | None]] | None = None
    #: Extra printed columns, by key of a row's JSON (``retries``, or a key ``around_row``,
    #: a client's counts or ``derive`` sets).
    columns: tuple[str, ...] = ()

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"table {self.name!r} has no variant {name!r}")


@dataclass(frozen=True, slots=True)
class Job:
    """One process' share of one row (picklable, sent to worker processes)."""

    table: str
    variant: str
    clients: int
    total_clients: int
    duration: float
    target: Target


@dataclass(slots=True)
class ShareResult:
    """What one process measured for its share of a row."""

    ops: list[int]
    tries: list[int]
    latencies: list[float]
    seconds: float
    counts: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Row:
    """One measured row, as written to JSON (see :meth:`as_json`)."""

    variant: str
    base: str
    transport: str
    clients: int
    ops: int
    tries: int
    seconds: float
    latencies_ms: tuple[float | None, float | None]
    per_client: list[int]
    book: float | None
    #: How the row's clients ran (the variant's ``runs``, or ``"processes"`` under ``--processes``).
    runs: str = "coroutines"
    #: Numbers the table's ``around_row`` measured (merged into the JSON row).
    extra: dict[str, float | None] = field(default_factory=dict)

    @property
    def retries(self) -> int:
        return max(0, self.tries - self.ops)

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def jain(self) -> float | None:
        return jain_index(self.per_client)

    def as_json(self) -> dict[str, Any]:
        p50, p99 = self.latencies_ms
        return {
            "variant": self.variant,
            "clients": self.clients,
            "ops": self.ops,
            "tries": self.tries,
            "retries": self.retries,
            "seconds": round(self.seconds, 4),
            "ops_per_s": round(self.ops_per_s, 1),
            "latency_ms": {"p50": _round(p50), "p99": _round(p99)},
            "fairness": {
                "jain": _round(self.jain),
                "min": min(self.per_client, default=0),
                "max": max(self.per_client, default=0),
            },
            "book": self.book,
            "runs": self.runs,
            **self.extra,
        }


@dataclass(slots=True)
class TableResult:
    """Every row of one table, with what the JSON header records."""

    table: Table
    topology: str
    mode: str
    duration: float
    engine: dict[str, str]
    client: dict[str, str | None]
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "table": self.table.name,
            "topology": self.topology,
            "mode": self.mode,
            "duration": self.duration,
            "engine": self.engine,
            "client": self.client,
            "rows": [row.as_json() for row in self.rows],
        }
        if self.table.params:
            data["params"] = dict(self.table.params)
        return data


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def jain_index(counts: Sequence[int]) -> float | None:
    """Jain's fairness index of per-client counts: 1.0 when equal, 1/n when one takes all."""
    total = sum(counts)
    squares = sum(c * c for c in counts)
    if not counts or squares == 0:
        return None
    return total * total / (len(counts) * squares)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values, or None if there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# -- clients ---------------------------------------------------------------------------------


async def connect(target: Target, **options: Any) -> Any:
    """Open a ``Redis`` (or ``RedisCluster``) client on ``target`` and check it answers."""
    if target.topology == "cluster":
        cluster = RedisCluster.from_url(target.url, **options)
        await cluster.initialize()
        return cluster
    client = Redis.from_url(target.url, **options)
    await client.ping()
    return client


class CountingClient:
    """Delegate to a client, counting the commands that are acquisition attempts.

    Used for libraries whose acquire loops we must not edit (our ``Lock`` and semaphores,
    redis-py's ``Lock``): an EVALSHA of one of ``shas`` or a ``SET ... NX`` (with ``set_nx``)
    adds one try to ``stats``. Everything else passes through untouched.
    """

    def __init__(
        self,
        client: Any,
        stats: ClientStats,
        *,
        shas: Sequence[str] = (),
        set_nx: bool = False,
    ) -> None:
        self._client = client
        self._stats = stats
        self._shas = frozenset(shas)
        self._set_nx = set_nx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def evalsha(self, sha: str, numkeys: int, *args: Any) -> Any:
        if sha in self._shas:
            self._stats.tries += 1
        return await self._client.evalsha(sha, numkeys, *args)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        # Our scripts send EVALSHA through execute_command (aiorpatterns.core.scripts).
        if len(args) > 1 and args[0] == "EVALSHA" and args[1] in self._shas:
            self._stats.tries += 1
        return await self._client.execute_command(*args, **options)

    async def set(self, name: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if self._set_nx and kwargs.get("nx"):
            self._stats.tries += 1
        return await self._client.set(name, value, *args, **kwargs)


def pipelined_limit(
    key: str, queue_one: Callable[[Any, str], object], batch: int = 100
) -> Callable[[Job], ClientPerCoroutine]:
    """A table's ``limit`` row: each client sends ``batch`` steps (``queue_one(pipe, key)``) per
    non-transactional pipeline, on its own connection, counted when it ended in time."""

    def workload(job: Job) -> ClientPerCoroutine:
        def make(client: Any, st: ClientStats, _: int) -> Op:
            async def op(deadline: float) -> None:
                pipe = client.pipeline(transaction=False)
                for _ in range(batch):
                    queue_one(pipe, key)
                await pipe.execute()
                if time.perf_counter() < deadline:
                    st.tries += batch
                    st.ops += batch

            return op

        return ClientPerCoroutine(job, make)

    return workload


def lease_op(lease: Any, st: ClientStats) -> Op:
    """One try of a lock or semaphore object: acquire with the time left, and release at once.

    A success counts its latency from the call to ``acquire``; the runner cuts the row off at
    the deadline (inventory §2b).
    """

    async def op(deadline: float) -> None:
        t = time.perf_counter()
        if t >= deadline:
            return
        if await lease.acquire(acquire_timeout=deadline - t):
            st.success(t)
            await lease.release()

    return op


class ClientPerCoroutine:
    """A workload where each client coroutine has its own connection (WATCH, BLPOP, ...).

    ``make_op(client, stats, index)`` builds a client's operation around its connection.
    """

    def __init__(
        self, job: Job, make_op: Callable[[Any, ClientStats, int], Op], **options: Any
    ) -> None:
        self.job = job
        self.make_op = make_op
        self.options = options
        self.clients: list[Any] = []

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        ops = []
        for i, st in enumerate(stats):
            client = await connect(self.job.target, **self.options)
            self.clients.append(client)
            ops.append(self.make_op(client, st, i))
        return ops

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self.clients.clear()


def connect_sync(target: Target, **options: Any) -> Any:
    """Open a sync ``redis.Redis`` (or ``redis.cluster.RedisCluster``) on ``target``."""
    if target.topology == "cluster":
        from redis.cluster import RedisCluster as SyncCluster

        return SyncCluster.from_url(target.url, **options)
    client = redis.Redis.from_url(target.url, **options)
    client.ping()
    return client


class SyncClientPerProcess:
    """The sync twin of :class:`ClientPerCoroutine`: a sync connection per client.

    ``make_op(client, stats, index)`` builds a client's operation around its connection. The
    runner gives each client of a ``"sync"`` variant its own process, as the book ran its code.
    """

    def __init__(
        self, job: Job, make_op: Callable[[Any, ClientStats, int], SyncOp], **options: Any
    ) -> None:
        self.job = job
        self.make_op = make_op
        self.options = options
        self.clients: list[Any] = []

    def open(self, stats: Sequence[ClientStats]) -> list[SyncOp]:
        ops = []
        for i, st in enumerate(stats):
            client = connect_sync(self.job.target, **self.options)
            self.clients.append(client)
            ops.append(self.make_op(client, st, i))
        return ops

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.close()
        self.clients.clear()


# -- one process' share ----------------------------------------------------------------------


def load_table(name: str) -> Table:
    """Import ``benchmarks.<name>`` and return its ``TABLE``."""
    table: Table = importlib.import_module(f"benchmarks.{name}").TABLE
    return table


async def run_share(
    job: Job, ready: Callable[[], Awaitable[float | None]] | None = None
) -> ShareResult:
    """Open the share's clients, wait for the start signal, run them until the deadline.

    ``ready`` is awaited once every client is connected; it may return a wall-clock start time
    (``time.time()``) shared with other processes.
    """
    variant = load_table(job.table).variant(job.variant)
    workload = variant.workload(job)
    stats = [ClientStats() for _ in range(job.clients)]
    try:
        ops = await workload.open(stats)
        start_at = await ready() if ready is not None else None
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.time()))
        seconds = await drive_clients(ops, stats, job.duration)
    finally:
        await workload.close()
    latencies = [x for st in stats for x in st.latencies]
    return ShareResult(
        ops=[st.ops for st in stats],
        tries=[st.tries for st in stats],
        latencies=latencies,
        seconds=seconds,
        counts=_sum_counts(st.counts for st in stats),
    )


async def drive_clients(ops: Sequence[Op], stats: Sequence[ClientStats], duration: float) -> float:
    """Loop every client's ``op`` for ``duration`` seconds, cancel what is in flight then.

    Returns the seconds the clients ran. A ``CancelledError`` that a client library raises on
    its own (nobody cancelled the client) does not end that client early, which would cut the
    row short: it is counted as ``stray_cancels`` in the row's JSON and the loop goes on.
    """
    t0 = time.perf_counter()
    deadline = t0 + duration

    async def drive(op: Op, st: ClientStats) -> None:
        me = asyncio.current_task()
        while time.perf_counter() < deadline:
            try:
                await op(deadline)
            except asyncio.CancelledError:
                if me is None or me.cancelling():  # the runner's own cancel, at the deadline
                    raise
                st.count("stray_cancels")

    tasks = [asyncio.create_task(drive(op, st)) for op, st in zip(ops, stats, strict=True)]
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()))
    stopped = time.perf_counter()
    for task in pending:
        task.cancel()
    if pending:
        _, stuck = await asyncio.wait(pending, timeout=_UNWIND)
        if stuck:
            raise TimeoutError(f"{len(stuck)} client(s) did not stop after the deadline")
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    return stopped - t0


def run_sync_share(job: Job, ready: Callable[[], float | None] | None = None) -> ShareResult:
    """The sync twin of :func:`run_share`: each client loops in its own thread (one per process
    when the runner spreads them). A sync operation cannot be cancelled: it is given the deadline
    and must not start work after it (the book's acquire loops take the time left).
    """
    variant = load_table(job.table).variant(job.variant)
    workload: SyncWorkload = variant.workload(job)
    stats = [ClientStats() for _ in range(job.clients)]
    errors: list[BaseException] = []
    try:
        ops = workload.open(stats)
        start_at = ready() if ready is not None else None
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
        t0 = time.perf_counter()
        deadline = t0 + job.duration

        def drive(op: SyncOp) -> None:
            try:
                while time.perf_counter() < deadline:
                    op(deadline)
            except BaseException as exc:  # reported once every client has stopped
                errors.append(exc)

        if len(ops) == 1:
            drive(ops[0])
        else:
            threads = [threading.Thread(target=drive, args=(op,), daemon=True) for op in ops]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(job.duration + _UNWIND)
            if any(thread.is_alive() for thread in threads):
                raise TimeoutError("a sync client did not stop after the deadline")
        stopped = time.perf_counter()
    finally:
        workload.close()
    if errors:
        raise errors[0]
    return ShareResult(
        ops=[st.ops for st in stats],
        tries=[st.tries for st in stats],
        latencies=[x for st in stats for x in st.latencies],
        seconds=stopped - t0,
        counts=_sum_counts(st.counts for st in stats),
    )


def run_share_here(job: Job) -> ShareResult:
    """Run a whole row in this process (no worker processes), sync or async."""
    if load_table(job.table).variant(job.variant).runs == "sync":
        return run_sync_share(job)
    return asyncio.run(run_share(job))


def _sum_counts(counts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for one in counts:
        for name, value in one.items():
            total[name] = total.get(name, 0) + value
    return total


# -- worker processes ------------------------------------------------------------------------


def _worker_main(conn: Connection) -> None:
    """A worker process: run jobs sent over ``conn`` until it receives None."""
    while True:
        job = conn.recv()
        if job is None:
            return

        def ready() -> float | None:
            conn.send(("ready", None))
            go: float | None = conn.recv()  # the parent replies when every worker is ready
            return go

        async def ready_async() -> float | None:
            return ready()

        try:
            if load_table(job.table).variant(job.variant).runs == "sync":
                result = run_sync_share(job, ready)
            else:
                result = asyncio.run(run_share(job, ready_async))
            conn.send(("done", result))
        except BaseException:  # report anything, the parent decides
            conn.send(("error", traceback.format_exc()))


class WorkerPool:
    """P long-lived spawned processes; one job goes to each, so the shares never share a loop."""

    def __init__(self, processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    def __len__(self) -> int:
        return len(self.pipes)

    async def run(self, job: Job) -> list[ShareResult]:
        """Split ``job.clients`` over the workers, start them together, gather their results."""
        n = len(self.pipes)
        shares = [job.clients // n + (1 if i < job.clients % n else 0) for i in range(n)]
        active = [(pipe, s) for pipe, s in zip(self.pipes, shares, strict=True) if s > 0]
        for pipe, share in active:
            pipe.send(Job(job.table, job.variant, share, job.clients, job.duration, job.target))
        errors: list[str] = []
        for pipe, _ in active:
            kind, payload = await _recv(pipe, _GRACE)
            if kind != "ready":
                errors.append(str(payload))
        start_at = time.time() + 0.05
        for pipe, _ in active:
            pipe.send(None if errors else start_at)
        results: list[ShareResult] = []
        for pipe, _ in active:
            kind, payload = await _recv(pipe, job.duration + _GRACE)
            if kind == "done":
                results.append(payload)
            elif kind == "error":
                errors.append(str(payload))
        if errors:
            raise RuntimeError(errors[0])
        return results

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


async def _recv(pipe: Connection, wait: float) -> tuple[str, Any]:
    ready = await asyncio.to_thread(pipe.poll, wait)
    if not ready:
        raise TimeoutError("a worker process did not answer")
    message: tuple[str, Any] = pipe.recv()
    return message


# -- a whole plan ----------------------------------------------------------------------------


class Reporter(Protocol):
    """Where progress goes (the rich progress bar, or nothing in tests)."""

    def start(self, total: int) -> None: ...
    def running(self, description: str) -> None: ...
    def advance(self) -> None: ...
    def note(self, message: str) -> None: ...


class SilentReporter:
    """A reporter that prints only notes."""

    def start(self, total: int) -> None:
        pass

    def running(self, description: str) -> None:
        pass

    def advance(self) -> None:
        pass

    def note(self, message: str) -> None:
        print(message)


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What to run: tables, client counts, duration, where, how."""

    tables: tuple[str, ...]
    clients: tuple[int, ...] = (1, 2, 5, 10)
    duration: float = 1.0
    url: str | None = None
    topology: str = "standalone"
    processes: int = 0


def _requirement_error(requires: str | None) -> str | None:
    if requires is None:
        return None
    module, _, attribute = requires.partition(":")
    try:
        loaded = importlib.import_module(module)
        if attribute:
            getattr(loaded, attribute)
    except Exception as exc:  # anything: the variant is simply not available yet
        return f"{type(exc).__name__}: {exc}"
    return None


def _client_counts(variant: Variant, plan: RunPlan) -> tuple[int, ...]:
    counts = variant.clients if variant.clients is not None else plan.clients
    return (*counts, *(n for n in variant.also_clients if n not in counts))


def _row_label(table: Table, variant: Variant, transport: str) -> str:
    return f"{variant.name}@{transport}" if table.label_transport else variant.name


async def cleanup(target: Target) -> None:
    """Delete every ``bench:`` key on the target (each primary of a cluster)."""
    client = await connect(target)
    try:
        batch: list[Any] = []
        async for key in client.scan_iter(match=BENCH_PREFIX + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await _unlink(client, target, batch)
                batch = []
        if batch:
            await _unlink(client, target, batch)
    finally:
        await client.aclose()


async def _unlink(client: Any, target: Target, keys: list[Any]) -> None:
    if target.topology == "cluster":
        for key in keys:  # keys of many slots: one command each
            await client.unlink(key)
    else:
        await client.unlink(*keys)


async def engine_of(target: Target) -> dict[str, str]:
    """``{"name", "version"}`` of the server at ``target``, from INFO."""
    client = await connect(target)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    if target.topology == "cluster" and info and all(isinstance(v, dict) for v in info.values()):
        info = next(iter(info.values()))
    name = str(info.get("server_name") or ("valkey" if "valkey_version" in info else "redis"))
    version = str(info.get("valkey_version") or info.get("redis_version") or "unknown")
    return {"name": name, "version": version}


def client_info() -> dict[str, str | None]:
    """Versions of what the client side runs: Python, redis-py, hiredis, the event loop."""
    try:
        hiredis: str | None = importlib.import_module("hiredis").__version__
    except ImportError:
        hiredis = None
    loop = type(asyncio.get_event_loop_policy()).__module__.split(".")[0]
    return {
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "hiredis": hiredis,
        "loop": "uvloop" if loop == "uvloop" else "asyncio",
    }


def planned_rows(
    tables: Sequence[Table], plan: RunPlan, transports: Mapping[str, Sequence[Target]]
) -> Iterator[tuple[Table, Target, Variant, int]]:
    """Every (table, target, variant, clients) the plan will run, in order."""
    for table in tables:
        for target in transports[table.name]:
            for variant in table.variants:
                if plan.topology in variant.unsupported:
                    continue
                for clients in _client_counts(variant, plan):
                    yield table, target, variant, clients


async def run_tables(
    plan: RunPlan,
    tables: Sequence[Table],
    targets: Mapping[str, Sequence[Target]],
    reporter: Reporter,
    pool: WorkerPool | None = None,
    per_client: WorkerPool | None = None,
) -> list[TableResult]:
    """Run every row of ``tables`` against ``targets`` (per table) and return the results.

    ``pool`` spreads coroutine variants' clients (``--processes``); ``per_client`` holds at
    least one process per client of the ``"processes"`` and ``"sync"`` variants (without it,
    those run in this process).
    """
    first = next(iter(targets.values()))[0]
    engine = await engine_of(first)
    client = client_info()
    mode = "processes" if pool is not None else "coroutines"
    results = {
        t.name: TableResult(t, plan.topology, mode, plan.duration, engine, client) for t in tables
    }
    rows = list(planned_rows(tables, plan, targets))
    for table in tables:
        for variant in table.variants:
            if plan.topology in variant.unsupported:
                note = f"{table.name}: skipped {variant.name}: {variant.unsupported[plan.topology]}"
                results[table.name].skipped.append(note)
                reporter.note(note)
    reporter.start(len(rows))
    unavailable: dict[tuple[str, str], str | None] = {}
    prepared: set[tuple[str, str]] = set()
    for table, target, variant, clients in rows:
        result = results[table.name]
        label = _row_label(table, variant, target.transport)
        reporter.running(f"{table.name}: {label} x {clients}")
        key = (table.name, variant.name)
        if key not in unavailable:
            unavailable[key] = _requirement_error(variant.requires)
            if unavailable[key]:
                note = (
                    f"{table.name}: skipped {variant.name} ({variant.requires}: {unavailable[key]})"
                )
                result.skipped.append(note)
                reporter.note(note)
        if unavailable[key]:
            reporter.advance()
            continue
        if (table.name, target.url) not in prepared and table.prepare is not None:
            conn = await connect(target)
            try:
                await table.prepare(conn)
            finally:
                await conn.aclose()
            prepared.add((table.name, target.url))
        await cleanup(target)
        job = Job(table.name, variant.name, clients, clients, plan.duration, target)
        extra: dict[str, float | None] = {}
        try:
            async with contextlib.AsyncExitStack() as stack:
                if table.around_row is not None:
                    conn = await connect(target)
                    stack.push_async_callback(conn.aclose)
                    extra = await stack.enter_async_context(table.around_row(conn))
                async with asyncio.timeout(plan.duration + _GRACE + _UNWIND):
                    shares = await _run_job(job, variant, pool, per_client)
        except Exception as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            note = f"{table.name}: {label} x {clients} failed: {detail}"
            result.skipped.append(note)
            reporter.note(note)
            reporter.advance()
            continue
        row = _row(table, variant, target, clients, shares)
        if not variant.one_process_per_client and pool is not None:
            row.runs = "processes"
        row.extra.update(_sum_counts(s.counts for s in shares))
        if table.derive is not None:
            row.extra.update(table.derive(row))
        row.extra.update(extra)
        result.rows.append(row)
        reporter.advance()
    for target_list in targets.values():
        for target in target_list:
            await cleanup(target)
    return [results[t.name] for t in tables]


async def _run_job(
    job: Job, variant: Variant, pool: WorkerPool | None, per_client: WorkerPool | None
) -> list[ShareResult]:
    if variant.one_process_per_client:
        if per_client is not None and len(per_client) >= job.clients:
            return await per_client.run(job)  # one client per process
        if variant.runs == "sync":
            return [await asyncio.to_thread(run_sync_share, job)]
        return [await run_share(job)]
    if pool is not None:
        return await pool.run(job)
    return [await run_share(job)]


def _row(
    table: Table, variant: Variant, target: Target, clients: int, shares: Sequence[ShareResult]
) -> Row:
    latencies = sorted(x for s in shares for x in s.latencies)
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    per_client = [n for s in shares for n in s.ops]
    return Row(
        variant=_row_label(table, variant, target.transport),
        base=variant.name,
        transport=target.transport,
        clients=clients,
        ops=sum(per_client),
        tries=sum(n for s in shares for n in s.tries),
        seconds=max(s.seconds for s in shares),
        latencies_ms=(None if p50 is None else p50 * 1000, None if p99 is None else p99 * 1000),
        per_client=per_client,
        book=variant.book_rate(target.transport, clients),
        runs=variant.runs,
    )


def run_plan(plan: RunPlan, reporter: Reporter | None = None) -> list[TableResult]:
    """Run a plan end to end: start servers if no URL was given, run every table, stop them."""
    from aiorpatterns.testing.server import ClusterServer, RedisServer

    reporter = reporter or SilentReporter()
    tables = [load_table(name) for name in plan.tables]
    with contextlib.ExitStack() as stack:
        if plan.url is not None:
            transport = "unix" if plan.url.startswith("unix:") else "tcp"
            base = [Target(plan.url, plan.topology, transport)]
            targets = {t.name: base for t in tables}
        elif plan.topology == "cluster":
            cluster = stack.enter_context(ClusterServer(masters=3))
            base = [Target(cluster.url, "cluster", "tcp")]
            targets = {t.name: base for t in tables}
        else:
            server = stack.enter_context(RedisServer())
            by_transport = {
                "tcp": Target(server.url, "standalone", "tcp"),
                "unix": Target(server.unix_url, "standalone", "unix"),
            }
            targets = {t.name: [by_transport[x] for x in t.transports] for t in tables}
        pool = WorkerPool(plan.processes) if plan.processes > 0 else None
        most = max(
            (n for _, _, v, n in planned_rows(tables, plan, targets) if v.one_process_per_client),
            default=0,
        )
        per_client = WorkerPool(most) if most else None
        try:
            return asyncio.run(run_tables(plan, tables, targets, reporter, pool, per_client))
        finally:
            for one in (pool, per_client):
                if one is not None:
                    one.close()
