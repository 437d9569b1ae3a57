"""Log to Redis: a capped list of recent messages and hourly counts of the common ones.

Redis in Action §5.1 keeps two logs per name and severity. The recent log (§5.1.1,
``log_recent``) is a LIST of the last 100 messages, newest first, each prefixed with the time it
was logged. The common log (§5.1.2, ``log_common``) is a ZSET counting how often each message
was logged this hour; when the hour changes, the ZSET is renamed to ``last`` and a new hour
starts. The book stamps entries with each client's local clock and rotates under WATCH: two
machines whose clocks disagree log into different hours, a rotation races the writers of the
new hour, a RENAME of a missing ZSET fails inside EXEC after the other commands ran, and a
writer gives up silently after 5 s of retries. Here every write is one Lua script that reads the
server's clock, so :class:`RecentLog` and :class:`CommonLog` agree on the time across machines,
exactly one writer rotates a period, and nothing is retried or dropped. Every write carries a
token made once per call, and its script keeps its reply under it (a receipt): a client retry
that re-sends it after a lost reply logs and counts nothing more and answers the same.

Keys (``name`` is the log's name; ``<severity>`` one of :data:`SEVERITIES`):
``<prefix>:log:{<name>}:recent:<severity>`` (LIST), ``…:common:<severity>`` (ZSET),
``…:start:<severity>``, ``…:last:<severity>`` and ``…:pstart:<severity>``. Every key of one log
shares the hash tag ``{<name>}``, so the common log's script, which also writes the recent log,
runs unchanged on Redis Cluster (each log on one node; use several names to spread logs).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from ..core.checks import MAX_SECONDS, AsyncRedis, check_count, check_int, check_object, text
from ..core.keys import DEFAULT_KEYSPACE, Keyspace
from ..core.scripts import script

__all__ = ["SEVERITIES", "CommonLog", "CommonMessages", "LogEntry", "RecentLog"]

#: The severities a log keeps apart, as the book names them.
SEVERITIES = ("debug", "info", "warning", "error", "critical")
#: How many entries a recent log keeps (the book's 100).
RECENT = 100
#: The common log's period in seconds: the book's hour.
HOUR = 3600
#: The most entries a recent log keeps: LTRIM's stop is computed in Lua, exact up to 2**53.
MAX_KEEP = 2**32

_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}


def severity_name(severity: object) -> str:
    """Return the severity's name: one of :data:`SEVERITIES` or a ``logging`` level number.

    Redis in Action §5.1.1 (``SEVERITY``); unlike the book, anything else is refused
    (``ValueError``), rather than becoming a key of its own.
    """
    if isinstance(severity, bool):
        raise TypeError("severity must be a str or a logging level, not bool")
    if isinstance(severity, int):
        name = _LEVELS.get(severity)
        if name is None:
            raise ValueError(f"severity must be a logging level in {sorted(_LEVELS)}: {severity}")
        return name
    if not isinstance(severity, str):
        raise TypeError(f"severity must be a str or an int, not {type(severity).__name__}")
    name = severity.lower()
    if name not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}: {severity!r}")
    return name


def _message(message: object) -> str:
    if not isinstance(message, str):
        raise TypeError(f"message must be a str, not {type(message).__name__}")
    if not message:
        raise ValueError("message must not be empty")
    return message


def _period(value: object) -> int:
    return check_int(value, "period", minimum=1, maximum=MAX_SECONDS)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One message of a recent log and when it was logged (server clock, Unix seconds)."""

    at: float
    message: str


@dataclass(frozen=True, slots=True)
class CommonMessages:
    """The messages of one period of a common log, most common first, and the period's start.

    ``start`` is Unix seconds (server clock), a multiple of the period: the hour's start for the
    book's hourly log. ``counts`` ties are ordered by message, descending, as Redis ranks them.
    """

    start: float
    counts: list[tuple[str, int]]


def _entry(raw: bytes | str) -> LogEntry:
    stamp, _, message = text(raw).partition(" ")
    return LogEntry(at=float(stamp), message=message)


class _Log:
    """What the two logs share: the client, the name, the keyspace and the recent-log keys."""

    kind = "log"

    def __init__(self, redis: AsyncRedis, name: str, *, keep: int, keyspace: Keyspace) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        self.keep = check_int(keep, "keep", minimum=1, maximum=MAX_KEEP)

    def _key(self, part: str, severity: object) -> str:
        return self.keyspace.key(self.kind, self.name, part, severity_name(severity))

    def recent_key(self, severity: str | int = "info") -> str:
        """The LIST of recent ``severity`` messages."""
        return self._key("recent", severity)

    async def recent(
        self, *, severity: str | int = "info", count: int | None = None
    ) -> list[LogEntry]:
        """Return the newest ``count`` (default: all kept) ``severity`` messages, newest first.

        Redis in Action §5.1.1: the book reads the list with LRANGE.
        """
        key = self.recent_key(severity)
        stop = -1 if count is None else check_count(count, "count") - 1
        return [_entry(raw) for raw in await self.redis.lrange(key, 0, stop)]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.keyspace.tag(self.kind, self.name)!r}>"


class RecentLog(_Log):
    """A log named ``name`` keeping the ``keep`` newest messages per severity (§5.1.1).

    The client is the caller's (a ``Redis``, a ``RedisCluster`` or an ``AutoPipeline``) and is
    never closed here. Results are plain ``str`` and ``float`` whatever ``decode_responses``.
    """

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        keep: int = RECENT,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        super().__init__(redis, name, keep=keep, keyspace=keyspace)

    async def log(self, message: str, *, severity: str | int = "info") -> float:
        """Log ``message`` and return when it was logged (server clock, Unix seconds).

        One atomic round trip: LPUSH then LTRIM, stamped in Redis. Redis in Action §5.1.1
        (``log_recent``), which stamps with the client's ``time.asctime()``.
        """
        key = self.recent_key(severity)
        args = [_message(message), self.keep, uuid.uuid4().hex]
        return float(text(await script("log_recent")(self.redis, [key], args)))


class CommonLog(_Log):
    """A log named ``name`` counting each message per ``period`` (Redis in Action §5.1.2).

    Every message also goes to the recent log of the same name (as in the book), readable here
    with :meth:`recent` or through a :class:`RecentLog` of the same name. ``period`` is in whole
    seconds, the book's hour by default; periods start at multiples of it since the Unix epoch
    (UTC hours), by the server's clock. The previous period is kept; older ones are dropped.
    """

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        keep: int = RECENT,
        period: int = HOUR,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        super().__init__(redis, name, keep=keep, keyspace=keyspace)
        self.period = _period(period)

    def common_key(self, severity: str | int = "info") -> str:
        """The ZSET counting this period's ``severity`` messages."""
        return self._key("common", severity)

    def _keys(self, severity: object) -> list[str]:
        return [self._key(part, severity) for part in ("common", "start", "last", "pstart")]

    async def log(self, message: str, *, severity: str | int = "info") -> int:
        """Log ``message`` and return how often it was logged in the current period.

        One atomic round trip by the server's clock: start a new period if the stored one is
        over (the old counts become the previous period), count the message, add it to the
        recent log. Redis in Action §5.1.2 (``log_common``), without its WATCH retries.
        """
        keys = [*self._keys(severity), self.recent_key(severity)]
        args = [_message(message), self.keep, self.period, uuid.uuid4().hex]
        count, _ = await script("log_common")(self.redis, keys, args)
        return int(count)

    async def current(
        self, *, severity: str | int = "info", count: int | None = None
    ) -> CommonMessages:
        """Return the ``count`` (default: all) most common messages of the current period.

        A period that ended without a write since reads as empty, and as :meth:`previous`.
        Redis in Action §5.1.2.
        """
        found = await self._read("current", severity, count)
        assert found is not None  # the current period always exists
        return found

    async def previous(
        self, *, severity: str | int = "info", count: int | None = None
    ) -> CommonMessages | None:
        """Return the most common messages of the previous period with a write, or None.

        The book's ``…:last`` ZSET and ``…:pstart`` key; ``start`` says which period it was,
        which need not be the one right before the current one if nothing was logged between.
        """
        return await self._read("previous", severity, count)

    async def _read(self, which: str, severity: object, count: int | None) -> CommonMessages | None:
        keys = self._keys(severity)
        stop = -1 if count is None else check_count(count, "count") - 1
        label, items = await script("log_common_read")(self.redis, keys, [which, stop, self.period])
        if label is None:
            return None
        pairs = [(text(items[i]), int(float(items[i + 1]))) for i in range(0, len(items), 2)]
        return CommonMessages(start=float(text(label)), counts=pairs)
