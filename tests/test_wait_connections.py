"""A thousand tasks waiting in one process hold at most four blocked connections (issue 13).

Locks, semaphores, a task queue, an inbox, a chat's fetches and a page cache's stampede.

Waiting tasks of one client share one wake-up channel per wait queue (``core/wakeup.py``): one
dispatcher blocks for all of them. Each test queues 1,000 waiters behind a holder, counts the
server's blocked clients (``INFO clients``, every primary of a cluster), then lets every
waiter through in turn. Both topologies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from helpers import blocked_clients, until

from aiorpatterns.coordination.leases import Lease
from aiorpatterns.coordination.locks import Lock
from aiorpatterns.coordination.semaphores import FairSemaphore, Semaphore
from aiorpatterns.core import wakeup
from aiorpatterns.messaging.chat import Chats
from aiorpatterns.messaging.inbox import Inbox
from aiorpatterns.queues.taskqueue import TaskQueue
from aiorpatterns.webapp.caching import PageCache

T = TypeVar("T")

WAITERS = 1000
MAX_BLOCKED = 4
BATCH = 50
#: The waiters' client: redis-py 8's pool opens at most 100 connections by default, and a
#: thousand waiters may run a step at once (a message wakes every fetch of a chat; on a loaded
#: machine the waiters' bounded re-checks bunch up), so theirs must allow that many.
POOL = {"max_connections": WAITERS + 100}


LEASES: list[Any] = [
    pytest.param(lambda r: Lock(r, "crowded", acquire_timeout=120), id="Lock"),
    pytest.param(lambda r: Semaphore(r, "crowded", limit=1, acquire_timeout=120), id="Semaphore"),
    pytest.param(
        lambda r: FairSemaphore(r, "crowded", limit=1, acquire_timeout=120), id="FairSemaphore"
    ),
]


@pytest.mark.parametrize("make", LEASES)
async def test_a_thousand_waiters_hold_few_connections(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]], make: Callable[[Any], Lease]
) -> None:
    client = await new_client(**POOL)
    holder = make(client)
    assert await holder.acquire()
    through = 0

    async def wait_turn() -> None:
        nonlocal through
        lease = make(client)
        assert await lease.acquire()
        through += 1
        await lease.release()

    # In batches, each queued before the next starts.
    tasks: list[asyncio.Task[None]] = []
    for _ in range(0, WAITERS, BATCH):
        tasks += [asyncio.create_task(wait_turn()) for _ in range(BATCH)]

        async def queued(n: int = len(tasks)) -> bool:
            return await redis_client.zcard(holder._queue) == n

        await until(queued, f"{len(tasks)} waiters to queue", limit=60)

    async def dispatcher_blocked() -> bool:
        return await blocked_clients(redis_client) >= 1

    await until(dispatcher_blocked, "the wake-up channel to block", limit=60)
    assert await blocked_clients(redis_client) <= MAX_BLOCKED
    await holder.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 300)
    assert through == WAITERS


async def test_a_thousand_consumers_of_one_queue_hold_few_connections(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    client = await new_client(**POOL)
    queue = TaskQueue(client, "crowded")
    consumers = await _start_waiting(client, lambda: queue.get(timeout=120))
    await _few_blocked_once_waiting(redis_client)
    for start in range(0, WAITERS, BATCH):
        await asyncio.gather(*(queue.put({"n": n}) for n in range(start, start + BATCH)))
    tasks = await asyncio.wait_for(asyncio.gather(*consumers), 300)
    assert sorted(t.payload["n"] for t in tasks if t is not None) == list(range(WAITERS))


async def test_a_thousand_receivers_of_one_inbox_hold_few_connections(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    client = await new_client(**POOL)
    inbox = Inbox(client, "crowded")
    receivers = await _start_waiting(client, lambda: inbox.receive(timeout=120))
    await _few_blocked_once_waiting(redis_client)
    for start in range(0, WAITERS, BATCH):
        await asyncio.gather(*(inbox.send(n, sender="s") for n in range(start, start + BATCH)))
    got = await asyncio.wait_for(asyncio.gather(*receivers), 300)
    assert sorted(m.message for m in got if m is not None) == list(range(WAITERS))


async def test_a_thousand_members_fetching_one_chat_hold_few_connections(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    client = await new_client(**POOL)
    chats = Chats(client)
    members = [f"m{n}" for n in range(WAITERS)]
    chat = await chats.create("host", members, "welcome")
    for start in range(0, WAITERS, BATCH):  # every member reads the welcome first

        async def read_welcome(member: str) -> None:
            batch = await chats.fetch(chat, member)
            assert [m.message for m in batch] == ["welcome"]
            await chats.ack(batch)

        await asyncio.gather(*(read_welcome(m) for m in members[start : start + BATCH]))
    queue = iter(members)
    fetchers = await _start_waiting(client, lambda: chats.fetch(chat, next(queue), timeout=120))
    await _few_blocked_once_waiting(redis_client)
    await chats.send(chat, "host", "news")
    batches = await asyncio.wait_for(asyncio.gather(*fetchers), 300)
    assert sorted(b.member for b in batches) == sorted(members)
    assert all([m.message for m in b] == ["news"] for b in batches)


async def test_a_thousand_callers_of_one_missing_page_hold_few_connections(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    client = await new_client(**POOL)
    pages = PageCache(client, "crowded", claim_timeout=120)
    rendering, done = asyncio.Event(), asyncio.Event()
    renders = 0

    async def render(request: str) -> str:
        nonlocal renders
        renders += 1
        rendering.set()
        await done.wait()
        return f"<p>{request}</p>"

    first = asyncio.create_task(pages.cache_request("/home", render))
    await asyncio.wait_for(rendering.wait(), 60)
    callers = await _start_waiting(client, lambda: pages.cache_request("/home", render))
    await _few_blocked_once_waiting(redis_client)
    done.set()
    got = await asyncio.wait_for(asyncio.gather(first, *callers), 300)
    assert got == ["<p>/home</p>"] * (WAITERS + 1)
    assert renders == 1


async def _start_waiting(redis: Any, wait: Callable[[], Awaitable[T]]) -> list[asyncio.Task[T]]:
    """Start the waiters in batches, each once the last is waiting on a wake-up channel.

    Every waiter's first step is a command of its own, and redis-py 8's pools open at most 100
    connections at once.
    """
    tasks: list[asyncio.Task[T]] = []
    for _ in range(0, WAITERS, BATCH):
        tasks += [asyncio.create_task(wait()) for _ in range(BATCH)]

        async def waiting(n: int = len(tasks)) -> bool:
            loop = wakeup._LOOPS.get(asyncio.get_running_loop())
            listening = loop.listeners.get(redis, {}).values() if loop is not None else ()
            # Nearly all: each waiter re-checks now and then (not waiting meanwhile), and on a
            # loaded machine some always are.
            return sum(listener.waiting for listener in listening) >= n - BATCH // 5

        await until(waiting, f"{len(tasks)} waiters to wait", limit=60)
    return tasks


async def _few_blocked_once_waiting(redis: Any) -> None:
    """Wait until a wake-up channel blocks, then check how many connections are blocked."""

    async def blocked() -> bool:
        return await blocked_clients(redis) >= 1

    await until(blocked, "a wake-up channel to block", limit=120)
    assert await blocked_clients(redis) <= MAX_BLOCKED
