"""Count tries and acquires of one contended lock: the book's two and today's (table ``lock``).

Redis in Action §11.2 (inventory §2b) counts tries and acquires in 10 s for 1, 2, 5 and 10
clients that all acquire and immediately release one lock name, with the ch06 "original" lock
and the ch11 Lua lock (both retry after 1 ms). Rows:

- ``book-original`` / ``book-lua``: the book's code as the book ran it, the reference of every
  ratio: the sync ports in :mod:`benchmarks.baselines.sync`, one OS process per client; a try
  is one SETNX or one EVALSHA of the acquire script, counted by the ports' ``on_try`` hook;
- ``book-original-async`` / ``book-lua-async``: the same listings ported to ``redis.asyncio``
  (:mod:`benchmarks.baselines`), clients as coroutines: the async-to-async comparison;
- ``aiorpatterns`` / ``aiorpatterns-procs``: :class:`aiorpatterns.Lock` (FIFO hand-off, no
  polling), one object per client, as coroutines in one process / one process per client; a
  try is one run of its acquire script (``lock_acquire.lua``), counted by a
  :class:`~benchmarks.runner.CountingClient` that wraps the client and counts EVALSHAs of that
  script's SHA (so the first attempt and every re-check after a wait count; a hand-off received
  through the wake-up channel is not a new try);
- ``aiorpatterns-rwlock``: :class:`aiorpatterns.coordination.rwlock.ReadWriteLock` on the same
  name pattern, each acquire a read (90%) or a write (10%, drawn per acquire from a seeded
  random stream per client), readers sharing the lock; a try is one run of
  ``rwlock_acquire.lua``, counted the same way. Not the book's workload (the book has no
  read-write lock): it shows what shared reads buy over one exclusive lock at the same count;
- ``redis-py`` / ``redis-py-fast``: ``redis.asyncio.lock.Lock`` with ``timeout=10`` (so a
  crash cannot wedge the run) and ``thread_local=False`` (one object per client coroutine),
  ``sleep`` 0.1 s (its default) and 1 ms; a try is one ``SET NX PX``, counted the same way.
  They wait with ``blocking_timeout=None`` (the default): a timeout shorter than ``sleep`` makes
  redis-py give up after one try, which would turn the end of every run into a busy loop;
- ``coredis``: coredis' lock (``coredis.patterns.lock.Lock``) on coredis' own client, with
  redis-py's settings (``timeout`` 10 s, its default ``sleep`` 0.1 s, no blocking timeout); a
  try is one ``SET NX PX`` (:mod:`benchmarks.peers.coredis_lock`);
- ``pottery``: ``pottery.AIORedlock`` with the row's connection as its one master, pottery's
  defaults (10 s lease, random 0-0.2 s retry delay); a try is one ``SET NX PX``, and a failed
  try also runs pottery's release script (:mod:`benchmarks.peers.pottery_lock`);
- ``limit``: ``SET NX PX`` + ``DEL`` pairs on the same key, 100 pairs per pipeline, per client.

Per client, as inventory §2b: ``acquire`` with the time left as its timeout, and if it succeeds
count an acquire and release at once; the runner stops everything at the deadline. Latency is
from the call to ``acquire`` to its success; fairness is Jain's index over per-client acquires.
The book's rates are its acquires in 10 s divided by 10. Ratios are to ``book-lua`` (the book's
own code, sync, processes) and to ``redis-py`` at the same client count.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from .baselines import ch06_locks, ch11_locks
from .baselines.sync import ch06_locks as sync_ch06_locks
from .baselines.sync import ch11_locks as sync_ch11_locks
from .peers.coredis_lock import coredis_lock
from .peers.pottery_lock import pottery_lock
from .runner import (
    BENCH_PREFIX,
    NO_CLUSTER_WATCH,
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

__all__ = ["TABLE"]

NAME = "bench"
LOCK_TIMEOUT = 10
BATCH = 100
#: The share of the read-write lock row's acquires that write.
RW_WRITES = 0.1


def _book(module: Any) -> Any:
    def factory(job: Job) -> ClientPerCoroutine:
        def make(client: Any, st: ClientStats, _: int) -> Op:
            async def op(deadline: float) -> None:
                t = time.perf_counter()
                ident = await module.acquire_lock_with_timeout(
                    client,
                    NAME,
                    acquire_timeout=deadline - t,
                    lock_timeout=LOCK_TIMEOUT,
                    key_prefix=BENCH_PREFIX,
                    on_try=st.try_,
                )
                if ident:
                    st.success(t)
                    await module.release_lock(client, NAME, ident, key_prefix=BENCH_PREFIX)

            return op

        return ClientPerCoroutine(job, make)

    return factory


def _book_sync(module: Any) -> Any:
    def factory(job: Job) -> SyncClientPerProcess:
        def make(client: Any, st: ClientStats, _: int) -> SyncOp:
            def op(deadline: float) -> None:
                t = time.perf_counter()
                ident = module.acquire_lock_with_timeout(
                    client,
                    NAME,
                    acquire_timeout=deadline - t,
                    lock_timeout=LOCK_TIMEOUT,
                    key_prefix=BENCH_PREFIX,
                    on_try=st.try_,
                )
                if ident:
                    st.success(t)
                    module.release_lock(client, NAME, ident, key_prefix=BENCH_PREFIX)

            return op

        return SyncClientPerProcess(job, make)

    return factory


def _ours(job: Job) -> ClientPerCoroutine:
    from aiorpatterns import Keyspace, Lock
    from aiorpatterns.core.scripts import script

    sha = script(Lock._acquire).sha
    keyspace = Keyspace(BENCH_PREFIX.rstrip(":"))

    def make(client: Any, st: ClientStats, _: int) -> Op:
        counted: Any = CountingClient(client, st, shas=[sha])  # a wrapper Lock accepts
        lock = Lock(counted, NAME, timeout=LOCK_TIMEOUT, keyspace=keyspace)
        return lease_op(lock, st)

    return ClientPerCoroutine(job, make)


def _ours_rwlock(job: Job) -> ClientPerCoroutine:
    from aiorpatterns import Keyspace
    from aiorpatterns.coordination.rwlock import ReadWriteLock
    from aiorpatterns.core.scripts import script

    sha = script("rwlock_acquire").sha
    keyspace = Keyspace(BENCH_PREFIX.rstrip(":"))

    def make(client: Any, st: ClientStats, index: int) -> Op:
        counted: Any = CountingClient(client, st, shas=[sha])
        rw = ReadWriteLock(counted, NAME, timeout=LOCK_TIMEOUT, keyspace=keyspace)
        reader, writer = rw.read(), rw.write()  # a lease object can be acquired again
        draws = random.Random(index)

        async def op(deadline: float) -> None:
            t = time.perf_counter()
            if t >= deadline:
                return
            lease = writer if draws.random() < RW_WRITES else reader
            if await lease.acquire(acquire_timeout=deadline - t):
                st.success(t)
                await lease.release()

        return op

    return ClientPerCoroutine(job, make)


def _redis_py(sleep: float) -> Any:
    def factory(job: Job) -> ClientPerCoroutine:
        from redis.asyncio.lock import Lock

        def make(client: Any, st: ClientStats, _: int) -> Op:
            counting: Any = CountingClient(client, st, set_nx=True)
            lock = Lock(
                counting,
                BENCH_PREFIX + "redis-py:lock",
                timeout=LOCK_TIMEOUT,
                sleep=sleep,
                thread_local=False,
            )

            async def op(deadline: float) -> None:
                t = time.perf_counter()
                if await lock.acquire():
                    st.success(t)
                    await lock.release()

            return op

        return ClientPerCoroutine(job, make)

    return factory


def _limit(job: Job) -> ClientPerCoroutine:
    key = BENCH_PREFIX + "limit:lock"

    def make(client: Any, st: ClientStats, _: int) -> Op:
        token = uuid.uuid4().hex

        async def op(deadline: float) -> None:
            pipe = client.pipeline(transaction=False)
            for _ in range(BATCH):
                pipe.set(key, token, nx=True, px=LOCK_TIMEOUT * 1000)
                pipe.delete(key)
            await pipe.execute()
            st.tries += BATCH
            st.ops += BATCH

        return op

    return ClientPerCoroutine(job, make)


async def _prepare(client: Any) -> None:
    from aiorpatterns.core.scripts import script

    await ch11_locks.load(client)  # the sync port's scripts are the same text
    for name in ("lock_acquire", "lock_release", "lock_extend", "rwlock_acquire", "rwlock_release"):
        await script(name).load(client)


def _per_second(acquires_in_10s: dict[int, int]) -> dict[tuple[str, int], float]:
    return {("*", n): count / 10 for n, count in acquires_in_10s.items()}


def _tries_per_acquire(variant: str) -> dict[tuple[str, int], float]:
    return {
        ("*", n): BOOK_TRIES[variant][n] / BOOK_ACQUIRES[variant][n] for n in BOOK_TRIES[variant]
    }


#: The book's table (seed L1942-1951): tries and acquires in 10 s, by client count.
BOOK_TRIES = {
    "book-original": {1: 31_359, 2: 30_085, 5: 47_694, 10: 71_917},
    "book-lua": {1: 44_494, 2: 50_404, 5: 70_807, 10: 96_871},
}
BOOK_ACQUIRES = {
    "book-original": {1: 31_359, 2: 22_507, 5: 19_695, 10: 14_361},
    "book-lua": {1: 44_494, 2: 42_199, 5: 40_826, 10: 33_990},
}

TABLE = Table(
    name="lock",
    title="One contended lock: tries and acquires (Redis in Action §6.2, §11.2)",
    unit="acquires",
    variants=(
        Variant(
            "book-original",
            _book_sync(sync_ch06_locks),
            book=_per_second(BOOK_ACQUIRES["book-original"]),
            book_tries=_tries_per_acquire("book-original"),
            runs="sync",
        ),
        Variant(
            "book-lua",
            _book_sync(sync_ch11_locks),
            book=_per_second(BOOK_ACQUIRES["book-lua"]),
            book_tries=_tries_per_acquire("book-lua"),
            runs="sync",
        ),
        Variant("book-original-async", _book(ch06_locks), unsupported=NO_CLUSTER_WATCH),
        Variant("book-lua-async", _book(ch11_locks)),
        Variant("aiorpatterns", _ours, requires="aiorpatterns:Lock"),
        Variant("aiorpatterns-procs", _ours, requires="aiorpatterns:Lock", runs="processes"),
        Variant(
            "aiorpatterns-rwlock",
            _ours_rwlock,
            requires="aiorpatterns.coordination.rwlock:ReadWriteLock",
        ),
        Variant("redis-py", _redis_py(0.1)),
        Variant("redis-py-fast", _redis_py(0.001)),
        Variant("coredis", coredis_lock, requires="coredis.patterns.lock:Lock"),
        Variant("pottery", pottery_lock, requires="pottery:AIORedlock"),
        Variant("limit", _limit),
    ),
    references=("book-lua", "redis-py"),
    prepare=_prepare,
    notes=(
        "book = the book's acquires in 10 s / 10 (Redis 2.6, Python 2, clients = processes); "
        f"limit = {BATCH} SET NX PX + DEL pairs per pipeline, per client; "
        f"aiorpatterns-rwlock = ReadWriteLock, {RW_WRITES:.0%} of acquires write, the rest read."
    ),
)
