"""Port the ch06 marketplace under a lock: ``purchase_item_with_lock`` (L176), and its listing.

Redis in Action §6.2.1 (coarse lock, one ``lock:market:``) and §6.2.4 (fine-grained locks, one
per item), the "with lock" and "fine-grained lock" rows of the §11.3.2 table (inventory §2d,
rows 11-12). The lock is ch06's ``acquire_lock`` (SETNX, no expiry, 1 ms retry) and
``release_lock`` (:mod:`.ch06_locks`). Two repairs, both needed to run at all: L191 compared the
float price with the funds' raw bytes (a TypeError on Python 3), here it compares numbers; and
the repository has no locked listing, so ``list_item_with_lock`` is reconstructed the way the
table's numbers show it ran (listings fall to the purchase rate: listers take the same lock),
with the checks of ch04's ``list_item``. The fine-grained variant passes
``lockname="market:<item>.<seller>"``; no code for it exists in the book.
"""

from __future__ import annotations

from typing import Any

from .ch06_locks import acquire_lock, release_lock

__all__ = ["item_lockname", "list_item_with_lock", "purchase_item_with_lock"]


def item_lockname(itemid: str, sellerid: str) -> str:
    """The fine-grained lock of one listing (§6.2.4): ``market:<item>.<seller>``."""
    return f"market:{itemid}.{sellerid}"


async def list_item_with_lock(
    conn: Any,
    itemid: str,
    sellerid: str,
    price: float,
    *,
    lockname: str = "market:",
    key_prefix: str = "",
) -> bool | None:
    """List the seller's item under ``lockname``; None if the seller does not have it.

    Reconstructed (inventory §2d): ch04's ``list_item`` checks, under ch06's lock.
    """
    inventory = key_prefix + f"inventory:{sellerid}"
    item = f"{itemid}.{sellerid}"
    locked = await acquire_lock(conn, lockname, key_prefix=key_prefix)
    if not locked:
        return False
    try:
        if not await conn.sismember(inventory, itemid):
            return None
        pipe = conn.pipeline(True)
        pipe.zadd(key_prefix + "market:", {item: price})
        pipe.srem(inventory, itemid)
        await pipe.execute()
        return True
    finally:
        await release_lock(conn, lockname, str(locked), key_prefix=key_prefix)


async def purchase_item_with_lock(
    conn: Any,
    buyerid: str,
    itemid: str,
    sellerid: str,
    *,
    lockname: str = "market:",
    key_prefix: str = "",
) -> bool | None:
    """Buy the item under ``lockname``; None if it is gone or unaffordable.

    Redis in Action §6.2.1, listing 6.7 (ch06 L176), L191 fixed to compare numbers.
    """
    buyer = key_prefix + f"users:{buyerid}"
    seller = key_prefix + f"users:{sellerid}"
    item = f"{itemid}.{sellerid}"
    inventory = key_prefix + f"inventory:{buyerid}"
    market = key_prefix + "market:"

    locked = await acquire_lock(conn, lockname, key_prefix=key_prefix)
    if not locked:
        return False

    pipe = conn.pipeline(True)
    try:
        pipe.zscore(market, item)
        pipe.hget(buyer, "funds")
        price, funds = await pipe.execute()
        if price is None or price > int(funds):
            return None

        pipe.hincrby(seller, "funds", int(price))
        pipe.hincrby(buyer, "funds", int(-price))
        pipe.sadd(inventory, itemid)
        pipe.zrem(market, item)
        await pipe.execute()
        return True
    finally:
        await release_lock(conn, lockname, str(locked), key_prefix=key_prefix)
