"""Test Market: list, unlist and buy items in one atomic step each (Redis in Action §4.4, §11.3.2).

Every test runs on a standalone server and a cluster; the ``_text`` ones also with
``decode_responses`` on and off. The concurrency tests run many buyers and sellers at once and
check that money and items are conserved: nothing is sold twice, lost, or paid for twice.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from helpers import NO_REDIS
from redis.crc import key_slot

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.webapp.market import Listing, Market, Purchase


async def test_the_books_scenario(redis_client_text: Any) -> None:
    """Redis in Action ch11 ``test_marketplace`` (and ch04 ``test_list_item``/``purchase_item``)."""
    market = Market(redis_client_text)
    await market.add_items("1", "1")
    await market.deposit("2", 5)
    assert not await market.list_item("2", "1", 10)  # user 1 has no item "2"
    assert await market.list_item("1", "1", 10)
    assert await market.inventory("1") == set()
    assert await market.purchase_item("2", "1", "1", 10) is Purchase.NO_FUNDS
    await market.deposit("2", 10)
    assert await market.purchase_item("2", "1", "1", 10) is Purchase.BOUGHT
    assert (await market.funds("1"), await market.funds("2")) == (10, 5)
    assert await market.inventory("2") == {"1"}
    assert await market.listings() == []


async def test_a_refused_purchase_changes_nothing(redis_client: Any) -> None:
    market = Market(redis_client)
    await market.add_items("seller", "sword")
    await market.deposit("buyer", 100)
    await market.list_item("sword", "seller", 40)
    assert await market.purchase_item("buyer", "sword", "seller", 30) is Purchase.PRICE_CHANGED
    assert await market.purchase_item("buyer", "shield", "seller", 40) is Purchase.GONE
    assert not Purchase.GONE
    assert not Purchase.PRICE_CHANGED
    assert Purchase.BOUGHT
    assert await market.listings() == [Listing("sword", "seller", 40)]
    assert (await market.funds("buyer"), await market.funds("seller")) == (100, 0)
    assert await market.inventory("buyer") == set()
    assert await market.purchase_item("nobody", "sword", "seller", 40) is Purchase.NO_FUNDS


async def test_unlist_returns_the_item_and_refuses_twice(redis_client: Any) -> None:
    market = Market(redis_client)
    await market.add_items("s", "a", "b")
    await market.list_item("a", "s", 3)
    assert await market.price("a", "s") == 3
    assert await market.unlist_item("a", "s")
    assert not await market.unlist_item("a", "s")
    assert await market.price("a", "s") is None
    assert await market.inventory("s") == {"a", "b"}


async def test_listings_are_cheapest_first_and_unambiguous(redis_client_text: Any) -> None:
    """The book's ``"<item>.<seller>"`` member confuses ``a.b``+``c`` with ``a``+``b.c``."""
    market = Market(redis_client_text)
    await market.add_items("c", "a.b")
    await market.add_items("b.c", "a")
    await market.list_item("a.b", "c", 7)
    await market.list_item("a", "b.c", 5)
    assert await market.listings() == [Listing("a", "b.c", 5), Listing("a.b", "c", 7)]
    assert await market.listings(count=1, offset=1) == [Listing("a.b", "c", 7)]
    await market.deposit("x", 10)
    assert await market.purchase_item("x", "a", "c", 5) is Purchase.GONE
    assert await market.purchase_item("x", "a.b", "c", 7) is Purchase.BOUGHT
    assert await market.inventory("x") == {"a.b"}


async def test_unicode_items_and_users(redis_client_text: Any) -> None:
    market = Market(redis_client_text)
    await market.add_items("Zoë", "épée ⚔")
    await market.deposit("李", 9)
    await market.list_item("épée ⚔", "Zoë", 9)
    assert await market.listings() == [Listing("épée ⚔", "Zoë", 9)]
    assert await market.purchase_item("李", "épée ⚔", "Zoë", 9)
    assert await market.inventory("李") == {"épée ⚔"}


async def test_keys_share_one_slot(redis_client: Any) -> None:
    market = Market(redis_client, "bazaar", keyspace=Keyspace("app"))
    keys = [market.market_key, market.user_key("u"), market.inventory_key("u")]
    assert all(k.startswith("app:market:{bazaar}:") for k in keys)
    assert len({key_slot(k.encode()) for k in keys}) == 1


async def test_corrupt_funds_are_refused_before_any_write(redis_client: Any) -> None:
    market = Market(redis_client)
    await market.add_items("s", "x")
    await market.list_item("x", "s", 2)
    await redis_client.hset(market.user_key("b"), "funds", "1.5")
    with pytest.raises(Exception, match="FUNDS"):
        await market.purchase_item("b", "x", "s", 2)
    assert await market.price("x", "s") == 2
    assert await redis_client.hget(market.user_key("s"), "funds") is None


async def test_many_buyers_and_sellers_conserve_money_and_items(redis_client: Any) -> None:
    """5 sellers list, 5 buyers race for the same cheap items: each item is sold once."""
    market = Market(redis_client)
    sellers, buyers = [f"s{i}" for i in range(5)], [f"b{i}" for i in range(5)]
    items = {s: [f"{s}-i{n}" for n in range(40)] for s in sellers}
    for s in sellers:
        await market.add_items(s, *items[s])
    for b in buyers:
        await market.deposit(b, 10_000)
    prices: dict[str, int] = {}
    outcomes: list[Purchase] = []

    async def sell(seller: str) -> None:
        for item in items[seller]:
            prices[item] = random.randint(1, 50)
            assert await market.list_item(item, seller, prices[item])
            await asyncio.sleep(0)

    async def buy(buyer: str) -> None:
        for _ in range(80):
            for listing in await market.listings(count=3):
                outcome = await market.purchase_item(
                    buyer, listing.item, listing.seller, listing.price
                )
                outcomes.append(outcome)
            await asyncio.sleep(0)

    await asyncio.gather(*map(sell, sellers), *map(buy, buyers))
    bought = [await market.inventory(b) for b in buyers]
    owned = set().union(*bought)
    assert sum(map(len, bought)) == len(owned)  # nobody got an item twice
    assert outcomes.count(Purchase.BOUGHT) == len(owned)
    assert Purchase.GONE in outcomes  # buyers did race for the same items
    listed = {x.item for x in await market.listings(count=1000)}
    assert listed | owned == {i for s in sellers for i in items[s]}
    assert not listed & owned
    spent = sum(prices[i] for i in owned)
    assert sum([await market.funds(b) for b in buyers]) == 5 * 10_000 - spent
    assert sum([await market.funds(s) for s in sellers]) == spent


async def test_a_cancelled_purchase_is_all_or_nothing(redis_client: Any) -> None:
    market = Market(redis_client)
    await market.deposit("b", 1_000)
    for n in range(30):
        await market.add_items("s", f"i{n}")
        await market.list_item(f"i{n}", "s", 1)
    for n in range(30):
        task = asyncio.create_task(market.purchase_item("b", f"i{n}", "s", 1))
        await asyncio.sleep(random.choice((0, 0, 0.0005, 0.001)))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    owned = await market.inventory("b")
    assert await market.funds("b") == 1_000 - len(owned)
    assert await market.funds("s") == len(owned)
    assert len(await market.listings(count=100)) == 30 - len(owned)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda m: m.list_item("", "s", 1), ValueError),
        (lambda m: m.list_item(3, "s", 1), TypeError),
        (lambda m: m.list_item("a\x1fb", "s", 1), ValueError),
        (lambda m: m.list_item("i", "", 1), ValueError),
        (lambda m: m.list_item("i", "s}", 1), ValueError),
        (lambda m: m.list_item("i", "s", 0), ValueError),
        (lambda m: m.list_item("i", "s", 1.5), TypeError),
        (lambda m: m.list_item("i", "s", True), TypeError),
        (lambda m: m.list_item("i", "s", 2**53 + 1), ValueError),
        (lambda m: m.purchase_item("s", "i", "s", 1), ValueError),
        (lambda m: m.purchase_item("b", "i", "s", -1), ValueError),
        (lambda m: m.purchase_item("b", None, "s", 1), TypeError),
        (lambda m: m.deposit("b", 0), ValueError),
        (lambda m: m.deposit("b", "5"), TypeError),
        (lambda m: m.add_items("b"), ValueError),
        (lambda m: m.add_items("b", ""), ValueError),
        (lambda m: m.unlist_item("i", None), TypeError),
        (lambda m: m.listings(count=0), ValueError),
        (lambda m: m.listings(offset=-1), ValueError),
    ],
)
async def test_bad_arguments_raise_before_touching_redis(call: Any, error: type) -> None:
    market = Market(NO_REDIS)  # any Redis call would fail with AttributeError
    with pytest.raises(error):
        await call(market)


def test_bad_construction() -> None:
    with pytest.raises(TypeError):
        Market(None)
    with pytest.raises(ValueError, match="name must not be empty"):
        Market(NO_REDIS, "")
    with pytest.raises(TypeError):
        Market(NO_REDIS, keyspace="app")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda m: m.list_item("i", "s", float("nan")), TypeError, "price"),
        (lambda m: m.list_item("i", "s", float("inf")), TypeError, "price"),
        (lambda m: m.list_item("i", "s", 2**63), ValueError, "price"),
        (lambda m: m.purchase_item("b", "i", "s", 2**53 + 1), ValueError, "price"),
        (lambda m: m.purchase_item("b", "i", "s", -1), ValueError, "price"),
        (lambda m: m.purchase_item("b", "i", "s", 10.0), TypeError, "price"),
        (lambda m: m.deposit("u", 2**64), ValueError, "amount"),
        (lambda m: m.deposit("u", 0), ValueError, "amount"),
        (lambda m: m.listings(count=2**60), ValueError, "count"),
        (lambda m: m.listings(offset=-1), ValueError, "offset"),
    ],
)
async def test_numbers_are_range_checked_before_redis(
    call: Any, error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        await call(Market(NO_REDIS))
