"""Run-twice tests of the lease scripts: Lock, Semaphore, FairSemaphore, a ReadWriteLock's
write lease (issue 10; test_rwlock.py has the read-write lock's own, with readers).

Every script call is sent twice by ``twice_client`` (``retrysafe.py``), as redis-py's ``Retry`` or
the cluster client does after a lost reply: the keyspace must be the state of one run and the
caller must see what one run answers (the same grant and fence, a release that succeeded, the
same extended lease). Each test runs on both topologies.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from helpers import until
from retrysafe import assert_retry_safe

from aiorpatterns import FairSemaphore, Lock, Semaphore
from aiorpatterns.coordination.leases import Lease, to_ms
from aiorpatterns.coordination.rwlock import ReadWriteLock


def _lock(redis: Any, name: str, **kw: Any) -> Lease:
    return Lock(redis, name, **kw)


def _sem(limit: int) -> Callable[..., Lease]:
    return lambda redis, name, **kw: Semaphore(redis, name, limit=limit, **kw)


def _fair(limit: int) -> Callable[..., Lease]:
    return lambda redis, name, **kw: FairSemaphore(redis, name, limit=limit, **kw)


def _write(redis: Any, name: str, **kw: Any) -> Lease:
    return ReadWriteLock(redis, name, **kw).write()


# One param per kind, marked with the scripts it runs (literal names: the inventory reads them).
ACQUIRE_RELEASE = [
    pytest.param(_lock, id="Lock", marks=pytest.mark.retry_safe("lock_acquire", "lock_release")),
    pytest.param(
        _sem(1),
        id="Semaphore",
        marks=pytest.mark.retry_safe("semaphore_acquire", "semaphore_release"),
    ),
    pytest.param(
        _fair(1),
        id="FairSemaphore",
        marks=pytest.mark.retry_safe("fair_semaphore_acquire", "fair_semaphore_release"),
    ),
    pytest.param(
        _write,
        id="ReadWriteLock.write",
        marks=pytest.mark.retry_safe("rwlock_acquire", "rwlock_release"),
    ),
]
TWO_SLOTS = [
    pytest.param(
        _sem(2),
        id="Semaphore",
        marks=pytest.mark.retry_safe("semaphore_acquire", "semaphore_release"),
    ),
    pytest.param(
        _fair(2),
        id="FairSemaphore",
        marks=pytest.mark.retry_safe("fair_semaphore_acquire", "fair_semaphore_release"),
    ),
]
ACQUIRE_EXTEND = [
    pytest.param(_lock, id="Lock", marks=pytest.mark.retry_safe("lock_acquire", "lock_extend")),
    pytest.param(
        _sem(1),
        id="Semaphore",
        marks=pytest.mark.retry_safe("semaphore_acquire", "semaphore_extend"),
    ),
    pytest.param(
        _fair(1),
        id="FairSemaphore",
        marks=pytest.mark.retry_safe("fair_semaphore_acquire", "fair_semaphore_extend"),
    ),
    pytest.param(
        _write,
        id="ReadWriteLock.write",
        marks=pytest.mark.retry_safe("rwlock_acquire", "rwlock_extend"),
    ),
]


def _fence(lease: Lease) -> int | None:
    """The grant's fence (a counter value), or None for a plain semaphore (it has none)."""
    return None if type(lease) is Semaphore else lease._grant


async def _drop_receipts(client: Any, lease: Lease) -> int:
    """Delete ``extend(seconds)``'s receipts (after checking they expire); return how many.

    A receipt keeps the remaining lease in ms, which differs between two honest runs by the
    milliseconds that passed, and all of them mask to one key name: the replies show whether an
    add happened twice, so the keyspace comparison leaves receipts out.
    """
    pattern = f"{lease._extend_keys()[0]}:*"
    found = 0
    async for key in client.scan_iter(match=pattern):
        name = key.decode() if isinstance(key, bytes) else key
        if re.fullmatch(r"[0-9a-f]{32}", name.rsplit(":", 1)[1]) and ":queue:" not in name:
            assert 0 < await client.pttl(name) <= 120_000
            await client.delete(name)
            found += 1
    return found


async def _queued(client: Any, lease: Lease, count: int) -> None:
    """Wait until ``count`` tokens wait in ``lease``'s queue (a read: never doubled)."""

    async def check() -> bool:
        return int(await client.zcard(lease._queue)) == count

    await until(check, f"{count} waiters in {lease._queue}")


@pytest.mark.parametrize("make", ACQUIRE_RELEASE)
async def test_uncontended_acquire_and_release(
    redis_client: Any, twice_client: Any, make: Callable[..., Lease]
) -> None:
    """A doubled acquire grants once (one fence), a doubled release succeeds (no LeaseLostError)."""

    async def scenario(client: Any) -> Any:
        seen: list[Any] = []
        first = make(client, "solo", timeout=30)
        other = make(client, "solo", timeout=30)
        seen.append(await first.acquire())
        seen.append(_fence(first))
        seen.append(await other.try_acquire())  # a refusal: held
        await first.release()
        async with first:  # the normal exit must not raise LeaseLostError
            seen.append(_fence(first))
        seen.append(await other.try_acquire())
        seen.append(_fence(other))
        await other.release()
        seen.append((first.lost, other.lost, await first.owned(), await other.owned()))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    fenced = seen[1] is not None
    assert seen[0] is True
    assert seen[2] is False
    assert seen[4] is True
    if fenced:
        assert seen[1::2][:3] == [1, 2, 3]  # one fence per grant, doubled or not
    assert seen[-1] == (False, False, False, False)


@pytest.mark.parametrize("make", ACQUIRE_RELEASE)
async def test_queued_acquire_gets_a_hand_off(
    redis_client: Any, twice_client: Any, make: Callable[..., Lease]
) -> None:
    """A doubled acquire queues once; a doubled release hands off to exactly one waiter."""

    async def scenario(client: Any) -> Any:
        holder = make(client, "relay", timeout=30)
        waiters = [make(client, "relay", timeout=30, acquire_timeout=60) for _ in range(2)]
        assert await holder.acquire()
        tasks = []
        for n, waiter in enumerate(waiters, 1):
            tasks.append(asyncio.ensure_future(waiter.acquire()))
            await _queued(client, holder, n)  # queued in this order
        await holder.release()  # hands off to the first waiter only
        assert await tasks[0]
        await _queued(client, holder, 1)  # the second still waits: not handed a second slot
        seen: list[Any] = [_fence(holder), _fence(waiters[0]), tasks[1].done()]
        await waiters[0].release()  # hands off to the second
        assert await tasks[1]
        seen.append(_fence(waiters[1]))
        await waiters[1].release()
        seen.append([w.lost for w in (holder, *waiters)])
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[0] is None
    assert seen[2] is False
    assert seen[-1] == [False, False, False]


@pytest.mark.parametrize("make", TWO_SLOTS)
async def test_release_hands_off_once_per_free_slot(
    redis_client: Any, twice_client: Any, make: Callable[..., Lease]
) -> None:
    """Two slots, three waiters: each doubled release hands on exactly one slot."""

    async def scenario(client: Any) -> Any:
        holders = [make(client, "slots", timeout=30) for _ in range(2)]
        seen: list[Any] = [[await h.try_acquire() for h in holders]]
        waiters = [make(client, "slots", timeout=30, acquire_timeout=60) for _ in range(3)]
        tasks = []
        for n, waiter in enumerate(waiters, 1):
            tasks.append(asyncio.ensure_future(waiter.acquire()))
            await _queued(client, holders[0], n)
        for n, holder in enumerate(holders):
            await holder.release()
            assert await tasks[n]
            await _queued(client, holders[0], 2 - n)  # one waiter served per release
        seen.append(tasks[2].done())
        await waiters[0].release()
        assert await tasks[2]
        seen.append([_fence(w) for w in waiters])
        for waiter in waiters[1:]:
            await waiter.release()
        seen.append([lease.lost for lease in (*holders, *waiters)])
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[0] == [True, True]
    assert seen[1] is False
    assert seen[-1] == [False] * 5


@pytest.mark.parametrize("make", ACQUIRE_EXTEND)
async def test_extend_adds_once(
    redis_client: Any, twice_client: Any, make: Callable[..., Lease]
) -> None:
    """A doubled ``extend(seconds)`` adds ``seconds`` once; a doubled replace sets the lease."""

    async def scenario(client: Any) -> Any:
        lease = make(client, "longer", timeout=20)
        assert await lease.acquire()
        added = await lease.extend(100)  # 20 + 100, not 20 + 200
        replaced = await lease.extend(50, replace=True)
        again = await lease.extend(10)
        other = make(client, "longer", timeout=20)
        refused: Any = None
        try:
            await other.extend(5)  # a refusal: not held
        except Exception as error:
            refused = type(error).__name__
        await lease.release()
        receipts = await _drop_receipts(client, lease)
        return round(added), round(replaced), round(again), refused, receipts

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == (120, 50, 60, "NotOwnedError", 2)


@pytest.mark.parametrize("make", ACQUIRE_RELEASE)
async def test_cancelled_waiter_abandons_once(
    redis_client: Any, twice_client: Any, make: Callable[..., Lease]
) -> None:
    """A cancelled waiter's doubled abandon leaves one tombstone and hands nothing to it."""

    async def scenario(client: Any) -> Any:
        holder = make(client, "quit", timeout=30)
        quitter = make(client, "quit", timeout=30, acquire_timeout=60)
        patient = make(client, "quit", timeout=30, acquire_timeout=60)
        assert await holder.acquire()
        gone = asyncio.ensure_future(quitter.acquire())
        await _queued(client, holder, 1)
        waits = asyncio.ensure_future(patient.acquire())
        await _queued(client, holder, 2)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        await _queued(client, holder, 1)
        await holder.release()  # straight to the patient one: the quitter left the queue
        assert await waits
        seen = [quitter.held, patient.held, _fence(patient)]
        await patient.release()
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:2] == [False, True]


@pytest.mark.parametrize("make", ACQUIRE_RELEASE)
async def test_abandon_of_a_hand_off_passes_it_on(
    redis_client: Any, twice_client: Any, make: Callable[..., Lease]
) -> None:
    """A waiter handed the lease as it gave up: the doubled abandon passes it on exactly once."""

    async def scenario(client: Any) -> Any:
        holder = make(client, "late", timeout=30)
        late = make(client, "late", timeout=30)
        patient = make(client, "late", timeout=30, acquire_timeout=60)
        assert await holder.acquire()
        token = late._new_token()
        keys = late._keys()
        alive = to_ms(60)
        queued = int(await late._run(late._acquire, keys, token, to_ms(30), alive))
        waits = asyncio.ensure_future(patient.acquire())
        await _queued(client, holder, 2)
        await holder.release()  # hands off to the late token, which is not listening
        await _queued(client, holder, 1)
        # A settle that finds the hand-off keeps it (doubled: the same answer twice) ...
        settled = int(await late._run(late._release, keys, token, "settle"))
        # ... and the clean-up of a caller that never read that answer gives it up.
        await late._abandon(token)
        assert await waits
        seen = [queued < 0, settled, _fence(patient)]
        refused = int(await late._run(late._acquire, keys, token, to_ms(30), alive))
        seen.append(refused)
        await patient.release()
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[0] is True
    assert seen[1] > 0
    assert seen[-1] == -1


@pytest.mark.parametrize("make", ACQUIRE_RELEASE)
async def test_acquire_timeout_settles_once(
    redis_client: Any, twice_client: Any, make: Callable[..., Lease]
) -> None:
    """A waiter that times out leaves the queue once (doubled settle), then nothing waits."""

    async def scenario(client: Any) -> Any:
        holder = make(client, "slow", timeout=30)
        waiter = make(client, "slow", timeout=30, acquire_timeout=0.3)
        assert await holder.acquire()
        seen = [await waiter.acquire(), int(await client.zcard(holder._queue))]
        await holder.release()
        seen.append(await waiter.try_acquire())
        await waiter.release()
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [False, 0, True]
