"""Count the unique visitors of each day, exactly in sharded SETs or approximately in a HyperLogLog.

Redis in Action §9.2.2 turns each session UUID into a 56-bit id (its first 15 hex digits: 60 bits,
one of them the fixed UUID version nibble), adds it to one of the day's small SETs (``shard_sadd``,
sharded so each stays an intset) and, when it is new, increments the day's counter. The number of
shards follows the day's expected visitor count (``get_expected``: yesterday's count plus 50%,
rounded up to a power of two), which every process must agree on.

:class:`UniqueVisitors` fixes what the book leaves open (also in its sharded-server variant,
whose ``get_expected`` is a stub): SADD and INCR run in one Lua step, so a
crash between them no longer undercounts; the day's expected count is stored in Redis inside that
same step (set if absent, like SET NX), so processes agree, and a process keeps only the last two
days in memory, checked by the script on every call (a FLUSHDB or a rival's value is noticed at
once, not cached for ever); every key of a day expires ``retention`` seconds after it is created;
and all keys of one day share one hash tag, so the script runs unchanged on Redis Cluster.

``mode="approximate"`` keeps one HyperLogLog per day instead (PFADD/PFCOUNT): 12 KiB per day
whatever the traffic, with a standard error of 0.81% (:data:`HLL_STANDARD_ERROR`; within about
2.5% almost always). Its "new visitor" answer is PFADD's "estimate changed", itself approximate.

Retry safety: SADD and PFADD count an id once however often a call is re-sent; a call that
found a new visitor also keeps that answer under a token made once per call (a receipt,
``…:count:<token>`` or ``…:hll:<token>``, two minutes, about 100 bytes), so a re-sent call still
answers "new". Repeat visits write no receipt; approximate mode holds its 12 KiB per day plus
the receipts of the last two minutes' new visitors.

**Shards on several servers** (Redis in Action §10.3.2): with ``servers=`` (a list of clients,
or a :class:`aiorpatterns.scaling.shards.ShardedClients`), each SET shard lives on the server
its key's CRC-32 picks, and the counter and expected count on ``redis`` (the book's ``unique``
server). No step spans two servers, so the book's SADD-then-INCR becomes: the SADD on the
shard's server answers the shard's new size, and the counter server takes that size as the
shard's share of the count (``…:sizes``, a HASH shard -> size; the count moves by the rise). A
size reported twice, late or out of order changes nothing, so a retry never overcounts; a
visit interrupted between the two servers is counted by the shard's next new visitor, or by
:meth:`UniqueVisitors.sync`. A repeat visit is one round trip, a new one two.

Keys, for day ``D`` (ISO ``YYYY-MM-DD``, UTC by default): ``<prefix>:unique:{<name>:D}:count``
(STRING), ``…:expected`` (STRING), ``…:shard:<n>`` (SET of ids), with ``servers=`` ``…:sizes``
(HASH) and, approximate, ``…:hll``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Iterable
from typing import Literal

from ..core.checks import AsyncRedis, check_client, check_count, check_keyspace, check_seconds, text
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from .sharding import shard_of

__all__ = ["HLL_STANDARD_ERROR", "UniqueVisitors", "expected_size", "visitor_id"]

Mode = Literal["exact", "approximate"]

#: Relative standard error of a Redis HyperLogLog (16384 registers): 1.04 / sqrt(16384).
HLL_STANDARD_ERROR = 0.0081
#: The book's DAILY_EXPECTED: the expected count of a day that has no yesterday.
DAILY_EXPECTED = 1_000_000
#: The book's SHARD_SIZE: ids per SET shard that keep it in the compact intset encoding.
SHARD_SIZE = 512
#: Default retention of a day's keys: a week, plus a day so yesterday's count is still there.
RETENTION = 8 * 86400.0
_DAYS_CACHED = 2


def visitor_id(session_id: str | uuid.UUID) -> int:
    """Return the 60-bit visitor id of a session: the first 15 hex digits of its UUID.

    Redis in Action §9.2.2 (``count_visit``). For a random (version 4) UUID 56 of those bits are
    random. A session id that is not a UUID is hashed (BLAKE2b) to 60 bits instead.
    """
    if isinstance(session_id, uuid.UUID):
        return session_id.int >> 68
    if not isinstance(session_id, str):
        raise TypeError(f"session_id must be a str or UUID, not {type(session_id).__name__}")
    if not session_id:
        raise ValueError("session_id must not be empty")
    try:
        return uuid.UUID(session_id).int >> 68
    except ValueError:
        digest = hashlib.blake2b(session_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") >> 4


def expected_size(yesterday: int | None, default: int = DAILY_EXPECTED) -> int:
    """Return a day's expected visitor count: 1.5 x yesterday's, rounded up to a power of two.

    Redis in Action §9.2.2 (``get_expected``); ``default`` stands in for a missing or zero count
    (the book would take the log of 0). Integer arithmetic, so no float rounding at powers of two.
    """
    base = check_count(default, "default") if not yesterday else check_count(yesterday, "yesterday")
    return 1 << (-(-3 * base // 2) - 1).bit_length()


def _day(value: object) -> str:
    if value is None:
        return dt.datetime.now(dt.UTC).date().isoformat()
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise TypeError(f"day must be a date, an ISO date str or None, not {type(value).__name__}")
    try:
        if len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"day must be an ISO date 'YYYY-MM-DD', got {value!r}") from None


def _servers(servers: object) -> tuple[AsyncRedis, ...]:
    if servers is None:
        return ()
    if isinstance(servers, str | bytes) or not isinstance(servers, Iterable):
        raise TypeError("servers must be None or a sequence of redis.asyncio clients")
    found = tuple(check_client(client) for client in servers)
    if not found:
        raise ValueError("servers must hold at least one client (or be None)")
    return found


class UniqueVisitors:
    """Daily unique-visitor counts named ``name`` (Redis in Action §9.2.2, §10.3.2).

    ``mode="exact"`` keeps sharded SETs of visitor ids (``shard_size`` ids per shard on average
    half of it, sized from the day's expected count; ``expected`` is the book's DAILY_EXPECTED,
    used when yesterday has no count); ``mode="approximate"`` keeps one HyperLogLog per day.
    Every key of a day expires ``retention`` seconds after its creation. Days are UTC dates.
    With ``servers=`` the SET shards live on those servers and the counter on ``redis``
    (Redis in Action §10.3.2; see the module docstring).
    """

    kind = "unique"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "visitors",
        *,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
        expected: int = DAILY_EXPECTED,
        mode: Mode = "exact",
        shard_size: int = SHARD_SIZE,
        retention: float = RETENTION,
        servers: Iterable[AsyncRedis] | None = None,
    ) -> None:
        check_name(name)
        check_keyspace(keyspace)
        if not isinstance(mode, str):
            raise TypeError(f"mode must be a str, not {type(mode).__name__}")
        if mode not in ("exact", "approximate"):
            raise ValueError(f"mode must be 'exact' or 'approximate', got {mode!r}")
        self.redis = check_client(redis)
        self.name = name
        self.keyspace = keyspace
        self.mode: Mode = mode
        self.expected = check_count(expected, "expected")
        self.shard_size = check_count(shard_size, "shard_size")
        self.retention = math.ceil(check_seconds(retention, "retention") or 0)
        self.servers = _servers(servers)
        if self.servers and mode != "exact":
            raise ValueError("servers= spreads the SET shards of mode='exact'; drop one of them")
        self._expected: dict[str, int] = {}

    def _key(self, day: str, part: str) -> str:
        return self.keyspace.key(self.kind, f"{self.name}:{day}", part)

    def count_key(self, day: dt.date | str | None = None) -> str:
        """The STRING holding the exact count of ``day`` (default: today, UTC)."""
        return self._key(_day(day), "count")

    def expected_key(self, day: dt.date | str | None = None) -> str:
        """The STRING holding the expected count of ``day``, which fixes its shards."""
        return self._key(_day(day), "expected")

    def hll_key(self, day: dt.date | str | None = None) -> str:
        """The HyperLogLog of ``day`` (approximate mode)."""
        return self._key(_day(day), "hll")

    def shards(self, expected: int) -> int:
        """The number of SET shards of a day whose expected count is ``expected``."""
        return max(1, -(-2 * check_count(expected, "expected") // self.shard_size))

    def sizes_key(self, day: dt.date | str | None = None) -> str:
        """The HASH (shard number -> size) behind the count of ``day`` with ``servers=``."""
        return self._key(_day(day), "sizes")

    def shard_key(self, day: dt.date | str | None, visitor: int, expected: int) -> str:
        """The SET shard holding the 60-bit id ``visitor`` on ``day``."""
        shard = shard_of(f"x{visitor}", shards=self.shards(expected))
        return self._key(_day(day), f"shard:{shard}")

    def server_for(self, shard_key: str) -> AsyncRedis:
        """The client of the server holding ``shard_key`` (``redis`` without ``servers=``).

        Redis in Action §10.3.2 (``get_sharded_connection('unique', shard_key, ...)``).
        """
        if not self.servers:
            return self.redis
        return self.servers[shard_of(shard_key, shards=len(self.servers))]

    async def count_visit(
        self, session_id: str | uuid.UUID, day: dt.date | str | None = None
    ) -> bool:
        """Count a visit of ``session_id`` on ``day`` (default: today, UTC); True if it is new.

        One atomic script call (after a first look at the day's expected count). Redis in
        Action §9.2.2 (``count_visit``). In approximate mode True means the estimate moved.
        """
        visitor, iso = visitor_id(session_id), _day(day)
        token = uuid.uuid4().hex  # this visit's receipt, the same for a retried call
        if self.mode == "approximate":
            args = [visitor, self.retention, token]
            reply = await script("visitors_estimate")(self.redis, [self._key(iso, "hll")], args)
            return bool(int(reply))
        expected = self._expected.get(iso)
        if expected is None:
            expected = await self._derive_expected(iso)
        if self.servers:
            return await self._count_on_servers(iso, visitor, expected, token)
        add = script("visitors_add")
        while True:
            keys = [
                self._key(iso, "count"),
                self._key(iso, "expected"),
                self.shard_key(iso, visitor, expected),
            ]
            args = [visitor, expected, self.retention, token]
            code, stored = await add(self.redis, keys, args)
            if int(code) >= 0:
                self._remember(iso, expected)
                return bool(int(code))
            # Another process fixed the day's size first: its value wins, choose the shard again.
            expected = int(text(stored))
            self._remember(iso, expected)

    async def _count_on_servers(self, iso: str, visitor: int, expected: int, token: str) -> bool:
        """The visit with shards on ``servers``: SADD there, then the shard's size here."""
        while True:
            shard = self.shard_key(iso, visitor, expected)
            args = [visitor, self.retention, token]
            new, size = await script("visitors_shard_add")(self.server_for(shard), [shard], args)
            if not int(new):
                return False
            stored = await self._report(iso, expected, shard, int(size))
            if stored is None:
                self._remember(iso, expected)
                return True
            # The counter server holds another day size (a flush, a rival): the shard moves.
            expected = stored
            self._remember(iso, expected)

    async def _report(self, iso: str, expected: int, shard: str, size: int) -> int | None:
        """Give the counter server a shard's size; the stored expected count if it differs."""
        keys = [self._key(iso, "count"), self._key(iso, "expected"), self._key(iso, "sizes")]
        number = shard.rsplit(":", 1)[1]
        args = [number, size, expected, self.retention]
        code, stored = await script("visitors_total")(self.redis, keys, args)
        return None if int(code) >= 0 else int(text(stored))

    async def sync(self, day: dt.date | str | None = None) -> int:
        """Report every SET shard's size of ``day`` to the counter; return the day's count.

        With ``servers=``, a visit cut off between the shard's server and the counter's (a
        crash, a cancel) is counted by the next new visitor of its shard; this counts it now,
        for a day whose visits are over. One ``SCARD`` per shard. Without ``servers=`` the
        count is always whole and this only reads it.
        """
        iso = _day(day)
        stored = await self.redis.get(self._key(iso, "expected"))
        if not self.servers or stored is None:
            return await self.count(iso)
        expected = int(text(stored))
        by_server: dict[int, list[str]] = {}
        for n in range(self.shards(expected)):
            key = self._key(iso, f"shard:{n}")
            by_server.setdefault(shard_of(key, shards=len(self.servers)), []).append(key)
        for server, keys in by_server.items():
            async with self.servers[server].pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.scard(key)
                sizes = await pipe.execute()
            for key, size in zip(keys, sizes, strict=True):
                if size and await self._report(iso, expected, key, int(size)) is not None:
                    raise RuntimeError(f"the expected count of {iso} changed during sync")
        return await self.count(iso)

    async def _derive_expected(self, iso: str) -> int:
        """The day's stored expected count, else derived from yesterday's (``get_expected``)."""
        stored = await self.redis.get(self._key(iso, "expected"))
        if stored is not None:
            return int(text(stored))
        yesterday = (dt.date.fromisoformat(iso) - dt.timedelta(days=1)).isoformat()
        previous = await self.redis.get(self._key(yesterday, "count"))
        derived = expected_size(None if previous is None else int(text(previous)), self.expected)
        if not self.servers:
            return derived  # agreed on by the visit's own script
        # The shards are on other servers: agree on the day's size before the first SADD.
        key = self._key(iso, "expected")
        old = await self.redis.set(key, derived, nx=True, get=True, ex=self.retention)
        return derived if old is None else int(text(old))

    def _remember(self, iso: str, expected: int) -> None:
        # Bounded: the book's EXPECTED dict grew by one entry a day, for ever.
        self._expected.pop(iso, None)
        self._expected[iso] = expected
        while len(self._expected) > _DAYS_CACHED:
            del self._expected[next(iter(self._expected))]

    async def count(self, day: dt.date | str | None = None) -> int:
        """Return the number of unique visitors of ``day`` (default: today, UTC).

        Exact in exact mode; in approximate mode the HyperLogLog estimate (standard error
        :data:`HLL_STANDARD_ERROR`). Redis in Action §9.2.2.
        """
        iso = _day(day)
        if self.mode == "approximate":
            return int(await self.redis.pfcount(self._key(iso, "hll")))
        value = await self.redis.get(self._key(iso, "count"))
        return 0 if value is None else int(text(value))
