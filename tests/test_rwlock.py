"""ReadWriteLock: many readers or one writer, FIFO without starving writers, on real servers.

Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster.
Invariants are counted inside the critical sections (never a writer beside anyone else); that
readers really overlap is proven by barriers that only open while they hold together. Leases
that must run out are short (0.3-0.5 s), leases that must not are long; nothing here asserts how
fast anything is, and every wait is for a condition, bounded.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from helpers import CANCELLED, NO_REDIS, cancel_after, text, until
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from retrysafe import assert_retry_safe

from aiorpatterns.coordination.leases import to_ms
from aiorpatterns.coordination.rwlock import ReadLease, ReadWriteLock, RWLease, WriteLease
from aiorpatterns.core.checks import MAX_SECONDS
from aiorpatterns.core.errors import (
    AcquireTimeoutError,
    LeaseLostError,
    NotOwnedError,
    ReentryError,
)
from aiorpatterns.core.keys import Keyspace
from aiorpatterns.core.scripts import script

KINDS = ["read", "write"]


# -- helpers --------------------------------------------------------------------------------


def lease_of(rw: ReadWriteLock, kind: str) -> RWLease:
    return rw.read() if kind == "read" else rw.write()


def another(rw: ReadWriteLock) -> ReadWriteLock:
    """Another object on the same name (another client, say): one task may hold leases of
    several objects, but only one lease of each (see the re-entry test)."""
    return ReadWriteLock(
        rw.redis,
        rw.name,
        timeout=rw.timeout,
        acquire_timeout=rw.acquire_timeout,
        keyspace=rw.keyspace,
    )


async def keys_of(redis: Any, rw: ReadWriteLock) -> set[str]:
    """Every key of ``rw``'s object (all in one slot; SCAN covers every node of a cluster)."""
    pattern = rw.keyspace.tag("rwlock", rw.name) + "*"
    return {text(k) async for k in redis.scan_iter(match=pattern)}


async def leftovers(redis: Any, rw: ReadWriteLock) -> set[str]:
    """The keys left for ``rw``'s name but the fence counter and tombstones (which expire)."""
    found = set()
    for key in await keys_of(redis, rw):
        if key == rw.fence_key:
            continue  # never expires, by design: fences must not repeat
        if key.startswith(rw.queue_key + ":"):
            value = [text(v) for v in await redis.lrange(key, 0, -1)]
            ttl = await redis.pttl(key)
            if ttl == -2:  # a tombstone that expired since it was listed
                continue
            if value == ["0"]:
                assert 0 < ttl <= 15_000, f"tombstone {key} must expire"
                continue
        found.add(key)
    return found


async def assert_clean(redis: Any, rw: ReadWriteLock) -> None:
    """Nobody holds or waits, and nothing but the fence and tombstones is left (after the
    shielded clean-ups of cancelled calls have run: they may still be on their way)."""

    async def clean() -> bool:
        return not await leftovers(redis, rw)

    try:
        await until(clean, f"{rw!r} to be left clean")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: left {sorted(await leftovers(redis, rw))}") from None
    assert await rw.readers() == 0
    assert not await rw.write_locked()


async def queued(redis: Any, rw: ReadWriteLock, count: int) -> None:
    """Wait until ``count`` tokens wait in ``rw``'s queue."""

    async def check() -> bool:
        return int(await redis.zcard(rw.queue_key)) == count

    await until(check, f"{count} waiters in {rw.queue_key}")


async def holding(redis: Any, rw: ReadWriteLock, readers: int) -> None:
    """Wait until ``readers`` readers hold ``rw``."""

    async def check() -> bool:
        return await rw.readers() == readers

    await until(check, f"{readers} readers holding {rw.queue_key}")


async def assert_consistent(rw: ReadWriteLock, *leases: RWLease) -> None:
    """What Redis holds is what the lease objects believe they hold, and it is allowed."""
    readers = [lease for lease in leases if lease.held and isinstance(lease, ReadLease)]
    writers = [lease for lease in leases if lease.held and isinstance(lease, WriteLease)]
    assert await rw.readers() == len(readers)
    assert await rw.write_locked() == bool(writers)
    assert len(writers) <= 1
    assert not (writers and readers)
    for lease in (*readers, *writers):
        assert await lease.owned()


async def sweep(step: Callable[[int], Awaitable[bool]]) -> int:
    """Call ``step(k)`` for k = 0, 1, 2, ... until it finished uncancelled 3 times in a row."""
    k, in_a_row = 0, 0
    while in_a_row < 3:
        in_a_row = in_a_row + 1 if await step(k) else 0
        k += 1
        assert k < 2000, "the operation never completed on its own"
    return k


# -- behaviour ------------------------------------------------------------------------------


async def test_read_and_write_cycle(redis_client: Any) -> None:
    """Each call makes a fresh lease; held/token/fence/owned and the lock's state tell the truth."""
    rw = ReadWriteLock(redis_client, "doc:7", timeout=5)
    reader = rw.read()
    assert reader is not rw.read()
    assert isinstance(reader, ReadLease)
    assert isinstance(rw.write(), WriteLease)
    assert (reader.held, reader.fence, reader.token, reader.lost) == (False, None, None, False)
    assert not await reader.owned()

    assert await reader.acquire() is True
    assert reader.held
    assert reader.token is not None
    assert reader.token.startswith("r-")
    assert reader.fence == 0  # no write yet
    assert await reader.owned()
    assert (await rw.readers(), await rw.write_locked()) == (1, False)
    assert 0 < await redis_client.pttl(rw.readers_key) <= 5000
    assert "held, fence=0" in repr(reader)
    await reader.release()
    assert (reader.held, reader.fence, reader.token) == (False, None, None)
    assert "not held" in repr(reader)

    writer = rw.write()
    assert await writer.acquire() is True
    assert writer.token is not None
    assert writer.token.startswith("w-")
    assert writer.fence == 1
    assert await writer.owned()
    assert (await rw.readers(), await rw.write_locked()) == (0, True)
    assert text(await redis_client.get(rw.writer_key)) == writer.token
    assert 0 < await redis_client.pttl(rw.writer_key) <= 5000
    assert "held, fence=1" in repr(writer)
    await writer.release()
    assert not await writer.owned()

    async with rw.read() as again:
        assert again.fence == 1  # the version it reads: the last write granted
    async with rw.write() as second:
        assert second.fence == 2
    assert "rwlock:{doc:7}" in repr(rw)
    # Left: the fence, and the released tokens' tombstones (a re-sent release recognises them).
    assert await leftovers(redis_client, rw) == set()
    assert rw.fence_key in await keys_of(redis_client, rw)


async def test_readers_share_and_a_writer_excludes_everyone(redis_client: Any) -> None:
    """Readers hold together; a writer waits for all of them, then excludes everyone."""
    rw = ReadWriteLock(redis_client, "doc", timeout=30)
    readers = [another(rw).read() for _ in range(3)]
    assert [await r.try_acquire() for r in readers] == [True] * 3
    assert await rw.readers() == 3
    writer = rw.write()
    assert not await writer.try_acquire()
    assert not await writer.acquire(acquire_timeout=0.05)
    assert not writer.held
    assert await leftovers(redis_client, rw) == {rw.readers_key}  # the timed wait left no trace
    for r in readers:
        await r.release()
    assert await writer.try_acquire()
    assert not await another(rw).read().try_acquire()
    assert not await another(rw).write().try_acquire()
    assert not await another(rw).read().acquire(acquire_timeout=0.05)
    await assert_consistent(rw, writer, *readers)
    await writer.release()
    await assert_clean(redis_client, rw)


async def test_readers_hold_together(redis_client: Any) -> None:
    """Eight readers inside at once: a barrier that opens only while all of them hold."""
    rw = ReadWriteLock(redis_client, "doc", timeout=30, acquire_timeout=30)
    n = 8
    barrier = asyncio.Barrier(n + 1)  # the readers and this test

    async def reader() -> None:
        async with rw.read():
            await barrier.wait()

    async with asyncio.timeout(30):  # readers that could not overlap would hang here
        tasks = [asyncio.create_task(reader()) for _ in range(n)]
        await holding(redis_client, rw, n)
        assert not await rw.write().try_acquire()
        await barrier.wait()  # opens: all n were inside together
        await asyncio.gather(*tasks)
    await assert_clean(redis_client, rw)


async def test_a_waiting_writer_is_not_starved(redis_client: Any) -> None:
    """A writer queued behind readers gets the lock before readers that came after it."""
    rw = ReadWriteLock(redis_client, "doc", timeout=30, acquire_timeout=30)
    first, second = another(rw).read(), another(rw).read()
    assert await first.acquire()
    assert await second.acquire()
    order: list[str] = []
    let_go = asyncio.Event()

    async def enter(lease: RWLease, label: str) -> None:
        async with lease:
            order.append(label)
            if isinstance(lease, WriteLease):
                await let_go.wait()

    writer = asyncio.create_task(enter(rw.write(), "writer"))
    await queued(redis_client, rw, 1)
    late = asyncio.create_task(enter(rw.read(), "late reader"))
    await queued(redis_client, rw, 2)
    newcomer = another(rw).read()
    assert not await newcomer.try_acquire()  # no reader passes a waiting writer
    assert not await newcomer.acquire(acquire_timeout=0.05)
    await first.release()
    assert not await rw.write_locked()  # a reader still holds
    await queued(redis_client, rw, 2)
    await second.release()  # the last reader leaves: the writer, then the late reader
    assert await rw.write_locked()  # handed over by that release
    let_go.set()
    await asyncio.wait_for(asyncio.gather(writer, late), 30)
    assert order == ["writer", "late reader"]
    await assert_clean(redis_client, rw)


async def test_readers_after_a_writer_enter_as_one_batch_in_fifo_order(redis_client: Any) -> None:
    """Queue: reader, reader, writer, reader. The writer's release lets the first two in at once
    (they meet this test at a barrier inside), then the second writer alone, then the last
    reader."""
    rw = ReadWriteLock(redis_client, "doc", timeout=30, acquire_timeout=30)
    holder = rw.write()
    assert await holder.acquire()
    held_fence = holder.fence
    log: list[tuple[str, str, int | None]] = []
    pair = asyncio.Barrier(3)  # the first two readers and this test

    async def reader(label: str, meet: asyncio.Barrier | None = None) -> None:
        async with rw.read() as lease:
            log.append(("in", label, lease.fence))
            if meet is not None:
                await meet.wait()
            log.append(("out", label, None))

    async def writer(label: str) -> None:
        async with rw.write() as lease:
            log.append(("in", label, lease.fence))
            await asyncio.sleep(0)
            log.append(("out", label, None))

    tasks = []
    for n, call in enumerate(
        [reader("r1", pair), reader("r2", pair), writer("w2"), reader("r3")], start=1
    ):
        tasks.append(asyncio.create_task(call))
        await queued(redis_client, rw, n)
    await holder.release()
    # The release itself granted both readers (no re-check of theirs needed) and not the writer.
    assert (await rw.readers(), await rw.write_locked()) == (2, False)
    async with asyncio.timeout(30):
        await pair.wait()  # opens only with both readers inside
        await asyncio.gather(*tasks)
    at = {(event, label): i for i, (event, label, _) in enumerate(log)}
    fences = {label: fence for event, label, fence in log if event == "in"}
    assert max(at["in", "r1"], at["in", "r2"]) < min(at["out", "r1"], at["out", "r2"])
    assert at["in", "w2"] > max(at["out", "r1"], at["out", "r2"])
    assert at["in", "r3"] > at["out", "w2"]
    assert fences["r1"] == fences["r2"] == held_fence == 1
    assert fences["r3"] == fences["w2"] == 2
    await assert_clean(redis_client, rw)


async def test_exclusion_and_fences_under_contention(redis_client: Any) -> None:
    """Twenty tasks reading and writing: a writer is always alone, writers' fences strictly
    increase, and every reader's fence is the last write's before it."""
    rng = random.Random(2024)
    rw = ReadWriteLock(redis_client, "doc", timeout=30, acquire_timeout=60)
    readers_in = writers_in = most_readers = 0
    log: list[tuple[str, int]] = []

    async def worker(plan: list[str]) -> None:
        nonlocal readers_in, writers_in, most_readers
        for kind in plan:
            async with lease_of(rw, kind) as lease:
                assert lease.fence is not None
                log.append((kind, lease.fence))
                if kind == "write":
                    writers_in += 1
                else:
                    readers_in += 1
                    most_readers = max(most_readers, readers_in)
                try:
                    assert writers_in == 0 or (writers_in == 1 and readers_in == 0)
                    await asyncio.sleep(0)
                    assert writers_in == 0 or (writers_in == 1 and readers_in == 0)
                finally:
                    if kind == "write":
                        writers_in -= 1
                    else:
                        readers_in -= 1

    plans = [[rng.choice(["read", "read", "write"]) for _ in range(4)] for _ in range(20)]
    await asyncio.gather(*(worker(plan) for plan in plans))
    assert len(log) == 80
    last_write = 0
    writes = []
    for kind, fence in log:
        if kind == "write":
            assert fence > last_write
            last_write = fence
            writes.append(fence)
        else:
            assert fence == last_write
    assert writes == list(range(1, len(writes) + 1))  # one fence per write grant, no gaps
    await assert_clean(redis_client, rw)


# -- leases: expiry, renewal, extend ----------------------------------------------------------


@pytest.mark.parametrize("crashed_kind", KINDS)
async def test_a_crashed_holders_lease_ends_and_lets_others_in(
    redis_client: Any, crashed_kind: str
) -> None:
    """A holder that never releases (0.3 s lease) blocks the other kind only until its lease
    ends; it then finds the lease lost. Readers queued behind a crashed writer enter together;
    a crashed reader's record is dropped by the server's clock even while the readers' key
    lives on (a reader with a long lease was there too, and left)."""
    short = ReadWriteLock(redis_client, "doc", timeout=0.3)
    rw = ReadWriteLock(redis_client, "doc", timeout=30, acquire_timeout=20)
    crashed = lease_of(short, crashed_kind)
    long = rw.read()
    if crashed_kind == "read":
        assert await long.acquire()
    assert await crashed.acquire()
    if crashed_kind == "read":
        await long.release()
        assert await redis_client.pttl(rw.readers_key) > 20_000
    if crashed_kind == "write":
        pair = asyncio.Barrier(2)

        async def reader() -> int | None:
            async with rw.read() as lease:
                await pair.wait()  # both inside together
                return lease.fence

        async with asyncio.timeout(20):
            fences = await asyncio.gather(reader(), reader())
        assert fences == [crashed.fence, crashed.fence]
    else:
        writer = rw.write()
        assert await writer.acquire()  # nobody released: the waiter re-checks at lease end
        assert writer.fence == 1
        assert not await crashed.owned()
        await writer.release()
    assert crashed.held  # it cannot know before it asks
    with pytest.raises(NotOwnedError):
        await crashed.extend(5)
    with pytest.raises(NotOwnedError):
        await crashed.release()
    assert crashed.lost
    assert not crashed.held
    await assert_clean(redis_client, rw)


@pytest.mark.parametrize("kind", KINDS)
async def test_auto_renew_keeps_the_hold(redis_client: Any, kind: str) -> None:
    """A 0.5 s lease renewed in the background outlives a 1.2 s wait of the other kind."""
    rw = ReadWriteLock(redis_client, "doc", timeout=0.5, auto_renew=True)
    other = lease_of(
        ReadWriteLock(redis_client, "doc", timeout=30), "write" if kind == "read" else "read"
    )
    async with lease_of(rw, kind) as lease:
        assert not await other.acquire(acquire_timeout=1.2)  # > 2 leases: renewals kept it
        assert await lease.owned()
        assert not lease.lost
    assert not lease.lost
    assert await other.try_acquire()
    await other.release()
    await assert_clean(redis_client, rw)


async def test_auto_renew_reports_a_lost_read_lease(redis_client: Any) -> None:
    """A reader whose record vanished is told: lost turns True, on_lost gets the lease."""
    seen: list[Any] = []
    fired = asyncio.Event()

    def on_lost(lease: Any) -> None:
        seen.append(lease)
        fired.set()

    rw = ReadWriteLock(redis_client, "doc", timeout=0.3, auto_renew=True, on_lost=on_lost)
    reader = rw.read()

    async def lose_it() -> None:
        async with reader:
            await redis_client.zrem(rw.readers_key, reader.token)
            await asyncio.wait_for(fired.wait(), 10)

    with pytest.raises(LeaseLostError):
        await lose_it()
    assert seen == [reader]
    assert reader.lost
    await assert_clean(redis_client, rw)


@pytest.mark.parametrize("kind", KINDS)
async def test_extend_adds_or_replaces(redis_client: Any, kind: str) -> None:
    rw = ReadWriteLock(redis_client, "doc", timeout=5)
    lease = lease_of(rw, kind)
    with pytest.raises(NotOwnedError):
        await lease.extend(1)
    assert await lease.acquire()
    left = await lease.extend(20)
    assert type(left) is float
    assert 20 < left <= 25
    assert await lease.extend(0.5, replace=True) == 0.5
    assert await lease.extend(60, replace=True) == 60
    if kind == "write":
        assert 59_000 < await redis_client.pttl(rw.writer_key) <= 60_000
    else:
        assert 59_000 < await redis_client.pttl(rw.readers_key) <= 60_000
    assert await lease.owned()
    await lease.release()
    with pytest.raises(NotOwnedError):
        await lease.release()
    with pytest.raises(NotOwnedError):
        await lease.extend(1)


# -- cancellation and giving up -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_a_writer_giving_up_at_the_head_lets_the_readers_behind_it_in(
    redis_client: Any, how: str
) -> None:
    """Reader holds; a writer waits; readers wait behind it. When the writer gives up, the
    readers behind it join the one holding (nobody released)."""
    rw = ReadWriteLock(redis_client, "doc", timeout=30, acquire_timeout=30)
    holder = rw.read()
    assert await holder.acquire()
    writer = rw.write()
    writing = asyncio.create_task(writer.acquire(acquire_timeout=60 if how == "cancel" else 0.5))
    await queued(redis_client, rw, 1)
    behind = [rw.read(), rw.read()]
    reading = [asyncio.create_task(r.acquire()) for r in behind]
    await queued(redis_client, rw, 3)
    if how == "cancel":
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
    else:
        assert await writing is False
    assert await rw.readers() == 3  # the writer's clean-up let them in, before any re-check
    assert await asyncio.wait_for(asyncio.gather(*reading), 20) == [True, True]
    assert not writer.held
    await assert_consistent(rw, holder, writer, *behind)
    for r in (holder, *behind):
        await r.release()
    await assert_clean(redis_client, rw)


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_uncontended_acquire_at_every_step(redis_client: Any, kind: str) -> None:
    """Cancelling acquire() anywhere (incl. a NOSCRIPT reload) never leaves an unknown holder."""
    rw = ReadWriteLock(redis_client, "swept", timeout=30)
    granted_then_cancelled = 0

    async def step(k: int) -> bool:
        nonlocal granted_then_cancelled
        if k % 5 == 1:
            await redis_client.script_flush()  # cover EVALSHA -> NOSCRIPT -> LOAD -> EVALSHA
        lease = lease_of(rw, kind)
        before = int(await redis_client.get(rw.fence_key) or 0)
        finished, result = await cancel_after(lease.acquire(), k)
        assert result is (True if finished else CANCELLED)  # a cancel is never swallowed
        assert lease.held == (result is True)
        if result is CANCELLED and int(await redis_client.get(rw.fence_key) or 0) > before:
            granted_then_cancelled += 1  # the server granted a write; the caller never heard
        await assert_consistent(rw, lease)
        if lease.held:
            await lease.release()
        await assert_clean(redis_client, rw)
        return finished

    await sweep(step)
    if kind == "write":
        assert granted_then_cancelled > 0  # the sweep did hit the "reply lost" window


@pytest.mark.parametrize("waiting", KINDS)
async def test_cancel_a_waiter_at_every_step_around_a_hand_off(
    redis_client: Any, waiting: str
) -> None:
    """A holder of the other kind releases while its waiter is cancelled at step k; a reader
    queued behind always gets in, and nothing is left held by nobody."""
    rw = ReadWriteLock(redis_client, "swept", timeout=30, acquire_timeout=30)

    async def step(k: int) -> bool:
        holder = lease_of(rw, "write" if waiting == "read" else "read")
        waiter, behind = lease_of(rw, waiting), rw.read()
        assert await holder.acquire()
        task = asyncio.ensure_future(waiter.acquire())
        await queued(redis_client, rw, 1)
        later = asyncio.ensure_future(behind.acquire())
        await queued(redis_client, rw, 2)
        release = asyncio.ensure_future(holder.release())
        finished, result = await cancel_after(task, k)
        await release
        assert result is (True if finished else CANCELLED)
        assert waiter.held == (result is True)
        if waiter.held and waiting == "write":
            assert not later.done()
            await waiter.release()
        assert await asyncio.wait_for(later, 20) is True
        await assert_consistent(rw, holder, waiter, behind)
        for lease in (waiter, behind):
            if lease.held:
                await lease.release()
        await assert_clean(redis_client, rw)
        return finished

    await sweep(step)


async def test_cancel_release_at_every_step(redis_client: Any) -> None:
    """A cancelled release() still completes: the readers waiting get in, together."""
    rw = ReadWriteLock(redis_client, "swept", timeout=30, acquire_timeout=30)

    async def step(k: int) -> bool:
        writer = rw.write()
        readers = [rw.read(), rw.read()]
        assert await writer.acquire()
        waiting = [asyncio.ensure_future(r.acquire()) for r in readers]
        await queued(redis_client, rw, 2)
        finished, _ = await cancel_after(writer.release(), k)
        if k == 0:  # cancelled before it ran: still held, and the object knows it
            assert writer.held
            await writer.release()
        assert await asyncio.wait_for(asyncio.gather(*waiting), 20) == [True, True]

        async def settled() -> bool:  # its reply may come after the readers' hand-off
            return not writer.held

        await until(settled, "the shielded release to finish")
        await assert_consistent(rw, writer, *readers)
        for r in readers:
            await r.release()
        await assert_clean(redis_client, rw)
        return finished

    await sweep(step)


async def test_random_cancellations_keep_exclusion_and_leave_nothing(redis_client: Any) -> None:
    """Readers and writers cancelled at random points: a writer is never beside anyone, and
    once the clean-ups settle nothing is held, nobody waits, and a writer gets in at once."""
    rng = random.Random(99)
    rw = ReadWriteLock(redis_client, "chaos", timeout=30, acquire_timeout=60)
    readers_in = writers_in = entered = 0

    async def worker(plan: list[str]) -> None:
        nonlocal readers_in, writers_in, entered
        for kind in plan:
            async with lease_of(rw, kind):
                entered += 1
                if kind == "write":
                    writers_in += 1
                else:
                    readers_in += 1
                try:
                    assert writers_in == 0 or (writers_in == 1 and readers_in == 0)
                    await asyncio.sleep(0)  # may be cancelled here, holding the lock
                finally:
                    if kind == "write":
                        writers_in -= 1
                    else:
                        readers_in -= 1

    plans = [[rng.choice(["read", "read", "write"]) for _ in range(4)] for _ in range(24)]
    tasks = [asyncio.create_task(worker(plan)) for plan in plans]
    for victim in rng.sample(tasks, 12):
        for _ in range(rng.randrange(1, 80)):
            await asyncio.sleep(0)
        victim.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [r for r in results if not (r is None or isinstance(r, asyncio.CancelledError))] == []
    assert entered > 0
    assert readers_in == writers_in == 0
    await assert_clean(redis_client, rw)
    probe = rw.write()
    assert await probe.try_acquire()
    await probe.release()


async def test_cancelled_holder_releases_on_the_way_out(redis_client: Any) -> None:
    rw = ReadWriteLock(redis_client, "doc", timeout=30)
    entered = asyncio.Event()

    async def hold() -> None:
        async with rw.read():
            entered.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(hold())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_clean(redis_client, rw)


# -- API contract ---------------------------------------------------------------------------


async def test_not_reentrant_across_the_leases_of_one_object(redis_client: Any) -> None:
    """The holding task asking the same ReadWriteLock for another hold (a nested read, an
    upgrade, a downgrade) gets ReentryError at once; other tasks, and other objects, may."""
    rw = ReadWriteLock(redis_client, "again", timeout=30, acquire_timeout=None)
    async with asyncio.timeout(10):  # a regression would wait for itself here
        async with rw.read():
            with pytest.raises(ReentryError, match="held for reading"):
                async with rw.read():
                    pytest.fail("the nested read ran")
            with pytest.raises(ReentryError, match="held for reading"):
                await rw.write().acquire()
            other = rw.read()
            assert await asyncio.create_task(other.acquire())  # another task may read too
            await other.release()
        async with rw.write() as writer:
            with pytest.raises(ReentryError, match="held for writing"):
                await rw.read().try_acquire()
            with pytest.raises(ReentryError, match="held for writing"):
                await writer.acquire()
            assert await writer.owned()
        async with rw.write():  # released: the same task may take it again
            pass
    await assert_clean(redis_client, rw)


async def test_async_with_raises_acquire_timeout(redis_client: Any) -> None:
    rw = ReadWriteLock(redis_client, "busy", timeout=30, acquire_timeout=0.05)
    holder = another(rw).write()
    assert await holder.acquire()
    ran = False
    with pytest.raises(AcquireTimeoutError, match="busy"):
        async with rw.read():
            ran = True
    assert not ran
    await holder.release()
    await assert_clean(redis_client, rw)


async def test_results_identical_with_decode_responses(redis_client_text: Any) -> None:
    r = redis_client_text
    rw = ReadWriteLock(r, "doc", timeout=5)
    writer, reader = rw.write(), another(rw).read()
    seen: list[Any] = [await writer.acquire(), writer.fence, await reader.try_acquire()]
    seen += [await writer.owned(), await reader.owned(), await rw.write_locked()]
    seen += [await writer.extend(5, replace=True), await rw.readers()]
    waiter = asyncio.create_task(reader.acquire())
    await queued(r, rw, 1)
    await writer.release()
    seen += [await waiter, reader.fence, type(reader.token), await rw.readers()]
    seen += [await reader.extend(5, replace=True)]
    await reader.release()
    seen += [await rw.write_locked(), reader.fence]
    assert seen == [True, 1, False, True, False, True, 5.0, 0, True, 1, str, 1, 5.0, False, None]


async def test_keyspace_prefix_is_used(redis_client: Any) -> None:
    rw = ReadWriteLock(redis_client, "doc:7", keyspace=Keyspace("shop"), timeout=30)
    reader, writer = rw.read(), rw.write()
    assert await reader.acquire()
    task = asyncio.create_task(writer.acquire())
    await queued(redis_client, rw, 1)
    found = await keys_of(redis_client, rw)
    assert {rw.readers_key, rw.queue_key, rw.waiters_key} <= found
    assert all(k.startswith("shop:rwlock:{doc:7}:") for k in found)
    assert len({key_slot(k.encode()) for k in found}) == 1
    where = (
        {"target_nodes": RedisCluster.PRIMARIES} if isinstance(redis_client, RedisCluster) else {}
    )
    assert await redis_client.keys("aiorp:*", **where) == []
    await reader.release()
    assert await task
    await writer.release()
    await assert_clean(redis_client, rw)


async def test_the_scripts_refuse_a_token_without_a_kind(redis_client: Any) -> None:
    rw = ReadWriteLock(redis_client, "doc")
    keys = rw.read()._keys()
    with pytest.raises(Exception, match="must start with"):
        await script("rwlock_acquire")(redis_client, keys, ("0" * 32, 1000, 0))
    with pytest.raises(Exception, match="must start with"):
        await script("rwlock_release")(redis_client, keys, ("0" * 32, "release"))
    assert await keys_of(redis_client, rw) == set()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"name": ""}, ValueError, "name"),
        ({"name": "a}b"}, ValueError, "name"),
        ({"name": 42}, TypeError, "name"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": math.nan}, ValueError, "timeout"),
        ({"timeout": MAX_SECONDS + 1}, ValueError, "timeout"),
        ({"timeout": None}, TypeError, "timeout"),
        ({"timeout": "5"}, TypeError, "timeout"),
        ({"acquire_timeout": 0}, ValueError, "acquire_timeout"),
        ({"acquire_timeout": math.inf}, ValueError, "acquire_timeout"),
        ({"acquire_timeout": True}, TypeError, "acquire_timeout"),
        ({"auto_renew": 1}, TypeError, "auto_renew"),
        ({"on_lost": "log it"}, TypeError, "on_lost"),
        ({"keyspace": "aiorp"}, TypeError, "keyspace"),
        ({"redis": None}, TypeError, "redis"),
    ],
)
def test_bad_constructor_arguments_are_rejected(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    options = {"redis": NO_REDIS, "name": "ok", **options}
    redis, name = options.pop("redis"), options.pop("name")
    with pytest.raises(error, match=match):
        ReadWriteLock(redis, name, **options)


def test_a_sync_client_is_refused() -> None:
    import redis as sync_redis

    with pytest.raises(TypeError, match="redis"):
        ReadWriteLock(sync_redis.Redis(), "doc")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_call_arguments_are_rejected_before_redis(kind: str) -> None:
    lease = lease_of(ReadWriteLock(NO_REDIS, "ok"), kind)
    for value, error in ((0, ValueError), (-1, ValueError), (math.nan, ValueError),
                         (math.inf, ValueError), (True, TypeError), ("2", TypeError)):  # fmt: skip
        with pytest.raises(error, match="acquire_timeout"):
            await lease.acquire(acquire_timeout=value)
        with pytest.raises(error, match="acquire_timeout"):
            await lease.acquire(blocking=False, acquire_timeout=value)
    with pytest.raises(TypeError, match="blocking"):
        await lease.acquire(blocking="no")  # type: ignore[arg-type]
    with pytest.raises(NotOwnedError):
        await lease.release()
    lease._token = f"{lease._prefix}-{'0' * 32}"  # as if held: the checks still come first
    with pytest.raises(ValueError, match="seconds"):
        await lease.extend(math.nan)
    with pytest.raises(TypeError, match="replace"):
        await lease.extend(1, replace="yes")  # type: ignore[arg-type]


# -- run twice (a client retry re-sends a script whose reply was lost) ------------------------


async def _drop_receipts(client: Any, rw: ReadWriteLock) -> int:
    """Delete extend(seconds)'s receipts (after checking they expire); return how many.

    A receipt keeps the remaining lease in ms, which differs between two honest runs by the
    milliseconds that passed: the replies show whether an add happened twice.
    """
    receipt = re.compile(r":(writer|readers):[0-9a-f]{32}$")
    found = [key for key in await keys_of(client, rw) if receipt.search(key)]
    for key in found:
        assert 0 < await client.pttl(key) <= 120_000
        await client.delete(key)
    return len(found)


@pytest.mark.retry_safe("rwlock_acquire", "rwlock_release")
async def test_run_twice_uncontended_cycle(redis_client: Any, twice_client: Any) -> None:
    """Doubled: readers share, a writer is refused, each write grant takes one fence."""

    async def scenario(client: Any) -> Any:
        rw = ReadWriteLock(client, "solo", timeout=30)
        first, second, writer = rw.read(), another(rw).read(), another(rw).write()
        seen: list[Any] = [await first.acquire(), first.fence, await second.try_acquire()]
        seen.append(await writer.try_acquire())  # refused: read-held
        await first.release()
        await second.release()
        seen += [await writer.acquire(), writer.fence, await another(rw).read().try_acquire()]
        await writer.release()
        async with writer:  # the normal exit must not raise LeaseLostError
            seen.append(writer.fence)
        async with first:
            seen.append(first.fence)
        seen.append([lease.lost for lease in (first, second, writer)])
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [True, 0, True, False, True, 1, False, 2, 2, [False, False, False]]


@pytest.mark.retry_safe("rwlock_acquire", "rwlock_release")
async def test_run_twice_hand_off_batch(redis_client: Any, twice_client: Any) -> None:
    """Doubled: a writer's release lets two queued readers in once, the writer behind them
    waits, and the readers' releases hand it on once."""

    async def scenario(client: Any) -> Any:
        rw = ReadWriteLock(client, "relay", timeout=30, acquire_timeout=60)
        holder = rw.write()
        assert await holder.acquire()
        waiters = [rw.read(), rw.read(), rw.write()]
        tasks = []
        for n, lease in enumerate(waiters, 1):
            tasks.append(asyncio.ensure_future(lease.acquire()))
            await queued(client, rw, n)
        await holder.release()
        assert await asyncio.gather(*tasks[:2]) == [True, True]
        await queued(client, rw, 1)
        seen: list[Any] = [await rw.readers(), tasks[2].done(), [w.fence for w in waiters]]
        for lease in waiters[:2]:
            await lease.release()
        assert await tasks[2]
        seen += [waiters[2].fence, await rw.readers()]
        await waiters[2].release()
        seen.append([lease.lost for lease in (holder, *waiters)])
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [2, False, [1, 1, None], 2, 0, [False] * 4]


@pytest.mark.retry_safe("rwlock_acquire", "rwlock_release")
async def test_run_twice_give_up_abandon_and_settle(redis_client: Any, twice_client: Any) -> None:
    """Doubled: a writer that times out (settle) and one cancelled (abandon) leave the queue
    once each, and the reader behind them joins the holding reader."""

    async def scenario(client: Any) -> Any:
        rw = ReadWriteLock(client, "quit", timeout=30, acquire_timeout=60)
        holder = rw.read()
        assert await holder.acquire()
        slow, quitter, behind = rw.write(), rw.write(), rw.read()
        timing_out = asyncio.ensure_future(slow.acquire(acquire_timeout=0.5))
        await queued(client, rw, 1)
        gone = asyncio.ensure_future(quitter.acquire())
        await queued(client, rw, 2)
        waits = asyncio.ensure_future(behind.acquire())
        await queued(client, rw, 3)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        await queued(client, rw, 2)
        seen: list[Any] = [await timing_out]
        assert await waits  # the writers left: the reader joins the holder
        seen += [await rw.readers(), slow.held, quitter.held, behind.fence]
        await holder.release()
        await behind.release()
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [False, 2, False, False, 0]


@pytest.mark.retry_safe("rwlock_acquire", "rwlock_release")
async def test_run_twice_abandon_of_a_hand_off_passes_it_on(
    redis_client: Any, twice_client: Any
) -> None:
    """A writer handed the lock as it gave up: the doubled abandon passes it on exactly once
    (to the readers queued behind it, together)."""

    async def scenario(client: Any) -> Any:
        rw = ReadWriteLock(client, "late", timeout=30, acquire_timeout=60)
        holder, late = rw.read(), rw.write()
        assert await holder.acquire()
        token, keys, alive = late._new_token(), late._keys(), to_ms(60)
        queued_reply = int(await late._run(late._acquire, keys, token, to_ms(30), alive))
        behind = [rw.read(), rw.read()]
        waits = [asyncio.ensure_future(r.acquire()) for r in behind]
        await queued(client, rw, 3)
        await holder.release()  # hands off to the late writer, which is not listening
        await queued(client, rw, 2)
        settled = int(await late._run(late._release, keys, token, "settle"))
        await late._abandon(token)  # its caller never read that answer: give it up
        assert await asyncio.gather(*waits) == [True, True]
        refused = int(await late._run(late._acquire, keys, token, to_ms(30), alive))
        seen = [queued_reply < 0, settled, [r.fence for r in behind], refused]
        for r in behind:
            await r.release()
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [True, 1, [1, 1], -1]


@pytest.mark.retry_safe("rwlock_acquire", "rwlock_extend")
async def test_run_twice_extend_adds_once(redis_client: Any, twice_client: Any) -> None:
    """A doubled extend(seconds) adds once, for a reader and a writer; replace sets."""

    async def scenario(client: Any) -> Any:
        rw = ReadWriteLock(client, "longer", timeout=20)
        seen: list[Any] = []
        for lease in (rw.read(), rw.write()):
            assert await lease.acquire()
            seen += [round(await lease.extend(100)), round(await lease.extend(50, replace=True))]
            seen.append(round(await lease.extend(10)))
            try:
                await lease_of(rw, "read").extend(5)
            except NotOwnedError:
                seen.append("not held")
            await lease.release()
        seen.append(await _drop_receipts(client, rw))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [120, 50, 60, "not held", 120, 50, 60, "not held", 4]
