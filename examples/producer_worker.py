"""A producer and a Worker sharing a task queue, on a Redis server this script starts itself.

Run: ``uv run python examples/producer_worker.py``. The producer queues "send an email" calls at
three priorities, one of them delayed, one that fails twice before it succeeds, and one for a
task name nobody handles; a Worker with two slots runs them, retries the flaky one with backoff
and dead-letters the unknown one (Redis in Action §6.4). The script prints what happened and
exits by itself.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from redis.asyncio import Redis

from aiorpatterns.queues.taskqueue import TaskQueue
from aiorpatterns.queues.worker import Worker
from aiorpatterns.testing.server import RedisServer

START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - START:5.2f}s] {message}")


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            queue = TaskQueue(redis, "email", retry_backoff=0.1, max_attempts=3)
            failures = {"flaky@example.com": 2}
            sent: list[str] = []
            all_sent = asyncio.Event()

            async def send_email(to: str, subject: str) -> None:
                if failures.get(to, 0) > 0:
                    failures[to] -= 1
                    raise ConnectionError(f"SMTP server busy for {to}")
                await asyncio.sleep(0.05)  # the work itself
                say(f"sent {subject!r} to {to}")
                sent.append(to)
                if len(sent) == 5:
                    all_sent.set()

            # The producer: the book's "sold item" e-mails, now with priorities and a delay.
            await queue.put_call("send_email", ["ann@example.com", "item sold"])
            await queue.put_call("send_email", ["bob@example.com", "newsletter"], priority="low")
            await queue.put_call(
                "send_email", ["eve@example.com", "password reset"], priority="high"
            )
            await queue.put_call("send_email", ["joe@example.com", "reminder"], delay=0.5)
            await queue.put_call("send_email", ["flaky@example.com", "receipt"])
            await queue.put_call("send_sms", ["+1 555 0100"])  # no handler: dead-lettered
            say(f"queued: {await queue.counts()}")

            async with Worker(queue, {"send_email": send_email}, concurrency=2) as worker:
                await asyncio.wait_for(all_sent.wait(), 30)
            # Leaving the block waited for the worker's running handlers and their acks.
            say(f"worker stats: {worker.stats}")
            for letter in await queue.dead_letters():
                say(f"dead letter {letter.payload}: {letter.reason}")
            await queue.delete_dead()
            say(f"left: {await queue.counts()}")
        finally:
            await redis.aclose()


if __name__ == "__main__":
    # The worker logs retries (INFO) and dead letters (WARNING) through the logging module.
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="        %(name)s: %(message)s"
    )
    asyncio.run(main())
