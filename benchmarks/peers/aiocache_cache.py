"""The ``aiocache`` rows of the ``cache`` table: its ``@cached`` decorator on ``RedisCache``.

aiocache (PyPI ``aiocache``, aio-libs/aiocache) is the aio-libs cache: ``SimpleMemoryCache``,
``RedisCache`` and ``MemcachedCache`` behind one API, and the ``cached`` and
``cached_stampede`` decorators. Used as its README shows: ``@cached(ttl=600,
cache=Cache.REDIS, endpoint=..., port=..., namespace=..., serializer=JsonSerializer())`` on an
async function (the decorator builds one ``RedisCache`` per decorated function, shared by every
caller of the process). Its stampede protection is ``cached_stampede``, a Redis lock whose
waiters poll with a sleep (aio-libs/aiocache#217, #527).

Installed from PyPI as ``aiocache[redis]`` 0.12.3 in the project's environment (it asks for
``redis>=4.2.0``). No cluster: aiocache has no Redis Cluster backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from ..runner import BENCH_PREFIX, Target

__all__ = ["aiocache_cache"]

Load = Callable[[int], Awaitable[Any]]


async def aiocache_cache(
    target: Target, origin: Load, *, stampede: bool = False
) -> tuple[Load, Any]:
    """``origin`` decorated by aiocache's ``cached`` (or ``cached_stampede``); (load, close)."""
    from aiocache import Cache, cached, cached_stampede  # type: ignore[import-untyped]
    from aiocache.serializers import JsonSerializer  # type: ignore[import-untyped]

    url = urlparse(target.url)
    decorator = cached_stampede if stampede else cached
    load = decorator(
        ttl=600,
        cache=Cache.REDIS,
        endpoint=url.hostname,
        port=url.port,
        namespace=BENCH_PREFIX + "aiocache",
        serializer=JsonSerializer(),
    )(origin)
    return load, load.cache.close
