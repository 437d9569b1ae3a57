"""Port the ch06 "original" lock, sync: ``acquire_lock_with_timeout`` and ``release_lock``.

Redis in Action §6.2.5, listing 6.11 (ch06 L240) and §6.2.3, listing 6.9 (ch06 L210): SETNX, then
EXPIRE on success; after a failure TTL, EXPIRE if it has none, and ``time.sleep(.001)``. Release
WATCHes the key, compares the token, and deletes it in MULTI/EXEC, retrying on WatchError.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from redis.exceptions import WatchError

from .._util import OnTry, text

__all__ = ["acquire_lock_with_timeout", "release_lock"]


def acquire_lock_with_timeout(
    conn: Any,
    lockname: str,
    acquire_timeout: float = 10,
    lock_timeout: float = 10,
    *,
    key_prefix: str = "",
    on_try: OnTry = None,
) -> str | bool:
    """Take the lock with SETNX then EXPIRE (whole seconds), sleeping 1 ms after a failure."""
    identifier = str(uuid.uuid4())
    lockname = key_prefix + "lock:" + lockname
    lock_timeout = int(math.ceil(lock_timeout))  # noqa: RUF046 (the book's own line)
    end = time.time() + acquire_timeout
    while time.time() < end:
        if on_try is not None:
            on_try()
        if conn.setnx(lockname, identifier):
            conn.expire(lockname, lock_timeout)
            return identifier
        elif conn.ttl(lockname) < 0:
            conn.expire(lockname, lock_timeout)
        time.sleep(0.001)
    return False


def release_lock(conn: Any, lockname: str, identifier: str, *, key_prefix: str = "") -> bool:
    """Delete the lock if it still holds ``identifier`` (WATCH, GET, MULTI/DEL/EXEC)."""
    pipe = conn.pipeline(True)
    lockname = key_prefix + "lock:" + lockname
    while True:
        try:
            pipe.watch(lockname)
            if text(pipe.get(lockname)) == identifier:
                pipe.multi()
                pipe.delete(lockname)
                pipe.execute()
                return True
            pipe.unwatch()
            break
        except WatchError:
            pass
    return False
