"""Count tries and autocompletes over one guild: the book's two and ours (table ``autocomplete``).

Redis in Action §11.3.1 (inventory §2c) counts tries and autocompletes in 10 s for 1, 2, 5 and
10 clients completing prefixes over one guild ZSET, with the ch06 WATCH version (marker members,
a retry per WatchError) and the ch11 Lua version (the same markers in one script). The book
leaves the workload open; here it is fixed and recorded in the JSON's ``params``: a guild of
1,000 distinct names of 5-10 letters ``a``-``z`` (seeded RNG), and 1,000 prefixes of 1-3 letters
cut from those names (seeded), which each client walks from its own offset. Rows (those whose
clients are coroutines also at 100 clients; a process per client runs at ``--clients`` only):

- ``book-original`` / ``book-lua``: the book's code as the book ran it, the reference of the
  ratios: the sync ports in :mod:`benchmarks.baselines.sync` (``ch06_autocomplete``,
  ``ch11_autocomplete``), one OS process per client; a try is one pass through the WATCH loop
  body (counted by the port's ``on_try`` hook), or one EVALSHA;
- ``book-original-async`` / ``book-lua-async``: the same listings ported to ``redis.asyncio``
  (:mod:`benchmarks.baselines`), clients as coroutines;
- ``aiorpatterns`` / ``aiorpatterns-procs``: :class:`aiorpatterns.search.autocomplete.Autocomplete`,
  one read-only ``ZRANGE … BYLEX LIMIT 0 10`` per call, each client on its own connection, as
  coroutines in one process / one process per client;
- ``aiorpatterns-autopipeline``: the same, with all of a process' clients sharing one
  ``AutoPipeline`` (one connection), so concurrent calls share round trips;
- ``walrus``: ``walrus.Autocomplete.search(prefix, limit=10)`` (walrus 0.9.8, sync, as its
  users run it: :mod:`benchmarks.peers.walrus_autocomplete`), one OS process per client, over
  walrus' own index of the same names (standalone only: walrus has no cluster client);
- ``limit``: ``ZRANGE … BYLEX LIMIT 0 10`` in non-transactional pipelines of 100 per client,
  at every client count: at least as many calls in flight as any other row has (one per
  client), so it is a ceiling for all of them, the autopipeline included.

An autocomplete is a call that returned a non-empty page before the deadline (inventory §2c:
"a call that returned results"; every prefix is cut from a name, so a correct page is never
empty, while a book call whose page other callers' markers crowd out returns nothing); a try
is an attempt that ended before the deadline (the call itself, or one pass of the WATCH loop),
so ``retries`` (tries - autocompletes) are WatchErrors and empty pages. The driver starts no
attempt after the deadline (the book's WATCH loop has no timeout of its own) and cancels what
is still in flight (a sync client cannot be cancelled: it starts no new pass after the
deadline). After each row the table records the server's ``writes`` during the row
(its dirty counter, summed over primaries; the guilds are seeded before the count starts) and
the ``leaked markers``: members holding ``{`` left in the guilds (ZSCAN). A book-original call
the deadline cuts off between the ZADD of its markers and its EXEC would leave them as a
client that dies there does; that is the harness', not a leak of the code, so the driver
removes exactly those markers (noted as the port adds them; the port runs unchanged) and the
column counts only markers left by calls that ran to their end, which the book's code should
never do. Letting the cut-off calls finish instead would take longer than the row: at 100
clients their WATCH loops retry against each other, one commit per round.
The book's rates are its autocompletes in 10 s divided by 10. Ratios are to
``book-original`` and ``book-lua`` (sync, processes) at the same client count.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
import time
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
    Sized,
)
from functools import partial
from typing import Any

from redis.asyncio.cluster import RedisCluster

from .baselines import ch06_autocomplete, ch11_autocomplete
from .baselines.sync import ch06_autocomplete as sync_ch06_autocomplete
from .baselines.sync import ch11_autocomplete as sync_ch11_autocomplete
from .peers.walrus_autocomplete import seed as seed_walrus
from .peers.walrus_autocomplete import walrus_autocomplete
from .runner import (
    BENCH_PREFIX,
    NO_CLUSTER_WATCH,
    ClientPerCoroutine,
    ClientStats,
    Job,
    Op,
    SyncClientPerProcess,
    SyncOp,
    Table,
    Variant,
    connect,
)

__all__ = ["NAMES", "PREFIXES", "TABLE"]

GUILD = "bench"
GUILD_SIZE = 1000
NAME_LENGTHS = (5, 10)
PREFIX_LENGTHS = (1, 3)
SEED = 611
#: Completions per page (the book's 10).
PAGE = 10
#: Calls per pipeline per client in the ``limit`` row: at least 100 in flight at any client count.
BATCH = 100
#: Clients on top of ``--clients``, where the autopipeline target is measured.
MANY = 100
#: The guild key of the book's code (``members:<guild>``).
BOOK_KEY = BENCH_PREFIX + "members:" + GUILD


def _names() -> list[str]:
    rng = random.Random(SEED)
    names: dict[str, None] = {}
    while len(names) < GUILD_SIZE:
        length = rng.randint(*NAME_LENGTHS)
        names["".join(rng.choices(string.ascii_lowercase, k=length))] = None
    return sorted(names)


def _prefixes(names: Sequence[str]) -> list[str]:
    rng = random.Random(SEED + 1)
    return [rng.choice(names)[: rng.randint(*PREFIX_LENGTHS)] for _ in range(GUILD_SIZE)]


NAMES = _names()
PREFIXES = _prefixes(NAMES)


def _walk(index: int) -> Iterator[str]:
    """Walk the prefixes endlessly, from client ``index``'s own offset."""
    start = index * 997
    n = len(PREFIXES)
    i = 0
    while True:
        yield PREFIXES[(start + i) % n]
        i += 1


def _ours(client: Any) -> Any:
    from aiorpatterns.core.keys import Keyspace
    from aiorpatterns.search.autocomplete import Autocomplete

    return Autocomplete(client, GUILD, keyspace=Keyspace(BENCH_PREFIX.rstrip(":")))


class _PastDeadline(Exception):
    """Raised by a try hook called after the deadline: the call starts no new attempt."""


async def _count(
    st: ClientStats, deadline: float, call: Callable[[Callable[[], None]], Awaitable[Sized]]
) -> bool:
    """Run ``call(on_try)``; count its tries, and its success; return False if cut off.

    A try is an attempt that ended before the deadline: a pass of the WATCH loop ends when the
    next begins (``on_try``, after a WatchError) or when the call returns. A success is a call
    that returned a non-empty page before the deadline (inventory §2c: "a call that returned
    results"; every prefix is cut from a name, so a correct page is never empty). ``on_try``
    refuses to start an attempt after the deadline: the book's WATCH loop has no timeout of its
    own, and redis-py can lose a cancellation (on Python 3.11 when a command completes at the
    same moment, bpo-42130), so without it a cut-off client could go on retrying long after its
    row.
    """
    t = time.perf_counter()
    attempts = _Attempts(deadline)
    try:
        page = await call(attempts.on_try)
    except _PastDeadline:
        return False
    finally:
        st.tries += attempts.ended
    attempts.done(st, t, page)
    return True


def _count_sync(
    st: ClientStats, deadline: float, call: Callable[[Callable[[], None]], Sized]
) -> bool:
    """The sync twin of :func:`_count`."""
    t = time.perf_counter()
    attempts = _Attempts(deadline)
    try:
        page = call(attempts.on_try)
    except _PastDeadline:
        return False
    finally:
        st.tries += attempts.ended
    attempts.done(st, t, page)
    return True


class _Attempts:
    """The passes of one call (see :func:`_count`): ``on_try`` is the port's hook."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.ended = 0
        self.started = False

    def on_try(self) -> None:
        if time.perf_counter() >= self.deadline:
            raise _PastDeadline
        self.ended += self.started  # the previous pass ended with a WatchError, in time
        self.started = True

    def done(self, st: ClientStats, t: float, page: Sized) -> None:
        """Count the pass that returned ``page``, and a success, if it ended in time."""
        if time.perf_counter() < self.deadline:
            st.tries += 1
            if len(page):
                st.success(t)


class _Markers:
    """The client the book-original port is given, noting the markers its call in flight added.

    The port ZADDs its two markers before its WATCH loop (ch06 L78) and removes them in the
    transaction that ends the loop. A call the deadline cuts off in between (cancelled, or
    refused a new pass) is a harness artefact, not the book's leak: the driver then removes
    exactly that call's markers, so ``leaked_markers`` counts only markers that a call which ran
    to its end left behind. The port itself runs unchanged; everything but ``zadd`` is the
    client's own.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.added: tuple[Any, list[Any]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _SyncMarkerClient(_Markers):
    """:class:`_Markers` for a sync client (the ``book-original`` row)."""

    def zadd(self, name: Any, mapping: Mapping[Any, Any], *args: Any, **kwargs: Any) -> Any:
        self.added = (name, list(mapping))
        return self._client.zadd(name, mapping, *args, **kwargs)

    def remove_added(self) -> None:
        """ZREM the markers of the call that was cut off."""
        if self.added is not None:
            name, members = self.added
            self.added = None
            self._client.zrem(name, *members)


class _MarkerClient(_Markers):
    """:class:`_Markers` for an asyncio client (the ``book-original-async`` row)."""

    async def zadd(self, name: Any, mapping: Mapping[Any, Any], *args: Any, **kwargs: Any) -> Any:
        self.added = (name, list(mapping))
        return await self._client.zadd(name, mapping, *args, **kwargs)

    async def remove_added(self) -> None:
        """ZREM the markers of the call that was cut off."""
        if self.added is not None:
            name, members = self.added
            self.added = None
            await self._client.zrem(name, *members)


def _book_original(job: Job) -> ClientPerCoroutine:
    def make(client: Any, st: ClientStats, index: int) -> Op:
        prefixes = _walk(index)
        marked = _MarkerClient(client)

        async def op(deadline: float) -> None:
            if time.perf_counter() >= deadline:
                return
            prefix = next(prefixes)
            marked.added = None
            try:
                ended = await _count(
                    st,
                    deadline,
                    lambda on_try: ch06_autocomplete.autocomplete_on_prefix(
                        marked, GUILD, prefix, key_prefix=BENCH_PREFIX, on_try=on_try
                    ),
                )
            except asyncio.CancelledError:
                await marked.remove_added()
                raise
            if not ended:
                await marked.remove_added()

        return op

    return ClientPerCoroutine(job, make)


def _book_original_sync(job: Job) -> SyncClientPerProcess:
    def make(client: Any, st: ClientStats, index: int) -> SyncOp:
        prefixes = _walk(index)
        marked = _SyncMarkerClient(client)

        def op(deadline: float) -> None:
            if time.perf_counter() >= deadline:
                return
            prefix = next(prefixes)
            marked.added = None
            ended = _count_sync(
                st,
                deadline,
                lambda on_try: sync_ch06_autocomplete.autocomplete_on_prefix(
                    marked, GUILD, prefix, key_prefix=BENCH_PREFIX, on_try=on_try
                ),
            )
            if not ended:
                marked.remove_added()

        return op

    return SyncClientPerProcess(job, make)


def _book_lua_sync(job: Job) -> SyncClientPerProcess:
    def make(client: Any, st: ClientStats, index: int) -> SyncOp:
        prefixes = _walk(index)

        def op(deadline: float) -> None:
            if time.perf_counter() < deadline:
                prefix = next(prefixes)
                _count_sync(
                    st,
                    deadline,
                    lambda on_try: sync_ch11_autocomplete.autocomplete_on_prefix(
                        client, GUILD, prefix, key_prefix=BENCH_PREFIX
                    ),
                )

        return op

    return SyncClientPerProcess(job, make)


def _single_op(complete: Callable[[str], Awaitable[Sized]], st: ClientStats, index: int) -> Op:
    """Count one try per call that never retries (one EVALSHA, or one ZRANGE); see _count."""
    prefixes = _walk(index)

    async def op(deadline: float) -> None:
        if time.perf_counter() < deadline:
            prefix = next(prefixes)
            await _count(st, deadline, lambda on_try: complete(prefix))

    return op


def _book_lua(job: Job) -> ClientPerCoroutine:
    def make(client: Any, st: ClientStats, index: int) -> Op:
        complete = partial(
            ch11_autocomplete.autocomplete_on_prefix, client, GUILD, key_prefix=BENCH_PREFIX
        )
        return _single_op(complete, st, index)

    return ClientPerCoroutine(job, make)


def _complete_op(autocomplete: Any, st: ClientStats, index: int) -> Op:
    return _single_op(partial(autocomplete.complete, limit=PAGE), st, index)


def _library(job: Job) -> ClientPerCoroutine:
    return ClientPerCoroutine(job, lambda client, st, i: _complete_op(_ours(client), st, i))


class _AutoPipelined:
    """Share one connection, through one AutoPipeline, among all of a process' clients."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.client: Any = None
        self.auto: Any = None

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        from aiorpatterns.core.autopipeline import AutoPipeline

        self.client = await connect(self.job.target)
        self.auto = AutoPipeline(self.client)
        autocomplete = _ours(self.auto)
        return [_complete_op(autocomplete, st, i) for i, st in enumerate(stats)]

    async def close(self) -> None:
        if self.auto is not None:
            await self.auto.aclose()
        if self.client is not None:
            await self.client.aclose()


def _limit(job: Job) -> ClientPerCoroutine:
    from aiorpatterns.search.autocomplete import prefix_range

    def make(client: Any, st: ClientStats, index: int) -> Op:
        key = _ours(client).key
        bounds = [prefix_range(p.encode()) for p in PREFIXES]
        offset = index * 997

        async def op(deadline: float) -> None:
            nonlocal offset
            pipe = client.pipeline(transaction=False)
            for i in range(BATCH):
                low, high = bounds[(offset + i) % len(bounds)]
                pipe.zrange(key, low, high, bylex=True, offset=0, num=PAGE)
            offset += BATCH
            pages = await pipe.execute()
            if time.perf_counter() < deadline:
                st.tries += BATCH
                st.ops += sum(1 for page in pages if page)

        return op

    return ClientPerCoroutine(job, make)


async def _dirty(conn: Any) -> int:
    """Return the server's count of writes since its last save (summed over primaries)."""
    if isinstance(conn, RedisCluster):
        infos = await conn.info("persistence", target_nodes=RedisCluster.PRIMARIES)
        return sum(int(info["rdb_changes_since_last_save"]) for info in infos.values())
    info = await conn.info("persistence")
    return int(info["rdb_changes_since_last_save"])


async def _leaked(conn: Any, keys: Sequence[str]) -> int:
    """Count the members holding ``{`` (the book's markers) in ``keys``."""
    count = 0
    for key in keys:
        async for _ in conn.zscan_iter(key, match="*{*", count=1000):
            count += 1
    return count


@contextlib.asynccontextmanager
async def _around_row(conn: Any) -> AsyncIterator[dict[str, float | None]]:
    """Seed both guilds, then measure the row's writes and leaked markers."""
    ours = _ours(conn)
    await conn.zadd(BOOK_KEY, dict.fromkeys(NAMES, 0))
    await ours.join(*NAMES)
    await seed_walrus(conn, NAMES)
    before = await _dirty(conn)
    extra: dict[str, float | None] = {}
    yield extra
    after = await _dirty(conn)
    extra["writes"] = after - before if after >= before else None  # None: a save reset it
    extra["leaked_markers"] = await _leaked(conn, (BOOK_KEY, ours.key))


async def _prepare(client: Any) -> None:
    await ch11_autocomplete.load(client)


def _per_second(completes_in_10s: dict[int, int]) -> dict[tuple[str, int], float]:
    return {("*", n): count / 10 for n, count in completes_in_10s.items()}


def _tries_per_complete(variant: str) -> dict[tuple[str, int], float]:
    return {
        ("*", n): BOOK_TRIES[variant][n] / BOOK_COMPLETES[variant][n] for n in BOOK_TRIES[variant]
    }


#: The book's table (seed L2030-2039): tries and autocompletes in 10 s, by client count.
BOOK_TRIES = {
    "book-original": {1: 26_339, 2: 35_188, 5: 59_544, 10: 57_305},
    "book-lua": {1: 64_440, 2: 89_140, 5: 125_971, 10: 128_217},
}
BOOK_COMPLETES = {
    "book-original": {1: 26_339, 2: 17_551, 5: 10_989, 10: 6_141},
    "book-lua": {1: 64_440, 2: 89_140, 5: 125_971, 10: 128_217},
}

_lengths = Counter(len(p) for p in PREFIXES)
PARAMS: dict[str, Any] = {
    "guild_size": len(NAMES),
    "alphabet": "a-z",
    "name_lengths": list(NAME_LENGTHS),
    "seed": SEED,
    "prefixes": len(PREFIXES),
    "distinct_prefixes": len(set(PREFIXES)),
    "prefix_lengths": {str(n): _lengths[n] for n in sorted(_lengths)},
    "prefix_source": "1-3-letter heads of random guild names",
    "page": PAGE,
    "limit_batch": BATCH,
}

TABLE = Table(
    name="autocomplete",
    title="Guild prefix autocomplete (Redis in Action §6.1.2, §11.3.1)",
    unit="autocompletes",
    variants=(
        Variant(
            "book-original",
            _book_original_sync,
            book=_per_second(BOOK_COMPLETES["book-original"]),
            book_tries=_tries_per_complete("book-original"),
            runs="sync",
        ),
        Variant(
            "book-lua",
            _book_lua_sync,
            book=_per_second(BOOK_COMPLETES["book-lua"]),
            book_tries=_tries_per_complete("book-lua"),
            runs="sync",
        ),
        Variant(
            "book-original-async",
            _book_original,
            also_clients=(MANY,),
            unsupported=NO_CLUSTER_WATCH,
        ),
        Variant("book-lua-async", _book_lua, also_clients=(MANY,)),
        Variant(
            "aiorpatterns",
            _library,
            also_clients=(MANY,),
            requires="aiorpatterns.search.autocomplete:Autocomplete",
        ),
        Variant(
            "aiorpatterns-procs",
            _library,
            requires="aiorpatterns.search.autocomplete:Autocomplete",
            runs="processes",
        ),
        Variant(
            "aiorpatterns-autopipeline",
            _AutoPipelined,
            also_clients=(MANY,),
            requires="aiorpatterns.core.autopipeline:AutoPipeline",
        ),
        Variant(
            "walrus",
            walrus_autocomplete(NAMES, PREFIXES, PAGE),
            requires="walrus:Autocomplete",
            runs="sync",
            unsupported={"cluster": "walrus' Database is a redis.Redis: no cluster client"},
        ),
        Variant(
            "limit",
            _limit,
            also_clients=(MANY,),
            requires="aiorpatterns.search.autocomplete:prefix_range",
        ),
    ),
    references=("book-original", "book-lua"),
    prepare=_prepare,
    notes=(
        "book = the book's autocompletes in 10 s / 10 (Redis 2.6, Python 2, clients = processes); "
        f"guild of {len(NAMES):,} names, {len(PREFIXES):,} prefixes of 1-3 letters; "
        "autocompletes = calls that returned a non-empty page before the deadline; "
        f"limit = {BATCH} ZRANGE BYLEX per pipeline per client at every client count (a ceiling: "
        "no other row has as many calls in flight); writes = the server's dirty counter over the "
        "row; leaked markers = guild members holding '{' after the row, once the driver has "
        "removed the markers of the book-original calls it cut off at the deadline."
    ),
    params=PARAMS,
    around_row=_around_row,
    columns=("retries", "writes", "leaked_markers"),
)
