"""Distribute the files of a directory to many consumers through Redis, under a byte budget.

Redis in Action §6.6 copies log files into Redis (``copy_logs_to_redis``: APPEND in 128 KiB
blocks), announces each one in a chat (§6.5.2) to ``count`` consumers, and deletes a file once
every consumer has incremented its ``:done`` counter; the consumers (``process_logs_from_redis``)
read each file back in blocks (``readblocks``, ``readblocks_gz``), split it into lines
(``readlines``) and hand each line to a callback, ``None`` at the end of a file. The book's
code has faults, fixed here:

- ``_clean`` compares the ``:done`` counter with ``count`` as bytes (``b'2' >= b'10'``): with
  ten consumers or more a file is deleted before everybody has read it. Here a file records
  *which* consumers finished it (a set), compared with ``count`` as an integer.
- The byte budget lives in the sender's memory and the sender polls (``time.sleep(.25)``) for
  room. Here it is a counter in Redis, reserved in the step that registers a file, and the
  sender waits for the consumers' signal (see *Back-pressure*).
- A crash of the sender, or a retried ``APPEND``, duplicates or loses data; a crash of a
  consumer between its callback and its ``INCR`` (or a retried ``INCR``) counts a file twice.
  Here every step can run again (see *Crashes*).
- ``readblocks`` yields a ``''`` sentinel among bytes, ``readlines`` yields an empty last line,
  ``readblocks_gz`` parses the gzip header by hand (and only one member), and
  ``daily_country_aggregate`` calls an undefined ``find_city_by_ip_local`` and *replaces* a
  day's counts with ``ZADD``. Here: :func:`readblocks`, :func:`readblocks_gz` (zlib with the
  gzip header, concatenated members, bounded output) and :func:`readlines` are async iterators
  of bytes, and :class:`DailyCountryAggregate` adds each file's counts once.

**Back-pressure.** A channel never holds more than ``limit`` bytes of files: before copying a
file the sender reserves its size in one atomic step (``files_reserve``), which refuses while
the files held plus this one would pass the limit (a file larger than ``limit`` is refused
before anything is written: it could never fit). A refused sender blocks in ``XREAD`` on the
channel's signal stream, shared with every waiter of its client (``core/wakeup.py``), above
the last event the refusal reported; the consumer whose finish deletes a file (the last of
``count``) adds an event in that same step, which wakes the sender at once. Every wait is a
bounded slice followed by a new try, so a lost wake-up costs latency, never liveness.

**Crashes.** The sender can be cancelled or killed at any point and run again with the same
directory: files are numbered by name in Redis, so a run finds which files are finished (and
skips them), held, or announced; a partial copy resumes at the string's ``STRLEN``, and blocks
are written with ``SETRANGE`` at their offset (not ``APPEND``), so a block sent twice, by a
client retry or by two runs, lands on the same bytes. An announcement sent twice (a crash
between the send and its record) is harmless: a consumer skips a file it has finished, or one
every consumer has finished. A consumer reads one announcement at a time and acknowledges it
only after the file's finish step; if it dies mid-file, the announcement is handed out again
(at once when it was cancelled, after ``claim_timeout`` when it was killed) and the file is
read again **from its first line**. The contract of a callback is therefore at-least-once per
file and consumer, with a commit point: it sees every line of a file in order, then ``None``;
only after the ``None`` call returns is the file marked finished for this consumer. A callback
that commits what it gathered at ``None``, idempotently by :attr:`SentFile.id` (the same on
every delivery of one file of one distribution to one consumer), counts every line exactly
once, whatever crashes: :class:`DailyCountryAggregate` does so with a receipt written in the
step that adds its counts. Each delivery is a new :class:`SentFile` object, so a callback can
tell a replay from the delivery it was in when a cancel interrupted it.

**Lifecycle.** A distribution (a *run*) begins with the first :meth:`FileDistribution.send` on
a channel, which creates its chat (one per run: ``<channel>:<run id>``, the consumers named
``<channel>:<i>`` for ``i`` in ``range(count)``). ``send(..., done=False)`` returns once its
files are announced, and a later ``send`` adds more; ``done=True`` (the default) announces the
end, waits until every file was finished by every consumer and deleted, and deletes the
channel's keys: running it again after that is a new distribution. A consumer leaves the chat
when it reads the end (the last one out deletes it) and :meth:`FileDistribution.consume`
returns. Run one sender per channel at a time.

Keys (one hash tag per channel): ``<prefix>:files:{<channel>}:run`` (HASH), ``…:names`` (HASH
file name -> number), ``…:sizes`` (HASH number -> bytes, the files held), ``…:held`` (STRING
bytes reserved), ``…:announced`` (SET), ``…:signal`` (STREAM of one entry, the last event),
``…:file:<n>`` (STRING a file's content), ``…:finished:<n>`` (SET of the consumers done with
it); the run's chat (:class:`~aiorpatterns.messaging.Chats` keys of kind ``filechat``); the
aggregate's ``<prefix>:daily:{country}:<day>`` (ZSET country -> lines) and its receipts
``<prefix>:daily:{country}:added:<sha1>`` (expiring).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import json
import os
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from redis.client import NEVER_DECODE
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core.cancellation import best_effort, cancelling, honour_cancel, shielded
from ..core.checks import (
    AsyncRedis,
    check_callable,
    check_client,
    check_flag,
    check_int,
    check_keyspace,
    check_object,
    check_seconds,
    check_text,
    text,
    to_ms,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from ..core.waiting import MAX_WAIT_SLICE, block_ms, blocking_cap
from ..core.wakeup import stream_wait
from .chat import ChatBatch, Chats

__all__ = [
    "DailyCountryAggregate",
    "FileDistribution",
    "SentFile",
    "readblocks",
    "readblocks_gz",
    "readlines",
]

#: The book's block: 128 KiB per APPEND (here SETRANGE) and per GETRANGE.
BLOCK_SIZE = 2**17
#: The book's default budget: 1 GiB held in Redis per channel.
DEFAULT_LIMIT = 2**30
#: Most bytes a Redis string holds (``proto-max-bulk-len``' default): a block or a file above it
#: could never be stored.
MAX_STRING = 2**29
#: Most consumers of one distribution (all of them are named in one chat-creating step).
MAX_CONSUMERS = 10_000
#: Most decompressed bytes a gzip reader makes from one call (a small file may inflate a lot).
_INFLATE_CHUNK = 2**18
#: How long a receipt of :class:`DailyCountryAggregate` is kept (a file re-read later than
#: that would be counted again).
RECEIPT_TTL = 7 * 86_400.0

#: The callback of :meth:`FileDistribution.consume`: the file, then one line (bytes, its
#: newline included), or ``None`` at the end of the file. A plain function or a coroutine.
FileCallback = Callable[["SentFile", bytes | None], Awaitable[object] | object]

#: The channel's keys, in the order the scripts take them.
_PARTS = ("run", "names", "sizes", "held", "signal", "announced")


@dataclass(frozen=True, slots=True, eq=False)
class SentFile:
    """One delivery of a file to a consumer: what the callback is given with each line.

    ``number`` is the file's number in its distribution ``run`` (1, 2, 3, … in name order),
    ``size`` its length in Redis (compressed, for a ``.gz`` file). Every delivery is a new
    object (so a replay after a crash is not the object of the delivery it replaces); :attr:`id`
    is the same for every delivery of this file to this consumer.
    """

    channel: str
    run: str
    number: int
    name: str
    size: int
    consumer: int
    key: str = field(repr=False)

    @property
    def id(self) -> str:
        """``<run>:<number>:<consumer>``: commit a file's results idempotently under it."""
        return f"{self.run}:{self.number}:{self.consumer}"


@dataclass(frozen=True, slots=True)
class _Run:
    id: str
    count: int
    ready: bool
    done: bool


class _FileChats(Chats):
    """The chats that carry announcements: their own key kinds, apart from users' chats."""

    kind = "filechat"
    index_kind = "filechats"


# -- readers ----------------------------------------------------------------------------------


async def _getrange(redis: AsyncRedis, key: str, start: int, end: int) -> bytes:
    # Raw bytes whatever the client's decode_responses: a log may not be UTF-8, a .gz never is.
    reply = await redis.execute_command("GETRANGE", key, start, end, **{NEVER_DECODE: True})
    return bytes(reply)


def _check_block_size(value: object) -> int:
    return check_int(value, "block_size", minimum=1, maximum=MAX_STRING)


async def readblocks(
    redis: AsyncRedis, key: str, *, block_size: int = BLOCK_SIZE, size: int | None = None
) -> AsyncGenerator[bytes, None]:
    """Yield the string at ``key`` in blocks of ``block_size`` bytes (``GETRANGE``).

    Redis in Action §6.6.2 ``readblocks``, without its ``''`` sentinel: the iterator ends after
    the last (non-empty) block. With ``size`` it reads exactly that many bytes and raises
    ``RuntimeError`` if the string is shorter (it was deleted or cut under the reader); without
    it, it reads until a block comes back short.
    """
    check_client(redis)
    check_text(key, "key")
    block_size = _check_block_size(block_size)
    if size is not None:
        size = check_int(size, "size", minimum=0, maximum=MAX_STRING)
    position = 0
    current, cancels = cancelling()
    while size is None or position < size:
        honour_cancel(current, cancels)  # a cancel swallowed mid-command stops the reading
        want = block_size if size is None else min(block_size, size - position)
        block = await _getrange(redis, key, position, position + want - 1)
        position += len(block)
        if block:
            yield block
        if len(block) < want:
            if size is not None:
                raise RuntimeError(
                    f"{key!r} holds {position} bytes, fewer than the {size} expected"
                )
            return


def _gzip_decoder() -> Any:
    # 32 + MAX_WBITS: a gzip (or zlib) header, parsed by zlib rather than by hand.
    return zlib.decompressobj(32 + zlib.MAX_WBITS)


async def _gunzip(blocks: AsyncIterable[bytes], what: str) -> AsyncGenerator[bytes, None]:
    """Decompress gzip data block by block: every member of a concatenated file, in order."""
    decoder = _gzip_decoder()
    inside = False  # some of a member was read and its end not yet
    try:
        async for block in blocks:
            data = block
            while data:
                inside = True
                out = decoder.decompress(data, _INFLATE_CHUNK)
                if out:
                    yield out
                if decoder.eof:
                    data, decoder, inside = decoder.unused_data, _gzip_decoder(), False
                else:
                    data = decoder.unconsumed_tail
        if inside:
            rest = decoder.flush()
            if rest:
                yield rest
            if not decoder.eof:
                raise ValueError(f"{what} ends in the middle of its gzip data")
    except zlib.error as exc:
        raise ValueError(f"{what} is not valid gzip data: {exc}") from None


async def readblocks_gz(
    redis: AsyncRedis, key: str, *, block_size: int = BLOCK_SIZE, size: int | None = None
) -> AsyncGenerator[bytes, None]:
    """Yield the decompressed content of the gzip file stored at ``key``, block by block.

    Redis in Action §6.6.2 ``readblocks_gz``: the compressed blocks come from
    :func:`readblocks`; zlib reads the gzip header itself (any flags), every member of a
    concatenated file is read, and no call yields more than 256 KiB. Raises ``ValueError`` on
    data that is not gzip or ends mid-stream.
    """
    async with (
        contextlib.aclosing(readblocks(redis, key, block_size=block_size, size=size)) as raw,
        contextlib.aclosing(_gunzip(raw, repr(key))) as plain,
    ):
        async for block in plain:
            yield block


async def readlines(blocks: AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    """Yield the complete lines of ``blocks`` (bytes, each with its ``\\n``), then any rest.

    Redis in Action §6.6.2 ``readlines``, given the blocks rather than a reader function:
    ``readlines(readblocks(redis, key))`` or ``readlines(readblocks_gz(redis, key))``. A last
    line without a newline is yielded as it is; an empty one is not yielded at all.
    """
    parts: list[bytes] = []  # the line in progress, which may span many blocks
    async for block in blocks:
        if b"\n" not in block:
            if block:
                parts.append(block)
            continue
        parts.append(block)
        lines = b"".join(parts).split(b"\n")
        rest = lines.pop()  # what follows the last newline: the next line's start
        parts = [rest] if rest else []
        for line in lines:
            yield line + b"\n"
    if parts:
        yield b"".join(parts)


async def _call(callback: FileCallback, file: SentFile, line: bytes | None) -> None:
    result = callback(file, line)
    if inspect.isawaitable(result):
        await result


# -- the distribution -------------------------------------------------------------------------


def _check_directory(path: object) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or a path, not {type(path).__name__}")
    return Path(path)


def _listing(directory: Path, limit: int) -> list[tuple[str, int]]:
    """The regular files of ``directory`` in name order, with their sizes (checked)."""
    if not directory.is_dir():
        raise ValueError(f"path {str(directory)!r} is not a directory")
    found = []
    for entry in os.scandir(directory):
        if not entry.is_file():
            continue
        name, size = entry.name, entry.stat().st_size
        try:
            name.encode()
        except UnicodeEncodeError:
            raise ValueError(f"file name {name!r} in {str(directory)!r} is not UTF-8") from None
        if size > limit:
            raise ValueError(
                f"file {name!r} is {size} bytes, more than limit={limit}: it could never fit"
            )
        if size > MAX_STRING:
            raise ValueError(f"file {name!r} is {size} bytes, more than a Redis string holds")
        found.append((name, size))
    return sorted(found)


def _read_at(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as source:
        source.seek(offset)
        return source.read(length)


class FileDistribution:
    """Send the files of a directory to ``count`` consumers through Redis (Redis in Action §6.6).

    ``channel`` names the distribution (its keys and its chats); ``block_size`` is the size of
    the blocks written and read (the book's 128 KiB); ``claim_timeout`` is how long an
    announcement a consumer was handed waits for it before it goes to that consumer's next
    fetch (after a crash). See the module's documentation for the guarantees. The client is the
    caller's and is never closed here.
    """

    kind = "files"

    def __init__(
        self,
        redis: AsyncRedis,
        channel: str,
        *,
        block_size: int = BLOCK_SIZE,
        claim_timeout: float = 30.0,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis, self.channel, self.keyspace = check_object(redis, channel, keyspace)
        self.block_size = _check_block_size(block_size)
        self.claim_timeout = check_seconds(claim_timeout, "claim_timeout")
        self.chats = _FileChats(redis, claim_timeout=self.claim_timeout, keyspace=keyspace)
        self.keys = tuple(keyspace.key(self.kind, channel, part) for part in _PARTS)
        self._run_key, self._names_key, self._sizes_key, _, self._signal_key, self._announced = (
            self.keys
        )

    def __repr__(self) -> str:
        return f"<FileDistribution channel={self.channel!r} prefix={self.keyspace.prefix!r}>"

    def file_key(self, number: int) -> str:
        """The key holding the content of file ``number`` while it is distributed."""
        return self.keyspace.key(self.kind, self.channel, "file", str(number))

    def _finished_key(self, number: int) -> str:
        return self.keyspace.key(self.kind, self.channel, "finished", str(number))

    def chat_id(self, run: str) -> str:
        """The id of the chat that carries the announcements of distribution ``run``."""
        return f"{self.channel}:{run}"

    def member(self, consumer: int) -> str:
        """The chat member name of consumer number ``consumer``."""
        return f"{self.channel}:{consumer}"

    # -- sending ---------------------------------------------------------------------------

    async def send(
        self,
        path: str | os.PathLike[str],
        *,
        count: int,
        limit: int = DEFAULT_LIMIT,
        done: bool = True,
    ) -> int:
        """Copy every file of ``path`` into Redis, announce each to ``count`` consumers.

        Files go in name order, each copied in full, then announced; the channel never holds
        more than ``limit`` bytes of files (a file larger than that is refused with
        ``ValueError`` before anything is written), so the sender waits, woken by the
        consumers, while they catch up. With ``done`` the end is announced, and the call
        returns once every file was finished by every consumer and deleted. Returns how many
        files this call announced. Run again after a crash or a cancel, it resumes where the
        last run stopped (nothing is copied or counted twice). Redis in Action §6.6.1
        ``copy_logs_to_redis``.
        """
        directory = _check_directory(path)
        count = check_int(count, "count", minimum=1, maximum=MAX_CONSUMERS)
        limit = check_int(limit, "limit", minimum=1, maximum=2**53)
        check_flag(done, "done")
        files = await asyncio.to_thread(_listing, directory, limit)
        run = await self._begin(count)
        if run.count != count:
            raise ValueError(
                f"channel {self.channel!r} has a distribution in progress to {run.count} "
                f"consumers, not count={count}"
            )
        if not run.ready:
            run = await self._open_chat(run)
        await self._check_resumable(run, files)
        sent = 0
        current, cancels = cancelling()
        for name, size in files:
            honour_cancel(current, cancels)
            sent += await self._send_file(run, directory, name, size, limit)
        if done:
            if not run.done:
                message = {"run": run.id, "done": True}
                await self.chats.send(self.chat_id(run.id), self._sender, message)
                await self.redis.hset(self._run_key, "done", "1")
            await self._end(run)
        return sent

    @property
    def _sender(self) -> str:
        return f"{self.channel}:sender"

    async def _begin(self, count: int, *, ready: bool = False, run_id: str = "") -> _Run:
        # Time first (hex, fixed width), so the runs' chat ids sort in the order they began.
        token = run_id or f"{time.time_ns() // 1_000_000:012x}{uuid.uuid4().hex[:20]}"
        keys = [self._run_key, self._signal_key]
        reply = await script("files_begin")(self.redis, keys, [token, count, int(ready)])
        return _Run(text(reply[0]), int(reply[1]), bool(int(reply[2])), bool(int(reply[3])))

    async def _open_chat(self, run: _Run) -> _Run:
        """Create the run's chat (unless a crashed run did), then mark the run ready."""
        chat = self.chat_id(run.id)
        members = [self.member(i) for i in range(run.count)]
        with contextlib.suppress(ValueError):  # it exists: the run before a crash made it
            await self.chats.create(self._sender, members, {"run": run.id}, chat_id=chat)
        # The sender is a label, not a reader: as a member it would keep every message.
        await self.chats.leave(chat, self._sender)
        return await self._begin(run.count, ready=True, run_id=run.id)

    async def _check_resumable(self, run: _Run, files: Sequence[tuple[str, int]]) -> None:
        """Refuse to resume when a file held but never announced has left the directory.

        Its bytes would stay reserved for good, and the sender wait for room that never comes.
        """
        names = {text(k): text(v) for k, v in (await self.redis.hgetall(self._names_key)).items()}
        if not names:
            return
        held = {text(n) for n in await self.redis.hkeys(self._sizes_key)}
        announced = {text(n) for n in await self.redis.smembers(self._announced)}
        present = {name for name, _ in files}
        missing = sorted(
            name
            for name, number in names.items()
            if number in held and number not in announced and name not in present
        )
        if missing:
            raise FileNotFoundError(
                f"channel {self.channel!r}: {missing} were being sent by an earlier run and are "
                "no longer in the directory; put them back to resume"
            )

    async def _send_file(self, run: _Run, directory: Path, name: str, size: int, limit: int) -> int:
        keys = self.keys[:5]
        current, cancels = cancelling()
        while True:
            honour_cancel(current, cancels)
            reply = await script("files_reserve")(self.redis, keys, [run.id, name, size, limit])
            status = int(reply[0])
            if status == -1:
                raise RuntimeError(
                    f"the distribution {run.id} on channel {self.channel!r} ended while sending"
                )
            if status != 0:
                break
            await self._wait(int(reply[1]))  # no room: wait for a consumer to release a file
        number = int(reply[1])
        if status == 2:
            return 0  # finished by every consumer in an earlier run
        await self._copy(directory / name, number, int(reply[2]))
        if await self.redis.sismember(self._announced, str(number)):
            return 0
        message = {"run": run.id, "file": name, "number": number, "size": int(reply[2])}
        await self.chats.send(self.chat_id(run.id), self._sender, message)
        # A crash before this line sends the announcement again on resume: consumers skip it.
        await self.redis.sadd(self._announced, str(number))
        return 1

    async def _copy(self, path: Path, number: int, size: int) -> None:
        """Write the first ``size`` bytes of ``path`` to the file's key, from where it stops."""
        key = self.file_key(number)
        offset = int(await self.redis.strlen(key))
        if offset > size:
            raise RuntimeError(f"{key!r} holds {offset} bytes, more than the {size} of {path}")
        current, cancels = cancelling()
        while offset < size:
            honour_cancel(current, cancels)  # a cancel swallowed mid-command stops the copy
            want = min(self.block_size, size - offset)
            block = await asyncio.to_thread(_read_at, path, offset, want)
            if len(block) < want:
                raise ValueError(f"{str(path)!r} is shorter than the {size} bytes recorded for it")
            # SETRANGE, not APPEND: a block written twice (a retry, a resumed run) lands on
            # itself instead of after itself.
            await self.redis.setrange(key, offset, block)
            offset += want

    async def _end(self, run: _Run) -> None:
        current, cancels = cancelling()
        keys = [*self.keys[:4], self._signal_key, self._announced]
        while True:
            honour_cancel(current, cancels)
            reply = await script("files_end")(self.redis, keys, [run.id])
            if int(reply[0]):
                return
            await self._wait(int(reply[1]))

    async def _wait(self, position: int) -> None:
        """Wait (one bounded slice) for an event of the channel after ``position``."""
        block = block_ms(None, blocking_cap(self.redis))
        assert block is not None  # no deadline
        # A wait cut short by the socket timeout is followed by a new try, like a wake-up.
        with contextlib.suppress(RedisTimeoutError):
            await stream_wait(self.redis, self._signal_key, position, block / 1000)

    # -- consuming -------------------------------------------------------------------------

    async def consume(self, consumer: int, callback: FileCallback) -> int:
        """Feed every line of every file announced to ``consumer`` to ``callback``; return how
        many files it processed when the end of the distribution is announced.

        ``consumer`` is a number in ``range(count)`` of the sender. ``callback(file, line)``
        gets each line (bytes, with its newline) of a file in order, then ``callback(file,
        None)``; ``.gz`` files are decompressed. The file is marked finished for this consumer
        after that last call returns; if the consumer dies before, the file is read again from
        its first line (commit at ``None``, idempotently by ``file.id``: see the module's
        documentation). Waits, without polling, for a distribution to begin and for its files.
        Redis in Action §6.6.2 ``process_logs_from_redis``.
        """
        consumer = check_int(consumer, "consumer", minimum=0, maximum=MAX_CONSUMERS - 1)
        check_callable(callback, "callback")
        member = self.member(consumer)
        prefix = f"{self.channel}:"
        processed = 0
        current, cancels = cancelling()
        while True:
            honour_cancel(current, cancels)
            run, count, ready, position = await self._status()
            if run is not None and consumer >= count:
                raise ValueError(
                    f"consumer={consumer} is not among the {count} consumers of the "
                    f"distribution on channel {self.channel!r}"
                )
            # The chats this consumer has not seen the end of, oldest run first: the index
            # (a chat whose end it missed in a crash), and the current run's.
            chats = {c for c in await self.chats.chats_of(member) if c.startswith(prefix)}
            if run is not None and ready:
                chats.add(self.chat_id(run))
            for chat in sorted(chats):
                ended, count_done = await self._consume_chat(chat, consumer, callback)
                processed += count_done
                if ended:
                    return processed
            # Nothing for us (no run yet, its chat not ready, or we left it): the next event.
            await self._wait(position)

    async def _status(self) -> tuple[str | None, int, bool, int]:
        reply = await script("files_status")(self.redis, [self._run_key, self._signal_key])
        run = None if reply[0] is None else text(reply[0])
        return run, int(reply[1]), bool(int(reply[2])), int(reply[3])

    async def _consume_chat(
        self, chat: str, consumer: int, callback: FileCallback
    ) -> tuple[bool, int]:
        """Read one run's chat until its end (True) or until we are not in it (False)."""
        member = self.member(consumer)
        processed = 0
        current, cancels = cancelling()
        while True:
            honour_cancel(current, cancels)
            try:
                batch = await self.chats.fetch(chat, member, count=1, timeout=None)
            except LookupError:
                return False, processed  # not a member (any more), or the chat is gone
            if batch.busy:
                # A fetch of ours that crashed holds the announcement until its claim ends:
                # nothing in Redis signals that moment, so wait a slice and try again.
                await asyncio.sleep(min(MAX_WAIT_SLICE, self.claim_timeout))
                continue
            try:
                ended, count_done = await self._handle(batch, consumer, callback)
            except BaseException:
                # Back to the chat at once: a restarted consumer need not wait for the claim.
                await best_effort(functools.partial(self.chats.release, batch))
                raise
            processed += count_done
            await self.chats.ack(batch)
            if ended:
                await self.chats.leave(chat, member)  # the last one out deletes the chat
                return True, processed

    async def _handle(
        self, batch: ChatBatch, consumer: int, callback: FileCallback
    ) -> tuple[bool, int]:
        processed = 0
        for message in batch:
            body = message.message
            if not isinstance(body, dict) or not isinstance(body.get("run"), str):
                continue  # not ours: nothing else writes here, but never crash on it
            if body.get("done") is True:
                return True, processed
            number, name, size = body.get("number"), body.get("file"), body.get("size")
            if isinstance(number, int) and isinstance(name, str) and isinstance(size, int):
                processed += await self._process(
                    body["run"], number, name, size, consumer, callback
                )
        return False, processed

    async def _process(
        self,
        run: str,
        number: int,
        name: str,
        size: int,
        consumer: int,
        callback: FileCallback,
    ) -> int:
        """Process one announced file unless this consumer (or everyone) finished it already."""
        finished = self._finished_key(number)
        peek = [self._run_key, self._sizes_key, finished]
        if not int(await script("files_peek")(self.redis, peek, [run, number, consumer])):
            return 0  # finished already: an announcement sent twice, or read again
        key = self.file_key(number)
        file = SentFile(self.channel, run, number, name, size, consumer, key)
        blocks = (readblocks_gz if name.endswith(".gz") else readblocks)(
            self.redis, key, block_size=self.block_size, size=size
        )
        async with contextlib.aclosing(blocks), contextlib.aclosing(readlines(blocks)) as lines:
            async for line in lines:
                await _call(callback, file, line)
        await _call(callback, file, None)
        keys = [self._run_key, self._sizes_key, self.keys[3], self._signal_key]
        await shielded(
            script("files_finish")(self.redis, [*keys, key, finished], [run, number, consumer])
        )
        return 1

    # -- reading state -----------------------------------------------------------------------

    async def held(self) -> int:
        """How many bytes of files the channel holds (reserved) right now."""
        value = await self.redis.get(self.keys[3])
        return 0 if value is None else int(value)

    async def pending(self) -> dict[str, int]:
        """The files held in Redis right now (not yet finished by every consumer), by size."""
        names = {text(v): text(k) for k, v in (await self.redis.hgetall(self._names_key)).items()}
        sizes = await self.redis.hgetall(self._sizes_key)
        return {names.get(text(n), text(n)): int(s) for n, s in sizes.items()}


# -- the book's example: lines per country and day --------------------------------------------


class _Locations(Protocol):
    async def find(self, ip: str) -> Any: ...


class DailyCountryAggregate:
    """A :meth:`FileDistribution.consume` callback counting lines per country and day.

    Redis in Action §6.6.2 ``daily_country_aggregate``: a line starts with an IP address and
    a day (``"1.2.3.4 2024-05-01 ..."``); the country comes from ``locations``, an
    :class:`~aiorpatterns.IpLocations` (anything whose async ``find(ip)`` returns an object
    with a ``country``, or None). A file's counts are gathered in memory and added to the
    ZSETs ``daily:country:<day>`` (country -> lines) at the file's end, in one step that also
    writes a receipt under the file's :attr:`SentFile.id`: a file read again after a crash is
    not counted again. Lines without an address and a day, or whose address has no city, are
    skipped and counted in :attr:`skipped`.
    """

    kind = "daily"

    def __init__(
        self,
        redis: AsyncRedis,
        locations: _Locations,
        *,
        receipt_ttl: float = RECEIPT_TTL,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        if not callable(getattr(locations, "find", None)):
            raise TypeError(
                "locations must have an async find(ip), such as an IpLocations, "
                f"not {type(locations).__name__}"
            )
        self.locations = locations
        self.receipt_ttl = check_seconds(receipt_ttl, "receipt_ttl")
        self.keyspace = check_keyspace(keyspace)
        self.skipped = 0
        # Per consumer: the delivery being read and its counts (one file at a time each).
        self._open: dict[tuple[str, int], tuple[SentFile, defaultdict[str, Counter[str]]]] = {}
        self._countries: dict[str, str | None] = {}

    def key(self, day: str) -> str:
        """The ZSET of the lines of ``day`` per country."""
        return self.keyspace.key(self.kind, "country", check_name(day, "day"))

    async def counts(self, day: str) -> dict[str, int]:
        """Return the lines of ``day`` per country."""
        pairs: Any = await self.redis.zrange(self.key(day), 0, -1, withscores=True)
        return {text(country): int(lines) for country, lines in pairs}

    async def __call__(self, file: SentFile, line: bytes | None) -> None:
        where = (file.channel, file.consumer)
        entry = self._open.get(where)
        if entry is None or entry[0] is not file:
            # A new delivery (or a replay after a cancel): whatever the last one gathered is
            # dropped, it was never added.
            entry = self._open[where] = (file, defaultdict(Counter))
        if line is not None:
            await self._count(line, entry[1])
            return
        del self._open[where]
        await self._add(file, entry[1])

    async def _count(self, line: bytes, days: defaultdict[str, Counter[str]]) -> None:
        fields = line.split()
        if len(fields) < 2:
            self.skipped += 1
            return
        ip, day = fields[0].decode(errors="replace"), fields[1].decode(errors="replace")
        if "}" in day:
            self.skipped += 1
            return
        if ip not in self._countries:
            try:
                city = await self.locations.find(ip)
            except ValueError:  # not an address
                city = None
            if len(self._countries) >= 65_536:
                self._countries.clear()  # a bound, not an LRU: lookups are cheap to redo
            self._countries[ip] = None if city is None else str(city.country)
        country = self._countries[ip]
        if country is None:
            self.skipped += 1
            return
        days[day][country] += 1

    async def _add(self, file: SentFile, days: defaultdict[str, Counter[str]]) -> None:
        digest = hashlib.sha1(f"{file.channel}\0{file.id}".encode()).hexdigest()
        receipt = self.keyspace.key(self.kind, "country", "added", digest)
        order = sorted(days)
        if not order:
            return  # nothing counted: nothing to add, no receipt needed
        keys = [receipt, *(self.key(day) for day in order)]
        args: list[Any] = [to_ms(self.receipt_ttl)]
        args += [json.dumps(sorted(days[day].items())) for day in order]
        await shielded(script("files_country_add")(self.redis, keys, args))
