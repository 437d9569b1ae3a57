"""Port the ch06 locks: ``acquire_lock``, ``acquire_lock_with_timeout`` and ``release_lock``.

Redis in Action §6.2 (ch06 L159, L240, L210): SETNX with a 1 ms busy-wait; the "original lock"
of the §11.2 table adds EXPIRE after a successful SETNX and repairs a missing TTL (the errata
fix, ``ttl < 0``) after a failed one. Release WATCHes the key, compares the token, and deletes it
in MULTI/EXEC, retrying on WatchError. Races kept as written (inventory rows 17-18).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from typing import Any

from redis.exceptions import WatchError

from ._util import OnTry, text

__all__ = ["acquire_lock", "acquire_lock_with_timeout", "release_lock"]


async def acquire_lock(
    conn: Any,
    lockname: str,
    acquire_timeout: float = 10,
    *,
    key_prefix: str = "",
    on_try: OnTry = None,
) -> str | bool:
    """Take the lock with SETNX (no expiry), retrying every 1 ms; the token, or False.

    Redis in Action §6.2.3, listing 6.8 (ch06 L159).
    """
    identifier = str(uuid.uuid4())
    end = time.time() + acquire_timeout
    while time.time() < end:
        if on_try is not None:
            on_try()
        if await conn.setnx(key_prefix + "lock:" + lockname, identifier):
            return identifier
        await asyncio.sleep(0.001)
    return False


async def acquire_lock_with_timeout(
    conn: Any,
    lockname: str,
    acquire_timeout: float = 10,
    lock_timeout: float = 10,
    *,
    key_prefix: str = "",
    on_try: OnTry = None,
) -> str | bool:
    """Take the lock with SETNX then EXPIRE (whole seconds), retrying every 1 ms.

    Redis in Action §6.2.5, listing 6.11 (ch06 L240, the "original lock" of §11.2).
    """
    identifier = str(uuid.uuid4())
    lockname = key_prefix + "lock:" + lockname
    lock_timeout = int(math.ceil(lock_timeout))  # noqa: RUF046 (the book's own line)
    end = time.time() + acquire_timeout
    while time.time() < end:
        if on_try is not None:
            on_try()
        if await conn.setnx(lockname, identifier):
            await conn.expire(lockname, lock_timeout)
            return identifier
        elif await conn.ttl(lockname) < 0:
            await conn.expire(lockname, lock_timeout)
        await asyncio.sleep(0.001)
    return False


async def release_lock(conn: Any, lockname: str, identifier: str, *, key_prefix: str = "") -> bool:
    """Delete the lock if it still holds ``identifier`` (WATCH, GET, MULTI/DEL/EXEC).

    Redis in Action §6.2.3, listing 6.9 (ch06 L210).
    """
    lockname = key_prefix + "lock:" + lockname
    async with conn.pipeline(True) as pipe:
        while True:
            try:
                await pipe.watch(lockname)
                if text(await pipe.get(lockname)) == identifier:
                    pipe.multi()
                    pipe.delete(lockname)
                    await pipe.execute()
                    return True
                await pipe.unwatch()
                break
            except WatchError:
                pass
    return False
