"""Port the ch11 Lua lock, sync: ``acquire_lock_with_timeout`` (L158) and ``release_lock`` (L209).

Redis in Action §11.2.1, listings 11.6 and 11.7: one EVALSHA per attempt (EXISTS, then SETEX in
whole seconds), ``time.sleep(.001)`` after a failed attempt, and a compare-and-delete release
script. The book's ``script_load`` (EVALSHA, EVAL on NOSCRIPT) becomes redis-py's ``Script``
(EVALSHA, SCRIPT LOAD on NOSCRIPT): one EVALSHA per call once the script is loaded.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from redis.commands.core import Script

from .._util import OnTry, text
from ..ch11_locks import ACQUIRE_LUA, RELEASE_LUA

__all__ = ["acquire_lock_with_timeout", "load", "release_lock"]

# Bytes, so Script computes the SHA1 without a client; the client comes with each call.
_acquire_lock_with_timeout_lua = Script(None, ACQUIRE_LUA.encode())  # type: ignore[arg-type]
_release_lock_lua = Script(None, RELEASE_LUA.encode())  # type: ignore[arg-type]


def acquire_lock_with_timeout(
    conn: Any,
    lockname: str,
    acquire_timeout: float = 10,
    lock_timeout: float = 10,
    *,
    key_prefix: str = "",
    on_try: OnTry = None,
) -> str | bool:
    """Take the lock with one Lua EXISTS+SETEX per attempt, sleeping 1 ms after a failure."""
    identifier = str(uuid.uuid4())
    lockname = key_prefix + "lock:" + lockname
    lock_timeout = int(math.ceil(lock_timeout))  # noqa: RUF046 (the book's own line)
    acquired = False
    end = time.time() + acquire_timeout
    while time.time() < end and not acquired:
        if on_try is not None:
            on_try()
        reply = _acquire_lock_with_timeout_lua(
            keys=[lockname], args=[lock_timeout, identifier], client=conn
        )
        acquired = text(reply) == "OK"
        time.sleep(0.001 * (not acquired))
    return acquired and identifier


def release_lock(conn: Any, lockname: str, identifier: str, *, key_prefix: str = "") -> Any:
    """Delete the lock if it still holds ``identifier``, in one Lua compare-and-delete."""
    lockname = key_prefix + "lock:" + lockname
    return _release_lock_lua(keys=[lockname], args=[identifier], client=conn)


def load(conn: Any) -> None:
    """SCRIPT LOAD both scripts, so timed runs never pay for NOSCRIPT."""
    conn.script_load(ACQUIRE_LUA)
    conn.script_load(RELEASE_LUA)
