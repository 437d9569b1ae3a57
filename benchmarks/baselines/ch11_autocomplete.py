"""Port the ch11 Lua autocomplete: ``autocomplete_on_prefix`` (L331) and its script (L341).

Redis in Action §11.3.1 keeps the ch06 markers and moves every step after them into one script:
add both markers, read their ranks, remove them, and return the page between them (at most 10,
ending before the end marker). One EVALSHA per call and no WATCH, so nothing retries, but every
call still writes twice to the guild ZSET (not replica-safe), and the `` `a-z{ `` range of
``find_prefix_range`` is the ch06 one. The book's ``script_load`` becomes redis-py's
``AsyncScript``, as inventory §2f asks.
"""

from __future__ import annotations

import uuid
from typing import Any

from redis.commands.core import AsyncScript

from ._util import OnTry, text
from .ch06_autocomplete import find_prefix_range

__all__ = ["AUTOCOMPLETE_LUA", "autocomplete_on_prefix", "load"]

AUTOCOMPLETE_LUA = """
redis.call('zadd', KEYS[1], 0, ARGV[1], 0, ARGV[2])
local first = redis.call('zrank', KEYS[1], ARGV[1])
local last = redis.call('zrank', KEYS[1], ARGV[2])
last = math.min(first + 9, last - 2)
redis.call('zrem', KEYS[1], ARGV[1], ARGV[2])
return redis.call('zrange', KEYS[1], first, last)
"""

# Bytes, so AsyncScript computes the SHA1 without a client; the client comes with each call.
_autocomplete_on_prefix_lua = AsyncScript(None, AUTOCOMPLETE_LUA.encode())  # type: ignore[arg-type]


async def autocomplete_on_prefix(
    conn: Any, guild: str, prefix: str, *, key_prefix: str = "", on_try: OnTry = None
) -> list[str]:
    """Complete ``prefix`` over the guild with one EVALSHA of the marker script.

    Returns up to 10 members, without any member holding ``{``. Redis in Action §11.3.1
    (ch11 L331, L341).
    """
    start, end = find_prefix_range(prefix)
    identifier = str(uuid.uuid4())
    if on_try is not None:
        on_try()
    items = await _autocomplete_on_prefix_lua(
        keys=[key_prefix + "members:" + guild],
        args=[start + identifier, end + identifier],
        client=conn,
    )
    return [t for t in (str(text(item)) for item in items) if "{" not in t]


async def load(conn: Any) -> None:
    """SCRIPT LOAD the script, so timed runs never pay for NOSCRIPT (inventory §2f)."""
    await conn.script_load(AUTOCOMPLETE_LUA)
