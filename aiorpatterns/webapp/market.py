"""A marketplace: users with funds and inventories list items for sale and buy them.

Redis in Action §4.4 builds it with WATCH/MULTI: every listing changes the one market ZSET that
every buyer WATCHes, so under load buyers retry without end (the §11.3.2 table: 161,000 retries
and fewer than 600 purchases in 60 s). §6.2 puts one lock around the market, then one per item;
§11.3.2 replaces all of it with two Lua scripts. :class:`Market` is the Lua version, with the
book's gaps closed: the buyer names the price it agreed to (§4.4.3's ``lprice``, which §6.2 and
§11.3.2 drop), every check runs before the first write, a missing funds field counts as 0
(§4.4.3 raises ``TypeError``), a buyer cannot buy from itself, and a listing names its item and
seller unambiguously (the book's ``"<item>.<seller>"`` cannot tell ``a.b`` + ``c`` from ``a`` +
``b.c``; here they are joined by the ASCII unit separator, which an item may not contain).

Keys (``name`` is the market's name): ``<prefix>:market:{<name>}:items`` (ZSET listing → price),
``…:user:<user>`` (HASH with ``funds``) and ``…:inventory:<user>`` (SET of items). One market
lives under one hash tag, so it runs unchanged on Redis Cluster (on one node).

Prices and funds are whole numbers (cents, say) up to 2**53, exact in a sorted-set score.

Retry safety: listing, unlisting and buying carry a token made per call; a second run of the
same call finds the first's receipt (``…:items:<call>``, kept two minutes) and answers as it
did (``True``, ``BOUGHT``) instead of "not in the inventory", "not listed" or ``GONE``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..core.checks import AsyncRedis, check_int, check_object, text
from ..core.errors import ScriptError
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script

__all__ = ["Listing", "Market", "Purchase"]

#: The largest price or amount: every whole number up to it is exact in a double.
MAX_AMOUNT = 2**53
#: Joins item and seller in a market member (ASCII unit separator; an item may not hold it).
SEPARATOR = "\x1f"
#: How many users' keys a Market remembers (built once each, not on every call).
_KEY_CACHE = 10_000


class Purchase(Enum):
    """The outcome of :meth:`Market.purchase_item`; only ``BOUGHT`` is truthy."""

    BOUGHT = "bought"
    #: The item is not listed by that seller (sold meanwhile, unlisted, or never listed).
    GONE = "gone"
    #: The item is listed at another price than the buyer expected.
    PRICE_CHANGED = "price"
    #: The buyer's funds are below the price.
    NO_FUNDS = "funds"

    def __bool__(self) -> bool:
        return self is Purchase.BOUGHT


@dataclass(frozen=True, slots=True)
class Listing:
    """One item for sale: what, by whom, for how much."""

    item: str
    seller: str
    price: int


def _amount(value: object, what: str, *, minimum: int) -> int:
    """A price, an amount, a count: a whole number in ``[minimum, 2**53]`` (exact as a score)."""
    return check_int(value, what, minimum=minimum, maximum=MAX_AMOUNT)


def _item(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"item must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError("item must not be empty")
    if SEPARATOR in value:
        raise ValueError(f"item must not contain {SEPARATOR!r} (it separates item and seller)")
    return value


def _listing(item: str, seller: str) -> str:
    """The market member of ``seller``'s ``item``: split at the first separator, never ambiguous."""
    return item + SEPARATOR + seller


class Market:
    """A marketplace named ``name`` (Redis in Action §4.4, §6.2, §11.3.2).

    The client is the caller's (a ``Redis``, a ``RedisCluster`` or an ``AutoPipeline``) and is
    never closed here. Listing and buying are one round trip each, atomic, with nothing to retry
    and no lock: any number of buyers and sellers can work on one market at once.
    """

    kind = "market"

    def __init__(
        self, redis: AsyncRedis, name: str = "market", *, keyspace: Keyspace = DEFAULT_KEYSPACE
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        self.market_key = keyspace.key(self.kind, name, "items")
        self._keys: dict[tuple[str, object], str] = {}

    def user_key(self, user: str) -> str:
        """The HASH of ``user`` (its ``funds``)."""
        return self._key("user", user)

    def inventory_key(self, user: str) -> str:
        """The SET of the items ``user`` owns and has not listed."""
        return self._key("inventory", user)

    def _key(self, part: str, user: object) -> str:
        """A user's key, built (and checked) once per user: a hot path of every call."""
        if type(user) is not str:
            check_name(user, "user")  # raises TypeError
        key = self._keys.get((part, user))
        if key is None:
            if len(self._keys) >= _KEY_CACHE:
                self._keys.clear()
            key = self._keys[part, user] = self.keyspace.key(
                self.kind, self.name, part, check_name(user, "user")
            )
        return key

    async def deposit(self, user: str, amount: int) -> int:
        """Add ``amount`` (> 0) to ``user``'s funds and return the new funds."""
        key, amount = self.user_key(user), _amount(amount, "amount", minimum=1)
        return int(await self.redis.hincrby(key, "funds", amount))

    async def funds(self, user: str) -> int:
        """Return ``user``'s funds (0 for a user never seen)."""
        value = await self.redis.hget(self.user_key(user), "funds")
        return 0 if value is None else int(value)

    async def add_items(self, user: str, *items: str) -> int:
        """Put ``items`` in ``user``'s inventory; return how many were not there yet."""
        key = self.inventory_key(user)
        checked = [_item(i) for i in items]
        if not checked:
            raise ValueError("add_items needs at least one item")
        return int(await self.redis.sadd(key, *checked))

    async def inventory(self, user: str) -> set[str]:
        """Return the items ``user`` owns and has not listed."""
        return {text(i) for i in await self.redis.smembers(self.inventory_key(user))}

    async def list_item(self, item: str, seller: str, price: int) -> bool:
        """Move ``item`` from ``seller``'s inventory to the market at ``price`` (>= 1).

        False if the seller does not have the item. Redis in Action §4.4.2 (``list_item``),
        §11.3.2 (``list_item_lua``), in one atomic step.
        """
        keys = [self.inventory_key(seller), self.market_key]
        price = _amount(price, "price", minimum=1)
        args = [_item(item), _listing(item, seller), price, secrets.token_hex(16)]
        return bool(await script("market_list")(self.redis, keys, args))

    async def unlist_item(self, item: str, seller: str) -> bool:
        """Take ``seller``'s listing of ``item`` off the market, back to the inventory.

        False if it is not listed (sold, or never listed). Beyond the book, which has no way back.
        """
        keys = [self.inventory_key(seller), self.market_key]
        args = [_item(item), _listing(item, seller), secrets.token_hex(16)]
        return bool(await script("market_unlist")(self.redis, keys, args))

    async def purchase_item(self, buyer: str, item: str, seller: str, price: int) -> Purchase:
        """Buy ``seller``'s ``item`` for ``price``, the price the buyer saw; return the outcome.

        The buyer pays exactly ``price`` or nothing happens: a listing at another price is
        ``PRICE_CHANGED``. Redis in Action §4.4.3 (``purchase_item``), §6.2
        (``purchase_item_with_lock``), §11.3.2 (``purchase_item_lua``), in one atomic step.
        """
        keys = [
            self.market_key,
            self.user_key(buyer),
            self.user_key(seller),
            self.inventory_key(buyer),
        ]
        if buyer == seller:
            raise ValueError(f"user {buyer!r} cannot buy from itself")
        price = _amount(price, "price", minimum=1)
        args = [_listing(_item(item), seller), item, price, secrets.token_hex(16)]
        reply = text(await script("market_purchase")(self.redis, keys, args))
        try:
            return Purchase(reply)
        except ValueError:
            raise ScriptError(f"market_purchase answered {reply!r}") from None

    async def price(self, item: str, seller: str) -> int | None:
        """Return the price ``seller`` lists ``item`` at, or None if it is not listed."""
        score = await self.redis.zscore(self.market_key, _listing(_item(item), seller))
        return None if score is None else int(score)

    async def listings(self, count: int = 10, offset: int = 0) -> list[Listing]:
        """Return up to ``count`` listings, cheapest first, skipping the first ``offset``."""
        count = _amount(count, "count", minimum=1)
        offset = _amount(offset, "offset", minimum=0)
        last = offset + count - 1
        pairs: Any = await self.redis.zrange(self.market_key, offset, last, withscores=True)
        listings = []
        for member, score in pairs:
            item, _, seller = text(member).partition(SEPARATOR)
            listings.append(Listing(item, seller, int(score)))
        return listings

    def __repr__(self) -> str:
        return f"<Market {self.keyspace.tag(self.kind, self.name)!r}>"
