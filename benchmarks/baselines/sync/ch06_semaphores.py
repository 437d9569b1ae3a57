"""Port the ch06 semaphores, sync: basic (L265), fair (L294) and fair under a lock (L351).

Redis in Action §6.3, listings 6.12-6.15 and 6.17: a ZSET of holders scored by the client's
clock (basic), plus an owner ZSET ranked by a shared counter (fair), in MULTI/EXEC
transactions; the loser removes itself in a separate round trip. Each acquire tries once. The
lock-guarded variant wraps the fair acquire in ch06's ``acquire_lock`` (SETNX, no expiry, a
10 ms acquire timeout, :mod:`.ch06_acquire_lock`) and ``release_lock`` (:mod:`.ch06_locks`).
Races kept as written (inventory rows 20-22): the fair variant can over-admit when its two
transactions interleave with another client's. ``key_prefix`` applies to the lock only; the
caller passes a prefixed ``semname``, as with the asyncio port.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from .ch06_acquire_lock import acquire_lock
from .ch06_locks import release_lock

__all__ = [
    "acquire_fair_semaphore",
    "acquire_semaphore",
    "acquire_semaphore_with_lock",
    "release_fair_semaphore",
    "release_semaphore",
]


def acquire_semaphore(conn: Any, semname: str, limit: int, timeout: float = 10) -> str | None:
    """Try once to take a slot: expire, add ourselves, and check our rank in one MULTI."""
    identifier = str(uuid.uuid4())
    now = time.time()

    pipeline = conn.pipeline(True)
    pipeline.zremrangebyscore(semname, "-inf", now - timeout)
    pipeline.zadd(semname, {identifier: now})
    pipeline.zrank(semname, identifier)
    if pipeline.execute()[-1] < limit:
        return identifier

    conn.zrem(semname, identifier)
    return None


def release_semaphore(conn: Any, semname: str, identifier: str) -> Any:
    """Give a slot back (ZREM); true if it was still held."""
    return conn.zrem(semname, identifier)


def acquire_fair_semaphore(conn: Any, semname: str, limit: int, timeout: float = 10) -> str | None:
    """Try once to take a slot ranked by a shared counter, in two MULTI transactions."""
    identifier = str(uuid.uuid4())
    czset = semname + ":owner"
    ctr = semname + ":counter"

    now = time.time()
    pipeline = conn.pipeline(True)
    pipeline.zremrangebyscore(semname, "-inf", now - timeout)
    pipeline.zinterstore(czset, {czset: 1, semname: 0})

    pipeline.incr(ctr)
    counter = pipeline.execute()[-1]

    pipeline.zadd(semname, {identifier: now})
    pipeline.zadd(czset, {identifier: counter})

    pipeline.zrank(czset, identifier)
    if pipeline.execute()[-1] < limit:
        return identifier

    pipeline.zrem(semname, identifier)
    pipeline.zrem(czset, identifier)
    pipeline.execute()
    return None


def release_fair_semaphore(conn: Any, semname: str, identifier: str) -> Any:
    """Give a fair slot back (ZREM from both ZSETs in MULTI); true if it was still held."""
    pipeline = conn.pipeline(True)
    pipeline.zrem(semname, identifier)
    pipeline.zrem(semname + ":owner", identifier)
    return pipeline.execute()[0]


def acquire_semaphore_with_lock(
    conn: Any, semname: str, limit: int, timeout: float = 10, *, key_prefix: str = ""
) -> str | None:
    """Take a fair slot while holding ``lock:<semname>`` (10 ms to get the lock, else None)."""
    identifier = acquire_lock(conn, semname, acquire_timeout=0.01, key_prefix=key_prefix)
    if identifier:
        try:
            return acquire_fair_semaphore(conn, semname, limit, timeout)
        finally:
            release_lock(conn, semname, str(identifier), key_prefix=key_prefix)
    return None
