"""The getting-started page's examples: a first lock, a first queue and worker, cancellation and
retries, on a Redis server this script starts itself.

Run: ``uv run python examples/getting_started.py``. The docs include the code between the
``--8<--`` markers, so the page shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from aiorpatterns import Lock, TaskQueue, Worker
from aiorpatterns.testing.server import RedisServer


# --8<-- [start:connect]
def connect(url: str) -> Redis:
    """A client that re-sends a command whose reply was lost (every pattern is safe for it)."""
    return Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[ConnectionError, TimeoutError],
    )


# --8<-- [end:connect]


# --8<-- [start:lock]
async def first_lock(redis: Redis) -> None:
    async with Lock(redis, "invoice:7", timeout=10) as lock:  # a 10 s lease
        # Only one holder at a time, across every process that uses this Redis.
        assert await lock.locked()
    assert not await lock.locked()  # leaving the block released it


# --8<-- [end:lock]


# --8<-- [start:queue]
async def first_queue(redis: Redis) -> None:
    queue = TaskQueue(redis, "email")
    await queue.put_call("send_welcome", ["ann@example.com"])
    done = asyncio.Event()

    async def send_welcome(to: str) -> None:
        print(f"welcome mail to {to}")
        done.set()

    async with Worker(queue, {"send_welcome": send_welcome}) as worker:
        await asyncio.wait_for(done.wait(), 10)
    assert worker.stats.acked == 1


# --8<-- [end:queue]


# --8<-- [start:cancel]
async def cancellation(redis: Redis) -> None:
    holder = Lock(redis, "nightly-job", timeout=10)
    assert await holder.acquire()
    waiter = asyncio.create_task(Lock(redis, "nightly-job", acquire_timeout=None).acquire())
    await asyncio.sleep(0.05)  # the waiter is queued behind the holder
    waiter.cancel()  # e.g. a request timed out, or the app shuts down
    await asyncio.gather(waiter, return_exceptions=True)
    await holder.release()
    # The cancelled waiter left nothing behind: the next caller gets the lock at once.
    after = Lock(redis, "nightly-job", acquire_timeout=1)
    assert await after.acquire()
    await after.release()


# --8<-- [end:cancel]


async def main() -> None:
    with RedisServer() as server:
        redis = connect(server.url)
        try:
            await first_lock(redis)
            await first_queue(redis)
            await cancellation(redis)
        finally:
            await redis.aclose()
    print("getting started: ok")


if __name__ == "__main__":
    asyncio.run(main())
