"""Rows for the peers a user would pick instead of aiorpatterns, one small module per peer.

Each module holds one workload factory for one table row, built on the peer's own public API
with its defaults (what a user gets from its README), so that adding a peer is one module here
and one ``Variant(...)`` line, with ``requires=`` naming the peer's class, in the table's module.
A peer that is not installed makes its row skip with a note; nothing here imports a peer at
module level.

Installed as users install them: from PyPI, in the ``peers`` dependency group of
``pyproject.toml``, which ``uv sync`` installs by default (outside uv: ``pip install coredis
limits pottery walrus py-redis-semaphore saq[hiredis] streaq taskiq-redis cashews[redis]
aiocache[redis]``). Every pin below but arq's resolves beside redis-py 8.2, so those run in the
project's environment (versions as locked in ``uv.lock``):

- ``coredis`` 6.9 (:mod:`.coredis_lock`): ``coredis.patterns.lock.Lock``, on coredis' own
  client (``coredis.Redis`` / ``coredis.RedisCluster``), in the ``lock`` table;
- ``pottery`` 3.0.1 (:mod:`.pottery_lock`): ``pottery.AIORedlock`` with one master (a
  ``redis.asyncio.Redis``), in the ``lock`` table;
- ``py-redis-semaphore`` 0.2.0 (:mod:`.redis_semaphore`): ``redis_semaphore.Semaphore`` with
  its async API (``aacquire`` / ``arelease``), in the ``semaphore`` table;
- ``limits`` 5.8 (:mod:`.limits_ratelimit`): ``limits.aio.strategies``' fixed window, moving
  window and sliding window counter on its async Redis storage, in the ``ratelimit`` table;
  installed without extras and run on redis-py (its ``async-redis`` extra pins ``coredis<6``,
  which clashes with coredis 6.9 above; its ``redis`` extra pins ``redis<8``);
- ``walrus`` 0.9.8 (:mod:`.walrus_autocomplete`): ``walrus.Autocomplete`` on a
  ``walrus.Database`` (sync: one process per client), in the ``autocomplete`` table;
- ``saq[hiredis]`` 0.26.4 (:mod:`.saq_queue`): SAQ's ``Queue`` and ``Worker``, in the ``queue``
  table; its ``redis`` extra pins ``redis<8``, its ``hiredis`` extra does not;
- ``streaq`` 7.2.0 (:mod:`.streaq_queue`): streaQ's ``Worker`` and tasks (on coredis), in the
  ``queue`` table;
- ``taskiq-redis`` 1.2.4 with ``taskiq`` 0.13.0 (:mod:`.taskiq_queue`): ``RedisStreamBroker``
  (acks) and taskiq's receiver, in the ``queue`` table;
- ``cashews[redis]`` 7.6 (:mod:`.cashews_cache`): ``@cache(ttl=...)`` on its Redis backend, in
  the ``cache`` table and ``cache-stampede``;
- ``aiocache[redis]`` 0.12.3 (:mod:`.aiocache_cache`): ``@cached`` / ``cached_stampede`` on
  ``RedisCache``, in the ``cache`` table and ``cache-stampede``.

A peer whose pins clash with ours runs in an environment of its own (:mod:`._isolated`: ``uv
run --isolated --no-project --with <peer>==<version>``, built from PyPI on first use and cached
by uv), never forced into the project's:

- ``arq`` 0.28.0 (:mod:`.arq_queue`): pins ``redis<6``; arq's pool and ``Worker``, in the
  ``queue`` table, with redis-py 5.3 in its environment.

The ``queue`` table's peers share :class:`QueueRun` (N workers, N producers with one task in
flight each, latency from the enqueue to the handler's start); each module is a
:class:`QueuePeer`. Where a peer fixes its own key prefix (``saq:``, ``streaq:``, ``arq:``,
taskiq-redis' ``autoclaim:`` lock), its queue is still named under ``bench:`` and the row deletes
the keys of its run after it.

Peers are told apart from the book's ports (``benchmarks.baselines``): those are our ports of the
book's listings, these are other people's packages, run unchanged. Every key a peer row writes
starts with ``bench:`` (the runner deletes those between rows), through each peer's own
key-naming option (the queue peers above: see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

__all__ = ["QUEUE_PREFIX", "QueuePeer", "QueueRun", "Tally"]

#: The runner's ``BENCH_PREFIX`` (a test checks they agree): spelled out here because the queue
#: helpers below also run in peers' own environments (:mod:`._isolated`), which do not import
#: the runner.
QUEUE_PREFIX = "bench:"

Handler = Callable[[str], None]
"""Called by a peer's task with its token as the handler starts."""
Closer = Callable[[], Awaitable[None]]
Enqueue = Callable[[str], Awaitable[object]]
QueueOp = Callable[[float], Awaitable[None]]


class Tally(Protocol):
    """What a queue client counts: the runner's ``ClientStats``, or the isolated child's own."""

    ops: int
    tries: int
    latencies: list[float]


class QueuePeer(Protocol):
    """One job-queue peer: how to start one of its workers and one of its producers."""

    #: The row's name; also the queue's name inside ``bench:`` (``bench:<name>-<run>``).
    name: str

    async def worker(self, url: str, queue: str, handler: Handler) -> Closer:
        """Start one worker (concurrency 1) whose no-op task calls ``handler(token)``."""
        ...

    async def producer(self, url: str, queue: str) -> tuple[Enqueue, Closer]:
        """Open one producer: how it enqueues the no-op task with a token, how it closes."""
        ...

    def leftovers(self, queue: str, run: str) -> tuple[str, ...]:
        """``SCAN MATCH`` patterns of the keys the peer writes outside ``bench:`` (its
        prefix is fixed in its code), deleted after the row."""
        ...


class QueueRun:
    """N workers of one peer and N producers, each keeping one task in flight, on a queue of
    its own (as the ``aiorpatterns-worker`` row): a client's op enqueues a task with a fresh
    token and returns when a worker of this process starts its handler.

    Latency runs from the start of the enqueue to the handler's start; a task counts once its
    handler ran. After the row, the keys the peer wrote outside ``bench:`` for this run are
    deleted (the runner deletes ``bench:*``).
    """

    def __init__(self, peer: QueuePeer, url: str) -> None:
        self.peer = peer
        self.url = url
        self.run = uuid.uuid4().hex[:8]
        self.queue = f"{QUEUE_PREFIX}{peer.name}-{self.run}"
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.workers: list[Closer] = []
        self.producers: list[Closer] = []
        self.tokens = itertools.count()

    def handled(self, token: str) -> None:
        """A handler started: wake the producer waiting for ``token``."""
        started = time.perf_counter()
        done = self.waiting.pop(token, None)
        if done is not None and not done.done():
            done.set_result(started)

    async def open(self, tallies: Sequence[Tally]) -> list[QueueOp]:
        """Start a worker per client, then a producer per client; one op per producer."""
        for _ in tallies:
            self.workers.append(await self.peer.worker(self.url, self.queue, self.handled))
        ops = []
        for tally in tallies:
            enqueue, close = await self.peer.producer(self.url, self.queue)
            self.producers.append(close)
            ops.append(self._op(enqueue, tally))
        return ops

    def _op(self, enqueue: Enqueue, tally: Tally) -> QueueOp:
        async def op(deadline: float) -> None:
            token = f"{self.run}-{next(self.tokens)}"
            done = asyncio.get_running_loop().create_future()
            self.waiting[token] = done
            t = time.perf_counter()
            tally.tries += 1
            try:
                await enqueue(token)
                started = await done
            finally:
                self.waiting.pop(token, None)
            tally.ops += 1
            tally.latencies.append(started - t)

        return op

    async def close(self) -> None:
        """Close producers, then workers, then delete the peer's keys outside ``bench:``."""
        for close in [*self.producers, *self.workers]:
            with contextlib.suppress(Exception):  # one failing close must not keep the rest open
                await close()
        self.producers.clear()
        self.workers.clear()
        await self._delete_leftovers()

    async def _delete_leftovers(self) -> None:
        patterns = self.peer.leftovers(self.queue, self.run)
        if not patterns:
            return
        from redis.asyncio import Redis

        client = Redis.from_url(self.url)
        try:
            for pattern in patterns:
                keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
                for start in range(0, len(keys), 500):
                    await client.unlink(*keys[start : start + 500])
        finally:
            await client.aclose()
