"""The ``coredis`` row of the ``lock`` table: ``coredis.patterns.lock.Lock`` on coredis' client.

coredis 6 is its own asyncio (anyio) client, so each client coroutine opens its own
``coredis.Redis`` (or ``coredis.RedisCluster``) from the row's URL and enters it (coredis 6
clients run their connection pool inside ``async with``). The lock is coredis' only lock: a
``SET NX PX`` acquire that polls every ``sleep`` (0.1 s, its default) and a Lua release; on a
cluster it also waits (``WAIT``) for half of the shard's replicas. It is used as redis-py's rows
use theirs: ``timeout`` 10 s (so a crash cannot wedge a run), ``blocking_timeout=None`` (wait
until the runner's deadline), one ``Lock`` object per client (its token lives in a
``ContextVar``). A try is one ``SET ... NX``, counted by a subclass of the client that counts
the calls of ``set`` with ``condition=NX``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from ..runner import BENCH_PREFIX, ClientStats, Job, Op

__all__ = ["KEY", "coredis_lock"]

#: The lock's key (coredis uses the name as the key, unprefixed).
KEY = BENCH_PREFIX + "coredis:lock"
#: Seconds a lock lives (redis-py's rows use the same).
LOCK_TIMEOUT = 10


def _counting(base: type[Any]) -> type[Any]:
    """A subclass of a coredis client class whose ``set(..., condition=NX)`` counts a try."""
    from coredis.tokens import PureToken

    class Counting(base):  # type: ignore[misc]
        stats: ClientStats | None = None

        def set(self, *args: Any, **kwargs: Any) -> Any:
            if self.stats is not None and kwargs.get("condition") == PureToken.NX:
                self.stats.tries += 1
            return super().set(*args, **kwargs)

    return Counting


class CoredisLock:
    """One process' clients of the ``coredis`` row: a coredis client and a ``Lock`` each."""

    def __init__(self, job: Job, *, sleep: float = 0.1) -> None:
        self.job = job
        self.sleep = sleep
        self.stack = contextlib.AsyncExitStack()

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        import coredis
        from coredis.patterns.lock import Lock

        base = coredis.RedisCluster if self.job.target.topology == "cluster" else coredis.Redis
        kind = _counting(base)
        ops = []
        for st in stats:
            client = kind.from_url(self.job.target.url)
            await self.stack.enter_async_context(client)
            await client.ping()
            client.stats = st
            lock = Lock(client, KEY, timeout=LOCK_TIMEOUT, sleep=self.sleep)
            ops.append(_op(lock, st))
        return ops

    async def close(self) -> None:
        await self.stack.aclose()


def _op(lock: Any, st: ClientStats) -> Op:
    async def op(deadline: float) -> None:
        t = time.perf_counter()
        if await lock.acquire():
            st.success(t)
            await lock.release()

    return op


def coredis_lock(job: Job) -> CoredisLock:
    """The ``coredis`` row's workload (coredis' defaults: ``sleep`` 0.1 s)."""
    return CoredisLock(job)
