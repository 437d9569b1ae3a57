"""Port of the ch06 semaphores: basic (L265), fair (L294) and fair guarded by a lock (L351).

Redis in Action §6.3: a ZSET of holders scored by the client's clock (basic), plus an owner ZSET
ranked by a shared counter (fair), in MULTI/EXEC transactions; the loser removes itself in a
separate round trip. The lock-guarded variant wraps the fair acquire in ``acquire_lock`` (no TTL,
10 ms acquire timeout). Races kept as written (inventory rows 20-22): the fair variant can
over-admit when its two transactions interleave with another client's.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from .ch06_locks import acquire_lock, release_lock

__all__ = [
    "acquire_fair_semaphore",
    "acquire_semaphore",
    "acquire_semaphore_with_lock",
    "release_fair_semaphore",
    "release_semaphore",
]


async def acquire_semaphore(
    conn: Any,
    semname: str,
    limit: int,
    timeout: float = 10,  # noqa: ASYNC109 (the book's signature: a lease, not a wait)
) -> str | None:
    """Try once to take a slot: expire, add ourselves, and check our rank in one MULTI.

    Redis in Action §6.3.1, listing 6.12 (ch06 L265).
    """
    identifier = str(uuid.uuid4())
    now = time.time()

    pipeline = conn.pipeline(True)
    pipeline.zremrangebyscore(semname, "-inf", now - timeout)
    pipeline.zadd(semname, {identifier: now})
    pipeline.zrank(semname, identifier)
    if (await pipeline.execute())[-1] < limit:
        return identifier

    await conn.zrem(semname, identifier)
    return None


async def release_semaphore(conn: Any, semname: str, identifier: str) -> Any:
    """Give a slot back (ZREM); true if it was still held.

    Redis in Action §6.3.1, listing 6.13 (ch06 L287).
    """
    return await conn.zrem(semname, identifier)


async def acquire_fair_semaphore(
    conn: Any,
    semname: str,
    limit: int,
    timeout: float = 10,  # noqa: ASYNC109 (the book's signature: a lease, not a wait)
) -> str | None:
    """Try once to take a slot ranked by a shared counter, in two MULTI transactions.

    Redis in Action §6.3.2, listing 6.14 (ch06 L294).
    """
    identifier = str(uuid.uuid4())
    czset = semname + ":owner"
    ctr = semname + ":counter"

    now = time.time()
    pipeline = conn.pipeline(True)
    pipeline.zremrangebyscore(semname, "-inf", now - timeout)
    pipeline.zinterstore(czset, {czset: 1, semname: 0})

    pipeline.incr(ctr)
    counter = (await pipeline.execute())[-1]

    pipeline.zadd(semname, {identifier: now})
    pipeline.zadd(czset, {identifier: counter})

    pipeline.zrank(czset, identifier)
    if (await pipeline.execute())[-1] < limit:
        return identifier

    pipeline.zrem(semname, identifier)
    pipeline.zrem(czset, identifier)
    await pipeline.execute()
    return None


async def release_fair_semaphore(conn: Any, semname: str, identifier: str) -> Any:
    """Give a fair slot back (ZREM from both ZSETs in MULTI); true if it was still held.

    Redis in Action §6.3.2, listing 6.15 (ch06 L329).
    """
    pipeline = conn.pipeline(True)
    pipeline.zrem(semname, identifier)
    pipeline.zrem(semname + ":owner", identifier)
    return (await pipeline.execute())[0]


async def acquire_semaphore_with_lock(
    conn: Any,
    semname: str,
    limit: int,
    timeout: float = 10,  # noqa: ASYNC109 (the book's signature: a lease, not a wait)
    *,
    key_prefix: str = "",
) -> str | None:
    """Take a fair slot while holding ``lock:<semname>`` (10 ms to get the lock, else None).

    Redis in Action §6.3.5, listing 6.17 (ch06 L351).
    """
    identifier = await acquire_lock(conn, semname, acquire_timeout=0.01, key_prefix=key_prefix)
    if identifier:
        try:
            return await acquire_fair_semaphore(conn, semname, limit, timeout)
        finally:
            await release_lock(conn, semname, str(identifier), key_prefix=key_prefix)
    return None
