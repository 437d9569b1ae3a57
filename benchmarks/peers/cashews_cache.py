"""The ``cashews`` rows of the ``cache`` table: its ``@cache(ttl=...)`` decorator on Redis.

cashews (PyPI ``cashews``, Krukov/cashews) is the async caching framework Python users pick:
decorators with strategies (simple, early refresh, soft TTL, locked), backends for memory,
Redis (``cluster=True`` too) and disk. Used as its README shows: ``cache = Cache()``,
``cache.setup("redis://...")`` (its defaults: pickle-free serializer with a hash check, a pool
of at most 10 connections), ``@cache(ttl="10m", key=...)`` on an async function; one cache
object per process, shared by the process' callers. Its stampede protection is the decorator's
``lock=True`` (a lock per key; its waiters poll the lock, Krukov/cashews#333).

Installed from PyPI as ``cashews[redis]`` 7.6 in the project's environment (it asks for
``redis>=4.3.1,!=5.0.1``, which resolves beside redis-py 8.2).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..runner import BENCH_PREFIX, Target

__all__ = ["cashews_cache"]

Load = Callable[[int], Awaitable[Any]]


async def cashews_cache(target: Target, origin: Load, *, locked: bool = False) -> tuple[Load, Any]:
    """A cashews cache on ``target`` and ``origin`` decorated by it; (load, close)."""
    from cashews import Cache

    cache = Cache()
    cache.setup(target.url, cluster=target.topology == "cluster")
    key = BENCH_PREFIX + "cashews:user:{n}"
    # lock=True: its stampede protection (one caller computes; the others poll the lock).
    return cache(ttl="10m", key=key, lock=locked)(origin), cache.close
