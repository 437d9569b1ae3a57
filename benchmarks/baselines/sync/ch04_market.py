"""Port the ch04 marketplace, sync: ``list_item`` (L141) and ``purchase_item`` (L172).

Redis in Action §4.4.2-§4.4.3, listings 4.5 and 4.6, the "no lock" row of the §11.3.2 table
(inventory §2d, row 10). Listing WATCHes the seller's inventory; purchasing WATCHes the one
``market:`` ZSET and the buyer, so every listing anywhere aborts every purchase in flight. Both
retry on WatchError at once, and give up after 5 s (listing) and 10 s (purchase) returning
False, as written. ``conn.pipeline()`` is spelled ``conn.pipeline(True)``: the book's default,
which redis-py's cluster client needs said.
"""

from __future__ import annotations

import time
from typing import Any

from redis.exceptions import WatchError

from .._util import OnTry

__all__ = ["list_item", "purchase_item"]


def list_item(
    conn: Any, itemid: str, sellerid: str, price: float, *, key_prefix: str = ""
) -> bool | None:
    """List the seller's item; None if the seller does not have it, False after 5 s of retries."""
    inventory = key_prefix + f"inventory:{sellerid}"
    item = f"{itemid}.{sellerid}"
    end = time.time() + 5
    pipe = conn.pipeline(True)

    while time.time() < end:
        try:
            pipe.watch(inventory)
            if not pipe.sismember(inventory, itemid):
                pipe.unwatch()
                return None

            pipe.multi()
            pipe.zadd(key_prefix + "market:", {item: price})
            pipe.srem(inventory, itemid)
            pipe.execute()
            return True
        except WatchError:
            pass
    return False


def purchase_item(
    conn: Any,
    buyerid: str,
    itemid: str,
    sellerid: str,
    lprice: float,
    *,
    key_prefix: str = "",
    on_try: OnTry = None,
) -> bool | None:
    """Buy the item at ``lprice``; None if sold, repriced or unaffordable, False after 10 s."""
    buyer = key_prefix + f"users:{buyerid}"
    seller = key_prefix + f"users:{sellerid}"
    item = f"{itemid}.{sellerid}"
    inventory = key_prefix + f"inventory:{buyerid}"
    market = key_prefix + "market:"
    end = time.time() + 10
    pipe = conn.pipeline(True)

    while time.time() < end:
        if on_try is not None:
            on_try()
        try:
            pipe.watch(market, buyer)

            price = pipe.zscore(market, item)
            funds = int(pipe.hget(buyer, "funds"))
            if price != lprice or price > funds:
                pipe.unwatch()
                return None

            pipe.multi()
            pipe.hincrby(seller, "funds", int(price))
            pipe.hincrby(buyer, "funds", int(-price))
            pipe.sadd(inventory, itemid)
            pipe.zrem(market, item)
            pipe.execute()
            return True
        except WatchError:
            pass

    return False
