"""Port the ch06 guild autocomplete, sync: ``autocomplete_on_prefix`` (L70).

Redis in Action §6.1.2, listing 6.10: ``find_prefix_range`` (L58, shared with the asyncio port)
turns the prefix into two bounds over `` `a-z{ ``; the two bounds plus a uuid are added as
marker members (ZADD), then a WATCH loop reads their ranks (ZRANK x2) and, in MULTI, removes
them and reads the page between them (ZREM, ZRANGE), retrying on WatchError with no pause and
no timeout. Flaws kept as written (inventory row 9): every read writes, markers leak when a
caller dies between the ZADD and the EXEC, other callers' markers shrink the page. The book
filters with ``b'{' not in item``; here replies are decoded first, so either
``decode_responses`` works.
"""

from __future__ import annotations

import uuid
from typing import Any

from redis.exceptions import WatchError

from .._util import OnTry, text
from ..ch06_autocomplete import find_prefix_range

__all__ = ["autocomplete_on_prefix", "find_prefix_range"]


def autocomplete_on_prefix(
    conn: Any, guild: str, prefix: str, *, key_prefix: str = "", on_try: OnTry = None
) -> list[str]:
    """Add two markers, then WATCH, rank them and MULTI(ZREM markers, ZRANGE), retrying."""
    start, end = find_prefix_range(prefix)
    identifier = str(uuid.uuid4())
    start += identifier
    end += identifier
    zset_name = key_prefix + "members:" + guild

    conn.zadd(zset_name, {start: 0, end: 0})
    pipeline = conn.pipeline(True)
    while True:
        try:
            if on_try is not None:
                on_try()
            pipeline.watch(zset_name)
            sindex = pipeline.zrank(zset_name, start)
            eindex = pipeline.zrank(zset_name, end)
            erange = min(sindex + 9, eindex - 2)
            pipeline.multi()
            pipeline.zrem(zset_name, start, end)
            pipeline.zrange(zset_name, sindex, erange)
            items = pipeline.execute()[-1]
            break
        except WatchError:
            continue

    return [t for t in (str(text(item)) for item in items) if "{" not in t]
