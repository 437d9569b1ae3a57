"""A lock and a semaphore at work, on a Redis server this script starts itself.

Run: ``uv run python examples/locks_and_semaphores.py``. Ten workers share one counter under a
``Lock`` (each increment reads, pauses, writes: without the lock, updates would be lost), then
twenty tasks share five ``Semaphore`` slots (Redis in Action §6.2 and §6.3).
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import Lock, Semaphore
from aiorpatterns.testing.server import RedisServer


async def count_under_lock(redis: Redis) -> None:
    """Ten workers, one counter, one lock: every increment survives."""
    fences: list[int] = []

    async def worker() -> None:
        lock = Lock(redis, "counter", timeout=5)
        for _ in range(10):
            async with lock:
                value = int(await redis.get("aiorp:example:counter") or 0)
                await asyncio.sleep(0.001)  # a window in which another writer would interfere
                await redis.set("aiorp:example:counter", value + 1)
                fences.append(lock.fence or 0)

    await asyncio.gather(*(worker() for _ in range(10)))
    total = int(await redis.get("aiorp:example:counter") or 0)
    print(f"lock: counter = {total} (expected 100); fencing tokens {fences[0]}..{fences[-1]}")


async def limit_with_semaphore(redis: Redis) -> None:
    """Twenty tasks, five slots: never more than five inside at once."""
    inside = peak = 0

    async def task() -> None:
        nonlocal inside, peak
        async with Semaphore(redis, "api", limit=5, timeout=5):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(task() for _ in range(20)))
    print(f"semaphore: at most {peak} of 20 tasks inside at once (limit 5)")


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await count_under_lock(redis)
            await limit_with_semaphore(redis)
        finally:
            await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
