"""The ``py-redis-semaphore`` row of the ``semaphore`` table: its counting semaphore, async API.

py-redis-semaphore (PyPI ``py-redis-semaphore``, import ``redis_semaphore``) is the one async
Redis counting semaphore on PyPI with recent releases: a Lua acquire on an owners ZSET plus a
fencing counter, waiters parked in ``BLPOP`` on a notification list (its default
``acquire_mode``) and woken by the releaser's ``LPUSH``, and a heartbeat task per holder that
extends its slot. Defaults otherwise, as its README uses it: ``Semaphore(client,
SemaphoreConfig(name=..., limit=...))``, ``await sem.aacquire()`` (blocking, no timeout: the
runner stops it at the deadline), ``await sem.arelease()``; the row sets ``limit`` and
``lock_timeout`` to the table's, and ``namespace`` so its keys start with ``bench:``. One
``Semaphore`` object per client, each client on its own connection.

Its script adapter accepts a ``redis.asyncio.Redis`` only (it checks
``isinstance(client, redis.asyncio.Redis)``, and runs scripts as sync calls otherwise), so a
try is counted by a subclass of that class whose ``evalsha`` counts the library's acquire
script; and it has no cluster client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from redis.asyncio import Redis

from ..runner import BENCH_PREFIX, ClientStats, Job, Op

__all__ = ["NAMESPACE", "py_redis_semaphore"]

#: The semaphore's keys are ``<NAMESPACE>:<name>:owners`` / ``:fencing`` / ``:queue``.
NAMESPACE = BENCH_PREFIX + "py-redis-semaphore"
NAME = "sem"


class _CountingRedis(Redis):
    """A ``redis.asyncio.Redis`` whose EVALSHAs of one script (the acquire) count tries."""

    stats: ClientStats | None = None
    counted: str = ""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if self.stats is not None and sha == self.counted:
            self.stats.tries += 1
        return super().evalsha(sha, numkeys, *keys_and_args)


class PyRedisSemaphore:
    """One process' clients of the row: a connection and a ``Semaphore`` each."""

    def __init__(self, job: Job, *, limit: int, lock_timeout: float) -> None:
        self.job = job
        self.limit = limit
        self.lock_timeout = lock_timeout
        self.clients: list[Redis] = []

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        from redis_semaphore import Semaphore, SemaphoreConfig
        from redis_semaphore.lua_scripts import LuaScriptRegistry

        if self.job.target.topology == "cluster":
            raise RuntimeError(
                "py-redis-semaphore takes a redis.asyncio.Redis only (no cluster client)"
            )
        config = SemaphoreConfig(
            name=NAME, limit=self.limit, lock_timeout=self.lock_timeout, namespace=NAMESPACE
        )
        acquire_sha = LuaScriptRegistry.SHAS["acquire"]
        ops = []
        for st in stats:
            client = cast(_CountingRedis, _CountingRedis.from_url(self.job.target.url))
            self.clients.append(client)
            await client.ping()
            client.stats, client.counted = st, acquire_sha
            ops.append(_op(Semaphore(client, config), st))
        return ops

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        self.clients.clear()


def _op(sem: Any, st: ClientStats) -> Op:
    async def op(deadline: float) -> None:
        t = time.perf_counter()
        if (await sem.aacquire()).success:
            st.success(t)
            await sem.arelease()

    return op


def py_redis_semaphore(limit: int, lock_timeout: float) -> Callable[[Job], PyRedisSemaphore]:
    """The row's workload factory for a semaphore of ``limit`` holders, ``lock_timeout`` s."""

    def factory(job: Job) -> PyRedisSemaphore:
        return PyRedisSemaphore(job, limit=limit, lock_timeout=lock_timeout)

    return factory
