"""Port the ch11 Lua marketplace, sync: ``list_item`` (L424) and ``purchase_item`` (L396).

Redis in Action §11.3.2, the "using Lua" row of its marketplace table (inventory §2d, row 13):
one EVALSHA per listing and per purchase, no WATCH, no lock, no expected price. The script texts
are the asyncio port's (:data:`.ch11_market.LIST_LUA`, :data:`.ch11_market.PURCHASE_LUA`), with
its one repair: the repository's listing script calls ``ZADD market: <item> <price>``, score and
member swapped, which fails for every item id that is not a number; here it is
``ZADD market: <price> <item>``. The book's ``script_load`` is :class:`.scripting.LoadedScript`
(EVALSHA, EVAL on NOSCRIPT), as in the book.
"""

from __future__ import annotations

from typing import Any

from ..ch11_market import LIST_LUA, PURCHASE_LUA
from .scripting import LoadedScript

__all__ = ["list_item", "load", "purchase_item"]

_purchase_item_lua = LoadedScript(PURCHASE_LUA)
_list_item_lua = LoadedScript(LIST_LUA)


def purchase_item(
    conn: Any, buyerid: str, itemid: str, sellerid: str, *, key_prefix: str = ""
) -> Any:
    """Buy the item at its current price in one script; 1, or None if gone or unaffordable."""
    buyer = key_prefix + f"users:{buyerid}"
    seller = key_prefix + f"users:{sellerid}"
    item = f"{itemid}.{sellerid}"
    inventory = key_prefix + f"inventory:{buyerid}"
    keys = [key_prefix + "market:", buyer, seller, inventory]
    return _purchase_item_lua(conn, keys=keys, args=[item, itemid])


def list_item(conn: Any, itemid: str, sellerid: str, price: float, *, key_prefix: str = "") -> Any:
    """List the seller's item in one script; 1, or None if the seller does not have it."""
    inv = key_prefix + f"inventory:{sellerid}"
    item = f"{itemid}.{sellerid}"
    return _list_item_lua(conn, keys=[inv, key_prefix + "market:"], args=[itemid, item, price])


def load(conn: Any) -> None:
    """SCRIPT LOAD both scripts, so timed runs never pay for NOSCRIPT."""
    conn.script_load(PURCHASE_LUA)
    conn.script_load(LIST_LUA)
