"""The ``pottery`` row of the ``lock`` table: ``pottery.AIORedlock`` with one master.

pottery's async lock is Redlock: it ``SET NX PX``-es the key on every master at once and holds
the lock when a majority answered in time; a user with one Redis passes that one client as
``masters``. On one master that is one ``SET NX PX`` per try, but a try that fails also runs
pottery's release script on the master (it undoes a partial quorum), so every failed try costs
two round trips; waiters retry after a random 0-0.2 s (pottery's ``_RETRY_DELAY``). Defaults
otherwise: ``auto_release_time`` 10 s, ``acquire()`` blocking without timeout (the runner stops
it at the deadline). On a cluster the one master is the row's ``RedisCluster``: the lock is one
key, so its ``SET`` and scripts go to that key's shard (pottery's cluster crash,
brainix/pottery#733, is in ``RedisDict``'s multi-key WATCH, not in the lock).

A try is one ``SET ... NX``, counted by a :class:`~benchmarks.runner.CountingClient` given as
the master. The one change is the key's namespace: pottery names the key ``redlock:<key>``;
the row's subclass names it ``bench:redlock:<key>`` so the runner deletes it between rows (a
lock held when a row is cut off would otherwise block the next row for up to 10 s).

pottery sends its per-master commands from tasks it starts (``asyncio.as_completed``) and does
not cancel them when ``acquire()`` is cancelled: a ``SET NX PX`` in flight at the deadline goes
on without its caller, and may take the lock for the 10 s lease. The workload lets those
orphans finish before it closes the connections (else each logs "Task exception was never
retrieved" when its connection closes), and the runner's cleanup deletes any lock they took.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from functools import cache
from typing import Any

from ..runner import BENCH_PREFIX, ClientPerCoroutine, ClientStats, CountingClient, Job, Op

__all__ = ["KEY", "pottery_lock"]

#: The key pottery writes (its prefix, then the lock's key).
KEY = BENCH_PREFIX + "redlock:lock"


@cache
def _redlock() -> type[Any]:
    """``AIORedlock`` with its keys under ``bench:`` (pottery's prefix is a class attribute)."""
    from pottery import AIORedlock

    class BenchRedlock(AIORedlock):
        _KEY_PREFIX = BENCH_PREFIX + "redlock"

    return BenchRedlock


class PotteryLock(ClientPerCoroutine):
    """A connection per client; on close, waits for pottery's orphaned per-master tasks."""

    async def close(self) -> None:
        orphans = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "").startswith("AIORedlock.")
        ]
        if orphans:
            done, _ = await asyncio.wait(orphans, timeout=5)
            for task in done:
                if not task.cancelled():
                    with contextlib.suppress(Exception):
                        task.result()
        await super().close()


def pottery_lock(job: Job) -> PotteryLock:
    """The ``pottery`` row's workload: one ``AIORedlock`` per client, its own connection."""
    redlock = _redlock()

    def make(client: Any, st: ClientStats, _: int) -> Op:
        lock = redlock(key="lock", masters={CountingClient(client, st, set_nx=True)})

        async def op(deadline: float) -> None:
            t = time.perf_counter()
            if await lock.acquire():
                st.success(t)
                await lock.release()

        return op

    return PotteryLock(job, make)
