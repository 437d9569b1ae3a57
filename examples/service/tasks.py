"""A handler module for the worker command (README: "Run a worker as a service").

Serve it from this folder, on the server ``REDIS_URL`` names::

    REDIS_URL=redis://localhost:6379 aiorpatterns worker tasks:worker --concurrency 8

and queue work from any process with ``await TaskQueue(redis, "emails").put_call("send_welcome",
["ada@example.com"])``. ``aiorpatterns worker tasks:worker --check`` exits 0 while a worker
beats. Coroutine handlers run on the event loop, plain functions in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

from redis.asyncio import Redis

from aiorpatterns import TaskQueue, Worker

redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379"))
emails = TaskQueue(redis, "emails", visibility_timeout=60)

#: How long sending an email takes here (the tests make it long, to stop a worker mid-task).
SEND_SECONDS = float(os.environ.get("SEND_SECONDS", "0.05"))


async def send_welcome(to: str) -> None:
    """Send a welcome email (a coroutine: runs on the loop)."""
    await asyncio.sleep(SEND_SECONDS)
    await redis.rpush("aiorp:example:sent", to)


def checksum(text: str) -> str:
    """A blocking, CPU-bound step (a plain function: runs in a worker thread)."""
    return hashlib.sha256(text.encode()).hexdigest()


worker = Worker(emails, {"send_welcome": send_welcome, "checksum": checksum}, grace=30)
