"""Acquire and release one semaphore of limit 5: the book's three and ours (table ``semaphore``).

Redis in Action §6.3 has no benchmark table; this one follows the shape of the §11.2 lock table
(inventory §2b): 1, 2, 5 and 10 clients loop acquire → release on one semaphore of limit 5, and
a row counts tries and acquires. Rows:

- ``book-basic`` / ``book-fair`` / ``book-fair-lock``: the book's code as the book ran it, the
  reference of the ratios: the sync ch06 ports in :mod:`benchmarks.baselines.sync.ch06_semaphores`
  (``acquire_semaphore``, ``acquire_fair_semaphore``, ``acquire_semaphore_with_lock``, released
  with ``release_semaphore`` / ``release_fair_semaphore``), one OS process per client. Each book
  acquire tries once and returns None when full, and the book has no waiting loop for
  semaphores, so the driver retries the way every acquire loop of the book does
  (``acquire_lock_with_timeout``): ``time.sleep(.001)`` after a failed try, until the deadline.
  A try is one call of the book's acquire function;
- ``book-basic-async`` / ``book-fair-async`` / ``book-fair-lock-async``: the same listings ported
  to ``redis.asyncio`` (:mod:`benchmarks.baselines.ch06_semaphores`), clients as coroutines,
  retrying with ``asyncio.sleep(0.001)``;
- ``aiorpatterns`` / ``aiorpatterns-fair``: :class:`~aiorpatterns.Semaphore` and
  ``FairSemaphore`` (FIFO hand-off, no polling), one object per client, waiting with the time
  left as ``acquire_timeout``; a try is one run of the class's acquire script, counted by a
  :class:`~benchmarks.runner.CountingClient` (EVALSHAs of that script's SHA);
- ``py-redis-semaphore``: the one maintained asyncio Redis semaphore on PyPI
  (``py-redis-semaphore`` 0.2.0, :mod:`benchmarks.peers.py_redis_semaphore`), as its users
  install it, one object per client (standalone only);
- ``limit``: ``ZADD`` + ``ZREM`` pairs on one ZSET, 100 pairs per pipeline, per client.

Latency is from the first try to the success. Ratios are to ``book-basic`` and ``book-fair`` (sync,
processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .baselines import ch06_semaphores as book
from .baselines.sync import ch06_semaphores as sync_book
from .peers.py_redis_semaphore import py_redis_semaphore
from .runner import (
    BENCH_PREFIX,
    ClientPerCoroutine,
    ClientStats,
    CountingClient,
    Job,
    Op,
    SyncClientPerProcess,
    SyncOp,
    Table,
    Variant,
    lease_op,
)

__all__ = ["LIMIT", "TABLE"]

LIMIT = 5
TIMEOUT = 10
BATCH = 100
#: The book's semaphore name; the hash tag keeps its ZSETs (and counter) in one cluster slot.
SEMNAME = BENCH_PREFIX + "sem:{book}"

Acquire = Callable[[Any], Awaitable[str | None]]
Release = Callable[[Any, str], Awaitable[Any]]


def _book(acquire: Acquire, release: Release) -> Callable[[Job], ClientPerCoroutine]:
    def factory(job: Job) -> ClientPerCoroutine:
        def make(client: Any, st: ClientStats, _: int) -> Op:
            async def op(deadline: float) -> None:
                t = time.perf_counter()
                while True:
                    st.tries += 1
                    identifier = await acquire(client)
                    if identifier:
                        st.success(t)
                        await release(client, identifier)
                        return
                    await asyncio.sleep(0.001)
                    if time.perf_counter() >= deadline:
                        return

            return op

        return ClientPerCoroutine(job, make)

    return factory


async def _basic(client: Any) -> str | None:
    return await book.acquire_semaphore(client, SEMNAME, LIMIT, TIMEOUT)


async def _basic_release(client: Any, identifier: str) -> Any:
    return await book.release_semaphore(client, SEMNAME, identifier)


async def _fair(client: Any) -> str | None:
    return await book.acquire_fair_semaphore(client, SEMNAME, LIMIT, TIMEOUT)


async def _fair_release(client: Any, identifier: str) -> Any:
    return await book.release_fair_semaphore(client, SEMNAME, identifier)


async def _fair_lock(client: Any) -> str | None:
    return await book.acquire_semaphore_with_lock(
        client, SEMNAME, LIMIT, TIMEOUT, key_prefix=BENCH_PREFIX
    )


SyncAcquire = Callable[[Any], str | None]
SyncRelease = Callable[[Any, str], Any]


def _book_sync(acquire: SyncAcquire, release: SyncRelease) -> Callable[[Job], SyncClientPerProcess]:
    def factory(job: Job) -> SyncClientPerProcess:
        def make(client: Any, st: ClientStats, _: int) -> SyncOp:
            def op(deadline: float) -> None:
                t = time.perf_counter()
                while True:
                    st.tries += 1
                    identifier = acquire(client)
                    if identifier:
                        st.success(t)
                        release(client, identifier)
                        return
                    time.sleep(0.001)
                    if time.perf_counter() >= deadline:
                        return

            return op

        return SyncClientPerProcess(job, make)

    return factory


def _sync_basic(client: Any) -> str | None:
    return sync_book.acquire_semaphore(client, SEMNAME, LIMIT, TIMEOUT)


def _sync_basic_release(client: Any, identifier: str) -> Any:
    return sync_book.release_semaphore(client, SEMNAME, identifier)


def _sync_fair(client: Any) -> str | None:
    return sync_book.acquire_fair_semaphore(client, SEMNAME, LIMIT, TIMEOUT)


def _sync_fair_release(client: Any, identifier: str) -> Any:
    return sync_book.release_fair_semaphore(client, SEMNAME, identifier)


def _sync_fair_lock(client: Any) -> str | None:
    return sync_book.acquire_semaphore_with_lock(
        client, SEMNAME, LIMIT, TIMEOUT, key_prefix=BENCH_PREFIX
    )


def _ours(class_name: str) -> Callable[[Job], ClientPerCoroutine]:
    def factory(job: Job) -> ClientPerCoroutine:
        from aiorpatterns import Keyspace
        from aiorpatterns.coordination import semaphores
        from aiorpatterns.core.scripts import script

        cls = getattr(semaphores, class_name)
        sha = script(cls._acquire).sha
        keyspace = Keyspace(BENCH_PREFIX.rstrip(":"))

        def make(client: Any, st: ClientStats, _: int) -> Op:
            sem = cls(
                CountingClient(client, st, shas=[sha]),
                "sem",
                limit=LIMIT,
                timeout=TIMEOUT,
                keyspace=keyspace,
            )
            return lease_op(sem, st)

        return ClientPerCoroutine(job, make)

    return factory


def _limit(job: Job) -> ClientPerCoroutine:
    key = BENCH_PREFIX + "limit:sem"

    def make(client: Any, st: ClientStats, _: int) -> Op:
        member = uuid.uuid4().hex

        async def op(deadline: float) -> None:
            now = time.time()
            pipe = client.pipeline(transaction=False)
            for _ in range(BATCH):
                pipe.zadd(key, {member: now})
                pipe.zrem(key, member)
            await pipe.execute()
            st.tries += BATCH
            st.ops += BATCH

        return op

    return ClientPerCoroutine(job, make)


async def _prepare(client: Any) -> None:
    from aiorpatterns.coordination import semaphores
    from aiorpatterns.core.scripts import script

    for cls in (semaphores.Semaphore, semaphores.FairSemaphore):
        for name in (cls._acquire, cls._release, cls._extend):
            await script(name).load(client)


async def _prepare_if_available(client: Any) -> None:
    with contextlib.suppress(ImportError, AttributeError):  # not there yet: the rows skip
        await _prepare(client)


#: redis-py 8.1's asyncio cluster transactions queue each command through ``asyncio.run`` in a
#: new thread; finding ZINTERSTORE's keys needs a server round trip (COMMAND GETKEYS) on a
#: connection of the caller's loop, so queueing it fails ("attached to a different loop").
_NO_CLUSTER_ZINTERSTORE = {
    "cluster": "redis-py 8.1's async cluster MULTI cannot queue ZINTERSTORE (a redis-py bug)"
}

TABLE = Table(
    name="semaphore",
    title=f"One semaphore of limit {LIMIT}: acquire → release (Redis in Action §6.3)",
    unit="acquires",
    variants=(
        Variant("book-basic", _book_sync(_sync_basic, _sync_basic_release), runs="sync"),
        Variant("book-fair", _book_sync(_sync_fair, _sync_fair_release), runs="sync"),
        Variant("book-fair-lock", _book_sync(_sync_fair_lock, _sync_fair_release), runs="sync"),
        Variant("book-basic-async", _book(_basic, _basic_release)),
        Variant(
            "book-fair-async", _book(_fair, _fair_release), unsupported=_NO_CLUSTER_ZINTERSTORE
        ),
        Variant(
            "book-fair-lock-async",
            _book(_fair_lock, _fair_release),
            unsupported=_NO_CLUSTER_ZINTERSTORE,
        ),
        Variant(
            "aiorpatterns",
            _ours("Semaphore"),
            requires="aiorpatterns.coordination.semaphores:Semaphore",
        ),
        Variant(
            "aiorpatterns-fair",
            _ours("FairSemaphore"),
            requires="aiorpatterns.coordination.semaphores:FairSemaphore",
        ),
        Variant(
            "py-redis-semaphore",
            py_redis_semaphore(LIMIT, TIMEOUT),
            requires="redis_semaphore:Semaphore",
            unsupported={
                "cluster": "py-redis-semaphore 0.2.0 takes a redis.asyncio.Redis only "
                "(its script adapter refuses a RedisCluster)"
            },
        ),
        Variant("limit", _limit),
    ),
    references=("book-basic", "book-fair"),
    prepare=_prepare_if_available,
    notes=(
        "No book numbers (§6.3 has no table). Book variants retry after 1 ms when full; "
        f"limit = {BATCH} ZADD + ZREM pairs per pipeline, per client."
    ),
)
