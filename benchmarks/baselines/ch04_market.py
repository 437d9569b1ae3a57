"""Port the ch04 marketplace: ``list_item`` (L141) and ``purchase_item`` (L172), WATCH/MULTI.

Redis in Action §4.4.2-§4.4.3, the "no lock" rows of the §11.3.2 marketplace table (inventory
§2d, row 10). Listing WATCHes the seller's inventory; purchasing WATCHes the one ``market:``
ZSET and the buyer, so every listing anywhere aborts every purchase in flight. The loops give
up after 5 s (listing) and 10 s (purchase) and return False, as written. The synchronous
pipeline becomes ``async with conn.pipeline(transaction=True)`` (the book's default, which
redis-py's cluster client needs said; the connection goes back to the pool on exit),
and ``on_try`` runs before each pass of a purchase so a table can count WatchError retries.
"""

from __future__ import annotations

import time
from typing import Any

from redis.exceptions import WatchError

from ._util import OnTry

__all__ = ["list_item", "purchase_item"]


async def list_item(
    conn: Any, itemid: str, sellerid: str, price: float, *, key_prefix: str = ""
) -> bool | None:
    """List the seller's item; None if the seller does not have it, False after 5 s of retries.

    Redis in Action §4.4.2, listing 4.5 (ch04 L141).
    """
    inventory = key_prefix + f"inventory:{sellerid}"
    item = f"{itemid}.{sellerid}"
    end = time.time() + 5
    async with conn.pipeline(transaction=True) as pipe:
        while time.time() < end:
            try:
                await pipe.watch(inventory)
                if not await pipe.sismember(inventory, itemid):
                    await pipe.unwatch()
                    return None

                pipe.multi()
                pipe.zadd(key_prefix + "market:", {item: price})
                pipe.srem(inventory, itemid)
                await pipe.execute()
                return True
            except WatchError:
                pass
    return False


async def purchase_item(
    conn: Any,
    buyerid: str,
    itemid: str,
    sellerid: str,
    lprice: float,
    *,
    key_prefix: str = "",
    on_try: OnTry = None,
) -> bool | None:
    """Buy the item at ``lprice``; None if sold, repriced or unaffordable, False after 10 s.

    Redis in Action §4.4.3, listing 4.6 (ch04 L172).
    """
    buyer = key_prefix + f"users:{buyerid}"
    seller = key_prefix + f"users:{sellerid}"
    item = f"{itemid}.{sellerid}"
    inventory = key_prefix + f"inventory:{buyerid}"
    market = key_prefix + "market:"
    end = time.time() + 10
    async with conn.pipeline(transaction=True) as pipe:
        while time.time() < end:
            if on_try is not None:
                on_try()
            try:
                await pipe.watch(market, buyer)

                price = await pipe.zscore(market, item)
                funds = int(await pipe.hget(buyer, "funds"))
                if price != lprice or price > funds:
                    await pipe.unwatch()
                    return None

                pipe.multi()
                pipe.hincrby(seller, "funds", int(price))
                pipe.hincrby(buyer, "funds", int(-price))
                pipe.sadd(inventory, itemid)
                pipe.zrem(market, item)
                await pipe.execute()
                return True
            except WatchError:
                pass
    return False
