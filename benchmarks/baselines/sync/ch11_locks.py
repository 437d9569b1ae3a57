"""Port the ch11 Lua lock, sync: ``acquire_lock_with_timeout`` (L158) and ``release_lock`` (L209).

Redis in Action §11.2.1, listings 11.6 and 11.7: one EVALSHA per attempt (EXISTS, then SETEX in
whole seconds), ``time.sleep(.001)`` after a failed attempt, and a compare-and-delete release
script. The book's ``script_load`` (EVALSHA, EVAL on NOSCRIPT) is :class:`.scripting.LoadedScript`:
one EVALSHA per call once the script is loaded.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from .._util import OnTry, text
from ..ch11_locks import ACQUIRE_LUA, RELEASE_LUA
from .scripting import LoadedScript

__all__ = ["acquire_lock_with_timeout", "load", "release_lock"]

_acquire_lock_with_timeout_lua = LoadedScript(ACQUIRE_LUA)
_release_lock_lua = LoadedScript(RELEASE_LUA)


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
            conn, keys=[lockname], args=[lock_timeout, identifier]
        )
        acquired = text(reply) == "OK"
        time.sleep(0.001 * (not acquired))
    return acquired and identifier


def release_lock(conn: Any, lockname: str, identifier: str, *, key_prefix: str = "") -> Any:
    """Delete the lock if it still holds ``identifier``, in one Lua compare-and-delete."""
    lockname = key_prefix + "lock:" + lockname
    return _release_lock_lua(conn, keys=[lockname], args=[identifier])


def load(conn: Any) -> None:
    """SCRIPT LOAD both scripts, so timed runs never pay for NOSCRIPT."""
    conn.script_load(ACQUIRE_LUA)
    conn.script_load(RELEASE_LUA)
