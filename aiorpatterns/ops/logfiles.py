"""Process the log files of a directory line by line, resuming exactly where a crash stopped.

Redis in Action §4.3.2 (``process_logs``) walks the files of a directory in name order, hands each
line to a callback that queues commands on a pipeline, and every 1,000 lines runs those commands
and an ``MSET`` of its progress (file name, byte offset) in one ``MULTI``: after a crash it
resumes from the last batch whose effects it committed, so each line counts exactly once. Its
two progress keys are cross-slot on a cluster, and under Python 3 its first comparison is
``str < None`` (a ``TypeError`` on the very first run).

:class:`LogProcessor` keeps that guarantee. With ``atomic=True`` (the default) a batch's
callback commands and the progress ``HSET`` run in one ``MULTI``/``EXEC``. On Redis Cluster a
transaction lives on one node, so the callback's keys must share the processor's hash tag: use
:meth:`LogProcessor.key`, or put ``{<name>}`` in your key names; a callback that touches another
slot makes the batch fail with redis-py's ``CrossSlotTransactionError``, before anything is
written. Callbacks whose keys live elsewhere use ``atomic=False``: the batch runs as a plain
pipeline, *then* the progress moves (a compare-and-set script), so a crash in between replays
the batch: at-least-once. Progress is a HASH (``file``, ``offset``), one key, any topology.

Run one processor per name at a time. Both modes notice a second one when the progress moves
under them (the atomic mode WATCHes it, the at-least-once mode compares and sets it) and raise
:class:`ProgressConflictError`.

Files: every regular file matching ``pattern`` whose name sorts at or after the recorded file,
in name order, so names must sort in the order they were written (dates, sequence numbers).
``.gz`` files are read decompressed; offsets count decompressed bytes. A file can grow: a
trailing line without its newline is left for the next pass unless the file is complete (a
``.gz`` file, or not the newest file). A recorded file that has disappeared (rotated away)
resumes at the next name; a file now shorter than its recorded offset was replaced
(``copytruncate``) and is read again from the start.

Retry safety: redis-py re-sends a MULTI whose reply was lost, which would apply a batch twice;
the atomic mode's MULTI runs under WATCH of the progress, so redis-py refuses to re-send it,
and the progress then tells whether the batch ran (it is at the batch's end) or not (tried
again). The at-least-once mode's compare-and-set records a token made once per move beside the
position, so a re-sent move finds its own effect and answers "moved" rather than a false
:class:`ProgressConflictError`.

Keys: ``<prefix>:logfiles:{<name>}:progress`` (HASH), and whatever the callback writes.
"""

from __future__ import annotations

import asyncio
import fnmatch
import gzip
import inspect
import io
import logging
import os
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from ..core.cancellation import cancelling, honour_cancel
from ..core.checks import (
    AsyncRedis,
    check_callable,
    check_client,
    check_count,
    check_flag,
    check_keyspace,
    check_seconds,
    text,
)
from ..core.errors import ProgressConflictError
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script

__all__ = ["LogProcessor", "LogProgress", "process_logs"]

logger = logging.getLogger(__name__)

#: The callback: given the pipeline of the batch and one raw line (bytes, newline included),
#: queue commands on the pipeline (never execute it). May be a plain function or a coroutine.
#: A batch whose commit was interrupted before it ran is queued again, calling it again.
LineCallback = Callable[[Any, bytes], Awaitable[object] | object]

#: Lines per batch, as in the book.
BATCH = 1000
#: Times a batch whose commit was interrupted before it ran is tried again.
_COMMIT_TRIES = 3


@dataclass(frozen=True, slots=True)
class LogProgress:
    """How far processing got: the file being read and the bytes of it already processed."""

    file: str
    offset: int


def _open(path: Path, gz: bool) -> io.BufferedIOBase:
    if gz:
        return gzip.open(path, "rb")
    return path.open("rb")


class _Reader:
    """One open log file, read in batches from a worker thread (file I/O would block the loop).

    A cancelled caller stops awaiting while the thread may still read: the lock makes ``close``
    wait for that read instead of closing the file under it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.gz = path.name.endswith(".gz")
        self.file: io.BufferedIOBase | None = None
        self.lock = threading.Lock()

    def open(self, offset: int) -> int:
        """Open and seek to ``offset``; return the offset reading really starts at."""
        with self.lock:
            # Closed by close(), from another call: no with-block can span the batches.
            opened = _open(self.path, self.gz)
            self.file = opened
            if not self.gz and os.fstat(opened.fileno()).st_size < offset:
                logger.warning(
                    "%s is shorter than its recorded offset: reading it again", self.path
                )
                offset = 0
            opened.seek(offset)
            return offset

    def read(self, count: int, complete: bool) -> tuple[list[bytes], bool]:
        """Up to ``count`` whole lines, and whether the end of the file was reached."""
        with self.lock:
            assert self.file is not None
            lines: list[bytes] = []
            while len(lines) < count:
                line = self.file.readline()
                if not line.endswith(b"\n"):
                    if line and complete:
                        lines.append(line)
                    return lines, True  # a partial last line of a growing file waits
                lines.append(line)
            return lines, False

    def close(self) -> None:
        with self.lock:
            if self.file is not None:
                self.file.close()
                self.file = None


def _parse_progress(reply: list[Any]) -> LogProgress | None:
    raw_file, raw_offset = reply
    if raw_file is None:
        return None
    try:
        offset = int(text(raw_offset)) if raw_offset is not None else 0
    except ValueError:
        raise ValueError(f"the recorded log offset is not a number: {raw_offset!r}") from None
    if offset < 0:
        raise ValueError(f"the recorded log offset is negative: {offset}")
    return LogProgress(text(raw_file), offset)


class LogProcessor:
    """Feed each line of the logs in ``directory`` to ``callback`` once (Redis in Action §4.3.2).

    ``name`` names the processor (its progress key and hash tag); ``batch`` is how many lines
    share one commit; ``atomic`` picks exactly-once (one ``MULTI`` per batch, callback keys in
    the processor's hash tag) or at-least-once (any keys). ``pattern`` filters file names
    (``fnmatch``). The client is the caller's and is never closed here.
    """

    kind = "logfiles"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "logs",
        *,
        directory: str | os.PathLike[str],
        callback: LineCallback,
        batch: int = BATCH,
        atomic: bool = True,
        pattern: str = "*",
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        if not isinstance(directory, str | os.PathLike):
            raise TypeError(f"directory must be a str or a path, not {type(directory).__name__}")
        check_callable(callback, "callback")
        if not isinstance(pattern, str) or not pattern:
            raise TypeError("pattern must be a non-empty str")
        check_keyspace(keyspace)
        self.name = name
        self.directory = Path(directory)
        self.callback = callback
        self.batch = check_count(batch, "batch")
        self.atomic = check_flag(atomic, "atomic")
        self.pattern = pattern
        self.keyspace = keyspace
        self.progress_key = keyspace.key(self.kind, name, "progress")

    def key(self, *parts: str) -> str:
        """A key in the processor's hash tag, for the callback's writes on Redis Cluster."""
        if not parts:
            raise ValueError("key needs at least one part")
        return self.keyspace.key(self.kind, self.name, *parts)

    async def progress(self) -> LogProgress | None:
        """Where the next pass starts (None before the first committed batch)."""
        reply = await self.redis.hmget(self.progress_key, ["file", "offset"])
        return _parse_progress(list(reply))

    async def reset(self) -> None:
        """Forget the progress: the next pass starts at the first file again."""
        await self.redis.delete(self.progress_key)

    def _listing(self) -> list[str]:
        if not self.directory.is_dir():
            raise ValueError(f"directory {str(self.directory)!r} is not a directory")
        names = []
        for entry in os.scandir(self.directory):
            if entry.is_file() and fnmatch.fnmatchcase(entry.name, self.pattern):
                names.append(entry.name)
        return sorted(names)

    async def process(self) -> int:
        """Process every complete line not processed yet; return how many were.

        Safe to cancel or kill at any point: the next pass resumes after the last committed
        batch. A callback that raises ends the pass with its exception, its batch uncommitted.
        Redis in Action §4.3.2 (``process_logs``).
        """
        task, before = cancelling()
        names = await asyncio.to_thread(self._listing)
        start = await self.progress()
        expected = start
        processed = 0
        for position, name in enumerate(names):
            if start is not None and name < start.file:
                continue
            offset = start.offset if start is not None and name == start.file else 0
            complete = name.endswith(".gz") or position < len(names) - 1
            reader = _Reader(self.directory / name)
            try:
                offset = await asyncio.to_thread(reader.open, offset)
                while True:
                    lines, ended = await asyncio.to_thread(reader.read, self.batch, complete)
                    if lines:
                        reached = LogProgress(name, offset + sum(map(len, lines)))
                        await self._commit(lines, expected, reached)
                        honour_cancel(task, before)
                        expected, offset = reached, reached.offset
                        processed += len(lines)
                    if ended:
                        break
            finally:
                reader.close()
        return processed

    async def follow(self, *, interval: float = 1.0) -> None:
        """Process new lines for ever, looking for more every ``interval`` seconds (cancel to stop).

        Files give no signal when they grow, so this is the one place that polls.
        """
        pause = check_seconds(interval, "interval")
        assert pause is not None
        while True:
            await self.process()
            await asyncio.sleep(pause)

    async def _run_callback(self, pipe: Any, lines: list[bytes]) -> None:
        for line in lines:
            outcome = self.callback(pipe, line)
            if inspect.isawaitable(outcome):
                await outcome

    def _conflict(self) -> ProgressConflictError:
        return ProgressConflictError(
            f"the progress of log processor {self.name!r} moved under it: "
            "another processor with the same name is running"
        )

    async def _commit(
        self, lines: list[bytes], expected: LogProgress | None, reached: LogProgress
    ) -> None:
        if self.atomic:
            await self._commit_atomic(lines, expected, reached)
            return
        await self._commit_then_advance(lines, expected, reached)

    async def _commit_atomic(
        self, lines: list[bytes], expected: LogProgress | None, reached: LogProgress
    ) -> None:
        """Run the batch and move the progress in one MULTI, exactly once.

        redis-py re-sends a transaction whose reply was lost (its ``Retry``; the cluster client
        too), which would apply the batch twice. Under WATCH of the progress it refuses to
        (``WatchError``), and the progress itself then tells whether the EXEC ran: at
        ``reached`` it did, at ``expected`` it did not and the batch is tried again.
        """
        progress: dict[Any, Any] = {"file": reached.file, "offset": reached.offset}
        for attempt in range(1, _COMMIT_TRIES + 1):
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(self.progress_key)
                    found = await pipe.hmget(self.progress_key, ["file", "offset"])
                    if _parse_progress(list(found)) != expected:
                        raise self._conflict()
                    pipe.multi()
                    await self._run_callback(pipe, lines)
                    pipe.hset(self.progress_key, mapping=progress)
                    await pipe.execute()
                return
            except (WatchError, RedisConnectionError, RedisTimeoutError):
                # Did the EXEC run? The progress says so (this read may fail in turn: then the
                # server is unreachable and the error is the caller's, the batch uncommitted
                # or committed as the progress will tell the next pass).
                now = await self.progress()
                if now == reached:
                    return
                if now != expected:
                    raise self._conflict() from None
                if attempt == _COMMIT_TRIES:
                    raise  # interrupted every time before it ran: nothing committed

    async def _commit_then_advance(
        self, lines: list[bytes], expected: LogProgress | None, reached: LogProgress
    ) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            await self._run_callback(pipe, lines)
            if len(pipe):
                await pipe.execute()
        was = [expected.file, expected.offset] if expected is not None else ["", 0]
        args = [*was, reached.file, reached.offset, uuid.uuid4().hex]
        moved = await script("logfiles_advance")(self.redis, [self.progress_key], args)
        if not int(moved):
            raise self._conflict()


async def process_logs(
    redis: AsyncRedis,
    directory: str | os.PathLike[str],
    callback: LineCallback,
    *,
    name: str = "logs",
    batch: int = BATCH,
    atomic: bool = True,
) -> int:
    """Process the new lines of the logs in ``directory`` once; return how many were processed.

    A one-call form of :class:`LogProcessor`. Redis in Action §4.3.2 (``process_logs``).
    """
    processor = LogProcessor(
        redis, name, directory=directory, callback=callback, batch=batch, atomic=atomic
    )
    return await processor.process()
