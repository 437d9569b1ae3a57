"""Listers and buyers on one marketplace: the book's four ways and ours (table ``market``).

Redis in Action §11.3.2's table (inventory §2d): 5 listers and 5 buyers on one market, with
WATCH/MULTI ("no lock", ch04), one coarse lock (ch06), one lock per item (§6.2.4) and Lua
(ch11). ``--clients`` counts lister/buyer *pairs* here: the book's row is 5 pairs. Each pair
is one client of the runner, running a lister loop and a buyer loop side by side, each on its
own connection (the book's were processes). Rows:

- ``book-no-lock`` / ``book-lock`` / ``book-fine-lock`` / ``book-lua``: the ports in
  :mod:`benchmarks.baselines` (``ch04_market``, ``ch06_market``, ``ch11_market``);
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
so money never runs out.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .baselines import ch04_market, ch06_market, ch11_market
from .runner import (
    BENCH_PREFIX,
    NO_CLUSTER_WATCH,
    ClientPerCoroutine,
    ClientStats,
    Job,
    Op,
    Row,
    Table,
    Target,
    Variant,
    connect,
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
        await asyncio.gather(sell(deadline), buy(deadline))

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


def _book(name: str, make_shop: Callable[[], Shop], *, watch: bool = True) -> Variant:
    """A book row; every one but the Lua one WATCHes, which a cluster cannot run here."""
    return Variant(
        name,
        _variant(make_shop),
        book={("*", 5): BOOK_BOUGHT[name] / 60},
        clients=PAIRS,
        unsupported=NO_CLUSTER_WATCH if watch else {},
    )


TABLE = Table(
    name="market",
    title="Listers and buyers on one market (Redis in Action §11.3.2, §4.4, §6.2)",
    unit="purchases",
    variants=(
        _book("book-no-lock", NoLock),
        _book("book-lock", partial(Locked, fine=False)),
        _book("book-fine-lock", partial(Locked, fine=True)),
        _book("book-lua", BookLua, watch=False),
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
