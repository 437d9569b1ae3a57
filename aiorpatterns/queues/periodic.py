"""Periodic tasks: cron expressions and fixed intervals, one enqueue per tick across schedulers.

Redis in Action §6.4.2 queues a task to run at a given time (a ZSET of delayed tasks that a poller
moves to the queue). A periodic task is the same idea driven by a clock: each *tick* of a
schedule (``every=60``: every multiple of 60 s since the epoch; ``cron="*/5 * * * *"``: the
minutes a standard 5-field cron expression names, in UTC) becomes one call on a
:class:`~aiorpatterns.TaskQueue`, for a :class:`~aiorpatterns.Worker` to run. Any number of
:class:`Scheduler` objects may serve the same entries (one per process for availability): each
tick is enqueued once.

Why once. Ticks are read on the server's clock (``TIME``), never a client's. For each entry the
queue keeps a marker, ``<prefix>:queue:{<name>}:periodic`` (a HASH: entry name -> the last
settled tick), in the queue's hash tag. A scheduler enqueues tick ``T`` only after *claiming* it:
one Lua step (``periodic_claim.lua``) moves the marker from below ``T`` to ``T`` and records the
scheduler's token and a lease; a step that finds the marker at or past ``T`` refuses. The marker
only moves forward, so among schedulers racing for ``T`` exactly one wins, and a tick once
settled is never claimed again, even after its task was acked and deleted (where the queue's
idempotent ``put`` alone, by ``task_id``, would no longer recognise it). The winner then puts the
call with the deterministic id ``periodic:<entry>:<tick ms>`` and *confirms* the claim. A claim
left unconfirmed (its scheduler died between claim and confirm) blocks later ticks of its entry
until its lease (10 s) ends; then the next scheduler takes it over and puts the same id again:
the tick is late but not lost, and if the first put did happen the two collapse into one task,
as long as that task is still in the queue. So every tick is enqueued exactly once, except when
a scheduler *process* dies in the one round trip between its put and its confirmation and the
task is acked before the take-over: that tick then runs twice (at least once, never lost; the
queue's handlers are idempotent anyway). A cancelled or closed scheduler finishes the claim, put
and confirmation it started, so a restart is exact.

Each step is safe to run twice (a client retry): a re-sent claim finds its own token holding the
tick, a re-sent confirmation finds the tick settled, a re-sent put finds its task id queued.

Catch-up. A scheduler started after a pause (no scheduler ran, or all were stopped) finds the
ticks that fell meanwhile due at once. ``catch_up="all"`` (the default) enqueues each of them,
oldest first (at most the :data:`MAX_CATCH_UP` newest of one entry; older ones are skipped, with
a warning); ``catch_up="last"`` enqueues only the newest and skips the others. An entry seen for
the first time starts from that moment: no tick from before it existed is enqueued. Schedulers
of one queue must agree on its entries (same names, same schedules).
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Self

from ..core.cancellation import cancelling, honour_cancel
from ..core.checks import check_int, check_seconds, encode_json
from ..core.keys import check_name
from ..core.scripts import script
from ..core.waiting import Backoff
from .taskqueue import TaskQueue

__all__ = ["Cron", "Periodic", "Scheduler"]

log = logging.getLogger(__name__)

CatchUp = Literal["all", "last"]

#: Most missed ticks of one entry that ``catch_up="all"`` enqueues at once (the newest ones).
MAX_CATCH_UP = 1000
#: How long a claimed tick waits for its scheduler's confirmation before another takes it over.
_LEASE = 10.0
#: How long to wait before asking again about a tick another scheduler is putting.
_BUSY_RETRY = 0.1
#: Longest sleep between two reads of the server's clock (a clock stepped meanwhile is noticed).
_MAX_SLEEP = 60.0
#: Waking a little after the tick, so that the server's clock has reached it.
_MARGIN = 0.002
#: How long ``aclose`` waits for the enqueue step in progress to finish.
_FINISH_WAIT = 5.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
#: Search horizon of a cron expression: any expression that fires at all fires within it.
_HORIZON_YEARS = 50


# -- cron expressions ---------------------------------------------------------------------------

_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
#: (field, lowest, highest, names) of the five fields, in order.
_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day of week", 0, 7, _DAY_NAMES),
)
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ITEM = re.compile(r"^(?:(\*)|(\w+)(?:-(\w+))?)(?:/(\d+))?$")


def _value(token: str, what: str, low: int, high: int, names: Mapping[str, int]) -> int:
    if token.isdigit():
        number = int(token)
    elif token.lower() in names:
        number = names[token.lower()]
    else:
        raise ValueError(f"{what}: {token!r} is not a number" + (" or a name" if names else ""))
    if not low <= number <= high:
        raise ValueError(f"{what}: {number} is out of range {low}-{high}")
    return number


def _parse_field(source: str, what: str, low: int, high: int, names: Mapping[str, int]) -> set[int]:
    chosen: set[int] = set()
    for item in source.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise ValueError(f"{what}: cannot read {item!r}")
        star, first, last, step = match.groups()
        if star:
            start, stop = low, high
        else:
            start = _value(first, what, low, high, names)
            if last is None and step is not None:
                raise ValueError(f"{what}: a step needs a range or '*', as in '*/{step}'")
            stop = start if last is None else _value(last, what, low, high, names)
            if stop < start:
                raise ValueError(f"{what}: range {item!r} runs backwards")
        stride = 1 if step is None else int(step)
        if stride < 1:
            raise ValueError(f"{what}: step must be at least 1 in {item!r}")
        chosen.update(range(start, stop + 1, stride))
    return chosen


class Cron:
    """A standard 5-field cron expression, in UTC: ``minute hour day-of-month month day-of-week``.

    Each field is ``*``, a number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a list of
    those ``a,b-c``; months and days of the week may be named (``jan``, ``mon-fri``), Sunday is
    0 or 7; ``@hourly``, ``@daily``, ``@weekly``, ``@monthly`` and ``@yearly`` are accepted. When
    both day fields are restricted (neither starts with ``*``), a day matches if *either* does,
    as in Vixie cron: ``0 0 13 * 5`` fires on every 13th and on every Friday. A bad expression,
    or one that never fires (``0 0 30 2 *``), raises ``ValueError`` at construction.
    """

    __slots__ = ("_days", "_either_day", "_hours", "_minutes", "_months", "_weekdays", "expression")

    def __init__(self, expression: str) -> None:
        if not isinstance(expression, str):
            raise TypeError(f"cron must be a str, not {type(expression).__name__}")
        self.expression = expression
        fields = _MACROS.get(expression.strip().lower(), expression).split()
        if len(fields) != 5:
            raise ValueError(
                f"cron expression {expression!r} must have 5 fields "
                f"(minute hour day-of-month month day-of-week), got {len(fields)}"
            )
        try:
            sets = [
                _parse_field(source, what, low, high, names)
                for source, (what, low, high, names) in zip(fields, _FIELDS, strict=True)
            ]
        except ValueError as exc:
            raise ValueError(f"cron expression {expression!r}: {exc}") from None
        self._minutes, self._hours, self._days, self._months, weekdays = sets
        self._weekdays = {d % 7 for d in weekdays}
        self._either_day = not fields[2].startswith("*") and not fields[4].startswith("*")
        try:
            self.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        except LookupError:
            raise ValueError(f"cron expression {expression!r} never fires") from None

    def __repr__(self) -> str:
        return f"Cron({self.expression!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cron) and self.expression == other.expression

    def __hash__(self) -> int:
        return hash(self.expression)

    def _day_matches(self, when: datetime) -> bool:
        in_month = when.day in self._days
        in_week = when.isoweekday() % 7 in self._weekdays
        return in_month or in_week if self._either_day else in_month and in_week

    def next_after(self, when: datetime) -> datetime:
        """Return the first time the expression fires strictly after ``when`` (aware), in UTC."""
        start = _utc(when)
        moment = start.replace(second=0, microsecond=0) + _MINUTE
        limit = start.year + _HORIZON_YEARS
        while moment.year <= limit:
            if moment.month not in self._months:
                year, month = divmod(moment.year * 12 + moment.month, 12)  # the next month
                moment = datetime(year, month + 1, 1, tzinfo=UTC)
            elif not self._day_matches(moment):
                moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
            elif moment.hour not in self._hours:
                moment = moment.replace(minute=0) + timedelta(hours=1)
            elif moment.minute not in self._minutes:
                moment += _MINUTE
            else:
                return moment
        raise LookupError(f"{self!r} does not fire within {_HORIZON_YEARS} years of {when}")

    def last_at_or_before(self, when: datetime) -> datetime:
        """Return the last time the expression fires at or before ``when`` (aware), in UTC."""
        start = _utc(when)
        moment = start.replace(second=0, microsecond=0)
        limit = start.year - _HORIZON_YEARS
        while moment.year >= limit:
            if moment.month not in self._months:
                moment = moment.replace(day=1, hour=0, minute=0) - _MINUTE
            elif not self._day_matches(moment):
                moment = moment.replace(hour=0, minute=0) - _MINUTE
            elif moment.hour not in self._hours:
                moment = moment.replace(minute=0) - _MINUTE
            elif moment.minute not in self._minutes:
                moment -= _MINUTE
            else:
                return moment
        raise LookupError(f"{self!r} does not fire within {_HORIZON_YEARS} years before {when}")


def _utc(when: object) -> datetime:
    if not isinstance(when, datetime):
        raise TypeError(f"when must be a datetime, not {type(when).__name__}")
    if when.tzinfo is None:
        raise ValueError("when must be an aware datetime (with a tzinfo)")
    return when.astimezone(UTC)


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _to_ms(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(milliseconds=1)


# -- entries ------------------------------------------------------------------------------------


class Periodic:
    """A call to enqueue on every tick of a schedule: ``every`` seconds, or a ``cron`` expression.

    ``name`` identifies the entry (its ticks' marker and its task ids ``periodic:<name>:<tick
    ms>``); the call is ``task`` (default: ``name``) with ``args`` and ``kwargs``, as
    :meth:`TaskQueue.put_call <aiorpatterns.TaskQueue.put_call>` enqueues it, at ``priority``,
    with the queue's ``max_attempts`` and ``visibility_timeout`` unless given. ``every`` ticks
    fall on the multiples of the interval since the Unix epoch (``every=3600``: on the hour,
    UTC), in whole milliseconds; ``cron`` is a :class:`Cron` expression. Everything is checked
    here, before any scheduler touches Redis.
    """

    __slots__ = (
        "_every_ms",
        "args",
        "cron",
        "every",
        "kwargs",
        "max_attempts",
        "name",
        "priority",
        "task",
        "visibility_timeout",
    )

    def __init__(
        self,
        name: str,
        *,
        every: float | None = None,
        cron: str | None = None,
        task: str | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        priority: str | None = None,
        max_attempts: int | None = None,
        visibility_timeout: float | None = None,
    ) -> None:
        self.name = check_name(name)
        self.task = name if task is None else check_name(task, "task")
        if (every is None) == (cron is None):
            raise ValueError(f"periodic {name!r}: give every (seconds) or cron, exactly one")
        self.every = check_seconds(every, "every", allow_none=True)
        self._every_ms = 0
        if self.every is not None:
            self._every_ms = round(self.every * 1000)
            if self._every_ms < 1:
                raise ValueError(f"every must be at least 0.001 seconds, got {every!r}")
        self.cron = None if cron is None else Cron(cron)
        if isinstance(args, str | bytes) or not isinstance(args, Sequence):
            raise TypeError(f"args must be a sequence, not {type(args).__name__}")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise TypeError(f"kwargs must be a mapping, not {type(kwargs).__name__}")
        if kwargs and not all(isinstance(k, str) for k in kwargs):
            raise TypeError("kwargs keys must be str")
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        encode_json([self.task, list(self.args), self.kwargs], f"periodic {name!r}'s call")
        if priority is not None and not isinstance(priority, str):
            raise TypeError(f"priority must be a str, not {type(priority).__name__}")
        self.priority = priority
        self.max_attempts = (
            None if max_attempts is None else check_int(max_attempts, "max_attempts", minimum=1)
        )
        self.visibility_timeout = check_seconds(
            visibility_timeout, "visibility_timeout", allow_none=True
        )

    def __repr__(self) -> str:
        when = f"every={self.every!r}" if self.cron is None else f"cron={self.cron.expression!r}"
        return f"<Periodic {self.name!r} {when} task={self.task!r}>"

    def task_id(self, tick_ms: int) -> str:
        """The id of the task enqueued for the tick at ``tick_ms`` (Unix milliseconds)."""
        return f"periodic:{self.name}:{tick_ms}"

    def next_after(self, ms: int) -> int:
        """The first tick strictly after ``ms`` (Unix milliseconds)."""
        if self.cron is None:
            return (ms // self._every_ms + 1) * self._every_ms
        return _to_ms(self.cron.next_after(_from_ms(ms)))

    def last_at_or_before(self, ms: int) -> int:
        """The last tick at or before ``ms`` (Unix milliseconds; -1 if there is none)."""
        if self.cron is None:
            return ms // self._every_ms * self._every_ms
        try:
            return _to_ms(self.cron.last_at_or_before(_from_ms(ms)))
        except LookupError:
            return -1

    def due(self, settled: int, now: int, limit: int) -> tuple[list[int], bool]:
        """The ticks in ``(settled, now]``, oldest first, at most the ``limit`` newest; and
        whether older ones were left out."""
        ticks: list[int] = []
        tick = self.last_at_or_before(now)
        while tick > settled and len(ticks) < limit:
            ticks.append(tick)
            tick = self.last_at_or_before(tick - 1)
        ticks.reverse()
        return ticks, tick > settled


# -- the scheduler ------------------------------------------------------------------------------


class Scheduler:
    """Enqueue the calls of ``entries`` on ``queue`` at their ticks, once each across schedulers.

    Run one in as many processes as you like (Redis in Action §6.4.2, with a clock instead of a
    ZSET of delayed tasks): a tick's call is enqueued by whichever claims it first, and by no
    other (see :mod:`aiorpatterns.queues.periodic` for the argument, and for ``catch_up``:
    ``"all"`` enqueues every tick missed while no scheduler ran, ``"last"`` only the newest).
    Use ``async with Scheduler(...):``, or :meth:`start` and :meth:`aclose`, or :meth:`run` to
    serve until cancelled. It sleeps until the next tick, on the server's clock.
    """

    def __init__(
        self,
        queue: TaskQueue,
        entries: Periodic | Iterable[Periodic],
        *,
        catch_up: CatchUp = "all",
    ) -> None:
        if not isinstance(queue, TaskQueue):
            raise TypeError(f"queue must be a TaskQueue, not {type(queue).__name__}")
        chosen = [entries] if isinstance(entries, Periodic) else entries
        if isinstance(chosen, str) or not isinstance(chosen, Iterable):
            raise TypeError("entries must be a Periodic or an iterable of them")
        listed = list(chosen)
        if not listed:
            raise ValueError("entries must not be empty")
        for entry in listed:
            if not isinstance(entry, Periodic):
                raise TypeError(f"entries must be Periodic objects, not {type(entry).__name__}")
            if entry.priority is not None and entry.priority not in queue.priorities:
                raise ValueError(
                    f"periodic {entry.name!r}: unknown priority {entry.priority!r}: "
                    f"expected one of {queue.priorities!r}"
                )
        names = [entry.name for entry in listed]
        if len(set(names)) != len(names):
            raise ValueError(f"entry names must be unique: {names!r}")
        if catch_up not in ("all", "last"):
            raise ValueError(f"catch_up must be 'all' or 'last', got {catch_up!r}")
        self.queue = queue
        self.entries: tuple[Periodic, ...] = tuple(listed)
        self.catch_up: CatchUp = catch_up
        #: Ticks this scheduler enqueued (the others' are theirs).
        self.enqueued = 0
        self.key = queue.keyspace.key("queue", queue.name, "periodic")
        self._token = uuid.uuid4().hex
        self._lease_ms = round(_LEASE * 1000)
        #: Ticks whose put succeeded but whose confirmation did not reach Redis yet.
        self._put: set[tuple[str, int]] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"<Scheduler queue={self.queue.name!r} entries={[e.name for e in self.entries]!r}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has been called."""
        return self._closing

    async def start(self) -> None:
        """Start serving the entries in the background and return at once."""
        if self._closing:
            raise RuntimeError("this scheduler is closed")
        if self._task is None:
            name = f"aiorpatterns-scheduler-{self.queue.name}"
            self._task = asyncio.create_task(self._serve(), name=name)

    async def run(self) -> None:
        """Serve until :meth:`aclose` is called or the caller is cancelled (then close first)."""
        await self.start()
        assert self._task is not None
        try:
            # wait(), not await: the task cancelled by aclose() ends run() without an error.
            await asyncio.wait([self._task])
        except asyncio.CancelledError:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop serving: the enqueue step in progress (claim, put, confirm) finishes first."""
        self._closing = True
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        # Once: a second cancel would cut short the wait for the step in progress.
        done, _ = await asyncio.wait([task], timeout=_FINISH_WAIT + 1)
        if not done:
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=1)
        if not done:
            log.error("scheduler for queue %r did not stop when cancelled", self.queue.name)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- mechanics -------------------------------------------------------------------------------

    async def _serve(self) -> None:
        log.info(
            "scheduler %s for queue %r started: %s; catch_up=%s",
            self._token[:8],
            self.queue.name,
            ", ".join(repr(entry) for entry in self.entries),
            self.catch_up,
        )
        backoff = Backoff()
        current, cancels = cancelling()
        while True:
            try:
                pause = await self._pass()
            except Exception as exc:  # Redis unreachable, say: serve again once it is back
                log.warning(
                    "scheduler for queue %r: %r; retrying in %.1f s",
                    self.queue.name,
                    exc,
                    backoff.pause,
                )
                pause = backoff.take()
            else:
                backoff.reset()
            honour_cancel(current, cancels)
            await asyncio.sleep(pause)

    async def _run(self, *args: object) -> Any:
        return await script("periodic_claim")(self.queue.redis, [self.key], args)

    async def _pass(self) -> float:
        """Enqueue every due tick of every entry; return how long to sleep until the next one."""
        loop = asyncio.get_running_loop()
        reply = await self._run("read", *(entry.name for entry in self.entries))
        read_at = loop.time()
        now = int(reply[0])
        limit = MAX_CATCH_UP if self.catch_up == "all" else 1
        pause = _MAX_SLEEP
        for i, entry in enumerate(self.entries):
            settled, unconfirmed = int(reply[1 + 2 * i]), int(reply[2 + 2 * i])
            ticks, skipped = entry.due(settled, now, limit)
            if skipped and self.catch_up == "all":
                log.warning(
                    "periodic %r: more than %d ticks missed; the older ones are skipped",
                    entry.name,
                    MAX_CATCH_UP,
                )
            elif skipped:
                log.info("periodic %r: missed ticks skipped (catch_up='last')", entry.name)
            if unconfirmed:
                ticks.insert(0, settled)
            for tick in ticks:
                busy = await self._settle(entry, tick)
                if busy is not None:
                    pause = min(pause, busy)
                    break
            wait = (entry.next_after(now) - now) / 1000 - (loop.time() - read_at) + _MARGIN
            pause = min(pause, wait)
        return max(pause, 0.0)

    async def _settle(self, entry: Periodic, tick: int) -> float | None:
        """Claim, put and confirm ``tick`` (or find it settled); seconds to wait if it is busy.

        Once started it finishes, even if the caller is cancelled (then the caller waits for it,
        a bounded time): a scheduler that is closed never leaves a claim of its own unconfirmed.
        """
        step = asyncio.ensure_future(self._claim(entry, tick))
        try:
            return await asyncio.shield(step)
        except asyncio.CancelledError:
            if not step.done():
                await asyncio.wait([step], timeout=_FINISH_WAIT)
            if step.done() and not step.cancelled():
                step.exception()  # seen: the caller is leaving anyway
            raise

    async def _claim(self, entry: Periodic, tick: int) -> float | None:
        while True:
            reply = await self._run("claim", entry.name, tick, self._token, self._lease_ms)
            code, value = int(reply[0]), int(reply[1])
            if code == 0:
                return None
            if code < 0:
                return min(value / 1000, _BUSY_RETRY)
            await self._enqueue(entry, value)
            if value >= tick:
                return None
            # That was an older tick's unconfirmed claim; now the one asked for.

    async def _enqueue(self, entry: Periodic, tick: int) -> None:
        done = (entry.name, tick)
        if done not in self._put:
            try:
                await self.queue.put_call(
                    entry.task,
                    entry.args,
                    entry.kwargs,
                    task_id=entry.task_id(tick),
                    priority=entry.priority,
                    max_attempts=entry.max_attempts,
                    visibility_timeout=entry.visibility_timeout,
                )
            except (TypeError, ValueError) as exc:  # the queue's serializer refused the call
                log.error("periodic %r: tick %d not enqueued: %s", entry.name, tick, exc)
            else:
                self.enqueued += 1
                log.debug("periodic %r: enqueued tick %d", entry.name, tick)
            self._put.add(done)
        confirmed = int(await self._run("confirm", entry.name, tick, self._token))
        self._put.discard(done)
        if not confirmed:
            log.warning(
                "periodic %r: tick %d was taken over by another scheduler", entry.name, tick
            )
