"""Port the ch06 autocompleters: recent contacts (L18-L40) and the guild with markers (L58-L107).

Redis in Action §6.1.1 keeps a user's 100 recent contacts in a LIST (LREM, LPUSH, LTRIM in one
MULTI) and filters it on the client (with the errata's lower-casing). §6.1.2 completes a prefix
over a guild ZSET of equal scores: ``find_prefix_range`` turns the prefix into two bounds over
the alphabet `` `a-z{ ``, the two bounds plus a uuid are added as marker members, and a WATCH
loop reads their ranks and, in MULTI, removes them and reads the page between them, retrying on
WatchError. Flaws kept as written (inventory row 9): every read writes, markers leak when a
caller dies between the ZADD and the EXEC, other callers' markers shrink the page, and names
outside the alphabet get wrong ranges. Python 2 ``str`` replies become decoded text.
"""

from __future__ import annotations

import bisect
import uuid
from typing import Any

from redis.exceptions import WatchError

from ._util import OnTry, text

__all__ = [
    "add_update_contact",
    "autocomplete_on_prefix",
    "fetch_autocomplete_list",
    "find_prefix_range",
    "join_guild",
    "leave_guild",
    "remove_contact",
]

#: The characters the book's names may use, with the neighbours of ``a`` and ``z``.
VALID_CHARACTERS = "`abcdefghijklmnopqrstuvwxyz{"


async def add_update_contact(conn: Any, user: str, contact: str, *, key_prefix: str = "") -> None:
    """Move ``contact`` to the front of ``user``'s list, keeping 100, in one MULTI.

    Redis in Action §6.1.1 (ch06 L18).
    """
    ac_list = key_prefix + "recent:" + user
    pipeline = conn.pipeline(True)
    pipeline.lrem(ac_list, 0, contact)
    pipeline.lpush(ac_list, contact)
    pipeline.ltrim(ac_list, 0, 99)
    await pipeline.execute()


async def remove_contact(conn: Any, user: str, contact: str, *, key_prefix: str = "") -> None:
    """Remove ``contact`` from ``user``'s list (LREM).

    Redis in Action §6.1.1 (ch06 L34).
    """
    await conn.lrem(key_prefix + "recent:" + user, 0, contact)


async def fetch_autocomplete_list(
    conn: Any, user: str, prefix: str, *, key_prefix: str = ""
) -> list[str]:
    """Read ``user``'s whole list and keep the contacts whose lower case starts with ``prefix``.

    Redis in Action §6.1.1 (ch06 L40, with the errata's ``.lower()``).
    """
    candidates = await conn.lrange(key_prefix + "recent:" + user, 0, -1)
    matches = []
    for candidate in candidates:
        candidate = str(text(candidate))
        if candidate.lower().startswith(prefix):
            matches.append(candidate)
    return matches


def find_prefix_range(prefix: str) -> tuple[str, str]:
    """Return the marker bounds around ``prefix``: its last letter's predecessor + ``{``, and ``{``.

    Redis in Action §6.1.2 (ch06 L58).
    """
    posn = bisect.bisect_left(VALID_CHARACTERS, prefix[-1:])
    suffix = VALID_CHARACTERS[(posn or 1) - 1]
    return prefix[:-1] + suffix + "{", prefix + "{"


async def autocomplete_on_prefix(
    conn: Any, guild: str, prefix: str, *, key_prefix: str = "", on_try: OnTry = None
) -> list[str]:
    """Add two markers, then WATCH, rank them and MULTI(ZREM markers, ZRANGE), retrying.

    Returns up to 10 members between the markers, without any member holding ``{``. Redis in
    Action §6.1.2 (ch06 L70).
    """
    start, end = find_prefix_range(prefix)
    identifier = str(uuid.uuid4())
    start += identifier
    end += identifier
    zset_name = key_prefix + "members:" + guild

    await conn.zadd(zset_name, {start: 0, end: 0})
    async with conn.pipeline(True) as pipeline:
        while True:
            try:
                if on_try is not None:
                    on_try()
                await pipeline.watch(zset_name)
                sindex = await pipeline.zrank(zset_name, start)
                eindex = await pipeline.zrank(zset_name, end)
                erange = min(sindex + 9, eindex - 2)
                pipeline.multi()
                pipeline.zrem(zset_name, start, end)
                pipeline.zrange(zset_name, sindex, erange)
                items = (await pipeline.execute())[-1]
                break
            except WatchError:
                continue

    return [t for t in (str(text(item)) for item in items) if "{" not in t]


async def join_guild(conn: Any, guild: str, user: str, *, key_prefix: str = "") -> None:
    """Add ``user`` to the guild ZSET with score 0.

    Redis in Action §6.1.2 (ch06 L104).
    """
    await conn.zadd(key_prefix + "members:" + guild, {user: 0})


async def leave_guild(conn: Any, guild: str, user: str, *, key_prefix: str = "") -> None:
    """Remove ``user`` from the guild ZSET.

    Redis in Action §6.1.2 (ch06 L107).
    """
    await conn.zrem(key_prefix + "members:" + guild, user)
