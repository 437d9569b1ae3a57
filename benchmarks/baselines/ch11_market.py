"""Port the ch11 Lua marketplace: ``list_item`` (L424) and ``purchase_item`` (L396).

Redis in Action §11.3.2, the "using Lua" row of its marketplace table (inventory §2d, row 13):
one EVALSHA per listing and per purchase, no WATCH, no lock, and no expected price (the buyer
pays whatever the price is now). One repair: the repository's ``list_item_lua`` calls
``ZADD market: <item> <price>``, score and member swapped, which fails for every item id that
is not a number (the book's test passes only because it never buys what it listed); here it is
``ZADD market: <price> <item>``, as the table's 505,000 listings need. The book's
``script_load`` becomes redis-py's ``AsyncScript`` (EVALSHA, SCRIPT LOAD on NOSCRIPT).
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import AsyncScript

__all__ = ["LIST_LUA", "PURCHASE_LUA", "list_item", "load", "purchase_item"]

PURCHASE_LUA = """
local price = tonumber(redis.call('zscore', KEYS[1], ARGV[1]))
local funds = tonumber(redis.call('hget', KEYS[2], 'funds'))

if price and funds and funds >= price then
    redis.call('hincrby', KEYS[3], 'funds', price)
    redis.call('hincrby', KEYS[2], 'funds', -price)
    redis.call('sadd', KEYS[4], ARGV[2])
    redis.call('zrem', KEYS[1], ARGV[1])
    return true
end
"""

LIST_LUA = """
if redis.call('sismember', KEYS[1], ARGV[1]) ~= 0 then
    redis.call('zadd', KEYS[2], ARGV[3], ARGV[2])
    redis.call('srem', KEYS[1], ARGV[1])
    return true
end
"""

# Bytes, so AsyncScript computes the SHA1 without a client; the client comes with each call.
_purchase_item_lua = AsyncScript(None, PURCHASE_LUA.encode())  # type: ignore[arg-type]
_list_item_lua = AsyncScript(None, LIST_LUA.encode())  # type: ignore[arg-type]


async def purchase_item(
    conn: Any, buyerid: str, itemid: str, sellerid: str, *, key_prefix: str = ""
) -> Any:
    """Buy the item at its current price in one script; 1, or None if gone or unaffordable.

    Redis in Action §11.3.2, listing 11.x (ch11 L396).
    """
    buyer = key_prefix + f"users:{buyerid}"
    seller = key_prefix + f"users:{sellerid}"
    item = f"{itemid}.{sellerid}"
    inventory = key_prefix + f"inventory:{buyerid}"
    keys = [key_prefix + "market:", buyer, seller, inventory]
    return await _purchase_item_lua(keys=keys, args=[item, itemid], client=conn)


async def list_item(
    conn: Any, itemid: str, sellerid: str, price: float, *, key_prefix: str = ""
) -> Any:
    """List the seller's item in one script; 1, or None if the seller does not have it.

    Redis in Action §11.3.2 (ch11 L424).
    """
    inv = key_prefix + f"inventory:{sellerid}"
    item = f"{itemid}.{sellerid}"
    keys = [inv, key_prefix + "market:"]
    return await _list_item_lua(keys=keys, args=[itemid, item, price], client=conn)


async def load(conn: Any) -> None:
    """SCRIPT LOAD both scripts, so timed runs never pay for NOSCRIPT (inventory §2f)."""
    await conn.script_load(PURCHASE_LUA)
    await conn.script_load(LIST_LUA)
