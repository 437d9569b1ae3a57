"""Cached calls per second: warm hits and misses, ours beside cashews and aiocache.

Redis in Action has no table for caching (§2.3-2.4 cache pages and rows); this table measures
what a cache user sizes: how many calls of a cached async function one process serves. Every
row decorates the same origin (``async def load(n)`` returning a small dict at once) with its
system's decorator, one cache object per process shared by the process' callers, as an app
holds one; a caller is a coroutine calling ``load`` in a loop. Rows:

- ``aiorpatterns``: ``@cache.cached(key="user:{n}")`` of :class:`~aiorpatterns.Cache` on one
  client; ``aiorpatterns-autopipeline``: the same cache on an
  :class:`~aiorpatterns.AutoPipeline` (concurrent callers' reads share round trips);
  ``aiorpatterns-near``: the same with ``near=1000``, served from the process once read,
  kept true by the server's invalidations (:mod:`aiorpatterns.cache.near`);
- ``cashews``: ``@cache(ttl="10m", key=...)`` (:mod:`benchmarks.peers.cashews_cache`);
- ``aiocache``: ``@cached(ttl=600, cache=Cache.REDIS, ...)`` with its JSON serializer
  (:mod:`benchmarks.peers.aiocache_cache`; no cluster);
- ``*-miss``: each call a key never seen: a read that misses, the origin, a write;
- ``limit``: ``GET`` of one key, 100 per pipeline, per caller.

Hit rows read warm keys (caller i reads key ``i % 100``, all written before the row); miss rows
count calls that missed. Ratios are to ``cashews`` (the most used of the peers). The stampede
row (one cold key, 100 callers over 4 processes, a 50 ms origin: origin calls and p99 wait per
system) is its own command: ``python -m benchmarks cache-stampede``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .peers.aiocache_cache import aiocache_cache
from .peers.cashews_cache import cashews_cache
from .runner import (
    BENCH_PREFIX,
    ClientStats,
    Job,
    Op,
    Table,
    Target,
    Variant,
    connect,
    pipelined_limit,
)

__all__ = ["TABLE", "ours_cache"]

#: Distinct warm keys the hit rows read.
KEYS = 100
BATCH = 100
CLIENTS = (1, 10, 100)
NEAR = 1_000

Load = Callable[[int], Awaitable[Any]]
#: Builds one process' cached function on a target: (load, close).
System = Callable[[Target, Load], Awaitable[tuple[Load, Callable[[], Awaitable[Any]]]]]


async def origin(n: int) -> dict[str, Any]:
    """The function every row caches: a small record, at once."""
    return {"id": n, "name": f"user {n}", "active": True}


async def ours_cache(
    target: Target, load: Load, *, near: bool = False, autopipeline: bool = False
) -> tuple[Load, Callable[[], Awaitable[None]]]:
    """Our cache on ``target`` and ``load`` decorated by it; (cached load, close)."""
    from aiorpatterns import AutoPipeline, Cache, Keyspace

    client = await connect(target)
    redis: Any = AutoPipeline(client) if autopipeline else client
    cache = Cache(redis, "bench", ttl=600, near=NEAR if near else None, keyspace=Keyspace("bench"))
    if cache.near is not None:
        cache.near.mark()  # start tracking now, not on the first timed call
        for _ in range(500):
            if cache.near.live:
                break
            await asyncio.sleep(0.01)

    async def close() -> None:
        await cache.aclose()
        if autopipeline:
            await redis.aclose()
        await client.aclose()

    return cache.cached(key="user:{n}")(load), close


class CachedCalls:
    """One process' callers of one row: one cached function, a loop of calls per caller."""

    def __init__(self, job: Job, system: System, *, miss: bool) -> None:
        self.job = job
        self.system = system
        self.miss = miss
        self._close: Callable[[], Awaitable[Any]] | None = None

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        load, self._close = await self.system(self.job.target, origin)
        if not self.miss:
            for n in range(KEYS):
                await load(n)  # warm: every key the callers read is cached
        fresh = itertools.count(start=int(time.time() * 1000) * 1000 + KEYS)
        return [self._op(load, st, i, fresh) for i, st in enumerate(stats)]

    def _op(self, load: Load, st: ClientStats, index: int, fresh: Any) -> Op:
        key = index % KEYS

        async def op(deadline: float) -> None:
            t = time.perf_counter()
            await load(next(fresh) if self.miss else key)
            st.tries += 1
            st.success(t)

        return op

    async def close(self) -> None:
        if self._close is not None:
            await self._close()
            self._close = None


def _row(system: System, *, miss: bool = False) -> Callable[[Job], CachedCalls]:
    return lambda job: CachedCalls(job, system, miss=miss)


_limit = pipelined_limit(BENCH_PREFIX + "limit:cache", lambda pipe, key: pipe.get(key), BATCH)


def _ours(**options: bool) -> System:
    return lambda target, load: ours_cache(target, load, **options)


_OURS = "aiorpatterns.cache.store:Cache"
_CASHEWS = "cashews:Cache"
_AIOCACHE = "aiocache:RedisCache"
_NO_CLUSTER = {"cluster": "aiocache has no Redis Cluster backend"}

TABLE = Table(
    name="cache",
    title="A cached async function: warm hits and misses per second",
    unit="calls",
    variants=(
        Variant("aiorpatterns", _row(_ours()), clients=CLIENTS, requires=_OURS),
        Variant(
            "aiorpatterns-autopipeline",
            _row(_ours(autopipeline=True)),
            clients=CLIENTS,
            requires=_OURS,
        ),
        Variant("aiorpatterns-near", _row(_ours(near=True)), clients=CLIENTS, requires=_OURS),
        Variant("cashews", _row(cashews_cache), clients=CLIENTS, requires=_CASHEWS),
        Variant(
            "aiocache",
            _row(aiocache_cache),
            clients=CLIENTS,
            requires=_AIOCACHE,
            unsupported=_NO_CLUSTER,
        ),
        Variant("aiorpatterns-miss", _row(_ours(), miss=True), clients=CLIENTS, requires=_OURS),
        Variant("cashews-miss", _row(cashews_cache, miss=True), clients=CLIENTS, requires=_CASHEWS),
        Variant(
            "aiocache-miss",
            _row(aiocache_cache, miss=True),
            clients=CLIENTS,
            requires=_AIOCACHE,
            unsupported=_NO_CLUSTER,
        ),
        Variant("limit", _limit, clients=CLIENTS),
    ),
    references=("cashews",),
    notes=(
        "No book numbers (Redis in Action has no cache-aside table). One cached function per "
        "process, its callers coroutines; hits read 100 warm keys, misses a new key per call "
        "(read, origin, write). cashews 7.6 (its defaults: a pool of 10 connections) and "
        "aiocache 0.12 (JSON serializer; no cluster). aiorpatterns-near: near=1000, served "
        f"from the process, invalidated by the server. limit = {BATCH} GET per pipeline."
    ),
    params={"keys": KEYS, "near": NEAR},
)
