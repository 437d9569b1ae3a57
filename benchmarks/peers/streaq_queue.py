"""The ``streaq`` row of the ``queue`` table: streaQ's worker and tasks, as its README runs them.

streaQ (PyPI ``streaq``, tastyware/streaq) is the arq successor on Redis Streams: a task is
published to a stream (``XADD``) read by a consumer group, and a worker reads with
``XREADGROUP``, runs the task under anyio, stores its result (``ttl`` 5 minutes by default) and
acks, with reclaim through ``XAUTOCLAIM`` in its Lua library. It runs on coredis, not redis-py,
so every worker and producer has its own coredis client. Used as its README shows: a
``Worker(redis_url=..., queue_name=...)``, a task registered with ``@worker.task``, enqueued
with ``await task.enqueue(token)`` inside ``async with worker:`` (one such client per producer),
and workers run with ``run_async`` (what ``streaq run`` does). Workers run with
``concurrency=1`` as the table's ``aiorpatterns-worker`` row does (streaQ's default is 16) and
``handle_signals=False`` so that Ctrl-C still stops the runner. Payloads are pickled: streaQ's
default serializer.

Keys: every key is ``streaq:<queue name>...`` (the ``streaq:`` prefix is fixed in its code), so
the queue name is ``bench:streaq-<run>`` and the row deletes ``streaq:bench:streaq-<run>*``
after it runs. streaQ also loads its Lua library (``FUNCTION LOAD REPLACE``, library
``streaq``): server state, not a key, left in place as its users get it.

Installed from PyPI as ``streaq`` 7.2.0 in the project's environment (it depends on coredis
>= 6.9, which the ``lock`` table's coredis row uses too, and on no redis-py). The row is not
wired for a cluster: streaQ takes one through ``cluster_nodes`` instead of a URL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..runner import Job
from . import Closer, Enqueue, Handler, QueueRun

__all__ = ["NAME", "StreaqPeer", "streaq_queue"]

NAME = "streaq"


class _Started:
    """The ``task_status`` streaQ's ``run_async`` reports to once its consumers run."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def started(self, value: object = None) -> None:
        self.event.set()


class StreaqPeer:
    """streaQ's workers and producers (:class:`~benchmarks.peers.QueuePeer`)."""

    name = NAME

    async def worker(self, url: str, queue: str, handler: Handler) -> Closer:
        from streaq import Worker

        worker: Any = Worker(redis_url=url, queue_name=queue, concurrency=1, handle_signals=False)

        async def bench(token: str) -> None:
            handler(token)

        worker.task(name="bench")(bench)

        status = _Started()
        task = asyncio.create_task(worker.run_async(task_status=status))
        await _first(task, status.event)

        async def close() -> None:
            task.cancel()
            await asyncio.wait([task])

        return close

    async def producer(self, url: str, queue: str) -> tuple[Enqueue, Closer]:
        from streaq import Worker

        client: Any = Worker(redis_url=url, queue_name=queue, handle_signals=False)

        async def noop(token: str) -> None:  # never run here: the workers run theirs
            pass

        bench = client.task(name="bench")(noop)

        # coredis' client is an anyio context whose task group belongs to the task that enters
        # it: a task of its own holds it open, so that no cancel scope of streaQ's lands in
        # the runner's task.
        entered, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with client:
                entered.set()
                await stop.wait()

        host = asyncio.create_task(hold())
        await _first(host, entered)

        async def enqueue(token: str) -> object:
            return await bench.enqueue(token)

        async def close() -> None:
            stop.set()
            await asyncio.wait([host], timeout=10)
            host.cancel()
            await asyncio.wait([host])

        return enqueue, close

    def leftovers(self, queue: str, run: str) -> tuple[str, ...]:
        return (f"streaq:{queue}*",)


async def _first(task: asyncio.Task[None], ready: asyncio.Event) -> None:
    """Wait until ``ready`` is set, or raise why ``task`` ended before it."""
    waiting = asyncio.create_task(ready.wait())
    try:
        await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if not ready.is_set():
        task.result()
        raise RuntimeError("streaQ stopped before it started")


def streaq_queue(job: Job) -> QueueRun:
    """The ``streaq`` row's workload: N streaQ workers and N producers on a queue of its own."""
    return QueueRun(StreaqPeer(), job.target.url)
