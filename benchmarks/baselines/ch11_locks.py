"""Port the ch11 Lua lock: ``acquire_lock_with_timeout`` (L158, L174) and ``release_lock`` (L209).

Redis in Action §11.2.1: one EVALSHA per attempt (EXISTS, then SETEX in whole seconds), a 1 ms
sleep after a failed attempt, and a compare-and-delete release script. The book's
``script_load`` becomes redis-py's ``AsyncScript`` (EVALSHA, SCRIPT LOAD on NOSCRIPT), as
inventory §2f asks.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from typing import Any

from redis.commands.core import AsyncScript

from ._util import OnTry, text

__all__ = ["ACQUIRE_LUA", "RELEASE_LUA", "acquire_lock_with_timeout", "release_lock"]

ACQUIRE_LUA = """
if redis.call('exists', KEYS[1]) == 0 then
    return redis.call('setex', KEYS[1], unpack(ARGV))
end
"""

RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1]) or true
end
"""

# Bytes, so AsyncScript computes the SHA1 without a client; the client comes with each call.
_acquire_lock_with_timeout_lua = AsyncScript(None, ACQUIRE_LUA.encode())  # type: ignore[arg-type]
_release_lock_lua = AsyncScript(None, RELEASE_LUA.encode())  # type: ignore[arg-type]


async def acquire_lock_with_timeout(
    conn: Any,
    lockname: str,
    acquire_timeout: float = 10,
    lock_timeout: float = 10,
    *,
    key_prefix: str = "",
    on_try: OnTry = None,
) -> str | bool:
    """Take the lock with one Lua EXISTS+SETEX per attempt, sleeping 1 ms after a failure.

    Redis in Action §11.2.1, listing 11.6 (ch11 L158).
    """
    identifier = str(uuid.uuid4())
    lockname = key_prefix + "lock:" + lockname
    lock_timeout = int(math.ceil(lock_timeout))  # noqa: RUF046 (the book's own line)
    acquired = False
    end = time.time() + acquire_timeout
    while time.time() < end and not acquired:
        if on_try is not None:
            on_try()
        reply = await _acquire_lock_with_timeout_lua(
            keys=[lockname], args=[lock_timeout, identifier], client=conn
        )
        acquired = text(reply) == "OK"
        await asyncio.sleep(0.001 * (not acquired))
    return acquired and identifier


async def release_lock(conn: Any, lockname: str, identifier: str, *, key_prefix: str = "") -> Any:
    """Delete the lock if it still holds ``identifier``, in one Lua compare-and-delete.

    Redis in Action §11.2.1, listing 11.7 (ch11 L209).
    """
    lockname = key_prefix + "lock:" + lockname
    return await _release_lock_lua(keys=[lockname], args=[identifier], client=conn)


async def load(conn: Any) -> None:
    """SCRIPT LOAD both scripts, so timed runs never pay for NOSCRIPT (inventory §2b)."""
    await conn.script_load(ACQUIRE_LUA)
    await conn.script_load(RELEASE_LUA)
