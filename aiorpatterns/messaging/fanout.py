"""Distribute logs (or any entries) to many groups of readers over a Redis Stream.

Redis in Action §6.6 sends log files to many readers: the copier APPENDs each file to a STRING
in blocks and announces it in a chat (§6.5.2), every reader fetches the announcement, reads the
file and INCRs a ``:done`` counter, and the copier deletes a file once ``count`` readers are done,
waiting whenever the files in Redis exceed ``limit`` bytes. That leans on the
chat's non-atomic fetch, compares the done counter as bytes (``b'2' >= b'10'``, so ten readers
lose files), caps a file at a 512 MB string and cannot notice a reader that died mid-file.

Redis Streams (5.0; ``XAUTOCLAIM`` and ``MINID`` 6.2) are that design built into the server,
which is why :class:`Fanout` uses one instead of porting the book:

- an entry is appended with ``XADD``; each *consumer group* is one of the book's readers, and it
  receives every entry, while the consumers inside a group share the group's work;
- a group's last-delivered id and its pending list replace the chat's ``seen:`` bookkeeping and
  the ``:done`` counter, and ``XACK`` replaces the INCR;
- a consumer that dies mid-batch leaves its entries pending; after ``min_idle`` seconds any
  consumer of the group takes them over with ``XAUTOCLAIM`` and processes them;
- memory is bounded by ``maxlen`` (``XADD MAXLEN``) and/or ``max_age`` (``MINID``), which drop
  the oldest entries even if a slow group has not read them, or by :meth:`Fanout.trim`, which
  drops only what every group has acknowledged (the book's clean-up, without its bug).

Delivery contract, per group: **at least once**. Every entry published is delivered to some
consumer of every group that exists when it is published (or whose start precedes it), unless a
``maxlen``/``max_age`` bound dropped it first: that is what those bounds are for, so when every
group must see every entry, bound the stream with :meth:`Fanout.trim` instead (entries dropped
while a consumer held them are counted in :attr:`FanoutConsumer.skipped` and logged). An entry
not acknowledged within ``min_idle`` may be delivered again, to another consumer or to the same
one. A read cancelled at any await loses nothing: entries the server had already handed to the
consumer are returned by its next read. ``publish``, ``publish_many`` and ``ack`` are shielded:
once called, they complete, so a cancelled publish appends its entries exactly once. Every script
is safe to run twice (a client retry after a lost reply): a publish batch and a trim keep a
receipt under a token made per call (``_once.lua``), and deleting a consumer twice is harmless.

Keys: ``<prefix>:fanout:{<name>}``, one STREAM (its groups live inside it), so a fan-out lives on
one cluster node; spread load with several names. Receipts ``…:<token>`` beside it expire.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core.cancellation import cancelling, honour_cancel, shielded
from ..core.checks import (
    AsyncRedis,
    check_count,
    check_flag,
    check_int,
    check_object,
    check_seconds,
    check_wait,
    encode_json,
    stream_entries,
    text,
    to_ms,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from ..core.waiting import block_ms, blocking_cap

__all__ = ["Fanout", "FanoutConsumer", "FanoutEntry", "FanoutGroup"]

log = logging.getLogger(__name__)

#: The field each published entry keeps its JSON text in.
FIELD = "data"
#: Entries per publish step: one script call (atomic) per batch.
_PUBLISH_BATCH = 500
#: Most entries one read asks for: XAUTOCLAIM reserves server memory for COUNT ids up front.
MAX_READ_COUNT = 1_000_000


@dataclass(frozen=True, slots=True)
class FanoutEntry:
    """One entry of a fan-out stream as a consumer received it.

    ``data`` is the JSON text that was published (None if another producer wrote the entry
    without a ``data`` field: see ``fields``); :attr:`payload` decodes it.
    """

    id: str
    data: str | None
    group: str
    fields: dict[str, str]

    @property
    def payload(self) -> Any:
        """The published value decoded from JSON (``ValueError`` if ``data`` is not JSON)."""
        if self.data is None:
            raise ValueError(f"entry {self.id} has no {FIELD!r} field: {self.fields!r}")
        return json.loads(self.data)

    def __hash__(self) -> int:
        return hash((self.id, self.group))


@dataclass(frozen=True, slots=True)
class FanoutGroup:
    """A consumer group's state: its consumers, unacknowledged entries and read position.

    ``lag`` is how many entries the group has not been delivered yet (None when the server
    cannot tell, e.g. after entries were deleted from the middle).
    """

    name: str
    consumers: int
    pending: int
    last_delivered_id: str
    lag: int | None


class Fanout:
    """A stream named ``name`` that every consumer group reads in full (Redis in Action §6.6).

    ``maxlen`` keeps at most that many entries and ``max_age`` (seconds) drops entries older
    than that, at each publish; ``approximate=True`` lets Redis trim whole nodes only (``~``,
    cheaper; the stream may then briefly hold up to about a hundred entries more).
    """

    kind = "fanout"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        maxlen: int | None = None,
        max_age: float | None = None,
        approximate: bool = True,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        self.maxlen = None if maxlen is None else check_count(maxlen, "maxlen")
        self.max_age = check_seconds(max_age, "max_age", allow_none=True)
        self.approximate = check_flag(approximate, "approximate")
        self.key = keyspace.key(self.kind, name)

    def __repr__(self) -> str:
        return f"<Fanout {self.key!r}>"

    # -- producing ---------------------------------------------------------------------------

    async def publish(self, payload: Any) -> str:
        """Append ``payload`` (any JSON value); return the entry's id. Shielded."""
        return (await self._publish([encode_json(payload, "payload")]))[0]

    async def publish_many(self, payloads: Iterable[Any]) -> list[str]:
        """Append several payloads in order; return their ids.

        Every payload is encoded (and checked) before anything is sent; they are appended in
        atomic batches of 500, one round trip each. Shielded: once called, every entry is
        appended, even if the caller is cancelled.
        """
        if isinstance(payloads, str | bytes) or not isinstance(payloads, Iterable):
            raise TypeError("payloads must be an iterable of JSON values")
        texts = [encode_json(p, "payload") for p in payloads]
        return await self._publish(texts) if texts else []

    async def _publish(self, texts: Sequence[str]) -> list[str]:
        return await shielded(self._append(texts))

    async def _append(self, texts: Sequence[str]) -> list[str]:
        publish = script("fanout_publish")
        head = [
            self.maxlen or 0,
            0 if self.approximate else 1,
            0 if self.max_age is None else to_ms(self.max_age),
        ]
        ids: list[str] = []
        for start in range(0, len(texts), _PUBLISH_BATCH):
            batch = texts[start : start + _PUBLISH_BATCH]
            token = uuid.uuid4().hex  # one per batch: a retry of it finds its receipt
            args = [*head, token, *batch]
            ids.extend(text(i) for i in await publish(self.redis, [self.key], args))
        return ids

    # -- groups ------------------------------------------------------------------------------

    async def create_group(self, group: str, *, start: str = "0") -> bool:
        """Create a consumer group; False if it exists already.

        ``start="0"`` (default) delivers every entry still in the stream, ``"$"`` only entries
        published from now on; an entry id starts after that entry. Creates the stream if needed.
        """
        check_name(group, "group")
        _check_start(start)
        try:
            await self.redis.xgroup_create(self.key, group, id=start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        return True

    async def delete_group(self, group: str) -> bool:
        """Delete a consumer group with its pending entries; True if it existed."""
        check_name(group, "group")
        return bool(await self.redis.xgroup_destroy(self.key, group))

    async def groups(self) -> list[FanoutGroup]:
        """Return the state of every consumer group, sorted by name."""
        try:
            raw = await self.redis.xinfo_groups(self.key)
        except ResponseError as exc:  # no stream yet: no groups
            if "no such key" in str(exc).lower():
                return []
            raise
        infos = [
            FanoutGroup(
                name=text(g["name"]),
                consumers=int(g["consumers"]),
                pending=int(g["pending"]),
                last_delivered_id=text(g["last-delivered-id"]),
                lag=None if g.get("lag") is None else int(g["lag"]),
            )
            for g in raw
        ]
        return sorted(infos, key=lambda g: g.name)

    def consumer(
        self,
        group: str,
        name: str | None = None,
        *,
        min_idle: float = 30.0,
        count: int = 100,
    ) -> FanoutConsumer:
        """Return a consumer ``name`` of ``group`` (default name: host, pid and a random part).

        The group must exist (:meth:`create_group`). Entries another consumer of the group has
        held for ``min_idle`` seconds without an ack are taken over by this one. A consumer that
        restarts under the same name first gets back the entries it held unacknowledged.
        ``count`` (1 to :data:`MAX_READ_COUNT`) is how many entries a read asks for by default.
        """
        return FanoutConsumer(self, group, name, min_idle=min_idle, count=count)

    # -- maintenance -------------------------------------------------------------------------

    async def trim(self) -> int:
        """Drop every entry that all consumer groups have acknowledged; return how many.

        Atomic (one script). With no group, nothing is dropped. Redis in Action §6.6 ``_clean``.
        """
        token = uuid.uuid4().hex
        return int(await shielded(script("fanout_trim")(self.redis, [self.key], [token])))

    async def length(self) -> int:
        """How many entries the stream holds."""
        return int(await self.redis.xlen(self.key))


class FanoutConsumer:
    """One consumer of a group of a :class:`Fanout`: read, process, ack (Redis in Action §6.6).

    Tasks may share one consumer. Use ``async with`` (or :meth:`aclose`) to remove the consumer
    from its group when done, which happens only if it holds no unacknowledged entry.
    """

    def __init__(
        self,
        fanout: Fanout,
        group: str,
        name: str | None = None,
        *,
        min_idle: float = 30.0,
        count: int = 100,
    ) -> None:
        if not isinstance(fanout, Fanout):
            raise TypeError(f"fanout must be a Fanout, not {type(fanout).__name__}")
        check_name(group, "group")
        if name is None:
            name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        check_name(name, "name")
        self.fanout = fanout
        self.redis = fanout.redis
        self.key = fanout.key
        self.group = group
        self.name = name
        self.min_idle = check_seconds(min_idle, "min_idle")
        self.count = _check_read_count(count)
        #: Entries found already deleted by ``maxlen``/``max_age`` before this group read them.
        self.skipped = 0
        # Entries handed out and not acknowledged yet (id -> loop time): a re-read of our own
        # pending entries skips them while they are younger than min_idle.
        self._inflight: dict[str, float] = {}
        # Our own pending entries may hold some nobody was handed (a restart under the same
        # name, or a read cancelled after the server answered): read them before new ones.
        self._recheck = True
        self._own_lock = asyncio.Lock()
        self._cursor = "0-0"

    def __repr__(self) -> str:
        return f"<FanoutConsumer {self.name!r} of group {self.group!r} on {self.key!r}>"

    # A timeout parameter, not asyncio.timeout(): see Inbox.receive.
    async def read(
        self,
        *,
        count: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[FanoutEntry]:
        """Return up to ``count`` entries for this consumer, waiting up to ``timeout`` seconds.

        In order of preference: entries this consumer holds but nobody was handed, entries
        other consumers of the group held for ``min_idle`` (``XAUTOCLAIM``), then new entries
        (``XREADGROUP … >``). ``timeout=None`` waits until something arrives, ``0`` does not
        wait; an empty list means nothing arrived in time.
        """
        n = self.count if count is None else _check_read_count(count)
        wait = None if timeout is None else check_wait(timeout)
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        cap = blocking_cap(self.redis)
        current, cancels = cancelling()
        got: list[FanoutEntry] = []
        try:
            while True:
                honour_cancel(current, cancels)  # every turn: a swallowed cancel would loop on
                if self._recheck:
                    got = await self._own(n)
                    if got:
                        break
                got = await self._reclaim(n)
                if got:
                    break
                block = block_ms(deadline, cap)
                # Out of time: one look at new entries without blocking, then give up.
                got = await self._new(n, block)
                if got or block is None:
                    break
            honour_cancel(current, cancels)
        except BaseException:
            # The server may have handed us entries whose reply we never read: they are in our
            # pending list now, and the next read returns them (with any this call had got).
            for entry in got:
                self._inflight.pop(entry.id, None)
            self._recheck = True
            raise
        self._hold(got)
        return got

    async def ack(self, entries: FanoutEntry | Iterable[FanoutEntry]) -> int:
        """Acknowledge processed entries; return how many were still pending. Shielded."""
        chosen = [entries] if isinstance(entries, FanoutEntry) else list(entries)
        for entry in chosen:
            if not isinstance(entry, FanoutEntry):
                raise TypeError(f"entries must be FanoutEntry objects, not {type(entry).__name__}")
            if entry.group != self.group:
                raise ValueError(f"entry {entry.id} belongs to group {entry.group!r}")
        if not chosen:
            return 0
        ids = [e.id for e in chosen]
        done = int(await shielded(self.redis.xack(self.key, self.group, *ids)))
        for i in ids:
            self._inflight.pop(i, None)
        return done

    def release(self, entries: FanoutEntry | Iterable[FanoutEntry]) -> None:
        """Hand entries back unprocessed: this consumer's next read returns them again.

        Local only (the entries stay pending on this consumer in Redis), so no await.
        """
        chosen = [entries] if isinstance(entries, FanoutEntry) else list(entries)
        for entry in chosen:
            if not isinstance(entry, FanoutEntry):
                raise TypeError(f"entries must be FanoutEntry objects, not {type(entry).__name__}")
            self._inflight.pop(entry.id, None)
        self._recheck = True

    async def aclose(self) -> bool:
        """Remove this consumer from its group if it holds nothing; True if removed."""
        args = [self.group, self.name]
        return bool(await shielded(script("fanout_leave")(self.redis, [self.key], args)))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- mechanics ---------------------------------------------------------------------------

    def _hold(self, entries: Iterable[FanoutEntry]) -> None:
        now = asyncio.get_running_loop().time()
        for entry in entries:
            self._inflight[entry.id] = now

    async def _own(self, n: int) -> list[FanoutEntry]:
        """Entries pending for this consumer that no caller holds (or held past ``min_idle``)."""
        # One task at a time: two tasks re-reading the same pending list would both get it.
        async with self._own_lock:
            if not self._recheck:
                return []
            now = asyncio.get_running_loop().time()
            for i, since in list(self._inflight.items()):
                if now - since >= self.min_idle:  # given up on, as XAUTOCLAIM would
                    del self._inflight[i]
            after = "0"
            while True:
                reply = await self.redis.xreadgroup(
                    self.group, self.name, {self.key: after}, count=n
                )
                raw = stream_entries(reply)
                if not raw:
                    self._recheck = False
                    return []
                fresh = await self._entries(raw, ack_deleted=True)
                fresh = [e for e in fresh if e.id not in self._inflight]
                if fresh:
                    self._hold(fresh)
                    return fresh
                after = text(raw[-1][0])

    async def _reclaim(self, n: int) -> list[FanoutEntry]:
        """Take over entries other consumers held for ``min_idle`` (``XAUTOCLAIM``)."""
        while True:
            cursor, raw, deleted = await self._autoclaim(n)
            self._cursor = cursor
            if deleted:
                self._skip(len(deleted))
            got = await self._entries(raw, ack_deleted=True)
            if got or cursor == "0-0":
                return got

    async def _autoclaim(self, n: int) -> tuple[str, list[Any], list[Any]]:
        reply = await self.redis.xautoclaim(
            self.key, self.group, self.name, to_ms(self.min_idle), self._cursor, count=n
        )
        deleted = list(reply[2]) if len(reply) > 2 else []
        return text(reply[0]), list(reply[1] or []), deleted

    async def _new(self, n: int, block_ms: int | None) -> list[FanoutEntry]:
        try:
            reply = await self.redis.xreadgroup(
                self.group, self.name, {self.key: ">"}, count=n, block=block_ms
            )
        except RedisTimeoutError:  # socket_timeout cut the wait short (see blocking_cap)
            return []
        return await self._entries(stream_entries(reply), ack_deleted=False)

    async def _entries(self, raw: Sequence[Any], *, ack_deleted: bool) -> list[FanoutEntry]:
        got: list[FanoutEntry] = []
        gone: list[str] = []
        for entry_id, fields in raw:
            if entry_id is None:
                continue
            if not fields:  # deleted by maxlen/max_age while pending: nothing left to read
                gone.append(text(entry_id))
                continue
            decoded = {text(k): text(v) for k, v in fields.items()}
            got.append(
                FanoutEntry(
                    id=text(entry_id), data=decoded.get(FIELD), group=self.group, fields=decoded
                )
            )
        if gone:
            self._skip(len(gone))
            if ack_deleted:
                await self.redis.xack(self.key, self.group, *gone)
        return got

    def _skip(self, n: int) -> None:
        self.skipped += n
        log.warning(
            "fanout %r group %r: %d entries were trimmed before they were processed",
            self.fanout.name,
            self.group,
            n,
        )


def _check_read_count(count: object) -> int:
    return check_int(count, "count", minimum=1, maximum=MAX_READ_COUNT)


#: What ``XGROUP CREATE`` takes as a start: ``$``, or an entry id ``ms`` or ``ms-seq``.
_START = re.compile(r"\$|(0|[1-9][0-9]{0,19})(-(0|[1-9][0-9]{0,19}))?")


def _check_start(start: object) -> None:
    if not isinstance(start, str):
        raise TypeError(
            f"start must be '0', '$' or an entry id (a str), not {type(start).__name__}"
        )
    if not _START.fullmatch(start) or any(int(n) >= 2**64 for n in re.findall("[0-9]+", start)):
        raise ValueError(
            f"start must be '0', '$' or an entry id like '1700000000000-0', got {start!r}"
        )
