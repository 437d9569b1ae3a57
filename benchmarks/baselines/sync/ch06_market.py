"""Port the ch06 marketplace under a lock, sync: ``purchase_item_with_lock`` (L176) and listing.

Redis in Action §6.2.1, listing 6.7 (coarse lock, one ``lock:market:``) and §6.2.4
(fine-grained locks, one per item): the "with lock" and "fine-grained lock" rows of the §11.3.2
table (inventory §2d, rows 11-12). The lock is ch06's ``acquire_lock`` (SETNX, no expiry, 1 ms
retry, :mod:`.ch06_acquire_lock`) and ``release_lock`` (WATCH, GET, MULTI/DEL/EXEC,
:mod:`.ch06_locks`). Two repairs, both needed to run at all, as in the asyncio port: L191
compared the float price with the funds' raw bytes (a TypeError on Python 3), here it compares
numbers; and the repository has no locked listing, so ``list_item_with_lock`` is reconstructed
the way the table's numbers show it ran (listers take the same lock), with the checks of ch04's
``list_item``. The fine-grained variant passes ``lockname=item_lockname(item, seller)``.
"""

from __future__ import annotations

from typing import Any

from ..ch06_market import item_lockname
from .ch06_acquire_lock import acquire_lock
from .ch06_locks import release_lock

__all__ = ["item_lockname", "list_item_with_lock", "purchase_item_with_lock"]


def list_item_with_lock(
    conn: Any,
    itemid: str,
    sellerid: str,
    price: float,
    *,
    lockname: str = "market:",
    key_prefix: str = "",
) -> bool | None:
    """List the seller's item under ``lockname``; None if the seller does not have it."""
    inventory = key_prefix + f"inventory:{sellerid}"
    item = f"{itemid}.{sellerid}"
    locked = acquire_lock(conn, lockname, key_prefix=key_prefix)
    if not locked:
        return False
    try:
        if not conn.sismember(inventory, itemid):
            return None
        pipe = conn.pipeline(True)
        pipe.zadd(key_prefix + "market:", {item: price})
        pipe.srem(inventory, itemid)
        pipe.execute()
        return True
    finally:
        release_lock(conn, lockname, str(locked), key_prefix=key_prefix)


def purchase_item_with_lock(
    conn: Any,
    buyerid: str,
    itemid: str,
    sellerid: str,
    *,
    lockname: str = "market:",
    key_prefix: str = "",
) -> bool | None:
    """Buy the item under ``lockname``; None if it is gone or unaffordable."""
    buyer = key_prefix + f"users:{buyerid}"
    seller = key_prefix + f"users:{sellerid}"
    item = f"{itemid}.{sellerid}"
    inventory = key_prefix + f"inventory:{buyerid}"
    market = key_prefix + "market:"

    locked = acquire_lock(conn, lockname, key_prefix=key_prefix)
    if not locked:
        return False

    pipe = conn.pipeline(True)
    try:
        pipe.zscore(market, item)
        pipe.hget(buyer, "funds")
        price, funds = pipe.execute()
        if price is None or price > int(funds):
            return None

        pipe.hincrby(seller, "funds", int(price))
        pipe.hincrby(buyer, "funds", int(-price))
        pipe.sadd(inventory, itemid)
        pipe.zrem(market, item)
        pipe.execute()
        return True
    finally:
        release_lock(conn, lockname, str(locked), key_prefix=key_prefix)
