"""The coordination guide's examples: a lock, a semaphore, a fair semaphore, a read-write lock
(Redis in Action §6.2, §6.3, §11.2) and a rate limiter, on a Redis server this script starts.

Run: ``uv run python examples/guide_coordination.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import AcquireTimeoutError, FairSemaphore, Lock, Semaphore
from aiorpatterns.coordination.ratelimit import RateLimiter
from aiorpatterns.coordination.rwlock import ReadWriteLock
from aiorpatterns.testing.server import RedisServer


# --8<-- [start:lock]
async def lock_example(redis: Redis) -> None:
    """Ten tasks increment one counter under a lock: no update is lost."""

    async def increment() -> None:
        async with Lock(redis, "counter", timeout=5):  # a 5 s lease
            value = int(await redis.get("app:counter") or 0)
            await asyncio.sleep(0.001)  # another writer here would lose an update
            await redis.set("app:counter", value + 1)

    await asyncio.gather(*(increment() for _ in range(10)))
    assert int(await redis.get("app:counter") or 0) == 10

    # acquire() returns a bool; `async with` raises AcquireTimeoutError instead.
    holder = Lock(redis, "report", timeout=5)
    assert await holder.acquire()
    fence = holder.fence  # strictly increasing per name: hand it to the storage you write
    other = Lock(redis, "report", acquire_timeout=0.1)
    assert not await other.acquire()
    try:
        async with other:
            raise AssertionError("unreachable: the lock is held")
    except AcquireTimeoutError:
        pass
    await holder.release()
    async with other:
        assert other.fence is not None
        assert fence is not None
        assert other.fence > fence


# --8<-- [end:lock]


# --8<-- [start:semaphore]
async def semaphore_example(redis: Redis) -> None:
    """Twenty tasks, five slots: never more than five inside at once."""
    inside = peak = 0

    async def call_the_api() -> None:
        nonlocal inside, peak
        async with Semaphore(redis, "api", limit=5, timeout=5):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(call_the_api() for _ in range(20)))
    assert 1 <= peak <= 5
    assert await Semaphore(redis, "api", limit=5).holders() == 0


# --8<-- [end:semaphore]


# --8<-- [start:fair]
async def fair_semaphore_example(redis: Redis) -> None:
    """A fair semaphore grants slots in counter order; each grant's counter is a fence."""
    first = FairSemaphore(redis, "exports", limit=2, timeout=5)
    second = FairSemaphore(redis, "exports", limit=2, timeout=5)
    third = FairSemaphore(redis, "exports", limit=2, acquire_timeout=0.1)
    assert await first.acquire()
    assert await second.acquire()
    assert not await third.acquire()  # both slots are taken
    assert first.fence is not None
    assert second.fence is not None
    assert second.fence > first.fence
    await first.release()
    assert await third.acquire()  # a released slot is free at once
    await second.release()
    await third.release()


# --8<-- [end:fair]


# --8<-- [start:rwlock]
async def rwlock_example(redis: Redis) -> None:
    """Readers share a document; a writer has it alone, with a fence."""
    rw = ReadWriteLock(redis, "doc:7", timeout=5)
    together = asyncio.Barrier(3)  # opens only while all three readers are inside at once

    async def read() -> int | None:
        async with rw.read() as reader:
            await together.wait()
            return reader.fence  # the fence of the last write before this read (0: none yet)

    assert await asyncio.gather(read(), read(), read()) == [0, 0, 0]

    async with rw.write() as writer:  # no reader, no other writer, while this block runs
        assert writer.fence == 1  # strictly increasing per name: hand it to the storage
        await redis.set("app:doc:7", "v2")
        elsewhere = ReadWriteLock(redis, "doc:7", acquire_timeout=0.1)  # another client, say
        assert not await elsewhere.read().acquire()
    async with rw.read() as reader:
        assert reader.fence == 1  # reads what the writer wrote


# --8<-- [end:rwlock]


# --8<-- [start:ratelimit]
async def rate_limiter_example(redis: Redis) -> None:
    """Ten calls a minute per user; each decision on the server's clock."""
    limiter = RateLimiter(redis, "api", limit="10/minute")  # GCRA: a unit back every 6 s
    decisions = [await limiter.hit("user:42") for _ in range(12)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 2
    refused = decisions[-1]
    assert refused.remaining == 0
    assert 0 < refused.retry_after <= 6  # seconds until one unit fits again
    assert await limiter.hit("user:7")  # a decision is truthy when allowed; keys apart
    assert not await limiter.test("user:42")  # test() peeks, consuming nothing
    await limiter.reset("user:42")  # reset() forgets a key
    assert (await limiter.test("user:42")).remaining == 10

    # wait() sleeps exactly as long as the server says (retry_after), then tries again.
    burst = RateLimiter(redis, "export", limit="5/0.5 seconds", strategy="sliding_window")
    for _ in range(5):
        await burst.hit("job")
    assert (await burst.wait("job", timeout=5)).allowed

    # A slot the timeout cannot reach: acquire() says False at once, slot() raises.
    hourly = RateLimiter(redis, "reports", limit="1/hour", strategy="sliding_log")
    async with hourly.slot("team:a", timeout=1):
        pass  # the hour's one report
    assert not await hourly.acquire("team:a", timeout=0.1)
    try:
        async with hourly.slot("team:a", timeout=0.1):
            raise AssertionError("unreachable: the hour's report was made")
    except AcquireTimeoutError:
        pass


# --8<-- [end:ratelimit]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await lock_example(redis)
            await semaphore_example(redis)
            await fair_semaphore_example(redis)
            await rwlock_example(redis)
            await rate_limiter_example(redis)
        finally:
            await redis.aclose()
    print("coordination: ok")


if __name__ == "__main__":
    asyncio.run(main())
