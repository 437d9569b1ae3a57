"""Port ch06 ``execute_later`` (L435) and one turn of ``worker_watch_queue`` (L398), asyncio.

Redis in Action §6.4.1 and §6.4.2: a task is the JSON
``[identifier, queue, name, args]``; with no delay it is ``RPUSH``ed onto ``queue:<queue>``, and
a worker ``BLPOP``s it (30 s timeout), decodes it and calls its callback. There is no ack: a
worker that dies after its ``BLPOP`` loses the task. The book's worker unpacks two fields where
``execute_later`` writes four (the two listings never met); the port unpacks the four it pushes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["execute_later", "work_one"]


async def execute_later(
    conn: Any, queue: str, name: str, args: list[Any], delay: float = 0, *, key_prefix: str = ""
) -> str:
    """Queue a call of ``name(*args)``: RPUSH now, or ZADD to ``delayed:`` for later."""
    identifier = str(uuid.uuid4())
    item = json.dumps([identifier, queue, name, args])
    if delay > 0:
        await conn.zadd(key_prefix + "delayed:", {item: time.time() + delay})
    else:
        await conn.rpush(key_prefix + "queue:" + queue, item)
    return identifier


async def work_one(conn: Any, queue: str, callbacks: Mapping[str, Callable[..., Any]]) -> bool:
    """One turn of ``worker_watch_queue`` on the list ``queue``: BLPOP, decode, call.

    False when the BLPOP timed out or the callback is unknown (the book logs it and goes on).
    """
    packed = await conn.blpop([queue], 30)
    if not packed:
        return False
    _identifier, _queue, name, args = json.loads(packed[1])
    if name not in callbacks:
        return False
    callbacks[name](*args)
    return True
