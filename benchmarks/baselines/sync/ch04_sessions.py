"""Port ch04 ``update_token`` (L210) and ``update_token_pipeline`` (L228), sync.

Redis in Action §4.5, listings 4.7 and 4.8 (inventory §2a): the same five commands sent one
round trip at a time, then in one ``pipeline(False)`` (no MULTI/EXEC). Client clock
(``time.time()``), the book's key names, the token's history trimmed to 25 items.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["update_token", "update_token_pipeline"]


def update_token(
    conn: Any, token: str, user: str, item: str | None = None, *, key_prefix: str = ""
) -> None:
    """Record a page view with five sequential commands (five round trips)."""
    timestamp = time.time()
    conn.hset(key_prefix + "login:", token, user)
    conn.zadd(key_prefix + "recent:", {token: timestamp})
    if item:
        conn.zadd(key_prefix + "viewed:" + token, {item: timestamp})
        conn.zremrangebyrank(key_prefix + "viewed:" + token, 0, -26)
        conn.zincrby(key_prefix + "viewed:", -1, item)


def update_token_pipeline(
    conn: Any, token: str, user: str, item: str | None = None, *, key_prefix: str = ""
) -> None:
    """Record a page view with the same five commands in one non-transactional pipeline."""
    timestamp = time.time()
    pipe = conn.pipeline(False)
    pipe.hset(key_prefix + "login:", token, user)
    pipe.zadd(key_prefix + "recent:", {token: timestamp})
    if item:
        pipe.zadd(key_prefix + "viewed:" + token, {item: timestamp})
        pipe.zremrangebyrank(key_prefix + "viewed:" + token, 0, -26)
        pipe.zincrby(key_prefix + "viewed:", -1, item)
    pipe.execute()
