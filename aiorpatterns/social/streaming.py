"""Stream a social network's new and deleted statuses to filtered readers, on a Redis Stream.

Redis in Action §8.5 streams statuses to HTTP clients: ``create_status`` and ``delete_status``
PUBLISH every status on the channel ``streaming:status:``, and each client's thread subscribes
and passes what matches its filter (a sample, tracked words, followed users or location boxes).
Pub/sub keeps nothing: a client that disconnects, or falls behind its output buffer, loses every
status published meanwhile, and the book's code is broken besides (``import cgi`` fails on
Python >= 3.13, ``FILTERS`` lists ``'filter'`` so ``follow`` is unreachable,
``LocationFilter``'s ``check(self, status)`` reads ``self.boxes`` of a closure).

:class:`StatusStream` keeps the events in one Redis Stream per network, bounded by ``maxlen``
(``XADD MAXLEN ~``). A reader iterates ``async for event in stream.events(filter,
last_id=...)``: ``XREAD BLOCK`` in bounded slices, re-checking after each, and every event
carries its entry id, so a reader that reconnects with the last id it saw gets everything
published since, as long as it is still in the stream (:meth:`StatusStream.missed` says whether
some of it was trimmed first). Readers hold no state in Redis: cancelling one at any await
leaves nothing behind.

Filters (:class:`SampleFilter`, :class:`TrackFilter`, :class:`FollowFilter`,
:class:`LocationFilter`, the book's four, named as the book names them) are functions of the
status alone, so a reader receives the delete event of exactly the statuses whose create event
it received; they combine with ``&``, ``|`` and ``~`` (or :class:`AllOfFilter`,
:class:`AnyOfFilter`, :class:`NotFilter`), and any ``callable(StatusMessage) -> bool`` is a
filter too.

With ``Social(..., events=StatusStream(...))``, posting and deleting append an event. The
status lives under its author's hash tag and the stream under its own, so on a cluster the two
cannot change in one atomic step: the event is appended right after the status step, both
shielded (a cancelled call still appends). A process that dies between the two steps leaves a
status without its event (:meth:`StatusStream.publish` can announce it again), and a delete
racing a post of the same status can append its event before the post's: a reader drops a
``created`` event whose ``deleted`` event it has already yielded (it remembers the last
:data:`DELETED_MEMORY` deletes). The stream is a notification feed; the statuses HASH is the
record. Retry safety: the one write is a plain ``XADD`` (no script), so a client retry after a
lost reply may append an event twice; a reader then sees a duplicate notification, never a
lost one.

Keys: ``<prefix>:streaming:{<name>}``, one STREAM with fields ``kind`` (``created`` or
``deleted``), ``status`` (the status id) and ``record`` (the status as JSON).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core.cancellation import cancelling, honour_cancel, shielded
from ..core.checks import (
    AsyncRedis,
    check_client,
    check_count,
    check_float,
    check_keyspace,
    check_wait,
    encode_json,
    stream_entries,
    text,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.waiting import block_ms, blocking_cap
from .timelines import StatusMessage, _status_id, decode_status

__all__ = [
    "AllOfFilter",
    "AnyOfFilter",
    "FollowFilter",
    "LocationFilter",
    "NotFilter",
    "SampleFilter",
    "StatusEvent",
    "StatusFilter",
    "StatusStream",
    "TrackFilter",
]

log = logging.getLogger(__name__)

#: How many events a stream keeps by default (approximately: ``XADD MAXLEN ~``).
STREAM_MAXLEN = 10_000
#: Entries one ``XREAD`` fetches by default.
READ_BATCH = 100
#: How many deleted status ids a reader remembers, to drop a create event that comes after.
DELETED_MEMORY = 4096

EventKind = Literal["created", "deleted"]
Filter = Callable[[StatusMessage], bool]

_LAST_ID = re.compile(r"\$|(0|[1-9][0-9]{0,19})(-(0|[1-9][0-9]{0,19}))?")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One event: ``id`` is its stream entry id (pass it back as ``last_id`` to resume)."""

    id: str
    kind: EventKind
    status: StatusMessage

    @property
    def deleted(self) -> bool:
        """True for a delete event."""
        return self.kind == "deleted"


# -- filters --------------------------------------------------------------------------------


class StatusFilter:
    """Base of the filters: call it on a status; combine with ``&``, ``|`` and ``~``."""

    def __call__(self, status: StatusMessage) -> bool:
        raise NotImplementedError

    def __and__(self, other: Filter) -> AllOfFilter:
        return AllOfFilter(self, other)

    def __or__(self, other: Filter) -> AnyOfFilter:
        return AnyOfFilter(self, other)

    def __invert__(self) -> NotFilter:
        return NotFilter(self)


def _check_filter(value: object, what: str = "filter") -> Filter:
    if not callable(value):
        raise TypeError(f"{what} must be callable on a StatusMessage, not {type(value).__name__}")
    return value


class AllOfFilter(StatusFilter):
    """Pass a status that every one of ``filters`` passes (all of none: everything)."""

    def __init__(self, *filters: Filter) -> None:
        self.filters = tuple(_check_filter(f, "each filter") for f in filters)

    def __call__(self, status: StatusMessage) -> bool:
        return all(f(status) for f in self.filters)

    def __repr__(self) -> str:
        return f"AllOfFilter{self.filters!r}"


class AnyOfFilter(StatusFilter):
    """Pass a status that at least one of ``filters`` passes (any of none: nothing)."""

    def __init__(self, *filters: Filter) -> None:
        self.filters = tuple(_check_filter(f, "each filter") for f in filters)

    def __call__(self, status: StatusMessage) -> bool:
        return any(f(status) for f in self.filters)

    def __repr__(self) -> str:
        return f"AnyOfFilter{self.filters!r}"


class NotFilter(StatusFilter):
    """Pass a status that ``inner`` does not pass."""

    def __init__(self, inner: Filter) -> None:
        self.inner = _check_filter(inner)

    def __call__(self, status: StatusMessage) -> bool:
        return not self.inner(status)

    def __repr__(self) -> str:
        return f"NotFilter({self.inner!r})"


class SampleFilter(StatusFilter):
    """Pass a deterministic ``fraction`` of the statuses, chosen by a hash of the status id.

    The same status id always gets the same answer (so its delete follows its create), and a
    smaller fraction with the same ``seed`` passes a subset of a larger one; readers with
    different seeds get different samples. Redis in Action §8.5 (the book's ``SampleFilter`` keeps
    ``id % 100`` in a shuffled set: whole percents only, from 1).
    """

    def __init__(self, fraction: float, *, seed: str = "") -> None:
        fraction = check_float(fraction, "fraction", minimum=0, maximum=1)
        if not isinstance(seed, str):
            raise TypeError(f"seed must be a str, not {type(seed).__name__}")
        self.fraction = float(fraction)
        self.seed = seed
        self._limit = math.floor(self.fraction * 2**64)
        self._key = seed.encode()[:64]
        if len(seed.encode()) > 64:
            self._key = hashlib.blake2b(seed.encode(), digest_size=64).digest()

    def point(self, status_id: str) -> int:
        """Where ``status_id`` falls in ``[0, 2**64)``: passed if below ``fraction * 2**64``."""
        digest = hashlib.blake2b(status_id.encode(), digest_size=8, key=self._key).digest()
        return int.from_bytes(digest, "big")

    def __call__(self, status: StatusMessage) -> bool:
        return self.point(status.id) < self._limit

    def __repr__(self) -> str:
        return f"SampleFilter({self.fraction!r}, seed={self.seed!r})"


def words(message: str) -> frozenset[str]:
    """The words of ``message`` as :class:`TrackFilter` sees them: runs of ``\\w``, case-folded."""
    return frozenset(_WORD.findall(message.casefold()))


class TrackFilter(StatusFilter):
    """Pass a status whose message holds all the words of at least one of ``phrases``.

    A one-word phrase is a keyword, so ``TrackFilter("redis", "valkey")`` passes messages with
    either word; ``TrackFilter("redis streams")`` needs both. Words are tokenised by
    :func:`words`, so case and punctuation do not matter ("Redis," matches "redis"). Redis in
    Action §8.5 (the book's ``TrackFilter`` splits on whitespace only).
    """

    def __init__(self, *phrases: str) -> None:
        if not phrases:
            raise ValueError("TrackFilter needs at least one phrase")
        groups = []
        for phrase in phrases:
            if not isinstance(phrase, str):
                raise TypeError(f"each phrase must be a str, not {type(phrase).__name__}")
            group = words(phrase)
            if not group:
                raise ValueError(f"phrase {phrase!r} has no words")
            groups.append(group)
        self.phrases = phrases
        self.groups = tuple(groups)

    def __call__(self, status: StatusMessage) -> bool:
        found = words(status.message)
        return any(group <= found for group in self.groups)

    def __repr__(self) -> str:
        return f"TrackFilter{self.phrases!r}"


class FollowFilter(StatusFilter):
    """Pass statuses by the given users: ints are user ids, strs are logins.

    A login (any case, a leading ``@`` ignored) matches the author's login and an ``@login``
    mention in the message, as the book's ``FollowFilter`` does. Redis in Action §8.5 (whose
    ``FILTERS`` tuple spells it ``'filter'``, so the book never reaches it).
    """

    def __init__(self, *users: int | str) -> None:
        if not users:
            raise ValueError("FollowFilter needs at least one user id or login")
        uids: set[int] = set()
        logins: set[str] = set()
        for user in users:
            if isinstance(user, str):
                login = user.removeprefix("@").casefold()
                if not login or not _WORD.fullmatch(login):
                    raise ValueError(f"login must be a word, got {user!r}")
                logins.add(login)
            else:
                uids.add(check_count(user, "each user id"))
        self.users = users
        self.uids = frozenset(uids)
        self.logins = frozenset(logins)

    def __call__(self, status: StatusMessage) -> bool:
        if status.uid in self.uids or status.login.casefold() in self.logins:
            return True
        if not self.logins:
            return False
        mentions = {m.casefold() for m in re.findall(r"@(\w+)", status.message)}
        return not mentions.isdisjoint(self.logins)

    def __repr__(self) -> str:
        return f"FollowFilter{self.users!r}"


Box = tuple[float, float, float, float]


def _coordinate(value: object, what: str, limit: float) -> float:
    return check_float(value, what, minimum=-limit, maximum=limit)


def _position(status: StatusMessage) -> tuple[float, float] | None:
    """The status's ``(lon, lat)`` from its data, or None if absent or not valid numbers."""
    try:
        lat = _coordinate(status.data.get("lat"), "lat", 90)
        lon = _coordinate(status.data.get("lon"), "lon", 180)
    except (TypeError, ValueError):
        return None
    return lon, lat


class LocationFilter(StatusFilter):
    """Pass statuses whose ``lat``/``lon`` data (numbers, degrees) fall in one of ``boxes``.

    A box is ``(west, south, east, north)``, edges included (the order of Twitter's and the
    book's ``locations``); ``west > east`` is a box crossing the antimeridian. A status without
    a valid position matches no box. Redis in Action §8.5 (the book's ``LocationFilter`` has a
    ``check`` that cannot run).
    """

    def __init__(self, *boxes: Iterable[float]) -> None:
        if not boxes:
            raise ValueError("LocationFilter needs at least one box")
        checked: list[Box] = []
        for box in boxes:
            if isinstance(box, str | bytes) or not isinstance(box, Iterable):
                raise TypeError("each box must be (west, south, east, north)")
            edges = tuple(box)
            if len(edges) != 4:
                raise ValueError(f"each box must be (west, south, east, north), got {box!r}")
            west = _coordinate(edges[0], "west", 180)
            south = _coordinate(edges[1], "south", 90)
            east = _coordinate(edges[2], "east", 180)
            north = _coordinate(edges[3], "north", 90)
            if south > north:
                raise ValueError(f"south must not be north of north, got {box!r}")
            checked.append((west, south, east, north))
        self.boxes = tuple(checked)

    def __call__(self, status: StatusMessage) -> bool:
        position = _position(status)
        if position is None:
            return False
        lon, lat = position
        for west, south, east, north in self.boxes:
            inside = west <= lon <= east if west <= east else (lon >= west or lon <= east)
            if inside and south <= lat <= north:
                return True
        return False

    def __repr__(self) -> str:
        return f"LocationFilter{self.boxes!r}"


# -- the stream -----------------------------------------------------------------------------


def _check_last_id(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"last_id must be '$', '0' or an event id (a str), not {type(value).__name__}"
        )
    if not _LAST_ID.fullmatch(value) or any(int(n) >= 2**64 for n in re.findall("[0-9]+", value)):
        raise ValueError(
            f"last_id must be '$', '0' or an event id like '1700000000000-0', got {value!r}"
        )
    return value


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class StatusStream:
    """The events (new and deleted statuses) of the social network ``name``, for streaming.

    ``maxlen`` bounds the stream (approximately, ``XADD MAXLEN ~``): a reader away for longer
    than ``maxlen`` events takes loses the oldest. The client is the caller's and is never
    closed here. Redis in Action §8.5.
    """

    kind = "streaming"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "social",
        *,
        maxlen: int = STREAM_MAXLEN,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        check_name(name)
        self.keyspace = check_keyspace(keyspace)
        self.redis = check_client(redis)
        self.name = name
        self.maxlen = check_count(maxlen, "maxlen")
        self.key = keyspace.key(self.kind, name)
        #: Entries read that were not events of this class (logged and skipped).
        self.skipped = 0

    def __repr__(self) -> str:
        return f"<StatusStream {self.key!r}>"

    async def publish(self, kind: EventKind, status: StatusMessage) -> str:
        """Append an event for ``status``; return its entry id.

        :class:`~aiorpatterns.Social` calls this after its status steps; call it yourself to
        announce again a status whose event a crash lost. Shielded: once called, it appends.
        """
        if kind not in ("created", "deleted"):
            raise ValueError(f"kind must be 'created' or 'deleted', got {kind!r}")
        if not isinstance(status, StatusMessage):
            raise TypeError(f"status must be a StatusMessage, not {type(status).__name__}")
        _status_id(status.id)
        record = encode_json(
            {
                "posted": status.posted,
                "login": status.login,
                "message": status.message,
                "data": status.data,
            },
            "status",
        )
        fields = {"kind": kind, "status": status.id, "record": record}
        return await shielded(self._append(fields))

    async def _append(self, fields: dict[Any, Any]) -> str:
        entry_id = await self.redis.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)
        return text(entry_id)

    async def last_id(self) -> str:
        """The id of the newest event in the stream, or ``"0-0"`` if there is none."""
        newest = await self.redis.xrevrange(self.key, count=1)
        return text(newest[0][0]) if newest else "0-0"

    async def length(self) -> int:
        """How many events the stream holds."""
        return int(await self.redis.xlen(self.key))

    async def missed(self, last_id: str) -> bool:
        """True if events after ``last_id`` may have been trimmed before a reader got them.

        That is: the stream has dropped entries (``maxlen``), and ``last_id`` is older than its
        oldest entry. Trimmed ids are not kept, so a reader whose last event was exactly the
        newest one trimmed is told True as well: a possible gap, never a silent one.
        """
        if _check_last_id(last_id) == "$":
            return False
        try:
            info = await self.redis.xinfo_stream(self.key)
        except ResponseError as exc:  # no such key: nothing was ever trimmed
            if "no such key" in str(exc).lower():
                return False
            raise
        fields = {text(k): v for k, v in info.items()}
        added = int(fields.get("entries-added", 0))
        if added <= int(fields["length"]):
            return False
        first = fields.get("first-entry")
        if not first:  # everything was trimmed or deleted
            return _id_key(last_id) < _id_key(text(fields["last-generated-id"]))
        return _id_key(last_id) < _id_key(text(first[0]))

    def events(
        self,
        filter: Filter | None = None,
        *,
        last_id: str = "$",
        timeout: float | None = None,
        count: int = READ_BATCH,
    ) -> AsyncIterator[StatusEvent]:
        """Iterate over the events after ``last_id`` that pass ``filter``, as they come.

        ``last_id="$"`` (default) starts with the events published from now on, ``"0"`` with
        the oldest the stream still holds, an event's ``id`` right after that event (resume
        there after a disconnect). ``timeout=None`` iterates for ever; a number of seconds ends
        the iteration once that long has passed without an event passing the filter (``0``:
        what is there now). Waits are ``XREAD BLOCK`` slices of at most
        :data:`~aiorpatterns.core.waiting.MAX_WAIT_SLICE`. Redis in Action §8.5
        (``filter_content``).
        """
        if filter is not None:
            _check_filter(filter)
        _check_last_id(last_id)
        wait = None if timeout is None else check_wait(timeout)
        count = check_count(count, "count")
        return self._events(filter, last_id, wait, count)

    async def _events(
        self, match: Filter | None, last_id: str, idle: float | None, count: int
    ) -> AsyncIterator[StatusEvent]:
        loop = asyncio.get_running_loop()
        # Taken before every await of this task (again after each yield, which may resume in
        # another task), so a cancel that redis-py swallowed is raised at the next turn.
        task, before = cancelling()
        # "$" again on every XREAD would skip what arrives between two reads: pin it once.
        cursor = await self.last_id() if last_id == "$" else last_id
        cap = blocking_cap(self.redis)
        deadline = None if idle is None else loop.time() + idle
        deleted: dict[str, None] = {}  # insertion-ordered: the oldest goes first
        while True:
            honour_cancel(task, before)
            pause = block_ms(deadline, cap)
            raw = await self._read(cursor, count, pause)
            honour_cancel(task, before)
            if not raw and pause is None:
                return
            for entry_id, fields in raw:
                cursor = text(entry_id)
                event = self._event(cursor, fields)
                if event is None or (match is not None and not match(event.status)):
                    continue
                if event.kind == "deleted":
                    deleted[event.status.id] = None
                    if len(deleted) > DELETED_MEMORY:
                        del deleted[next(iter(deleted))]
                elif event.status.id in deleted:  # a post's event that lost the race to its delete
                    continue
                yield event
                task, before = cancelling()
                if idle is not None:
                    deadline = loop.time() + idle

    async def _read(self, cursor: str, count: int, pause: int | None) -> list[Any]:
        try:
            reply = await self.redis.xread({self.key: cursor}, count=count, block=pause)
        except RedisTimeoutError:  # socket_timeout cut the wait short (see blocking_cap)
            return []
        return stream_entries(reply)

    def _event(self, entry_id: str, fields: Any) -> StatusEvent | None:
        try:
            decoded = {text(k): text(v) for k, v in (fields or {}).items()}
            kind = decoded["kind"]
            if kind not in ("created", "deleted"):
                raise ValueError(f"unknown kind {kind!r}")
            status_id, _ = _status_id(decoded["status"])
            status = decode_status(status_id, decoded["record"])
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            self.skipped += 1
            log.warning("status stream %r: skipped entry %s: %s", self.key, entry_id, exc)
            return None
        return StatusEvent(id=entry_id, kind=kind, status=status)  # type: ignore[arg-type]
