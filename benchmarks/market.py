"""Listers and buyers on one marketplace: the book's four ways and ours (table ``market``).

Redis in Action §11.3.2's table (inventory §2d): 5 listers and 5 buyers on one market, with
WATCH/MULTI ("no lock", ch04), one coarse lock (ch06), one lock per item (§6.2.4) and Lua
(ch11). ``--clients`` counts lister/buyer *pairs* here: the book's row is 5 pairs. Each pair
is one client of the runner, running a lister loop and a buyer loop side by side, each on its
own connection. Rows:

- ``book-no-lock`` / ``book-lock`` / ``book-fine-lock`` / ``book-lua``: the book's code as the
  book ran it, the reference of the ratios: the sync ports in :mod:`benchmarks.baselines.sync`
  (``ch04_market``, ``ch06_market``, ``ch11_market``), every lister and every buyer a process
  of its own (the runner gives each pair a process, which runs the buyer and starts the lister
  as a child process);
- ``book-no-lock-async`` / ``book-lock-async`` / ``book-fine-lock-async`` / ``book-lua-async``:
  the same listings ported to ``redis.asyncio`` (:mod:`benchmarks.baselines`), the pair's two
  loops as coroutines;
- ``aiorpatterns``: :class:`aiorpatterns.webapp.market.Market` (one Lua step per listing and per
  purchase, with the expected price); ``aiorpatterns-autopipeline``: the same with all of a
  process' clients sharing one ``AutoPipeline`` (one connection);
- ``limit``: pipelines of 100 (ZADD, ZREM) pairs on one ZSET per pair: a listing and a sale's
  market update, as fast as this client can.

A lister loop adds a fresh item to its seller's inventory (SADD) and lists it at a random price
of 1-100. A buyer loop reads the 10 cheapest listings, picks one at random (fewer buyers collide)
and buys it at the price it saw; an empty market costs a 1 ms sleep. Columns: ``purchases``
(bought items; the row's ops), ``tries`` (purchase attempts that ended in a purchase or a
WatchError; the difference is ``retries``), ``listed``, ``misses`` (the item was gone or
repriced: not retries), and ``avg wait ms`` (buyers' time / purchases: the book's "average wait
per purchase"). Latency is from reading the market to the purchase. Buyers hold funds of 10**12,
so money never runs out. Ratios are to ``book-lock`` and ``book-lua`` (sync, processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .baselines import ch04_market, ch06_market, ch11_market
from .baselines.sync import ch04_market as sync_ch04_market
from .baselines.sync import ch06_market as sync_ch06_market
from .baselines.sync import ch11_market as sync_ch11_market
from .runner import (
    BENCH_PREFIX,
    NO_CLUSTER_WATCH,
    ClientPerCoroutine,
    ClientStats,
    Job,
    Op,
    Row,
    SyncOp,
    Table,
    Target,
    Variant,
    connect,
    connect_sync,
)

__all__ = ["FUNDS", "TABLE"]

#: The book's keys, under one hash tag so its scripts and transactions run on a cluster.
PREFIX = BENCH_PREFIX + "{mkt}:"
FUNDS = 10**12
#: Listings a buyer chooses from (inventory §2d: fewer buyer-buyer collisions).
CHOICE = 10
BATCH = 100
#: The book's purchases and listings in 60 s with 5 listers and 5 buyers (§11.3.2 table).
BOOK_BOUGHT = {
    "book-no-lock": 600,
    "book-lock": 20_500,
    "book-fine-lock": 111_000,
    "book-lua": 480_000,
}
BOOK_LISTED = {
    "book-no-lock": 206_000,
    "book-lock": 21_000,
    "book-fine-lock": 116_000,
    "book-lua": 505_000,
}

OnTry = Callable[[], None]
#: Seconds a lister process may take to end its last listing after the deadline.
LISTER_UNWIND = 15.0


@dataclass(frozen=True, slots=True)
class Offer:
    """A listing a buyer saw: item, seller and price as the variant reads them."""

    item: str
    seller: str
    price: Any


class Shop:
    """One variant's marketplace calls; subclasses port the book's or wrap ours."""

    async def fund(self, client: Any, buyer: str) -> None:
        await client.hset(PREFIX + f"users:{buyer}", "funds", FUNDS)

    async def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        raise NotImplementedError

    async def offers(self, client: Any) -> list[Offer]:
        pairs = await client.zrange(PREFIX + "market:", 0, CHOICE - 1, withscores=True)
        offers = []
        for member, score in pairs:
            item, seller = _text(member).split(".")
            offers.append(Offer(item, seller, score))
        return offers

    async def buy(self, client: Any, buyer: str, offer: Offer, on_try: OnTry) -> bool:
        raise NotImplementedError


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NoLock(Shop):
    """ch04: WATCH/MULTI listing and purchase, the buyer passing the price it saw."""

    async def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        await client.sadd(PREFIX + f"inventory:{seller}", item)
        return bool(await ch04_market.list_item(client, item, seller, price, key_prefix=PREFIX))

    async def buy(self, client: Any, buyer: str, offer: Offer, on_try: OnTry) -> bool:
        ok = await ch04_market.purchase_item(
            client, buyer, offer.item, offer.seller, offer.price, key_prefix=PREFIX, on_try=on_try
        )
        return ok is True


class Locked(Shop):
    """ch06: listing and purchase under one lock (``fine=False``) or one per item."""

    def __init__(self, fine: bool) -> None:
        self.fine = fine

    def _lockname(self, item: str, seller: str) -> str:
        return ch06_market.item_lockname(item, seller) if self.fine else "market:"

    async def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        await client.sadd(PREFIX + f"inventory:{seller}", item)
        ok = await ch06_market.list_item_with_lock(
            client, item, seller, price, lockname=self._lockname(item, seller), key_prefix=PREFIX
        )
        return bool(ok)

    async def buy(self, client: Any, buyer: str, offer: Offer, on_try: OnTry) -> bool:
        on_try()
        ok = await ch06_market.purchase_item_with_lock(
            client,
            buyer,
            offer.item,
            offer.seller,
            lockname=self._lockname(offer.item, offer.seller),
            key_prefix=PREFIX,
        )
        return ok is True


class BookLua(Shop):
    """ch11: one script per listing and per purchase, no expected price."""

    async def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        await client.sadd(PREFIX + f"inventory:{seller}", item)
        return bool(await ch11_market.list_item(client, item, seller, price, key_prefix=PREFIX))

    async def buy(self, client: Any, buyer: str, offer: Offer, on_try: OnTry) -> bool:
        on_try()
        ok = await ch11_market.purchase_item(
            client, buyer, offer.item, offer.seller, key_prefix=PREFIX
        )
        return bool(ok)


class Ours(Shop):
    """:class:`aiorpatterns.webapp.market.Market`, one object per client it is given."""

    def __init__(self) -> None:
        self._markets: dict[int, Any] = {}

    def _market(self, client: Any) -> Any:
        market = self._markets.get(id(client))
        if market is None:
            from aiorpatterns import Keyspace
            from aiorpatterns.webapp.market import Market

            keyspace = Keyspace(BENCH_PREFIX.rstrip(":"))
            market = self._markets[id(client)] = Market(client, "bench", keyspace=keyspace)
        return market

    async def fund(self, client: Any, buyer: str) -> None:
        await self._market(client).deposit(buyer, FUNDS)

    async def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        market = self._market(client)
        await market.add_items(seller, item)
        listed: bool = await market.list_item(item, seller, price)
        return listed

    async def offers(self, client: Any) -> list[Offer]:
        listings = await self._market(client).listings(count=CHOICE)
        return [Offer(x.item, x.seller, x.price) for x in listings]

    async def buy(self, client: Any, buyer: str, offer: Offer, on_try: OnTry) -> bool:
        on_try()
        market = self._market(client)
        return bool(await market.purchase_item(buyer, offer.item, offer.seller, offer.price))


def _pair_op(shop: Shop, lister: Any, buyer_client: Any, st: ClientStats) -> Op:
    """One pair's operation: its lister and its buyer loop side by side until the deadline."""
    tag = uuid.uuid4().hex[:8]  # unique over processes too
    seller, buyer = f"s{tag}", f"b{tag}"
    rng = random.Random(tag)

    async def sell(deadline: float) -> None:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            if await shop.sell(lister, seller, f"i{tag}-{n}", rng.randint(1, 100)):
                st.count("listed")

    async def buy(deadline: float) -> None:
        await shop.fund(buyer_client, buyer)
        start = time.perf_counter()
        try:
            while time.perf_counter() < deadline:
                await _buy_once(shop, buyer_client, buyer, rng, st, deadline)
        finally:
            st.count("buyer_seconds", min(time.perf_counter(), deadline) - start)

    async def op(deadline: float) -> None:
        # Both sides end before the op does: a side that fails, or that a client library
        # cancels from inside, leaves no orphan behind, and the buyer's time is always counted.
        for outcome in await asyncio.gather(sell(deadline), buy(deadline), return_exceptions=True):
            if isinstance(outcome, Exception):
                raise outcome
            if isinstance(outcome, asyncio.CancelledError):
                st.count("stray_cancels")

    return op


async def _buy_once(
    shop: Shop, client: Any, buyer: str, rng: random.Random, st: ClientStats, deadline: float
) -> None:
    """Read the cheapest listings, try to buy one: count the purchase, its retries or a miss."""
    t = time.perf_counter()
    offers = await shop.offers(client)
    if not offers:
        await asyncio.sleep(0.001)
        return
    passes = 0

    def on_try() -> None:
        nonlocal passes
        passes += 1

    try:
        bought = await shop.buy(client, buyer, rng.choice(offers), on_try)
    finally:
        st.tries += max(0, passes - 1)  # the passes that ended in a WatchError
    if time.perf_counter() >= deadline:
        return
    if bought:
        st.tries += 1
        st.success(t)
    else:
        st.count("misses")


# -- the book's rows as the book ran them: sync clients, a process per lister and per buyer ------


class SyncShop:
    """The sync twin of :class:`Shop`, over the sync ports (:mod:`benchmarks.baselines.sync`)."""

    def fund(self, client: Any, buyer: str) -> None:
        client.hset(PREFIX + f"users:{buyer}", "funds", FUNDS)

    def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        raise NotImplementedError

    def offers(self, client: Any) -> list[Offer]:
        pairs = client.zrange(PREFIX + "market:", 0, CHOICE - 1, withscores=True)
        offers = []
        for member, score in pairs:
            item, seller = _text(member).split(".")
            offers.append(Offer(item, seller, score))
        return offers

    def buy(self, client: Any, buyer: str, offer: Offer, on_try: OnTry) -> bool:
        raise NotImplementedError


class SyncNoLock(SyncShop):
    """ch04, sync: WATCH/MULTI listing and purchase, the buyer passing the price it saw."""

    def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        client.sadd(PREFIX + f"inventory:{seller}", item)
        return bool(sync_ch04_market.list_item(client, item, seller, price, key_prefix=PREFIX))

    def buy(self, client: Any, buyer: str, offer: Offer, on_try: OnTry) -> bool:
        ok = sync_ch04_market.purchase_item(
            client, buyer, offer.item, offer.seller, offer.price, key_prefix=PREFIX, on_try=on_try
        )
        return ok is True


class SyncLocked(SyncShop):
    """ch06, sync: listing and purchase under one lock (``fine=False``) or one per item."""

    def __init__(self, fine: bool) -> None:
        self.fine = fine

    def _lockname(self, item: str, seller: str) -> str:
        return sync_ch06_market.item_lockname(item, seller) if self.fine else "market:"

    def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        client.sadd(PREFIX + f"inventory:{seller}", item)
        ok = sync_ch06_market.list_item_with_lock(
            client, item, seller, price, lockname=self._lockname(item, seller), key_prefix=PREFIX
        )
        return bool(ok)

    def buy(self, client: Any, buyer: str, offer: Offer, on_try: OnTry) -> bool:
        on_try()
        ok = sync_ch06_market.purchase_item_with_lock(
            client,
            buyer,
            offer.item,
            offer.seller,
            lockname=self._lockname(offer.item, offer.seller),
            key_prefix=PREFIX,
        )
        return ok is True


class SyncBookLua(SyncShop):
    """ch11, sync: one script per listing and per purchase, no expected price."""

    def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        client.sadd(PREFIX + f"inventory:{seller}", item)
        return bool(sync_ch11_market.list_item(client, item, seller, price, key_prefix=PREFIX))

    def buy(self, client: Any, buyer: str, offer: Offer, on_try: OnTry) -> bool:
        on_try()
        return bool(
            sync_ch11_market.purchase_item(
                client, buyer, offer.item, offer.seller, key_prefix=PREFIX
            )
        )


#: The sync shop of each book row, by row name (a lister process finds its shop by name).
SYNC_SHOPS: dict[str, Callable[[], SyncShop]] = {
    "book-no-lock": SyncNoLock,
    "book-lock": partial(SyncLocked, fine=False),
    "book-fine-lock": partial(SyncLocked, fine=True),
    "book-lua": SyncBookLua,
}


class _ListerProcess:
    """A pair's lister in a process of its own (the runner's process runs the pair's buyer).

    The book ran each lister and each buyer as a process; the runner gives each pair one
    process, so the pair's lister is started from it as a child (``python -c``, since a
    daemonic worker may not use multiprocessing). Protocol over the child's stdin/stdout, one
    line each: the parent sends its settings as JSON, the child answers ``ready`` once it is
    connected; the parent sends the seconds left to the deadline, the child lists until then
    and answers with its count of listings that ended in time.
    """

    def __init__(self, target: Target, variant: str, tag: str) -> None:
        path = os.pathsep.join(p or os.getcwd() for p in sys.path)
        env = dict(os.environ, PYTHONPATH=path)
        self.started = False
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from benchmarks.market import lister_main; lister_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        settings = {"target": dataclasses.asdict(target), "variant": variant, "tag": tag}
        self._send(json.dumps(settings))
        self._expect("ready")

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _expect(self, word: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith(word):
            self.close()
            raise RuntimeError(f"lister process: expected {word!r}, got {line!r} (see stderr)")
        return line.removeprefix(word).strip()

    def start(self, deadline: float) -> None:
        self._send(repr(deadline - time.perf_counter()))
        self.started = True

    def listed(self) -> int:
        return int(self._expect("listed"))

    def close(self) -> None:
        if self.started:  # it answered, or is about to: let it end on its own
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.proc.communicate(timeout=LISTER_UNWIND)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def lister_main() -> None:
    """Run one pair's lister (the child of :class:`_ListerProcess`); see its protocol."""
    settings = json.loads(sys.stdin.readline())
    shop = SYNC_SHOPS[settings["variant"]]()
    client = connect_sync(Target(**settings["target"]))
    tag = settings["tag"]
    seller, rng = f"s{tag}", random.Random(tag)
    print("ready", flush=True)
    deadline = time.perf_counter() + float(sys.stdin.readline())
    listed = n = 0
    try:
        while time.perf_counter() < deadline:
            n += 1
            ok = shop.sell(client, seller, f"i{tag}-{n}", rng.randint(1, 100))
            listed += bool(ok) and time.perf_counter() < deadline
    finally:
        client.close()
    print("listed", listed, flush=True)


class _SyncPairs:
    """A lister process and a buyer connection per pair: the book's rows, sync."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.shop = SYNC_SHOPS[job.variant]()
        self.clients: list[Any] = []
        self.listers: list[_ListerProcess] = []

    def open(self, stats: Sequence[ClientStats]) -> list[SyncOp]:
        ops = []
        for st in stats:
            tag = uuid.uuid4().hex[:8]  # unique over processes too
            self.clients.append(connect_sync(self.job.target))
            self.listers.append(_ListerProcess(self.job.target, self.job.variant, tag))
            ops.append(_sync_pair_op(self.shop, self.listers[-1], self.clients[-1], st, tag))
        return ops

    def close(self) -> None:
        for lister in self.listers:
            lister.close()
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.close()


def _sync_pair_op(
    shop: SyncShop, lister: _ListerProcess, client: Any, st: ClientStats, tag: str
) -> SyncOp:
    """One pair's operation: start its lister, buy until the deadline, collect the listings."""
    buyer, rng = f"b{tag}", random.Random(tag)

    def op(deadline: float) -> None:
        if lister.started:
            return
        lister.start(deadline)
        shop.fund(client, buyer)
        start = time.perf_counter()
        try:
            while time.perf_counter() < deadline:
                _buy_once_sync(shop, client, buyer, rng, st, deadline)
        finally:
            st.count("buyer_seconds", min(time.perf_counter(), deadline) - start)
        st.count("listed", lister.listed())

    return op


def _buy_once_sync(
    shop: SyncShop, client: Any, buyer: str, rng: random.Random, st: ClientStats, deadline: float
) -> None:
    """The sync twin of :func:`_buy_once`."""
    t = time.perf_counter()
    offers = shop.offers(client)
    if not offers:
        time.sleep(0.001)
        return
    passes = 0

    def on_try() -> None:
        nonlocal passes
        passes += 1

    try:
        bought = shop.buy(client, buyer, rng.choice(offers), on_try)
    finally:
        st.tries += max(0, passes - 1)  # the passes that ended in a WatchError
    if time.perf_counter() >= deadline:
        return
    if bought:
        st.tries += 1
        st.success(t)
    else:
        st.count("misses")


def _variant(make_shop: Callable[[], Shop]) -> Callable[[Job], ClientPerCoroutine]:
    def factory(job: Job) -> ClientPerCoroutine:
        return _Pairs(job, make_shop())

    return factory


class _Pairs(ClientPerCoroutine):
    """A lister and a buyer connection per pair (``shared``: one AutoPipeline for all)."""

    def __init__(self, job: Job, shop: Shop, *, shared: bool = False) -> None:
        super().__init__(job, lambda *_: _no_op)
        self.shop = shop
        self.shared = shared
        self.auto: Any = None

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        if self.shared:
            from aiorpatterns.core.autopipeline import AutoPipeline

            self.clients.append(await connect(self.job.target))
            self.auto = AutoPipeline(self.clients[0])
            return [_pair_op(self.shop, self.auto, self.auto, st) for st in stats]
        ops = []
        for st in stats:
            lister, buyer = await _connect_two(self.job.target)
            self.clients += [lister, buyer]
            ops.append(_pair_op(self.shop, lister, buyer, st))
        return ops

    async def close(self) -> None:
        if self.auto is not None:
            await self.auto.aclose()
        await super().close()


async def _connect_two(target: Target) -> tuple[Any, Any]:
    return await connect(target), await connect(target)


async def _no_op(deadline: float) -> None:
    return None


def _autopipelined(job: Job) -> ClientPerCoroutine:
    return _Pairs(job, Ours(), shared=True)


def _limit(job: Job) -> ClientPerCoroutine:
    key = BENCH_PREFIX + "limit:market"

    def make(client: Any, st: ClientStats, _: int) -> Op:
        member = uuid.uuid4().hex

        async def op(deadline: float) -> None:
            pipe = client.pipeline(transaction=False)
            for _ in range(BATCH):
                pipe.zadd(key, {member: 1})
                pipe.zrem(key, member)
            await pipe.execute()
            if time.perf_counter() < deadline:
                st.tries += BATCH
                st.ops += BATCH

        return op

    return ClientPerCoroutine(job, make)


def _derive(row: Row) -> Mapping[str, float | None]:
    """The book's "average wait per purchase": the buyers' time over the purchases."""
    seconds = row.extra.get("buyer_seconds")
    if row.base == "limit" or not row.ops or seconds is None:
        return {"avg_wait_ms": None}
    return {"avg_wait_ms": 1000 * seconds / row.ops}


async def _prepare(client: Any) -> None:
    await ch11_market.load(client)
    from aiorpatterns.core.scripts import script

    for name in ("market_list", "market_purchase"):
        await script(name).load(client)


#: The book's rows: 1 lister and 1 buyer, and 5 of each.
PAIRS = (1, 5)


def _book(name: str) -> Variant:
    """A book row as the book ran it: sync ports, a process per lister and per buyer."""
    return Variant(
        name, _SyncPairs, book={("*", 5): BOOK_BOUGHT[name] / 60}, clients=PAIRS, runs="sync"
    )


def _book_async(name: str, make_shop: Callable[[], Shop], *, watch: bool = True) -> Variant:
    """An asyncio port's row; every one but the Lua one WATCHes, which a cluster cannot run here."""
    return Variant(
        name + "-async",
        _variant(make_shop),
        clients=PAIRS,
        unsupported=NO_CLUSTER_WATCH if watch else {},
    )


TABLE = Table(
    name="market",
    title="Listers and buyers on one market (Redis in Action §11.3.2, §4.4, §6.2)",
    unit="purchases",
    variants=(
        *(_book(name) for name in SYNC_SHOPS),
        _book_async("book-no-lock", NoLock),
        _book_async("book-lock", partial(Locked, fine=False)),
        _book_async("book-fine-lock", partial(Locked, fine=True)),
        _book_async("book-lua", BookLua, watch=False),
        Variant("aiorpatterns", _variant(Ours), clients=PAIRS),
        Variant("aiorpatterns-autopipeline", _autopipelined, clients=PAIRS),
        Variant("limit", _limit, clients=PAIRS),
    ),
    references=("book-lock", "book-lua"),
    prepare=_prepare,
    derive=_derive,
    columns=("listed", "misses", "avg_wait_ms"),
    notes=(
        "clients = lister/buyer pairs (the book's rows: 1 and 5 pairs, 60 s); "
        "book = its purchases / 60 (listed: "
        + ", ".join(f"{k} {v / 60:,.0f}/s" for k, v in BOOK_LISTED.items())
        + "); tries = purchase attempts that ended in a purchase or a WatchError; "
        "misses = item gone or repriced; avg wait = buyers' time / purchases; "
        f"limit = {BATCH} ZADD + ZREM pairs per pipeline per client."
    ),
)
