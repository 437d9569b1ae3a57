"""Cancellation storms for the task queue, the worker and the sharded list (tests/storms.py).

Fifty or more concurrent calls, about half cancelled at random moments; afterwards the keys are
read: no task or item lost or duplicated, nothing left claimed by nobody. Figures go to the storm
log (``Storm.record``). Both topologies, real servers; waits are on conditions, never sleeps.
"""

from __future__ import annotations

import asyncio
import collections
import random
from typing import Any

import pytest
from helpers import until
from storms import storm

from aiorpatterns.memory.sharding import ShardedList
from aiorpatterns.queues.taskqueue import QueueCounts, TaskQueue
from aiorpatterns.queues.worker import Worker


def topology(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["redis_client"])


async def leftovers(client: Any, q: TaskQueue) -> int:
    """Claims still filed under a token (nothing should be running once all is settled)."""
    return int(await client.hlen(q.keys[7])) + int(await client.zcard(q.keys[2]))


async def test_storm_get(redis_client: Any, request: pytest.FixtureRequest) -> None:
    """Consumers cancelled while waiting in get() and while holding a task: every task is
    handled once, acked once; nothing stays claimed."""
    q = TaskQueue(redis_client, "sget", visibility_timeout=60)
    rng = random.Random(1)
    total = 150
    handled: collections.Counter[str] = collections.Counter()
    put_ids: list[str] = []

    async def produce() -> None:
        for n in range(total):
            put_ids.append(await q.put(n))
            if n % 10 == 0:
                await asyncio.sleep(0.005)

    async def consume(i: int) -> int:
        done = 0
        while True:
            task = await q.get(timeout=0.5)
            if task is None:
                return done
            try:
                await asyncio.sleep(rng.uniform(0, 0.01))  # holding it
            except asyncio.CancelledError:
                await q.release(task)  # shielded: the task goes back, uncounted
                raise
            handled[task.id] += 1  # handled: the ack below completes even if cancelled
            assert await q.ack(task)
            done += 1

    producer = asyncio.create_task(produce())
    report = await storm(consume, tasks=60, within=0.4, seed=7)
    await producer
    # The storm's survivors stop once the queue looks empty: drain what the cancelled left.
    while (task := await q.get(timeout=0)) is not None:
        handled[task.id] += 1
        assert await q.ack(task)
    lost = len(set(put_ids) - set(handled))
    duplicated = sum(n - 1 for n in handled.values() if n > 1)
    left = await leftovers(redis_client, q)
    report.record("TaskQueue", topology(request), lost=lost, duplicated=duplicated, leftovers=left)
    assert (lost, duplicated, left) == (0, 0, 0)
    assert set(handled) == set(put_ids)
    assert await q.counts() == QueueCounts(0, 0, 0, 0)


async def test_storm_worker(redis_client: Any, request: pytest.FixtureRequest) -> None:
    """Workers cancelled mid-flight (their handlers cancelled past a zero grace, their fetches
    cancelled in get()): every task handled at least once and acked exactly once, nothing
    running or dead once all settle."""
    q = TaskQueue(redis_client, "sworker", visibility_timeout=60)
    rng = random.Random(2)
    total = 200
    started: collections.Counter[int] = collections.Counter()
    finished: collections.Counter[int] = collections.Counter()
    acked: collections.Counter[str] = collections.Counter()

    class Counting(TaskQueue):
        async def _claim_step(self, token: str, count: int, *acks: tuple[str, str, str]) -> Any:
            # The worker acks in its claim step (a hand-over), which runs shielded: counted
            # here, a handler cancelled during its ack still counts its ack.
            reply = await TaskQueue._claim_step(self, token, count, *acks)
            answers = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            for (task_id, _, _), answer in zip(acks, answers, strict=True):
                if answer == "1":
                    acked[task_id] += 1
            return reply

    async def job(n: int) -> None:
        started[n] += 1
        await asyncio.sleep(rng.uniform(0, 0.02))
        finished[n] += 1

    ids = [await q.put_call("job", [n]) for n in range(total)]
    mine = Counting(redis_client, "sworker", visibility_timeout=60)

    async def serve(i: int) -> int:
        worker = Worker(mine, {"job": job}, concurrency=3, grace=0)
        async with worker:
            await asyncio.sleep(rng.uniform(0.05, 0.3))
        return worker.stats.acked

    report = await storm(serve, tasks=50, within=0.3, seed=11)
    # Whatever the storm gave back, a clean worker finishes.
    async with Worker(mine, {"job": job}, concurrency=5):

        async def settled() -> bool:
            return (await q.counts()).total == 0

        await until(settled, "every task acked", limit=120)
    lost = total - len(finished)
    duplicated = sum(n - 1 for n in acked.values() if n > 1)
    left = await leftovers(redis_client, q)
    report.record("Worker", topology(request), lost=lost, duplicated=duplicated, leftovers=left)
    assert set(finished) == set(range(total)), "a task was never handled to the end"
    assert acked == collections.Counter(dict.fromkeys(ids, 1)), "acked not exactly once"
    assert (lost, duplicated, left) == (0, 0, 0)
    assert await q.counts() == QueueCounts(0, 0, 0, 0)


@pytest.mark.parametrize("blocking", [False, True], ids=["pop", "bpop"])
async def test_storm_sharded_list_pops(
    redis_client: Any, request: pytest.FixtureRequest, blocking: bool
) -> None:
    """Pops cancelled at random moments: pushed == popped + left, no item twice."""
    lst = ShardedList(redis_client, "spop", chunk_size=4)
    rng = random.Random(3)
    total = 300
    pushed = [f"i{n}" for n in range(total)]
    popped: collections.Counter[str] = collections.Counter()

    async def produce() -> None:
        for start in range(0, total, 10):
            side = rng.choice(["left", "right"])
            batch = pushed[start : start + 10]
            await (lst.lpush if side == "left" else lst.rpush)(*batch)
            await asyncio.sleep(0.002)

    async def pop(i: int) -> int:
        got = 0
        while True:
            if blocking:
                item = await (lst.blpop if i % 2 else lst.brpop)(timeout=0.3)
            else:
                item = await (lst.lpop if i % 2 else lst.rpop)()
                if item is None:
                    await asyncio.sleep(0.005)
                    item = await (lst.lpop if i % 2 else lst.rpop)()
            if item is None:
                return got
            popped[item] += 1
            got += 1

    producer = asyncio.create_task(produce())
    report = await storm(pop, tasks=60, within=0.2, seed=5)
    await producer
    left: list[str] = []
    while (item := await lst.lpop()) is not None:
        left.append(item)
    lost = len(set(pushed) - set(popped) - set(left))
    duplicated = sum(n - 1 for n in popped.values() if n > 1) + len(set(popped) & set(left))
    extra = len(left) - len(set(left))
    report.record(
        "ShardedList" + (".bpop" if blocking else ".pop"),
        topology(request),
        lost=lost,
        duplicated=duplicated + extra,
        leftovers=0,  # a pop holds nothing once it returns: what is left is in the list
        remaining=len(left),
    )
    assert (lost, duplicated, extra) == (0, 0, 0)
    assert sorted([*popped.elements(), *left]) == sorted(pushed)
    assert await lst.llen() == 0
