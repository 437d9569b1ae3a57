"""Lock: behaviour, invariants under contention, faults, cancellation and bad input.

Every pattern test runs on a real standalone server and on a real 3-master Redis Cluster
(``redis_client``); the fault tests start, restart and kill real server processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.exceptions
from helpers import CANCELLED, cancel_after, restart_owner, retrying_client
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.crc import key_slot

from aiorpatterns import (
    AcquireTimeoutError,
    Keyspace,
    LeaseLostError,
    Lock,
    NotOwnedError,
    ReentryError,
)
from aiorpatterns.core.scripts import script
from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.testing.server import CLUSTER_SLOTS, ClusterServer, RedisServer, free_port

# -- helpers --------------------------------------------------------------------------------


def text(value: Any) -> Any:
    """Decode a reply so tests read the same whatever ``decode_responses`` is."""
    return value.decode() if isinstance(value, bytes) else value


async def eventually(check: Callable[[], Awaitable[object]], *, within: float = 10.0) -> None:
    """Wait until ``check()`` is truthy; fail (never hang) after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.005)


def lock_keys_of(lock: Lock) -> dict[str, str]:
    """The fixed keys of a lock, by role."""
    ks = lock.keyspace
    return {
        "lock": lock.key,
        "fence": ks.key("lock", lock.name, "fence"),
        "queue": ks.key("lock", lock.name, "queue"),
        "waiters": ks.key("lock", lock.name, "waiters"),
    }


async def keys_in_redis(client: Any, lock: Lock) -> set[str]:
    """Every key of ``lock``'s object present in Redis (they all live in the lock key's slot)."""
    pattern = lock.keyspace.tag("lock", lock.name) + "*"
    if isinstance(client, RedisCluster):
        found = await client.keys(pattern, target_nodes=client.get_node_from_key(lock.key))
    else:
        found = await client.keys(pattern)
    return {text(k) for k in found}


async def queue_of(client: Any, lock: Lock) -> list[str]:
    return [text(t) for t in await client.zrange(lock_keys_of(lock)["queue"], 0, -1)]


async def queue_length(client: Any, lock: Lock) -> int:
    return int(await client.zcard(lock_keys_of(lock)["queue"]))


async def assert_consistent(client: Any, *locks: Lock) -> None:
    """The lock is free, or held by exactly one of ``locks``, which knows it and owns it."""
    holder = text(await client.get(locks[0].key))
    owners = [lock for lock in locks if lock.held]
    if holder is None:
        assert owners == [], "an object believes it holds a lock nobody holds"
    else:
        assert [lock.token for lock in owners] == [holder], "the lock is held by nobody who knows"
        assert await owners[0].owned()


async def tombstones(client: Any, lock: Lock) -> set[str]:
    """Wake lists left by releases and abandoned acquires: just the tombstone "0", expiring
    within 15 s (``TOMBSTONE_MS``: longer than a client's retry schedule)."""
    found = set()
    wake_lists = [
        k
        for k in await keys_in_redis(client, lock)
        if k.startswith(f"{lock_keys_of(lock)['queue']}:")
    ]
    for key in wake_lists:
        value = [text(v) for v in await client.lrange(key, 0, -1)]
        ttl = await client.pttl(key)
        if ttl == -2:  # expired since it was listed (a slow run): a tombstone that ran out
            found.add(key)
        elif value == ["0"]:
            assert 0 < ttl <= 15_000, f"tombstone {key} must expire"
            found.add(key)
    return found


async def assert_no_wait_state(client: Any, lock: Lock) -> None:
    """No queue, waiter record or wake list is left for ``lock``'s name (but tombstones)."""
    roles = lock_keys_of(lock)
    leftovers = await keys_in_redis(client, lock) - {roles["lock"], roles["fence"]}
    assert leftovers - await tombstones(client, lock) == set()


async def sweep(step: Callable[[int], Awaitable[bool]], *, stride: int = 1) -> int:
    """Call ``step(k)`` for k = 0, stride, 2*stride, ... until it finished uncancelled 3 times."""
    k, in_a_row, runs = 0, 0, 0
    while in_a_row < 3:
        in_a_row = in_a_row + 1 if await step(k) else 0
        k += stride
        runs += 1
        assert runs < 3000, "the operation never completed on its own"
    return runs


# -- behaviour ------------------------------------------------------------------------------


async def test_acquire_release_cycle(redis_client: Any) -> None:
    """acquire/locked/owned/fence/token/release report the truth, and release frees the lock."""
    lock = Lock(redis_client, "cart:42", timeout=5)
    assert (lock.held, lock.fence, lock.token, lock.lost) == (False, None, None, False)
    assert not await lock.locked()
    assert not await lock.owned()

    assert await lock.acquire() is True
    assert lock.held
    assert type(lock.fence) is int
    assert lock.fence >= 1
    assert await lock.locked()
    assert await lock.owned()
    assert text(await redis_client.get(lock.key)) == lock.token
    assert 0 < await redis_client.pttl(lock.key) <= 5000
    assert "held" in repr(lock)

    await lock.release()
    assert (lock.held, lock.fence, lock.token) == (False, None, None)
    assert not await lock.locked()
    assert not await lock.owned()
    # Left: the fence, and the released token's tombstone (a re-sent release recognises it).
    left = await keys_in_redis(redis_client, lock)
    assert left - await tombstones(redis_client, lock) == {lock_keys_of(lock)["fence"]}
    assert len(left) == 2


async def test_other_object_sees_locked_but_not_owned(redis_client: Any) -> None:
    """A second object on the same name sees the lock taken but does not own it."""
    a, b = Lock(redis_client, "shared-name"), Lock(redis_client, "shared-name")
    assert await a.acquire()
    assert await b.locked()
    assert not await b.owned()
    assert not b.held
    await a.release()


async def test_try_acquire_never_waits_and_never_queues(redis_client: Any) -> None:
    """try_acquire/blocking=False answer at once and leave no trace; a timed wait leaves none."""
    a, b = Lock(redis_client, "busy"), Lock(redis_client, "busy")
    assert await a.try_acquire() is True
    assert await b.try_acquire() is False
    assert await b.acquire(blocking=False) is False
    await assert_no_wait_state(redis_client, a)
    assert await b.acquire(acquire_timeout=0.05) is False
    assert not b.held
    await assert_no_wait_state(redis_client, a)
    await a.release()
    assert await b.try_acquire() is True
    await b.release()


async def test_try_acquire_on_a_shared_object_never_blocks(redis_client: Any) -> None:
    """try_acquire returns at once even while another task sharing the object is next in line."""
    remote = Lock(redis_client, "gate", timeout=30)
    assert await remote.acquire()
    shared = Lock(redis_client, "gate", timeout=30)

    async def give_up_then_try() -> tuple[bool, bool]:
        timed = await shared.acquire(acquire_timeout=0.2)  # holds the gate, times out remotely
        return timed, await shared.try_acquire()  # `patient` was woken but has not run yet

    first = asyncio.create_task(give_up_then_try())
    await asyncio.sleep(0)  # `first` now holds the object's local gate
    patient = asyncio.create_task(shared.acquire(acquire_timeout=None))  # next in line for it
    assert await asyncio.wait_for(first, 5) == (False, False)
    await remote.release()
    assert await asyncio.wait_for(patient, 10) is True
    await shared.release()


async def test_async_with_raises_acquire_timeout(redis_client: Any) -> None:
    """``async with`` raises AcquireTimeoutError (a TimeoutError) and never runs the block."""
    holder = Lock(redis_client, "busy", timeout=30)
    assert await holder.acquire()
    ran = False
    with pytest.raises(AcquireTimeoutError, match="busy"):
        async with Lock(redis_client, "busy", acquire_timeout=0.05):
            ran = True
    assert not ran
    assert issubclass(AcquireTimeoutError, TimeoutError)
    assert await holder.owned()
    await holder.release()
    await assert_no_wait_state(redis_client, holder)


async def test_reentry_from_the_holding_task_raises_at_once(redis_client: Any) -> None:
    """The holding task acquiring its own Lock object again gets ReentryError, not a wait.

    Before, a nested ``async with lock:`` waited the whole ``acquire_timeout`` for itself; with
    ``acquire_timeout=None`` it hung. The hold is untouched, and another task sharing the object
    still takes its turn as before.
    """
    lock = Lock(redis_client, "again", timeout=30, acquire_timeout=None)
    assert issubclass(ReentryError, RuntimeError)
    async with asyncio.timeout(10):  # a regression fails here instead of hanging
        async with lock:
            fence = lock.fence
            with pytest.raises(ReentryError, match=r"'again' is already held by this Lock"):
                async with lock:
                    pytest.fail("the block ran re-entered")
            with pytest.raises(ReentryError):
                await lock.acquire()
            with pytest.raises(ReentryError):
                await lock.try_acquire()
            assert lock.held
            assert lock.fence == fence
            assert await lock.owned()
            other = asyncio.create_task(lock.acquire(acquire_timeout=0.05))
            assert await other is False  # not the holder: it queues for the object and gives up
        assert not await lock.locked()
        assert await lock.acquire()  # released: the same task may take it again
        await lock.release()
    await assert_no_wait_state(redis_client, lock)


async def test_async_with_holds_inside_and_releases_on_error(redis_client: Any) -> None:
    """The block runs holding the lock; an exception in it propagates and still releases."""
    lock = Lock(redis_client, "ctx")
    async with lock as entered:
        assert entered is lock
        assert await lock.owned()
    assert not await lock.locked()
    with pytest.raises(KeyError):
        async with lock:
            raise KeyError("boom")
    assert not lock.held
    assert not await lock.locked()


@pytest.mark.parametrize("where", ["constructor", "call", "context"])
async def test_acquire_timeout_none_waits_until_released(redis_client: Any, where: str) -> None:
    """acquire_timeout=None waits as long as it takes (here: until the holder releases)."""
    holder = Lock(redis_client, "patient", timeout=30)
    assert await holder.acquire()
    if where == "call":
        waiter = Lock(redis_client, "patient", timeout=30, acquire_timeout=0.01)
        task = asyncio.create_task(waiter.acquire(acquire_timeout=None))
    else:
        waiter = Lock(redis_client, "patient", timeout=30, acquire_timeout=None)
        task = asyncio.create_task(waiter.__aenter__() if where == "context" else waiter.acquire())

    async def queued() -> bool:
        return await queue_length(redis_client, holder) == 1

    await eventually(queued)
    assert not task.done()
    await holder.release()
    assert await task in (True, waiter)
    assert await waiter.owned()
    await waiter.release()
    await assert_no_wait_state(redis_client, holder)


async def test_release_or_extend_when_not_held_raises_not_owned(redis_client: Any) -> None:
    """release()/extend() of a lock this object does not hold raise NotOwnedError."""
    lock, other = Lock(redis_client, "r"), Lock(redis_client, "r")
    with pytest.raises(NotOwnedError):
        await lock.release()
    with pytest.raises(NotOwnedError):
        await lock.extend(1)
    assert await other.acquire()
    with pytest.raises(NotOwnedError):
        await lock.release()  # someone else holds it: still not ours
    assert await other.owned()
    await other.release()
    with pytest.raises(NotOwnedError):
        await other.release()  # twice


async def test_extend_adds_or_replaces(redis_client: Any) -> None:
    """extend(s) adds s to the remaining lease; extend(s, replace=True) sets it to s."""
    lock = Lock(redis_client, "r", timeout=5)
    assert await lock.acquire()
    left = await lock.extend(20)
    assert type(left) is float
    assert 20 < left <= 25
    assert 20_000 < await redis_client.pttl(lock.key) <= 25_000
    assert await lock.extend(0.5, replace=True) == 0.5
    assert 0 < await redis_client.pttl(lock.key) <= 500
    assert await lock.extend(60, replace=True) == 60
    assert 59_000 < await redis_client.pttl(lock.key) <= 60_000
    assert await lock.owned()
    await lock.release()


async def test_sequential_fences_increase(redis_client: Any) -> None:
    """Every grant gets a larger fencing token, across objects and re-acquisitions."""
    fences = []
    for lock in [Lock(redis_client, "f"), Lock(redis_client, "f")] * 3:
        assert await lock.acquire()
        fences.append(lock.fence)
        await lock.release()
    assert fences == sorted(set(fences))
    assert len(fences) == 6


async def test_results_identical_with_decode_responses(redis_client_text: Any) -> None:
    """Every result is the same plain Python value whether decode_responses is on or off."""
    r = redis_client_text
    a, b = Lock(r, "doc", timeout=5), Lock(r, "doc", timeout=5)
    seen: list[Any] = [await a.acquire(), a.fence, await b.try_acquire()]
    seen += [await a.owned(), await b.owned(), await a.locked(), await a.extend(5, replace=True)]
    waiter = asyncio.create_task(b.acquire())  # handed over through its wake list

    async def queued() -> bool:
        return await queue_length(r, a) == 1

    await eventually(queued)
    await a.release()
    seen += [await waiter, b.fence, type(b.token)]
    await b.release()
    seen += [await b.locked(), b.fence]
    assert seen == [True, 1, False, True, False, True, 5.0, True, 2, str, False, None]
    assert [type(v) for v in seen[:3]] == [bool, int, bool]


# -- invariants under contention ------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["lock-per-task", "one-shared-lock"])
async def test_counter_is_exact_under_contention(redis_client: Any, shared: bool) -> None:
    """50 tasks doing read, yield, write under the lock never lose an update nor overlap."""
    counter = "aiorp:test:{counter}"
    rounds = 3
    one_lock = Lock(redis_client, "counter", acquire_timeout=60)
    inside = 0

    async def worker() -> None:
        nonlocal inside
        lock = one_lock if shared else Lock(redis_client, "counter", acquire_timeout=60)
        for _ in range(rounds):
            async with lock:
                inside += 1
                assert inside == 1
                value = int(await redis_client.get(counter) or 0)
                await asyncio.sleep(0)
                await redis_client.set(counter, value + 1)
                inside -= 1

    await asyncio.gather(*(worker() for _ in range(50)))
    assert int(await redis_client.get(counter)) == 50 * rounds
    await assert_no_wait_state(redis_client, one_lock)


async def test_fencing_tokens_strictly_increase_under_contention(redis_client: Any) -> None:
    """Fences recorded inside the critical section, in grant order, strictly increase."""
    fences: list[int] = []

    async def worker() -> None:
        lock = Lock(redis_client, "fenced", acquire_timeout=60)
        for _ in range(5):
            async with lock:
                assert lock.fence is not None
                fences.append(lock.fence)
                await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(10)))
    assert len(fences) == 50
    assert all(a < b for a, b in itertools.pairwise(fences))


async def test_ten_contending_clients_all_acquire(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    """10 clients, each re-acquiring at once, all get every turn they ask for (no starvation)."""
    clients = [await new_client() for _ in range(10)]
    grants: list[int] = []

    async def worker(i: int, client: Any) -> None:
        lock = Lock(client, "contended", acquire_timeout=60)
        for _ in range(4):
            async with lock:
                grants.append(i)
                await asyncio.sleep(0)

    await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
    assert Counter(grants) == dict.fromkeys(range(10), 4)


async def test_waiters_are_served_in_arrival_order(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    """Waiters from 10 clients get the lock in the order they queued (FIFO hand-off)."""
    holder = Lock(redis_client, "fifo", timeout=30)
    assert await holder.acquire()
    order: list[int] = []

    async def waiter(i: int, client: Any) -> None:
        async with Lock(client, "fifo", timeout=30, acquire_timeout=30):
            order.append(i)

    tasks = []
    for i in range(10):
        tasks.append(asyncio.create_task(waiter(i, await new_client())))

        async def queued(n: int = i + 1) -> bool:
            return await queue_length(redis_client, holder) == n

        await eventually(queued)
    await holder.release()
    await asyncio.gather(*tasks)
    assert order == list(range(10))
    await assert_no_wait_state(redis_client, holder)


# -- faults: expiry, cancellation, dead waiters, renewal --------------------------------------


async def test_expired_lease_then_release_raises_not_owned(redis_client: Any) -> None:
    """A lease that ran out makes release() raise NotOwnedError; the object is reusable."""
    lock = Lock(redis_client, "short", timeout=0.2)
    assert await lock.acquire()

    async def expired() -> bool:
        return not await lock.locked()

    await eventually(expired)
    assert lock.held  # it cannot know before it asks
    with pytest.raises(NotOwnedError):
        await lock.release()
    assert not lock.held
    assert lock.lost
    assert await lock.acquire()
    assert not lock.lost
    await lock.release()


async def test_expired_holder_cannot_touch_the_next_holder(redis_client: Any) -> None:
    """After expiry a waiter takes over with a larger fence; the old holder can't extend/release."""
    old = Lock(redis_client, "r", timeout=0.2)
    new = Lock(redis_client, "r", timeout=30, acquire_timeout=10)
    assert await old.acquire()
    assert await new.acquire()  # nobody released: the waiter re-checks when the lease runs out
    assert new.fence is not None
    assert old.fence is not None
    assert new.fence > old.fence
    with pytest.raises(NotOwnedError):
        await old.extend(10)
    assert old.lost
    with pytest.raises(NotOwnedError):
        await old.release()
    assert await new.owned()
    assert 29_000 < await redis_client.pttl(new.key) <= 30_000
    await new.release()


async def test_async_with_raises_lease_lost_after_expiry(redis_client: Any) -> None:
    """A block that outlives its lease ends with LeaseLostError, unless it raised on its own."""
    lock = Lock(redis_client, "short", timeout=0.2)

    async def expired() -> bool:
        return not await lock.locked()

    with pytest.raises(LeaseLostError):
        async with lock:
            await eventually(expired)
    assert not lock.held
    assert issubclass(LeaseLostError, NotOwnedError)

    async def fail_after_expiry() -> None:
        async with lock:
            await eventually(expired)
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):  # the block's own error is never masked
        await fail_after_expiry()
    assert not lock.held


async def test_cancelled_holder_releases_on_the_way_out(redis_client: Any) -> None:
    """A task cancelled inside ``async with`` still releases the lock."""
    lock = Lock(redis_client, "r", timeout=30)
    entered = asyncio.Event()

    async def hold() -> None:
        async with lock:
            entered.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(hold())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not lock.held
    assert not await lock.locked()


async def test_cancelled_holder_without_release_keeps_it_until_expiry(redis_client: Any) -> None:
    """A cancelled task that held via acquire() leaves a known owner; the lease still expires."""
    lock = Lock(redis_client, "r", timeout=0.3)
    entered = asyncio.Event()

    async def hold() -> None:
        await lock.acquire()
        entered.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(hold())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lock.held  # the object knows it holds it: anyone may release it
    assert await lock.owned()
    other = Lock(redis_client, "r", timeout=30, acquire_timeout=10)
    assert await other.acquire()  # after the 0.3 s lease, nobody is blocked for ever
    with pytest.raises(NotOwnedError):
        await lock.release()
    await other.release()


async def test_cancelled_waiter_leaves_the_queue(redis_client: Any) -> None:
    """A waiter cancelled while queued leaves no queue entry, and the lock is not handed to it."""
    holder = Lock(redis_client, "r", timeout=30)
    assert await holder.acquire()
    waiter = Lock(redis_client, "r", timeout=30, acquire_timeout=30)
    task = asyncio.create_task(waiter.acquire())

    async def queued() -> bool:
        return await queue_length(redis_client, holder) == 1

    await eventually(queued)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not waiter.held
    roles = lock_keys_of(holder)
    tombstone = await tombstones(redis_client, holder)
    assert len(tombstone) == 1  # refuses the cancelled request, should Redis run it late
    assert await keys_in_redis(redis_client, holder) == {roles["lock"], roles["fence"], *tombstone}
    await holder.release()
    assert not await holder.locked()  # nobody was handed a lock they will never release
    await assert_no_wait_state(redis_client, holder)


async def test_cancel_uncontended_acquire_at_every_step(redis_client: Any) -> None:
    """Cancelling acquire() anywhere (incl. NOSCRIPT reload) never leaves an unknown holder."""

    granted_then_cancelled = 0

    async def step(k: int) -> bool:
        nonlocal granted_then_cancelled
        if k % 2:
            await redis_client.script_flush()  # cover EVALSHA -> NOSCRIPT -> LOAD -> EVALSHA
        lock = Lock(redis_client, "swept", timeout=30)
        fence = lock_keys_of(lock)["fence"]
        before = int(await redis_client.get(fence) or 0)
        finished, result = await cancel_after(lock.acquire(), k)
        assert result is (True if finished else CANCELLED)  # a cancel is never swallowed
        assert lock.held == (result is True)
        if result is CANCELLED and int(await redis_client.get(fence) or 0) > before:
            granted_then_cancelled += 1  # the server granted it; the caller never heard
        await assert_consistent(redis_client, lock)
        if lock.held:
            await lock.release()
        assert not await lock.locked()
        await assert_no_wait_state(redis_client, lock)
        return finished

    await sweep(step)
    assert granted_then_cancelled > 0  # the sweep did hit the "reply lost" window


@pytest.mark.parametrize("start", ["queued", "racing"])
async def test_cancel_contended_acquire_at_every_step(redis_client: Any, start: str) -> None:
    """Cancelling a waiter anywhere around a hand-off leaves the lock free or with its owner."""

    async def step(k: int) -> bool:
        holder = Lock(redis_client, "swept", timeout=30)
        waiter = Lock(redis_client, "swept", timeout=30, acquire_timeout=30)
        assert await holder.acquire()
        task = asyncio.ensure_future(waiter.acquire())
        if start == "queued":

            async def queued() -> bool:
                return await queue_length(redis_client, holder) == 1

            await eventually(queued)
        release = asyncio.ensure_future(holder.release())
        finished, result = await cancel_after(task, k)
        await release
        assert result is (True if finished else CANCELLED)
        assert waiter.held == (result is True)
        await assert_consistent(redis_client, holder, waiter)
        if waiter.held:
            await waiter.release()
        assert not await holder.locked()
        await assert_no_wait_state(redis_client, holder)
        return finished

    await sweep(step)


async def test_cancel_release_at_every_step(redis_client: Any) -> None:
    """A cancelled release() still completes: the lock goes to the waiter, never to nobody."""

    async def step(k: int) -> bool:
        holder = Lock(redis_client, "swept", timeout=30)
        waiter = Lock(redis_client, "swept", timeout=30, acquire_timeout=30)
        assert await holder.acquire()
        waiting = asyncio.ensure_future(waiter.acquire())

        async def queued() -> bool:
            return await queue_length(redis_client, holder) == 1

        await eventually(queued)
        finished, _ = await cancel_after(holder.release(), k)
        if k == 0:  # cancelled before it ran: still held, and the object knows it
            assert holder.held
            await assert_consistent(redis_client, holder, waiter)
            await holder.release()
        assert await asyncio.wait_for(waiting, 10) is True  # the shielded release carried on

        async def settled() -> bool:  # its reply may arrive after the waiter's hand-off
            return not holder.held

        await eventually(settled)
        await assert_consistent(redis_client, holder, waiter)
        await waiter.release()
        await assert_no_wait_state(redis_client, holder)
        return finished

    await sweep(step)


@pytest.mark.parametrize("shared", [False, True], ids=["lock-per-task", "one-shared-lock"])
async def test_random_cancellations_keep_exclusion_and_leave_nothing(
    redis_client: Any, shared: bool
) -> None:
    """Workers cancelled at random points never overlap, and leave the lock free and clean."""
    rng = random.Random(1234)
    one_lock = Lock(redis_client, "chaos", timeout=30, acquire_timeout=60)
    inside = 0
    entered = 0

    async def worker() -> None:
        nonlocal inside, entered
        lock = one_lock if shared else Lock(redis_client, "chaos", timeout=30, acquire_timeout=60)
        for _ in range(5):
            async with lock:
                inside += 1
                entered += 1
                try:
                    assert inside == 1
                    await asyncio.sleep(0)  # may be cancelled here, holding the lock
                finally:
                    inside -= 1

    tasks = [asyncio.create_task(worker()) for _ in range(20)]
    for victim in rng.sample(tasks, 12):
        for _ in range(rng.randrange(1, 60)):
            await asyncio.sleep(0)
        victim.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [r for r in results if not (r is None or isinstance(r, asyncio.CancelledError))] == []
    assert entered > 0
    assert inside == 0
    assert not await one_lock.locked()
    assert not one_lock.held
    await assert_no_wait_state(redis_client, one_lock)
    assert await one_lock.try_acquire()  # the shared object's local gate was left open too
    await one_lock.release()


async def test_deadline_racing_the_hand_off(redis_client: Any) -> None:
    """A waiter whose deadline meets the release either gets the lock or leaves it free."""
    for i in range(20):
        holder = Lock(redis_client, "race", timeout=30)
        waiter = Lock(redis_client, "race", timeout=30, acquire_timeout=0.1)
        assert await holder.acquire()
        task = asyncio.create_task(waiter.acquire())
        await asyncio.sleep(0.085 + i * 0.0015)  # release somewhere around the deadline
        await holder.release()
        got = await task
        assert waiter.held == got
        await assert_consistent(redis_client, holder, waiter)
        if got:
            await waiter.release()
        assert not await holder.locked()  # never handed to a waiter that gave up
        await assert_no_wait_state(redis_client, holder)


async def test_release_of_an_auto_renewed_lock_never_hangs(redis_client: Any) -> None:
    """Releasing while the renewer is mid-renewal ends promptly, whatever the timing."""
    for i in range(150):
        lock = Lock(redis_client, "renewed", timeout=0.05, auto_renew=True)
        assert await lock.acquire()
        await asyncio.sleep((i % 25) * 0.001)  # land anywhere in the 17 ms renewal period
        with contextlib.suppress(NotOwnedError):  # a stalled machine may really lose it
            await asyncio.wait_for(lock.release(), 5)
        assert not lock.held
        assert not await lock.owned()
    assert not await Lock(redis_client, "renewed").locked()


async def test_client_with_short_socket_timeout_can_wait(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    """A client whose socket_timeout is shorter than the wait still waits (no TimeoutError)."""
    impatient = await new_client(socket_timeout=0.2)
    holder = Lock(redis_client, "slow", timeout=30)
    waiter = Lock(impatient, "slow", timeout=30, acquire_timeout=30)
    assert await holder.acquire()
    task = asyncio.create_task(waiter.acquire())

    async def queued() -> bool:
        return await queue_length(redis_client, holder) == 1

    await eventually(queued)
    await asyncio.sleep(0.6)  # three socket timeouts' worth of waiting
    assert not task.done()
    await holder.release()
    assert await task is True
    await waiter.release()


async def test_failing_on_lost_callback_does_not_break_release(redis_client: Any) -> None:
    """An on_lost callback that raises is logged; release() still reports NotOwnedError."""
    fired = asyncio.Event()

    def on_lost(lock: Lock) -> None:
        fired.set()
        raise RuntimeError("callback bug")

    lock = Lock(redis_client, "renewed", timeout=0.3, auto_renew=True, on_lost=on_lost)
    assert await lock.acquire()
    await redis_client.delete(lock.key)
    await asyncio.wait_for(fired.wait(), 10)
    with pytest.raises(NotOwnedError):
        await lock.release()
    assert not lock.held


async def test_dead_waiter_is_skipped_after_its_liveness_window(redis_client: Any) -> None:
    """A waiter that queued and died is dropped once its window passes; the next one is served."""
    holder = Lock(redis_client, "r", timeout=30)
    assert await holder.acquire()
    roles = lock_keys_of(holder)
    keys = [roles["lock"], roles["fence"], roles["queue"], roles["waiters"]]
    # Queue a token that promises to re-check within 100 ms, then never listens again.
    assert int(await script("lock_acquire")(redis_client, keys, ["dead", 30_000, 100])) < 0
    live = Lock(redis_client, "r", timeout=30, acquire_timeout=30)
    task = asyncio.create_task(live.acquire())

    async def both_queued() -> bool:
        return await queue_length(redis_client, holder) == 2

    await eventually(both_queued)
    assert (await queue_of(redis_client, holder))[0] == "dead"

    async def window_over() -> bool:  # the server runs on this host: same wall clock
        record = text(await redis_client.hget(roles["waiters"], "dead"))
        return int(record.split()[1]) < int(time.time() * 1000)  # alive through its last ms

    await eventually(window_over)
    await holder.release()
    assert await task is True
    assert text(await redis_client.get(holder.key)) == live.token
    assert "dead" not in await queue_of(redis_client, holder)
    assert await redis_client.hget(roles["waiters"], "dead") is None
    assert not await redis_client.exists(f"{roles['queue']}:dead")
    await live.release()
    await assert_no_wait_state(redis_client, holder)


async def test_dead_waiter_at_the_head_costs_at_most_its_lease(redis_client: Any) -> None:
    """A waiter that dies while still 'alive' is handed the lock; it is freed after its lease."""
    holder = Lock(redis_client, "r", timeout=30)
    assert await holder.acquire()
    roles = lock_keys_of(holder)
    keys = [roles["lock"], roles["fence"], roles["queue"], roles["waiters"]]
    assert int(await script("lock_acquire")(redis_client, keys, ["dead", 300, 30_000])) < 0
    live = Lock(redis_client, "r", timeout=30, acquire_timeout=30)
    task = asyncio.create_task(live.acquire())

    async def both_queued() -> bool:
        return await queue_length(redis_client, holder) == 2

    await eventually(both_queued)
    await holder.release()
    assert text(await redis_client.get(holder.key)) == "dead"
    wake = f"{roles['queue']}:dead"
    assert 0 < await redis_client.pttl(wake) <= 300 + 5000  # its wake list expires too
    assert await task is True  # served once the dead waiter's 300 ms lease ran out
    assert await live.owned()
    await live.release()
    assert await queue_length(redis_client, holder) == 0


async def test_auto_renew_keeps_the_lock_past_its_lease(redis_client: Any) -> None:
    """With auto_renew the lock outlives several leases while held, then releases normally."""
    lock = Lock(redis_client, "renewed", timeout=0.5, auto_renew=True)
    async with lock:
        for _ in range(4):
            await asyncio.sleep(0.4)
            assert await lock.owned()
        assert not lock.lost
    assert not await lock.locked()
    assert not lock.lost


@pytest.mark.parametrize("how", ["deleted", "taken-over"])
@pytest.mark.parametrize("callback", ["sync", "async"])
async def test_auto_renew_reports_a_lost_lease(redis_client: Any, how: str, callback: str) -> None:
    """If the key is deleted or overwritten behind its back, lost turns True and on_lost runs."""
    seen: list[Lock] = []
    fired = asyncio.Event()

    def on_lost_sync(lock: Lock) -> None:
        seen.append(lock)
        fired.set()

    async def on_lost_async(lock: Lock) -> None:
        await asyncio.sleep(0)
        on_lost_sync(lock)

    on_lost = on_lost_sync if callback == "sync" else on_lost_async
    lock = Lock(redis_client, "renewed", timeout=0.3, auto_renew=True, on_lost=on_lost)
    assert await lock.acquire()
    if how == "deleted":
        await redis_client.delete(lock.key)
    else:
        await redis_client.set(lock.key, "somebody-else", px=30_000)
    await asyncio.wait_for(fired.wait(), 10)
    assert seen == [lock]
    assert lock.lost
    assert not await lock.owned()
    with pytest.raises(NotOwnedError):
        await lock.release()
    assert not lock.held
    if how == "taken-over":
        assert text(await redis_client.get(lock.key)) == "somebody-else"  # left alone


async def test_auto_renew_lost_inside_async_with_raises_lease_lost(redis_client: Any) -> None:
    """An auto-renewed block whose key vanished ends with LeaseLostError."""
    fired = asyncio.Event()
    lock = Lock(
        redis_client, "renewed", timeout=0.3, auto_renew=True, on_lost=lambda _: fired.set()
    )

    async def lose_it() -> None:
        async with lock:
            await redis_client.delete(lock.key)
            await asyncio.wait_for(fired.wait(), 10)

    with pytest.raises(LeaseLostError):
        await lose_it()
    assert lock.lost
    assert not lock.held


# -- faults: the server goes away -----------------------------------------------------------


def _standalone(endpoint: Endpoint) -> RedisServer:
    if not isinstance(endpoint.server, RedisServer):
        pytest.skip("needs a server started by this test run (REDIS_URL points elsewhere)")
    return endpoint.server


@pytest.fixture(params=["no-retry", "retry"])
async def restart_client(
    request: pytest.FixtureRequest, redis_server: Endpoint
) -> AsyncIterator[tuple[Redis, bool]]:
    """A client on the session server, and whether it retries: from_url's default (no) or yes."""
    if request.param == "retry":
        retry = Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.01), 10)
        client = Redis.from_url(redis_server.url, retry=retry)
    else:
        client = Redis.from_url(redis_server.url)  # redis-py 8.1: Retry(NoBackoff(), 0)
    await client.flushall()
    yield client, request.param == "retry"
    await client.aclose()


@pytest.mark.timeout(60)
async def test_server_restart_while_held(
    restart_client: tuple[Redis, bool], redis_server: Endpoint
) -> None:
    """Restart while held. The server (no persistence) forgets the lock: release() gets
    NotOwnedError, with or without client retries (a client without retries fails once on its
    dead pooled connection; release tries again, as every clean-up does). Nothing stays held."""
    server = _standalone(redis_server)
    client, _ = restart_client
    lock = Lock(client, "restart", timeout=30)
    assert await lock.acquire()
    assert lock.fence == 1
    await asyncio.to_thread(server.restart)
    with pytest.raises(NotOwnedError):
        await lock.release()
    assert not lock.held
    assert not await lock.locked()
    again = Lock(client, "restart", timeout=30)
    assert await again.acquire()  # scripts are loaded again after NOSCRIPT
    assert again.fence == 1  # without persistence the fence counter starts over
    await again.release()


@pytest.mark.timeout(60)
async def test_server_restart_while_waiting(
    restart_client: tuple[Redis, bool], redis_server: Endpoint
) -> None:
    """Restart while a waiter blocks. A retrying client reconnects, re-checks and acquires (the
    restarted server has no lock); without retries acquire() raises ConnectionError at once."""
    server = _standalone(redis_server)
    client, retrying = restart_client
    holder = Lock(client, "restart", timeout=30)
    waiter = Lock(client, "restart", timeout=30, acquire_timeout=15)
    assert await holder.acquire()
    task = asyncio.create_task(waiter.acquire())

    async def queued() -> bool:
        return await queue_length(client, holder) == 1

    await eventually(queued)
    await asyncio.to_thread(server.restart)
    if retrying:
        assert await asyncio.wait_for(task, 30) is True
        assert await waiter.owned()
    else:
        with pytest.raises(redis.exceptions.ConnectionError):
            await asyncio.wait_for(task, 30)
        assert not waiter.held
    try:
        await holder.release()
    except redis.exceptions.ConnectionError:  # a stale pooled connection
        pass
    except NotOwnedError:  # the restarted server never saw this lock
        pass
    else:
        pytest.fail("the restart kept a lock it cannot have kept")
    assert not holder.held
    if not waiter.held:
        assert await waiter.acquire()
    await waiter.release()
    await assert_no_wait_state(client, holder)


@pytest.mark.timeout(90)
async def test_restart_while_held_and_while_waiting_on_either_topology(
    endpoint: tuple[Endpoint, str],
) -> None:
    """The server (or the cluster node owning the lock's slot) restarts empty while one client
    holds the lock and another waits: with a retrying client the waiter acquires on the
    restarted server and the old holder's release() raises NotOwnedError. Never a hang."""
    where, topology = endpoint
    client = retrying_client(where.url, topology)
    try:
        holder = Lock(client, "restart2", timeout=30)
        waiter = Lock(client, "restart2", timeout=30, acquire_timeout=20)
        assert await holder.acquire()
        task = asyncio.create_task(waiter.acquire())

        async def queued() -> bool:
            return await queue_length(client, holder) == 1

        await eventually(queued)
        await restart_owner(where, client, holder.key)
        assert await asyncio.wait_for(task, 40) is True
        assert await waiter.owned()
        with pytest.raises(NotOwnedError):
            await holder.release()
        assert not holder.held
        await waiter.release()
        assert not await waiter.locked()
        await assert_no_wait_state(client, holder)
    finally:
        await client.aclose()


@pytest.mark.timeout(60)
async def test_server_down_gives_connection_error_promptly(redis_server: Endpoint) -> None:
    """With the server down, acquire() raises ConnectionError (no hang) and leaves nothing held."""
    server = _standalone(redis_server)
    client = Redis.from_url(redis_server.url, retry=Retry(NoBackoff(), 1))
    lock = Lock(client, "down", timeout=30, acquire_timeout=2)
    try:
        await client.ping()
        await asyncio.to_thread(server.kill)
        with pytest.raises(redis.exceptions.ConnectionError):
            await lock.acquire()
        assert not lock.held
        with pytest.raises(NotOwnedError):
            await lock.release()
    finally:
        await asyncio.to_thread(server.restart)
        await client.aclose()
    async with Redis.from_url(redis_server.url) as fresh:
        assert await Lock(fresh, "down").acquire()


def _primary_index(cluster: ClusterServer, key: str) -> int:
    """Which of ``cluster.nodes`` serves ``key`` (slots are split evenly, in node order)."""
    return key_slot(key.encode()) * cluster.masters // CLUSTER_SLOTS


@pytest.mark.timeout(90)
async def test_cluster_primary_killed_while_held() -> None:
    """Kill the primary serving a held lock (1 replica each). Calls fail with ConnectionError
    until the replica is promoted (about 2-5 s); the waiter blocked on the dead primary gets
    ConnectionError. After failover the holder still owns the replicated lock and releases it,
    and the waiter acquires with a larger fence. No call hangs."""
    cluster = await asyncio.to_thread(ClusterServer(masters=3, replicas=1).start)
    client = RedisCluster.from_url(cluster.url)
    waiter_client = RedisCluster.from_url(cluster.url)
    try:
        holder = Lock(client, "failover", timeout=60)
        waiter = Lock(waiter_client, "failover", timeout=60, acquire_timeout=40)
        assert await holder.acquire()
        task = asyncio.create_task(waiter.acquire())

        async def queued() -> bool:
            return await queue_length(client, holder) == 1

        await eventually(queued)
        primary = _primary_index(cluster, holder.key)
        replica = cluster.nodes[cluster.masters + primary]
        async with Redis.from_url(replica.url) as direct:  # replication is asynchronous:
            await direct.execute_command("READONLY")  # make sure this grant reached it

            async def replicated() -> bool:
                return bool(text(await direct.get(holder.key)) == holder.token)

            await eventually(replicated)
        await asyncio.to_thread(cluster.kill_node, primary)

        async def promoted() -> bool:
            try:
                async with Redis.from_url(replica.url) as direct:
                    role = await direct.execute_command("ROLE")
                    info = text(await direct.execute_command("CLUSTER", "INFO"))
            except redis.exceptions.RedisError:
                return False
            return bool(text(role[0]) == "master" and "cluster_state:ok" in info)

        await eventually(promoted, within=30)

        async def holder_owns() -> bool:  # the client learns the new topology from its errors
            try:
                return await holder.owned()
            except (redis.exceptions.ConnectionError, redis.exceptions.ClusterDownError):
                return False

        await eventually(holder_owns, within=20)
        held_fence = holder.fence
        await holder.release()
        try:
            assert await asyncio.wait_for(task, 45) is True
        except redis.exceptions.ConnectionError:  # it was blocked on the node that died
            assert not waiter.held
            assert await waiter.acquire()
        assert waiter.fence is not None
        assert held_fence is not None
        assert waiter.fence > held_fence  # the fence counter was replicated too
        assert await waiter.owned()
        await waiter.release()
        assert not await holder.locked()
    finally:
        await client.aclose()
        await waiter_client.aclose()
        await asyncio.to_thread(cluster.stop)


# -- bad input ------------------------------------------------------------------------------


@pytest.fixture
async def unreachable() -> AsyncIterator[Redis]:
    """A client for a port nobody listens on: any Redis call would raise ConnectionError."""
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    ("args", "options", "error", "match"),
    [
        ((), {"name": ""}, ValueError, "name"),
        ((), {"name": "a}b"}, ValueError, "name"),
        ((), {"name": 42}, TypeError, "name"),
        ((), {"name": None}, TypeError, "name"),
        ((), {"timeout": 0}, ValueError, "timeout"),
        ((), {"timeout": -1}, ValueError, "timeout"),
        ((), {"timeout": math.nan}, ValueError, "timeout"),
        ((), {"timeout": math.inf}, ValueError, "timeout"),
        ((), {"timeout": True}, TypeError, "timeout"),
        ((), {"timeout": "5"}, TypeError, "timeout"),
        ((), {"timeout": None}, TypeError, "timeout"),
        ((), {"acquire_timeout": 0}, ValueError, "acquire_timeout"),
        ((), {"acquire_timeout": -0.5}, ValueError, "acquire_timeout"),
        ((), {"acquire_timeout": math.nan}, ValueError, "acquire_timeout"),
        ((), {"acquire_timeout": -math.inf}, ValueError, "acquire_timeout"),
        ((), {"acquire_timeout": False}, TypeError, "acquire_timeout"),
        ((), {"acquire_timeout": "1"}, TypeError, "acquire_timeout"),
        ((), {"keyspace": "aiorp"}, TypeError, "keyspace"),
        ((None,), {}, TypeError, "redis"),
    ],
)
async def test_bad_constructor_arguments_are_rejected(
    unreachable: Redis, args: tuple[Any, ...], options: dict[str, Any], error: type, match: str
) -> None:
    """Bad constructor arguments raise ValueError/TypeError naming the argument."""
    client = args[0] if args else unreachable
    options = {"name": "ok", **options}
    name = options.pop("name")
    with pytest.raises(error, match=match):
        Lock(client, name, **options)


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), (math.nan, ValueError), (math.inf, ValueError),
     (True, TypeError), ("2", TypeError)],
)  # fmt: skip
async def test_bad_call_arguments_are_rejected_before_redis(
    unreachable: Redis, value: Any, error: type
) -> None:
    """Bad acquire_timeout / extend seconds raise before any Redis call (no ConnectionError)."""
    lock = Lock(unreachable, "ok")
    with pytest.raises(error, match="acquire_timeout"):
        await lock.acquire(acquire_timeout=value)
    with pytest.raises(error, match="acquire_timeout"):
        await lock.acquire(blocking=False, acquire_timeout=value)
    with pytest.raises(error, match="seconds"):
        await lock.extend(value)
    assert not lock.held


async def test_keyspace_prefix_is_used(redis_client: Any) -> None:
    """A custom Keyspace puts every key of the lock under its prefix, in one hash slot."""
    lock = Lock(redis_client, "cart:7", keyspace=Keyspace("shop"), timeout=30)
    waiter = Lock(redis_client, "cart:7", keyspace=Keyspace("shop"), timeout=30)
    assert await lock.acquire()
    task = asyncio.create_task(waiter.acquire())

    async def queued() -> bool:
        return await queue_length(redis_client, lock) == 1

    await eventually(queued)
    found = await keys_in_redis(redis_client, lock)
    assert found
    assert all(k.startswith("shop:lock:{cart:7}") for k in found)
    assert len({key_slot(k.encode()) for k in found}) == 1
    if isinstance(redis_client, RedisCluster):
        assert await redis_client.keys("aiorp:*", target_nodes=RedisCluster.PRIMARIES) == []
    else:
        assert await redis_client.keys("aiorp:*") == []
    await lock.release()
    assert await task
    await waiter.release()
