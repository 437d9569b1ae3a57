"""Semaphore and FairSemaphore on real servers: the book's test, invariants, cancellation, faults.

Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster;
``cls`` runs it for both classes. Leases that must run out are short (0.2-0.5 s), leases that
must not are long; nothing here asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from helpers import NO_REDIS, restart_owner, retrying_client, text
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from aiorpatterns.coordination.semaphores import FairSemaphore, Semaphore
from aiorpatterns.core.errors import (
    AcquireTimeoutError,
    LeaseLostError,
    NotOwnedError,
    ReentryError,
)
from aiorpatterns.core.keys import Keyspace
from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.testing.server import ClusterServer, RedisServer, free_port

CLASSES = [Semaphore, FairSemaphore]
SemaphoreClass = type[Semaphore]


@pytest.fixture(params=CLASSES, ids=["Semaphore", "FairSemaphore"])
def cls(request: pytest.FixtureRequest) -> SemaphoreClass:
    kind: SemaphoreClass = request.param
    return kind


async def all_keys(redis: Any) -> list[str]:
    return sorted([text(key) async for key in redis.scan_iter(match="aiorp:*")])


async def leftovers(redis: Any) -> list[str]:
    """Return the keys still there, but the counter and the tombstones of cancelled acquires.

    The fair semaphore's counter never expires (fencing tokens); a tombstone (left by a release
    or an abandoned acquire) lives 15 s.
    """
    found = []
    for key in await all_keys(redis):
        if key.endswith(":counter"):
            continue
        if ":queue:" in key:
            value = [text(v) for v in await redis.lrange(key, 0, -1)]
            ttl = await redis.pttl(key)
            if ttl == -2:  # a tombstone that expired since it was listed (a slow run)
                continue
            if value == ["0"]:
                assert 0 < ttl <= 15_000, f"tombstone {key} must expire"
                continue
        found.append(key)
    return found


def queue_key(sem: Semaphore) -> str:
    return Keyspace().key(sem.kind, sem.name, "queue")


async def until(check: Callable[[], Awaitable[bool]], what: str, limit: float = 10.0) -> None:
    """Wait (bounded) for a state the test cannot be told about directly."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not await check():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.005)


async def waiting(redis: Any, sem: Semaphore, count: int) -> None:
    """Wait until ``count`` waiters are in the semaphore's queue in Redis."""

    async def enqueued() -> bool:
        return int(await redis.zcard(queue_key(sem))) == count

    await until(enqueued, f"{count} waiters in {queue_key(sem)}")


async def all_slots_free(redis: Any, cls: SemaphoreClass, name: str, limit: int) -> None:
    """``limit`` newcomers get a slot each and one more does not; then they leave."""
    fresh = [cls(redis, name, limit=limit, timeout=5) for _ in range(limit + 1)]
    got = [await sem.try_acquire() for sem in fresh]
    assert got == [True] * limit + [False]
    assert await fresh[0].holders() == limit
    for sem in fresh[:limit]:
        await sem.release()
    assert await fresh[0].holders() == 0


async def outcome(task: asyncio.Task[bool]) -> bool | None:
    """The task's result, or None if it was cancelled."""
    try:
        return await task
    except asyncio.CancelledError:
        return None


# -- the book's own test ----------------------------------------------------------------------


async def test_book_scenario(redis_client_text: Any, cls: SemaphoreClass) -> None:
    """Redis in Action ch11 ``test_semaphore`` (inventory §3), with short leases."""
    ids = [cls(redis_client_text, "testsem", limit=5, timeout=0.5) for _ in range(6)]
    assert [await sem.acquire(blocking=False) for sem in ids[:5]] == [True] * 5
    assert await ids[5].try_acquire() is False
    assert await ids[0].holders() == 5

    await asyncio.sleep(0.6)  # every holder's lease runs out
    assert await ids[0].holders() == 0
    new = cls(redis_client_text, "testsem", limit=5, timeout=5)
    assert await new.try_acquire() is True
    assert await new.holders() == 1

    with pytest.raises(NotOwnedError):
        await ids[4].refresh()
    with pytest.raises(NotOwnedError):
        await ids[4].release()
    assert ids[4].lost

    await new.refresh()
    await new.release()
    with pytest.raises(NotOwnedError):
        await new.release()
    assert await leftovers(redis_client_text) == []


async def test_book_fair_semaphore_scenario(redis_client: Any) -> None:
    """Redis in Action ch06 ``test_counting_semaphore``: limit 3, then a slot after expiry."""
    sems = [FairSemaphore(redis_client, "testsem", limit=3, timeout=0.5) for _ in range(4)]
    assert [await sem.try_acquire() for sem in sems] == [True, True, True, False]
    await asyncio.sleep(0.6)
    late = FairSemaphore(redis_client, "testsem", limit=3, timeout=5)
    assert await late.try_acquire()
    late_fence = late.fence or 0
    await late.release()
    assert late.fence is None  # a fence belongs to a hold
    again = [FairSemaphore(redis_client, "testsem", limit=3, timeout=5) for _ in range(3)]
    assert [await sem.try_acquire() for sem in again] == [True, True, True]
    fences = [sem.fence or 0 for sem in again]
    assert 0 < late_fence < fences[0] < fences[1] < fences[2]
    for sem in again:
        await sem.release()


# -- invariants under contention ----------------------------------------------------------------


async def test_never_more_than_limit_holders(redis_client: Any, cls: SemaphoreClass) -> None:
    """60 tasks, each with its own object, 5 slots: at most 5 inside, and every task gets in."""
    limit, tasks, rounds = 5, 60, 2
    inside = peak = 0
    entered = 0

    async def worker() -> None:
        nonlocal inside, peak, entered
        for _ in range(rounds):
            sem = cls(redis_client, "busy", limit=limit, timeout=10, acquire_timeout=60)
            async with sem:
                inside += 1
                entered += 1
                peak = max(peak, inside)
                assert await sem.holders() <= limit
                await asyncio.sleep(0.002)
                inside -= 1

    await asyncio.gather(*(worker() for _ in range(tasks)))
    assert entered == tasks * rounds
    assert 1 <= peak <= limit
    assert await leftovers(redis_client) == []


async def test_concurrent_tries_admit_exactly_limit(redis_client: Any, cls: SemaphoreClass) -> None:
    """However many try at once, and in whatever order, exactly ``limit`` get a slot."""
    rng = random.Random(7)
    for limit in (1, 3, 7):
        name = f"race-{limit}"
        sems = [cls(redis_client, name, limit=limit, timeout=5) for _ in range(25)]
        rng.shuffle(sems)
        got = await asyncio.gather(*(sem.try_acquire() for sem in sems))
        assert sum(got) == limit
        assert await sems[0].holders() == limit
        for sem, ok in zip(sems, got, strict=True):
            if ok:
                await sem.release()


async def test_no_newcomer_beyond_limit_in_any_order(
    redis_client: Any, cls: SemaphoreClass
) -> None:
    """The book's clock-skew "steal" has no opening: time is the server's, admission one step.

    Holders with short and long leases, acquired in any order, and newcomers with any lease:
    a newcomer never gets a slot beyond ``limit``. For the fair semaphore even a counter reset
    (which would rank a newcomer before current owners in the book's §6.3.2 scheme) admits no one.
    """
    limit = 3
    leases = [2.0, 60.0, 3.0, 30.0, 5.0, 10.0]
    sems = [cls(redis_client, "skew", limit=limit, timeout=t) for t in leases]
    got = await asyncio.gather(*(sem.try_acquire() for sem in reversed(sems)))
    held = [sem for sem, ok in zip(reversed(sems), got, strict=True) if ok]
    assert len(held) == limit

    for lease in (0.01, 5.0, 3600.0):
        newcomer = cls(redis_client, "skew", limit=limit, timeout=lease)
        assert await newcomer.try_acquire() is False
    assert await sems[0].holders() == limit

    late = cls(redis_client, "skew", limit=limit, timeout=60)
    if isinstance(late, FairSemaphore):
        await redis_client.delete(late._counter_key)
        assert await late.try_acquire() is False
    await held[0].release()
    assert await late.try_acquire() is True
    assert await late.holders() == limit
    if isinstance(late, FairSemaphore):
        others = [sem.fence or 0 for sem in held[1:] if isinstance(sem, FairSemaphore)]
        assert (late.fence or 0) > max(others)
        order = [text(m) for m in await redis_client.zrange(late._owner_key, 0, -1)]
        assert order[-1] == late.token


# -- waiting: FIFO hand-off, no starvation --------------------------------------------------------


async def test_waiters_are_served_in_arrival_order(redis_client: Any, cls: SemaphoreClass) -> None:
    """With one slot, queued waiters acquire in the order they arrived (hand-off, no polling)."""
    holder = cls(redis_client, "fifo", limit=1, timeout=10)
    assert await holder.acquire()
    order: list[int] = []

    async def waiter(i: int, sem: Semaphore) -> None:
        async with sem:
            order.append(i)
            await asyncio.sleep(0)

    tasks = []
    for i in range(8):
        sem = cls(redis_client, "fifo", limit=1, timeout=10, acquire_timeout=30)
        tasks.append(asyncio.create_task(waiter(i, sem)))
        await waiting(redis_client, holder, i + 1)
    await holder.release()
    await asyncio.gather(*tasks)
    assert order == list(range(8))
    assert await leftovers(redis_client) == []


async def test_fair_grants_follow_arrival_order(redis_client: Any) -> None:
    """With several slots, the fair semaphore's counters show grants in arrival order."""
    holders = [FairSemaphore(redis_client, "fifo3", limit=3, timeout=10) for _ in range(3)]
    assert all([await sem.try_acquire() for sem in holders])
    waiters = [
        FairSemaphore(redis_client, "fifo3", limit=3, timeout=10, acquire_timeout=30)
        for _ in range(9)
    ]
    tasks = []
    for i, sem in enumerate(waiters):
        tasks.append(asyncio.create_task(sem.acquire()))
        await waiting(redis_client, holders[0], i + 1)

    for batch in range(3):  # each batch of holders leaves, the next three arrivals come in
        current = holders if batch == 0 else waiters[(batch - 1) * 3 : batch * 3]
        for sem in current:
            await sem.release()
        await asyncio.gather(*tasks[batch * 3 : batch * 3 + 3])
    assert all(task.result() for task in tasks)
    fences = [sem.fence or 0 for sem in waiters]
    assert fences == sorted(fences)
    for sem in waiters[6:]:
        await sem.release()


async def test_newcomer_never_overtakes_a_waiter(redis_client: Any, cls: SemaphoreClass) -> None:
    """A freed slot, released or reclaimed from an expired lease, goes to the queued waiter."""
    holders = [cls(redis_client, "cut", limit=2, timeout=30) for _ in range(2)]
    assert all([await sem.try_acquire() for sem in holders])
    patient = cls(redis_client, "cut", limit=2, timeout=10, acquire_timeout=10)
    task = asyncio.create_task(patient.acquire())
    await waiting(redis_client, holders[0], 1)

    await holders[0].release()  # one slot frees by release: it is the waiter's
    newcomer = cls(redis_client, "cut", limit=2, timeout=10)
    assert await newcomer.try_acquire() is False
    assert await task is True

    # The other holder's lease runs out and no one releases it: whoever next asks Redis
    # (the waiter's own re-check, or a newcomer's try) hands the reclaimed slot to the queue.
    second = cls(redis_client, "cut", limit=2, timeout=10, acquire_timeout=10)
    second_task = asyncio.create_task(second.acquire())
    await waiting(redis_client, holders[0], 1)
    await holders[1].extend(0.3, replace=True)
    while not second_task.done():
        assert await newcomer.try_acquire() is False
        await asyncio.sleep(0.02)
    assert second_task.result() is True
    assert await newcomer.try_acquire() is False
    for sem in (patient, second):
        await sem.release()
    with pytest.raises(NotOwnedError):
        await holders[1].release()
    assert await leftovers(redis_client) == []


async def test_async_with_times_out(redis_client: Any, cls: SemaphoreClass) -> None:
    """``async with`` raises AcquireTimeoutError; ``acquire()`` returns False; the queue empties."""
    holder = cls(redis_client, "full", limit=1, timeout=10)
    assert await holder.acquire()
    late = cls(redis_client, "full", limit=1, timeout=10, acquire_timeout=0.2)
    with pytest.raises(AcquireTimeoutError):
        async with late:
            pytest.fail("entered a full semaphore")
    assert await late.acquire() is False
    assert int(await redis_client.zcard(queue_key(holder))) == 0
    assert not late.held
    await holder.release()
    assert await late.acquire() is True
    await late.release()
    assert await leftovers(redis_client) == []


# -- leases: lost, refreshed, extended, renewed ----------------------------------------------------


async def test_lost_slot(redis_client: Any, cls: SemaphoreClass) -> None:
    """A lease that runs out mid-section: refresh and release raise NotOwnedError."""
    sem = cls(redis_client, "lost", limit=1, timeout=0.2)
    assert await sem.acquire()
    await asyncio.sleep(0.3)
    other = cls(redis_client, "lost", limit=1, timeout=10)
    assert await other.try_acquire()  # the slot really is someone else's now
    with pytest.raises(NotOwnedError):
        await sem.refresh()
    with pytest.raises(NotOwnedError):
        await sem.extend(5)
    with pytest.raises(NotOwnedError):
        await sem.release()
    assert sem.lost
    assert not sem.held
    assert await other.holders() == 1  # the stale release took nothing from the new holder
    await other.release()


async def test_lost_slot_in_async_with(redis_client: Any, cls: SemaphoreClass) -> None:
    """``async with`` reports a slot lost mid-block as LeaseLostError (a NotOwnedError)."""
    sem = cls(redis_client, "lostwith", limit=2, timeout=0.2)
    with pytest.raises(LeaseLostError):
        async with sem:
            await asyncio.sleep(0.3)
    assert not sem.held

    async def fail_late() -> None:
        async with sem:
            await asyncio.sleep(0.3)
            raise KeyError("mine")

    with pytest.raises(KeyError):  # the block's own exception wins over the lost slot
        await fail_late()
    await all_slots_free(redis_client, cls, "lostwith", 2)


async def test_refresh_and_extend(redis_client: Any, cls: SemaphoreClass) -> None:
    """``refresh()`` resets the lease to ``timeout``; ``extend()`` adds to or replaces it."""
    sem = cls(redis_client, "ext", limit=1, timeout=3)
    assert await sem.acquire()
    left = await sem.extend(5)
    assert 5 < left <= 8
    assert await sem.extend(0.5, replace=True) == pytest.approx(0.5)

    async def lease_end() -> float:
        return float(await redis_client.zscore(sem.key, sem.token))

    before = await lease_end()
    await asyncio.sleep(0.01)
    await sem.refresh()  # back to the full 3 s from now: later than the 0.5 s set above
    assert await lease_end() > before + 2000
    assert await sem.holders() == 1
    await sem.release()


async def test_auto_renew_keeps_the_slot(redis_client: Any, cls: SemaphoreClass) -> None:
    """``auto_renew=True`` holds the slot well past one lease."""
    sem = cls(redis_client, "renew", limit=1, timeout=0.9, auto_renew=True)
    async with sem:
        await asyncio.sleep(1.5)
        assert await sem.holders() == 1
        assert await cls(redis_client, "renew", limit=1).try_acquire() is False
    assert not sem.lost
    assert await leftovers(redis_client) == []


async def test_on_lost_is_called(redis_client: Any, cls: SemaphoreClass) -> None:
    """A renewer that finds the slot gone sets ``lost`` and calls ``on_lost``."""
    lost = asyncio.Event()
    sem = cls(
        redis_client, "gone", limit=1, timeout=0.3, auto_renew=True, on_lost=lambda s: lost.set()
    )
    assert await sem.acquire()
    await redis_client.delete(sem.key)  # the slot vanishes behind the holder's back
    await asyncio.wait_for(lost.wait(), 5)
    assert sem.lost
    with pytest.raises(NotOwnedError):
        await sem.release()


# -- cancellation -----------------------------------------------------------------------------


async def test_holder_cancelled_mid_section(redis_client: Any, cls: SemaphoreClass) -> None:
    """Cancelling tasks inside ``async with`` releases their slots (the release is shielded)."""
    limit = 3
    inside = asyncio.Semaphore(0)

    async def hold() -> None:
        async with cls(redis_client, "cancelled", limit=limit, timeout=30):
            inside.release()
            await asyncio.sleep(30)

    tasks = [asyncio.create_task(hold()) for _ in range(limit)]
    for _ in range(limit):
        await inside.acquire()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert await leftovers(redis_client) == []
    await all_slots_free(redis_client, cls, "cancelled", limit)


async def test_waiter_cancelled_while_waiting(redis_client: Any, cls: SemaphoreClass) -> None:
    """A cancelled waiter leaves the queue and holds nothing; every slot stays usable."""
    limit = 2
    holders = [cls(redis_client, "wcancel", limit=limit, timeout=30) for _ in range(limit)]
    assert all([await sem.try_acquire() for sem in holders])
    waiter = cls(redis_client, "wcancel", limit=limit, timeout=30, acquire_timeout=30)
    task = asyncio.create_task(waiter.acquire())
    await waiting(redis_client, holders[0], 1)
    task.cancel()
    assert await outcome(task) is None
    assert not waiter.held
    assert int(await redis_client.zcard(queue_key(waiter))) == 0
    for sem in holders:
        await sem.release()
    assert await leftovers(redis_client) == []
    await all_slots_free(redis_client, cls, "wcancel", limit)


async def test_cancel_uncontended_acquire_at_each_step(
    redis_client: Any, cls: SemaphoreClass
) -> None:
    """Cancel ``acquire()`` after 0, 1, 2, ... loop iterations: never a slot without an owner."""
    completed = 0
    for steps in range(200):
        sem = cls(redis_client, "step", limit=2, timeout=30)
        task = asyncio.create_task(sem.acquire())
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        if await outcome(task):
            completed += 1
            assert await sem.holders() == 1
            await sem.release()
        else:
            assert not sem.held
        assert await leftovers(redis_client) == []
        if completed >= 3:
            break
    assert completed >= 3, "acquire never completed: the cancellation points were not all covered"
    await all_slots_free(redis_client, cls, "step", 2)


async def test_cancel_waiter_at_each_step_around_a_hand_over(
    redis_client: Any, cls: SemaphoreClass
) -> None:
    """Cancel a waiter at each step, just before or just after the holder releases to it.

    Whether the slot was already handed to the waiter (its clean-up gives it on) or not (it
    leaves the queue), nothing stays held or queued once the cancelled task has finished.
    """
    pauses = [0.0] * 16 + [0.001, 0.002, 0.005, 0.01, 0.02]
    for step, pause in enumerate(pauses):
        for cancel_first in (False, True):
            holder = cls(redis_client, "handoff", limit=1, timeout=30)
            assert await holder.try_acquire()
            waiter = cls(redis_client, "handoff", limit=1, timeout=30, acquire_timeout=30)
            task = asyncio.create_task(waiter.acquire())
            if pause:
                await asyncio.sleep(pause)
            for _ in range(0 if pause else step):
                await asyncio.sleep(0)
            if cancel_first:
                task.cancel()
            release = asyncio.create_task(holder.release())
            await asyncio.sleep(0)
            if not cancel_first:
                task.cancel()
            await release
            if await outcome(task):
                await waiter.release()
            assert not waiter.held
            assert await leftovers(redis_client) == [], f"leaked at step {step}"
    await all_slots_free(redis_client, cls, "handoff", 1)


async def test_waiter_cancelled_twice_cleans_up(redis_client: Any, cls: SemaphoreClass) -> None:
    """A second cancel during the clean-up ends the task at once; the clean-up still finishes.

    ``Lease`` shields its clean-up but does not wait for it through a second cancellation, so
    the slot handed to the waiter is given back one round trip after the task has ended.
    """
    for step in range(12):
        holder = cls(redis_client, "twice", limit=1, timeout=30)
        assert await holder.try_acquire()
        waiter = cls(redis_client, "twice", limit=1, timeout=30, acquire_timeout=30)
        task = asyncio.create_task(waiter.acquire())
        for _ in range(step):
            await asyncio.sleep(0)
        task.cancel()
        release = asyncio.create_task(holder.release())
        await asyncio.sleep(0)
        task.cancel()
        await release
        if await outcome(task):
            await waiter.release()

        async def clean() -> bool:
            return await leftovers(redis_client) == []

        await until(clean, f"the clean-up after step {step}")
    await all_slots_free(redis_client, cls, "twice", 1)


# -- keys ---------------------------------------------------------------------------------


async def test_keys_share_a_tag_and_expire(redis_client_text: Any, cls: SemaphoreClass) -> None:
    """Every key is under the prefix and the object's hash tag, and expires (but the counter)."""
    holder = cls(redis_client_text, "keys", limit=1, timeout=10)
    assert await holder.acquire()
    waiter = cls(redis_client_text, "keys", limit=1, timeout=10, acquire_timeout=30)
    task = asyncio.create_task(waiter.acquire())
    await waiting(redis_client_text, holder, 1)
    keys = await all_keys(redis_client_text)
    assert keys, "nothing written"
    for key in keys:
        assert key.startswith(f"aiorp:{cls.kind}:{{keys}}")
        ttl = await redis_client_text.pttl(key)
        if key.endswith(":counter"):
            assert ttl == -1  # fencing tokens must never repeat
        else:
            assert ttl > 0, key
    await holder.release()
    assert await task is True
    assert isinstance(await waiter.holders(), int)
    if isinstance(waiter, FairSemaphore):
        assert isinstance(waiter.fence, int)
    await waiter.release()
    assert await leftovers(redis_client_text) == []


async def test_custom_keyspace(redis_client: Any, cls: SemaphoreClass) -> None:
    """A Keyspace prefix moves every key; names with the same text stay independent."""
    mine = cls(redis_client, "k", limit=1, keyspace=Keyspace("app"))
    other = cls(redis_client, "k", limit=1)
    assert await mine.try_acquire()
    assert await other.try_acquire()
    assert mine.key.startswith("app:")
    assert all(key.startswith(("app:", "aiorp:")) for key in await all_keys(redis_client))
    await mine.release()
    await other.release()


# -- server faults ------------------------------------------------------------------------


def quick_client(url: str, topology: str) -> Any:
    """A client without retries, so a dead server is reported at once."""
    if topology == "cluster":
        return RedisCluster.from_url(url, retry=Retry(NoBackoff(), 0))
    return Redis.from_url(url, retry=Retry(NoBackoff(), 0))


@pytest.mark.timeout(60)
async def test_server_restart_while_held(
    endpoint: tuple[Endpoint, str], cls: SemaphoreClass
) -> None:
    """A restart without persistence forgets the slot: release raises NotOwnedError, no hang."""
    where, topology = endpoint
    client = retrying_client(where.url, topology)
    try:
        sem = cls(client, "restart", limit=1, timeout=30)
        assert await sem.acquire()
        await restart_owner(where, client, sem.key)
        with pytest.raises(NotOwnedError):
            await sem.refresh()
        with pytest.raises(NotOwnedError):
            await sem.release()
        await all_slots_free(client, cls, "restart", 1)
    finally:
        await client.aclose()


@pytest.mark.timeout(60)
async def test_server_restart_while_waiting(
    endpoint: tuple[Endpoint, str], cls: SemaphoreClass
) -> None:
    """A waiter whose server restarts gets a slot on the restarted server (it forgot the holder).

    The client retries, so the waiter's blocked read reconnects; its next re-check finds the
    restarted server empty. (Without retries it raises ConnectionError: see test_server_down.)
    """
    where, topology = endpoint
    client = retrying_client(where.url, topology)
    try:
        holder = cls(client, "rwait", limit=1, timeout=30)
        assert await holder.acquire()
        waiter = cls(client, "rwait", limit=1, timeout=30, acquire_timeout=10)
        task = asyncio.create_task(waiter.acquire())
        await waiting(client, holder, 1)
        await restart_owner(where, client, holder.key)
        assert await task is True
        with pytest.raises(NotOwnedError):
            await holder.release()
        assert await waiter.holders() == 1
        await waiter.release()
    finally:
        await client.aclose()


@pytest.mark.timeout(60)
async def test_server_down(endpoint: tuple[Endpoint, str], cls: SemaphoreClass) -> None:
    """With the server down, acquire and release raise redis-py's ConnectionError promptly."""
    where, topology = endpoint
    client = quick_client(where.url, topology)
    try:
        holder = cls(client, "down", limit=1, timeout=30)
        assert await holder.acquire()
        waiter = cls(client, "down", limit=1, timeout=30, acquire_timeout=10)
        task = asyncio.create_task(waiter.acquire())
        await waiting(client, holder, 1)
        server = where.server
        if isinstance(server, RedisServer):
            node = server
        else:
            assert isinstance(server, ClusterServer)
            port = client.get_node_from_key(holder.key).port
            node = next(n for n in server.nodes if n.port == port)
        await asyncio.to_thread(node.kill)
        try:
            with pytest.raises((RedisConnectionError, OSError)):
                await task
            assert not waiter.held
            late = cls(client, "down", limit=1, timeout=30, acquire_timeout=1)
            with pytest.raises((RedisConnectionError, OSError)):
                await late.acquire()
            with pytest.raises((RedisConnectionError, OSError)):
                await holder.release()
        finally:
            await restart_owner(where, client, holder.key)
    finally:
        await client.aclose()


# -- bad input ----------------------------------------------------------------------------


@pytest.fixture
def dead_client() -> Redis:
    """A client for a port nothing listens on: any Redis call would raise ConnectionError."""
    return Redis(port=free_port(), retry=Retry(NoBackoff(), 0))


@pytest.mark.parametrize(
    ("args", "options", "error", "match"),
    [
        (("",), {"limit": 1}, ValueError, "name"),
        ((b"x",), {"limit": 1}, TypeError, "name"),
        ((None,), {"limit": 1}, TypeError, "name"),
        (("a}b",), {"limit": 1}, ValueError, "name"),
        (("x",), {}, TypeError, "limit"),
        (("x",), {"limit": 0}, ValueError, "limit"),
        (("x",), {"limit": -3}, ValueError, "limit"),
        (("x",), {"limit": math.nan}, TypeError, "limit"),
        (("x",), {"limit": math.inf}, TypeError, "limit"),
        (("x",), {"limit": 2.5}, TypeError, "limit"),
        (("x",), {"limit": 2**63}, ValueError, "limit"),
        (("x",), {"limit": True}, TypeError, "limit"),
        (("x",), {"limit": "5"}, TypeError, "limit"),
        (("x",), {"limit": None}, TypeError, "limit"),
        (("x",), {"limit": 1, "timeout": 0}, ValueError, "timeout"),
        (("x",), {"limit": 1, "timeout": -1}, ValueError, "timeout"),
        (("x",), {"limit": 1, "timeout": math.nan}, ValueError, "timeout"),
        (("x",), {"limit": 1, "timeout": "10"}, TypeError, "timeout"),
        (("x",), {"limit": 1, "timeout": True}, TypeError, "timeout"),
        (("x",), {"limit": 1, "acquire_timeout": -1}, ValueError, "acquire_timeout"),
        (("x",), {"limit": 1, "acquire_timeout": math.inf}, ValueError, "acquire_timeout"),
        (("x",), {"limit": 1, "keyspace": "app"}, TypeError, "keyspace"),
        (("x",), {"limit": 1, "colour": "red"}, TypeError, "colour"),
    ],
)
def test_bad_arguments(
    dead_client: Any,
    cls: SemaphoreClass,
    args: tuple[Any, ...],
    options: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        cls(dead_client, *args, **options)


def test_redis_none_is_rejected(cls: SemaphoreClass) -> None:
    with pytest.raises(TypeError, match="redis"):
        cls(None, "x", limit=1)


def test_limit_is_a_whole_number(cls: SemaphoreClass) -> None:
    """The shared count check (checks.py): an int, even a whole float is refused, before Redis."""
    assert cls(NO_REDIS, "x", limit=4).limit == 4
    with pytest.raises(TypeError, match="limit"):
        cls(NO_REDIS, "x", limit=4.0)  # type: ignore[arg-type]


async def test_bad_calls_fail_before_redis(dead_client: Any, cls: SemaphoreClass) -> None:
    """Bad arguments to methods, and a release of nothing, never reach the (dead) server."""
    sem = cls(dead_client, "x", limit=1)
    with pytest.raises(ValueError, match="acquire_timeout"):
        await sem.acquire(acquire_timeout=-1)
    with pytest.raises(TypeError, match="acquire_timeout"):
        await sem.acquire(acquire_timeout="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seconds"):
        await sem.extend(0)
    with pytest.raises(TypeError, match="seconds"):
        await sem.extend("1")  # type: ignore[arg-type]
    with pytest.raises(NotOwnedError):
        await sem.extend(1)
    with pytest.raises(NotOwnedError):
        await sem.refresh()
    with pytest.raises(NotOwnedError):
        await sem.release()
    with pytest.raises(RedisConnectionError):  # and a good call does reach it
        await sem.try_acquire()


async def test_reentry_from_the_holding_task_raises_at_once(
    redis_client: Any, cls: SemaphoreClass
) -> None:
    """The holding task acquiring its own object again gets ReentryError at once, not a wait.

    One object holds at most one slot, so a nested ``async with sem:`` used to wait its whole
    ``acquire_timeout`` for itself (even with free slots). The held slot is untouched.
    """
    sem = cls(redis_client, "again", limit=3, timeout=30, acquire_timeout=None)
    async with asyncio.timeout(10):  # a regression fails here instead of hanging
        async with sem:
            with pytest.raises(ReentryError, match=f"already held by this {cls.__name__}"):
                async with sem:
                    pytest.fail("the block ran re-entered")
            with pytest.raises(ReentryError):
                await sem.acquire()
            with pytest.raises(ReentryError):
                await sem.try_acquire()
            assert sem.held
            assert await sem.owned()
            assert await sem.holders() == 1
        assert await sem.holders() == 0
        assert await sem.acquire()  # released: the same task may take a slot again
        await sem.release()
    assert await leftovers(redis_client) == []
