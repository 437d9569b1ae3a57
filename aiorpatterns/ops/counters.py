"""Count events over time at several precisions, and keep aggregate statistics per period.

Redis in Action §5.2.1 counts events in one HASH per counter and precision (1 s, 5 s, 1 min,
5 min, 1 h, 5 h, 1 day), sample start -> count, with a ZSET ``known:`` indexing every counter so
that the cleaner of §5.2.2 can trim old samples. §5.2.3 keeps min, max, count, sum and sum of
squares per context and hour, and times blocks of code with ``access_time``.

:class:`Counters` is a group of counters. Its index is one ZSET per group, and every key of the
group shares the group's hash tag, so an update (index plus seven HASHes) is one atomic Lua step
that runs unchanged on Redis Cluster; a group lives on one node, so spread a very busy workload
over several groups. The book's cleaner walks ``known:`` by index while deleting from it (it
skips counters), reads whole HASHes and un-indexes under WATCH by its own clock; here the walk is
a lexicographic cursor that deletions cannot shift, and each counter is trimmed and un-indexed in
one script by the server's clock, so no update is lost and an index entry never outlives its
samples or goes missing while they exist.

:class:`Stats` keeps §5.2.3's statistics in one ZSET per context and metric, rotated per period
(the book's hour) in the same Lua step as the update: ZADD LT/GT replace the book's ZUNIONSTORE
through unprefixed temporary keys, which were cross-slot. :class:`AccessTimer` is ``access_time``
as an async context manager, timed by a monotonic clock and recorded even when the block fails.

Keys: ``<prefix>:counter:{<group>}:known`` (ZSET) and ``…:count:<precision>:<name>`` (HASH);
``<prefix>:stats:{<context>}:current:<metric>`` (ZSET), ``…:start:<metric>``,
``…:last:<metric>``, ``…:pstart:<metric>``; and ``<prefix>:slowest:{<metric>}`` (ZSET context ->
average), which ranks every context and so lives in its own slot.

Retry safety (a client re-sending a script whose reply was lost): an update, a cleaning step
and a statistics update each carry a token made once per call, and their script keeps its reply
under it for two minutes (``…:known:<token>``, ``…:known:clean:<token>``,
``…:current:<metric>:<token>``), so the same call sent again counts, trims and samples nothing
more and answers the same; the ranking's ZADD is idempotent as it is. An update whose sum would
pass a Redis integer is refused whole, before its first write.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..core.cancellation import best_effort
from ..core.checks import (
    INT64_MAX,
    MAX_SECONDS,
    AsyncRedis,
    check_client,
    check_count,
    check_float,
    check_int,
    check_keyspace,
    check_seconds,
    text,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script

__all__ = ["PRECISIONS", "AccessTimer", "Counters", "Sample", "Statistics", "Stats", "slowest"]

#: The book's precisions in seconds: 1 s, 5 s, 1 min, 5 min, 1 h, 5 h, 1 day.
PRECISIONS: tuple[int, ...] = (1, 5, 60, 300, 3600, 18000, 86400)
#: How many samples the cleaner keeps per counter and precision (the book's SAMPLE_COUNT).
SAMPLES = 100
#: The statistics' period in seconds: the book's hour.
HOUR = 3600
#: Index members read per round trip by the cleaner.
_PAGE = 100
#: The latest ``now`` accepted: whole seconds stay exact in Lua's doubles up to 2**53.
_LATEST = float(2**53)
#: The most entries a ranking keeps: its rank arithmetic in Lua stays exact (doubles).
_MAX_KEEP = 2**32


def _now(value: object) -> str:
    """``now`` as whole seconds for a script ('' asks the script for the server's TIME)."""
    if value is None:
        return ""
    return str(math.floor(check_float(value, "now", minimum=0, maximum=_LATEST)))


def _seconds(value: object, what: str) -> int:
    """A whole number of seconds (a precision, a period), at most :data:`MAX_SECONDS`."""
    return check_int(value, what, minimum=1, maximum=MAX_SECONDS)


@dataclass(frozen=True, slots=True, order=True)
class Sample:
    """One sample of a counter: when it started (Unix seconds) and its count."""

    start: float
    count: int


class Counters:
    """A group of counters named ``group`` (Redis in Action §5.2.1, §5.2.2).

    ``precisions`` are the sample lengths in whole seconds (the book's seven by default);
    ``samples`` is how many samples per precision :meth:`clean` keeps (0 keeps none). The client
    is the caller's and is never closed here; names come back as ``str`` whatever
    ``decode_responses``.
    """

    kind = "counter"

    def __init__(
        self,
        redis: AsyncRedis,
        group: str = "counters",
        *,
        precisions: Sequence[int] = PRECISIONS,
        samples: int = SAMPLES,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        check_name(group, "group")
        if isinstance(precisions, str | bytes) or not isinstance(precisions, Sequence):
            raise TypeError("precisions must be a sequence of ints")
        checked = tuple(_seconds(p, "precision") for p in precisions)
        if not checked:
            raise ValueError("precisions must not be empty")
        if len(set(checked)) != len(checked):
            raise ValueError(f"precisions must be distinct, got {checked}")
        self.group = group
        self.precisions = checked
        self.samples = check_count(samples, "samples", minimum=0)
        self.keyspace = check_keyspace(keyspace)
        self.known_key = keyspace.key(self.kind, group, "known")

    def counter_key(self, name: str, precision: int) -> str:
        """The HASH of ``name``'s samples at ``precision`` (sample start -> count)."""
        return self.keyspace.key(self.kind, self.group, "count", str(precision), name)

    def _precision(self, value: object) -> int:
        precision = _seconds(value, "precision")
        if precision not in self.precisions:
            raise ValueError(f"precision must be one of {self.precisions}, got {precision}")
        return precision

    async def update(self, name: str, count: int = 1, *, now: float | None = None) -> None:
        """Add ``count`` (>= 1) to counter ``name`` at every precision.

        ``now`` (Unix seconds) defaults to the server's clock. One atomic round trip. A sample
        whose sum would pass a Redis integer (2**63 - 1) refuses the whole update with
        ``ValueError``, nothing written. Redis in Action §5.2.1 (``update_counter``).
        """
        check_name(name)
        amount = check_count(count, "count")
        keys = [self.known_key, *(self.counter_key(name, p) for p in self.precisions)]
        room = INT64_MAX - amount
        args: list[object] = [name, amount, _now(now), uuid.uuid4().hex, room, *self.precisions]
        reply = await script("counter_update")(self.redis, keys, args)
        if isinstance(reply, list):
            problem, precision = text(reply[0]), text(reply[1])
            if problem == "overflow":
                raise ValueError(
                    f"count {amount} would take counter {name!r} past {INT64_MAX} at precision "
                    f"{precision}; nothing was counted"
                )
            raise ValueError(
                f"counter {name!r} holds a sample that is not an integer at precision "
                f"{precision}; nothing was counted"
            )

    async def get(self, name: str, *, precision: int) -> list[Sample]:
        """Return counter ``name``'s samples at ``precision``, oldest first.

        Redis in Action §5.2.1 (``get_counter``).
        """
        key = self.counter_key(check_name(name), self._precision(precision))
        data = await self.redis.hgetall(key)
        return sorted(Sample(float(int(k)), int(v)) for k, v in data.items())

    async def names(self) -> list[str]:
        """Return the names of the group's counters that have samples, sorted."""
        members = await self.redis.zrange(self.known_key, 0, -1)
        return sorted({text(m).partition(":")[2] for m in members})

    async def clean(self, *, now: float | None = None) -> int:
        """Trim every counter of the group to its ``samples`` newest; return samples removed.

        One pass; counters left without samples leave the index. ``now`` (Unix seconds)
        defaults to the server's clock. Redis in Action §5.2.2 (``clean_counters``).
        """
        return await self._pass(_now(now), None, 0.0)

    async def run_cleaner(self, *, interval: float = 60.0) -> None:
        """Clean the group every ``interval`` seconds until cancelled.

        As in the book, a precision of ``p`` seconds is cleaned every ``p // interval`` passes
        (every pass at most), so per-day counters are not read every minute. Redis errors
        propagate. Redis in Action §5.2.2 (``clean_counters``).
        """
        every = check_seconds(interval, "interval")
        loop = asyncio.get_running_loop()
        turn = 0
        while True:
            began = loop.time()
            await self._pass("", turn, every)
            turn += 1
            await asyncio.sleep(max(every - (loop.time() - began), 0.0))

    async def _pass(self, now: str, turn: int | None, interval: float) -> int:
        removed = 0
        low: bytes | str = "-"
        while True:
            page: Any = await self.redis.zrange(
                self.known_key, low, "+", bylex=True, offset=0, num=_PAGE
            )
            for raw in page:
                member = text(raw)
                head, _, name = member.partition(":")
                if not head.isdigit() or not name or "}" in name:
                    continue  # not written by update(): leave it alone
                precision = int(head)
                if turn is not None and turn % max(1, int(precision // interval)):
                    continue
                keys = [self.known_key, self.counter_key(name, precision)]
                args = [member, precision, self.samples, now, uuid.uuid4().hex]
                gone, _ = await script("counter_clean")(self.redis, keys, args)
                removed += int(gone)
            if len(page) < _PAGE:
                return removed
            last = page[-1]
            # An exclusive lexicographic cursor: removals behind it cannot make the walk skip.
            low = b"(" + last if isinstance(last, bytes) else "(" + last

    def __repr__(self) -> str:
        return f"<Counters {self.keyspace.tag(self.kind, self.group)!r}>"


@dataclass(frozen=True, slots=True)
class Statistics:
    """Aggregates of the values recorded in one period (Redis in Action §5.2.3).

    ``start`` is the period's start (Unix seconds, server clock). ``average`` and ``stddev``
    (the sample standard deviation, as the book computes it) are derived on read.
    """

    start: float
    count: int
    sum: float
    sumsq: float
    min: float
    max: float

    @property
    def average(self) -> float:
        return self.sum / self.count

    @property
    def stddev(self) -> float:
        spread = self.sumsq - self.sum * self.sum / self.count
        return math.sqrt(max(spread, 0.0) / max(self.count - 1, 1))


def _statistics(label: Any, items: Sequence[Any]) -> Statistics | None:
    if label is None:
        return None
    data = {text(items[i]): float(items[i + 1]) for i in range(0, len(items), 2)}
    if not data.get("count"):
        return None
    return Statistics(
        start=float(text(label)),
        count=int(data["count"]),
        sum=data.get("sum", 0.0),
        sumsq=data.get("sumsq", 0.0),
        min=data.get("min", math.nan),
        max=data.get("max", math.nan),
    )


class Stats:
    """Aggregate statistics of a ``context`` (a page, a job), per metric and ``period``.

    Redis in Action §5.2.3 (``update_stats``, ``get_stats``). ``period`` is in whole seconds,
    the book's hour by default, aligned to the Unix epoch by the server's clock; the previous
    period is kept. All metrics of one context share its hash tag.
    """

    kind = "stats"

    def __init__(
        self,
        redis: AsyncRedis,
        context: str,
        *,
        period: int = HOUR,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        self.context = check_name(context, "context")
        self.period = _seconds(period, "period")
        self.keyspace = check_keyspace(keyspace)

    def _keys(self, metric: object) -> list[str]:
        check_name(metric, "metric")
        parts = ("current", "start", "last", "pstart")
        return [self.keyspace.key(self.kind, self.context, p, str(metric)) for p in parts]

    def stats_key(self, metric: str) -> str:
        """The ZSET of ``metric``'s aggregates in the stored current period."""
        return self._keys(metric)[0]

    async def update(self, metric: str, value: float) -> Statistics:
        """Record ``value`` for ``metric`` and return the period's statistics after it.

        One atomic round trip, rotating to a new period by the server's clock. Redis in Action
        §5.2.3 (``update_stats``).
        """
        keys = self._keys(metric)
        number = check_float(value, "value")
        square = number * number
        if not math.isfinite(square):
            raise ValueError(f"value is too large to square: {value!r}")
        args = [repr(number), repr(square), self.period, uuid.uuid4().hex]
        label, items = await script("stats_update")(self.redis, keys, args)
        stats = _statistics(label, items)
        assert stats is not None  # it holds the value just recorded
        return stats

    async def get(self, metric: str) -> Statistics | None:
        """Return ``metric``'s statistics for the current period, or None if it has none.

        Redis in Action §5.2.3 (``get_stats``), which raises on missing data instead.
        """
        return await self._read("current", metric)

    async def previous(self, metric: str) -> Statistics | None:
        """Return ``metric``'s statistics for the previous period with data, or None."""
        return await self._read("previous", metric)

    async def _read(self, which: str, metric: str) -> Statistics | None:
        keys = self._keys(metric)
        label, items = await script("stats_read")(self.redis, keys, [which, self.period])
        return _statistics(label, items)

    def __repr__(self) -> str:
        return f"<Stats {self.keyspace.tag(self.kind, self.context)!r}>"


def _slowest_key(keyspace: Keyspace, metric: str) -> str:
    return keyspace.key("slowest", check_name(metric, "metric"))


async def slowest(
    redis: AsyncRedis,
    *,
    count: int = 10,
    metric: str = "AccessTime",
    keyspace: Keyspace = DEFAULT_KEYSPACE,
) -> list[tuple[str, float]]:
    """Return the ``count`` contexts with the highest average ``metric``, slowest first.

    The ranking :class:`AccessTimer` keeps. Redis in Action §5.2.3 (``slowest:AccessTime``).
    """
    check_client(redis)
    key = _slowest_key(check_keyspace(keyspace), metric)
    stop = check_count(count, "count") - 1
    rows: Any = await redis.zrevrange(key, 0, stop, withscores=True)
    return [(text(member), float(score)) for member, score in rows]


class AccessTimer:
    """Time an ``async with`` block and record it in the context's statistics.

    ``async with AccessTimer(redis, "/cart"):`` records the block's duration (a monotonic clock,
    seconds) as the ``metric`` of :class:`Stats` ``(redis, context)`` and ranks the context's new
    average in :func:`slowest`, which keeps the ``keep`` slowest contexts. Unlike the book's
    ``access_time`` (Redis in Action §5.2.3), a block that raises or is cancelled is recorded
    too (a timed-out request is the slowest kind), without masking its exception. ``elapsed`` and
    ``stats`` hold the outcome afterwards. One block at a time per instance.

    The ranking is a separate key (it spans contexts, so it cannot share their hash tag): when
    one context's blocks finish concurrently, its rank may briefly hold an average one update
    old, until its next block.
    """

    def __init__(
        self,
        redis: AsyncRedis,
        context: str,
        *,
        metric: str = "AccessTime",
        keep: int = 100,
        period: int = HOUR,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self._stats = Stats(redis, context, period=period, keyspace=keyspace)
        self.metric = check_name(metric, "metric")
        self.keep = check_int(keep, "keep", minimum=1, maximum=_MAX_KEEP)
        self.slowest_key = _slowest_key(keyspace, metric)
        self.elapsed: float | None = None
        self.stats: Statistics | None = None
        self._began: float | None = None

    async def __aenter__(self) -> AccessTimer:
        if self._began is not None:
            raise RuntimeError("this AccessTimer is already timing a block")
        self.elapsed = self.stats = None
        self._began = time.perf_counter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._began is not None, "__aexit__ without __aenter__"
        elapsed = self.elapsed = time.perf_counter() - self._began
        self._began = None
        if exc_type is None:
            await self._record(elapsed)
        else:
            await best_effort(lambda: self._record(elapsed))

    async def _record(self, elapsed: float) -> None:
        self.stats = await self._stats.update(self.metric, elapsed)
        args = [self._stats.context, repr(self.stats.average), self.keep]
        await script("stats_slowest")(self._stats.redis, [self.slowest_key], args)
