"""The ``arq`` row of the ``queue`` table: arq's pool and worker, in an environment of its own.

arq (PyPI ``arq``, python-arq/arq) is the asyncio job queue most Python users met first: a job
is a key holding the pickled call (``arq:job:<id>``), enqueued by a transaction that also adds it
to a ZSET scored by its run time (the queue); a worker polls that ZSET every ``poll_delay`` (0.5
s by default), takes each job with an ``arq:in-progress:<id>`` key, runs it and stores its
result for ``keep_result`` (an hour by default) under ``arq:result:<id>``. Used as its README
shows: ``create_pool(RedisSettings.from_dsn(url))`` per producer and
``await pool.enqueue_job("bench", token, _job_id=token)``, and ``Worker(functions=[...],
redis_settings=...)`` run with ``main()`` (what ``arq`` the command runs; ``async_run`` without
its signal handlers). Workers run with ``max_jobs=1`` as the table's ``aiorpatterns-worker`` row
runs at concurrency 1 (arq's default is 10); everything else is arq's default, so its latency is
mostly the poll interval, as its users get it.

Keys: the queue is ``bench:arq-<run>`` (and its health-check key beside it), but arq's job,
in-progress, retry and result keys are ``arq:<kind>:<job id>``, prefixes fixed in
``arq.constants``; job ids are the row's tokens (``<run>-<n>``), and the row deletes
``arq:*:<run>-*`` after it runs.

Installed from PyPI as ``arq`` 0.28.0, its current release, which pins ``redis[hiredis]>=4.2.0,<6``:
it cannot be installed beside redis-py 8.2 (uv resolves plain ``arq`` to 0.25.0, the last release
without that pin), so it is not in the project's environment. The row runs it in an
environment of its own, ``uv run --isolated --no-project --with arq==0.28.0`` (redis-py 5.3),
through :mod:`._isolated`: this module is also the child's entry point (``python -m
benchmarks.peers.arq_queue --url ... --clients N --duration S``), so it imports nothing of the
project's at module level but :mod:`benchmarks.peers`. No cluster: arq does not support one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from . import Closer, Enqueue, Handler
from ._isolated import IsolatedPeer, child_main

__all__ = ["NAME", "PEER", "REQUIREMENT", "ArqPeer"]

NAME = "arq"
#: What the row's environment installs: arq's current release, with the redis-py it pins.
REQUIREMENT = "arq==0.28.0"
PEER = IsolatedPeer("benchmarks.peers.arq_queue", [REQUIREMENT], imports="arq.worker")


def __getattr__(name: str) -> str:
    # ``environment`` is the row's ``requires=``: the row runs when arq's environment builds.
    if name == "environment":
        return PEER.environment()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ArqPeer:
    """arq's workers and producers (:class:`~benchmarks.peers.QueuePeer`); runs in the child."""

    name = NAME

    async def worker(self, url: str, queue: str, handler: Handler) -> Closer:
        # arq is never in the project's environment (only in the child's): no types for mypy.
        from arq.connections import RedisSettings  # type: ignore[import-not-found]
        from arq.worker import Worker, func  # type: ignore[import-not-found]

        logging.getLogger("arq").addHandler(logging.NullHandler())

        async def bench(ctx: Any, token: str) -> None:
            handler(token)

        worker = Worker(
            functions=[func(bench, name="bench")],
            queue_name=queue,
            redis_settings=RedisSettings.from_dsn(url),
            handle_signals=False,
            max_jobs=1,
        )
        main = asyncio.create_task(worker.main())

        async def close() -> None:
            main.cancel()
            await asyncio.wait([main])
            running = [task for task in worker.tasks.values() if not task.done()]
            if running:  # a job's handler may still be recording its result
                await asyncio.wait(running, timeout=5)
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)
            worker.tasks.clear()  # close() gathers them: they are done
            await worker.close()

        return close

    async def producer(self, url: str, queue: str) -> tuple[Enqueue, Closer]:
        from arq.connections import RedisSettings, create_pool

        pool = await create_pool(RedisSettings.from_dsn(url), default_queue_name=queue)

        async def enqueue(token: str) -> object:
            return await pool.enqueue_job("bench", token, _job_id=token)

        async def close() -> None:
            await pool.aclose()

        return enqueue, close

    def leftovers(self, queue: str, run: str) -> tuple[str, ...]:
        return (f"arq:*:{run}-*",)


if __name__ == "__main__":
    child_main(ArqPeer())
