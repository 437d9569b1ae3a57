"""Port the ch06 lock without expiry, sync: ``acquire_lock`` (L159).

Redis in Action §6.2.3, listing 6.8: SETNX with a random identifier, ``time.sleep(.001)`` after
each failure, until ``acquire_timeout``; the lock never expires. The ch06 market and the
lock-guarded semaphore take it, and release it with :func:`.ch06_locks.release_lock`
(listing 6.9). Its own module because the sync lock modules belong to the lock table.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from .._util import OnTry

__all__ = ["acquire_lock"]


def acquire_lock(
    conn: Any,
    lockname: str,
    acquire_timeout: float = 10,
    *,
    key_prefix: str = "",
    on_try: OnTry = None,
) -> str | bool:
    """Take the lock with SETNX (no expiry), retrying every 1 ms; the token, or False."""
    identifier = str(uuid.uuid4())

    end = time.time() + acquire_timeout
    while time.time() < end:
        if on_try is not None:
            on_try()
        if conn.setnx(key_prefix + "lock:" + lockname, identifier):
            return identifier

        time.sleep(0.001)

    return False
