"""The ``saq`` row of the ``queue`` table: SAQ's Redis queue and worker, as its README runs them.

SAQ (PyPI ``saq``, tobymao/saq) is the asyncio job queue that claims under-5-ms latency: a job is
a key holding the JSON job, an ``incomplete`` ZSET and a ``queued`` LIST; ``enqueue`` is one
script, a worker takes a job with ``BLMOVE`` onto an ``active`` LIST (no polling), writes it back
as active, runs it, and ``_finish`` stores the result for its ``ttl`` (600 s by default) and
publishes the status. Used as its README shows: ``Queue.from_url(url, name=...)`` per producer
and per worker (a connection pool each, as our row's clients have a connection each),
``await queue.enqueue("bench", token=...)``, and ``Worker(queue, functions=[...])`` started with
``await worker.start()`` in a task. Workers run with ``concurrency=1`` as the table's
``aiorpatterns-worker`` row does (SAQ's default is 10 per worker); with one task in flight per
producer and N workers that only leaves fewer idle blocked connections. The worker's signal
handlers are left out (``SIGNALS = ()`` on the instance) so that Ctrl-C still stops the runner.

Keys: SAQ spells every key ``saq:<queue name>:...`` and ``saq:job:<queue name>:<key>`` (the
``saq:`` prefix is fixed in its code), so the queue name is ``bench:saq-<run>`` and the row
deletes ``saq:bench:saq-<run>:*``, ``saq:job:bench:saq-<run>:*`` and the abort keys of its jobs
(``saq:abort:<key>``, keys being the row's tokens ``<run>-<n>``) after it runs.

Installed from PyPI as ``saq[hiredis]`` 0.26.4 in the project's environment: its ``redis`` extra
(the README's minimal install) pins ``redis<8.0``, while its ``hiredis`` extra (the README's
``saq[web,hiredis]`` line) asks for ``redis[hiredis]>=4.2.0`` with no upper bound, which resolves
beside redis-py 8.2; SAQ's own code imports ``redis.asyncio`` and runs on 8.2 unchanged. No
cluster: SAQ's scripts and transactions span keys of several slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..runner import Job
from . import Closer, Enqueue, Handler, QueueRun

__all__ = ["NAME", "SaqPeer", "saq_queue"]

NAME = "saq"


class SaqPeer:
    """SAQ's workers and producers (:class:`~benchmarks.peers.QueuePeer`)."""

    name = NAME

    async def worker(self, url: str, queue: str, handler: Handler) -> Closer:
        from saq import Queue, Worker

        # Its stop warns of the blocked dequeue it cancels; no handler: Python's last resort
        # would print it across the runner's progress bar.
        logging.getLogger("saq").addHandler(logging.NullHandler())
        saq_queue = Queue.from_url(url, name=queue)

        async def bench(ctx: Any, *, token: str) -> None:
            handler(token)

        worker: Any = Worker(saq_queue, functions=[("bench", bench)], concurrency=1)
        worker.SIGNALS = ()
        task = asyncio.create_task(worker.start())

        async def close() -> None:
            task.cancel()  # start() stops the worker (and its upkeep) on cancellation
            await asyncio.wait([task])
            with contextlib.suppress(Exception):
                await worker.stop()
            await saq_queue.disconnect()

        return close

    async def producer(self, url: str, queue: str) -> tuple[Enqueue, Closer]:
        from saq import Queue

        saq_queue = Queue.from_url(url, name=queue)
        await saq_queue.connect()

        async def enqueue(token: str) -> object:
            # The token is the job's key too, so that the abort keys SAQ may write when a worker
            # stops mid-job (``saq:abort:<key>``) carry the run's name.
            return await saq_queue.enqueue("bench", key=token, token=token)

        return enqueue, saq_queue.disconnect

    def leftovers(self, queue: str, run: str) -> tuple[str, ...]:
        return (f"saq:{queue}:*", f"saq:job:{queue}:*", f"saq:abort:{run}-*")


def saq_queue(job: Job) -> QueueRun:
    """The ``saq`` row's workload: N SAQ workers and N producers on a queue of its own."""
    return QueueRun(SaqPeer(), job.target.url)
