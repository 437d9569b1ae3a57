"""The queues guide's examples: a reliable task queue and a worker (Redis in Action §6.4), on a
Redis server this script starts itself.

Run: ``uv run python examples/guide_queues.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import TaskQueue, Worker
from aiorpatterns.testing.server import RedisServer


# --8<-- [start:taskqueue]
async def taskqueue_example(redis: Redis) -> None:
    """Put, claim, acknowledge; a failed task is retried, then dead-lettered."""
    queue = TaskQueue(redis, "reports", visibility_timeout=30, max_attempts=2, retry_backoff=0.01)
    await queue.put({"report": "daily"}, priority="high")
    await queue.put({"report": "weekly"}, delay=0.2)  # ready in 0.2 s

    task = await queue.get(timeout=1)  # claimed: invisible to others for 30 s
    assert task is not None
    assert task.payload == {"report": "daily"}
    assert await queue.ack(task)  # done: gone for good

    task = await queue.get(timeout=2)  # waits for the delayed task
    assert task is not None
    assert task.payload == {"report": "weekly"}
    await queue.fail(task, "disk full")  # attempt 1 of 2: back in the queue after a backoff
    task = await queue.get(timeout=2)
    assert task is not None
    assert task.attempts == 2
    await queue.fail(task, "disk full")  # attempt 2 of 2: a dead letter
    [letter] = await queue.dead_letters()
    assert letter.reason == "disk full"
    assert await queue.requeue_dead() == 1  # an operator decides: try again
    task = await queue.get(timeout=1)
    assert task is not None
    await queue.ack(task)
    counts = await queue.counts()
    assert (counts.ready, counts.delayed, counts.running, counts.dead) == (0, 0, 0, 0)


# --8<-- [end:taskqueue]


# --8<-- [start:worker]
async def worker_example(redis: Redis) -> None:
    """A worker runs `[name, args, kwargs]` calls with registered handlers."""
    queue = TaskQueue(redis, "email")
    sent: list[str] = []
    done = asyncio.Event()

    async def send_email(to: str, *, subject: str) -> None:
        sent.append(f"{subject} -> {to}")
        if len(sent) == 3:
            done.set()

    for to in ("ann@example.com", "bob@example.com", "eve@example.com"):
        await queue.put_call("send_email", [to], {"subject": "hello"})

    async with Worker(queue, {"send_email": send_email}, concurrency=2) as worker:
        await asyncio.wait_for(done.wait(), 10)
    # Leaving the block waited for running handlers and their acknowledgements.
    assert sorted(sent)[0] == "hello -> ann@example.com"
    assert worker.stats.acked == 3


# --8<-- [end:worker]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await taskqueue_example(redis)
            await worker_example(redis)
        finally:
            await redis.aclose()
    print("queues: ok")


if __name__ == "__main__":
    asyncio.run(main())
