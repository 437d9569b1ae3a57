"""The ``taskiq`` row of the ``queue`` table: taskiq on taskiq-redis' stream broker, with acks.

taskiq (PyPI ``taskiq``) is the asyncio task framework whose Redis brokers live in
``taskiq-redis`` (taskiq-python/taskiq-redis). Its ``RedisStreamBroker`` is the one with
acknowledgements: a task is an ``XADD`` to a stream, a worker reads with ``XREADGROUP`` in a
consumer group (blocking up to ``xread_block``, 2 s by default), acks with ``XACK`` once the task
ran, and reclaims other consumers' idle messages with ``XAUTOCLAIM`` under a redis-py lock. Used
as its README shows: ``RedisStreamBroker(url=..., queue_name=...)``, a task registered on the
broker and sent with ``await task.kiq(token)`` (one started broker, so one connection pool, per
producer), and workers run with ``taskiq.api.run_receiver_task`` (taskiq's programmatic form of
``taskiq worker``), one broker per worker, in one consumer group. Workers run with
``max_async_tasks=1`` as the table's ``aiorpatterns-worker`` row runs at concurrency 1
(taskiq's default is 100). No result backend: the README adds one to read results back, which
this row does not do (its producers learn that the handler ran from the handler itself).

Keys: the stream is the queue name, ``bench:taskiq-<run>``; the autoclaim lock is
``autoclaim:<group>:<stream>`` (its prefix is fixed in taskiq-redis' code and the lock has no
timeout by default, so a worker cancelled while holding it leaves it for ever:
taskiq-python/taskiq-redis#131), so the row deletes ``autoclaim:taskiq:bench:taskiq-<run>``
after it runs. taskiq-redis never deletes acked entries (``XACK`` without ``XDEL``, no
``maxlen`` by default): the stream grows with every task, as its users get it.

Installed from PyPI as ``taskiq-redis`` 1.2.4 (with ``taskiq`` 0.13.0) in the project's
environment: it requires ``redis>=8.0,<9``. The row is not wired for a cluster (taskiq-redis has
a separate ``RedisStreamClusterBroker``, whose reclaim never runs: taskiq-redis#130).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..runner import Job
from . import Closer, Enqueue, Handler, QueueRun

__all__ = ["GROUP", "NAME", "TaskiqPeer", "taskiq_queue"]

NAME = "taskiq"
#: ``RedisStreamBroker``'s default consumer group.
GROUP = "taskiq"


class TaskiqPeer:
    """taskiq's workers and producers on ``RedisStreamBroker`` (a ``QueuePeer``)."""

    name = NAME

    async def worker(self, url: str, queue: str, handler: Handler) -> Closer:
        from taskiq.api import run_receiver_task
        from taskiq_redis import RedisStreamBroker

        # Its receiver warns when cancelled; no handler: Python's last resort would print it
        # across the runner's progress bar.
        logging.getLogger("taskiq").addHandler(logging.NullHandler())
        broker: Any = RedisStreamBroker(url=url, queue_name=queue)

        async def bench(token: str) -> None:
            handler(token)

        broker.register_task(bench, task_name="bench")
        broker.is_worker_process = True  # what `taskiq worker` sets before startup
        await broker.startup()  # creates the consumer group
        task = asyncio.create_task(run_receiver_task(broker, max_async_tasks=1))

        async def close() -> None:
            # The receiver waits for the read it cancels (an XREADGROUP BLOCK of up to 2 s):
            # bounded, then the pool's disconnect ends it.
            task.cancel()
            await asyncio.wait([task], timeout=5)
            await broker.shutdown()
            if not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=5)

        return close

    async def producer(self, url: str, queue: str) -> tuple[Enqueue, Closer]:
        from taskiq_redis import RedisStreamBroker

        broker: Any = RedisStreamBroker(url=url, queue_name=queue)

        async def bench(token: str) -> None:  # never run here: the workers run theirs
            pass

        task = broker.register_task(bench, task_name="bench")
        await broker.startup()

        async def enqueue(token: str) -> object:
            return await task.kiq(token)

        async def close() -> None:
            await broker.shutdown()

        return enqueue, close

    def leftovers(self, queue: str, run: str) -> tuple[str, ...]:
        return (f"autoclaim:{GROUP}:{queue}",)


def taskiq_queue(job: Job) -> QueueRun:
    """The ``taskiq`` row's workload: N taskiq workers and N producers on a stream of its own."""
    return QueueRun(TaskiqPeer(), job.target.url)
