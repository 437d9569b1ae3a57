"""Cancellation storms on Lock, Semaphore, FairSemaphore and ReadWriteLock, on both topologies.

Sixty contenders go through ``async with`` on one name while about half are cancelled at random
moments: waiting in the queue, being handed the lease, inside the critical section, releasing.
Invariants: never more than ``limit`` holders at once, and a writer of a read-write lock never
beside anyone (counted inside the critical section);
every contender that was not cancelled got in (or a documented ``AcquireTimeoutError``); once
every clean-up has settled nothing is held and nobody waits (the leases are long, so a slot left
by a gone task would still be held when the test looks), and only tombstones, which expire, are
left beside the fence counters.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from helpers import text, until
from storms import storm

from aiorpatterns import AcquireTimeoutError, FairSemaphore, Lock, Semaphore
from aiorpatterns.coordination.leases import Lease
from aiorpatterns.coordination.rwlock import ReadWriteLock, WriteLease

TASKS = 60
#: Long enough that a slot left by a task that is gone is still held when the test looks.
LEASE = 60.0

#: Each kind: its limit, how to make contender ``i``, and the window the cancels land in (about
#: as long as the storm runs: TASKS holds of HOLD seconds on average, ``limit`` at a time).
KINDS: dict[str, tuple[int, Callable[..., Lease], float]] = {
    "Lock": (1, lambda redis, i, **kw: Lock(redis, "storm", **kw), 0.8),
    "Semaphore": (3, lambda redis, i, **kw: Semaphore(redis, "storm", limit=3, **kw), 0.3),
    "FairSemaphore": (
        3,
        lambda redis, i, **kw: FairSemaphore(redis, "storm", limit=3, **kw),
        0.3,
    ),
    # Every fourth contender writes (contender 0, the probe, too); readers have no limit.
    "ReadWriteLock": (
        TASKS,
        lambda redis, i, **kw: (
            ReadWriteLock(redis, "storm", **kw).write()
            if i % 4 == 0
            else ReadWriteLock(redis, "storm", **kw).read()
        ),
        0.4,
    ),
}
#: The longest a contender holds (a random share of it, inside the critical section).
HOLD = 0.04


async def _state(client: Any, lease: Lease) -> dict[str, Any]:
    """What Redis holds for ``lease``'s name: holders, waiters, and the other keys by kind."""
    tag = lease.keyspace.tag(lease.kind, lease.name)
    keys = sorted([text(k) async for k in client.scan_iter(match=f"{tag}*")])
    state: dict[str, Any] = {"tombstones": 0, "other": []}
    for key in keys:
        if key.startswith(f"{lease._queue}:"):
            value = [text(v) for v in await client.lrange(key, 0, -1)]
            ttl = await client.pttl(key)
            if value == ["0"] and 0 < ttl <= 15_000:
                state["tombstones"] += 1
                continue
            if ttl == -2:  # expired since it was listed
                continue
        if key.endswith((":fence", ":counter")):  # fencing counters never expire, by design
            continue
        state["other"].append(key)
    return state


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", list(KINDS))
async def test_cancellation_storm(
    redis_client: Any, request: pytest.FixtureRequest, kind: str
) -> None:
    topology = request.node.callspec.params["redis_client"]
    limit, make, within = KINDS[kind]
    inside = 0
    writing = 0
    most = 0
    over = 0
    phases: Counter[str] = Counter()
    rng = random.Random(7)

    async def contender(i: int) -> int:
        nonlocal inside, writing, most, over
        lease = make(redis_client, i, timeout=LEASE, acquire_timeout=120)
        exclusive = isinstance(lease, WriteLease)
        phase = "waiting"
        try:
            async with lease:
                phase = "inside"
                inside += 1
                writing += exclusive
                most = max(most, inside)
                if inside > limit or (writing and inside > 1):
                    over += 1
                try:
                    await asyncio.sleep(rng.uniform(0, HOLD))
                    # A round trip inside too, so cancels also land on a busy connection.
                    assert await lease.owned()
                except asyncio.CancelledError:
                    phases["inside"] += 1
                    raise
                finally:
                    inside -= 1
                    writing -= exclusive
                phase = "releasing"
            return 1
        except asyncio.CancelledError:
            if phase != "inside":  # counted where it landed
                phases[phase] += 1
            raise

    report = await storm(
        contender, tasks=TASKS, share=0.5, within=within, allowed=(AcquireTimeoutError,), seed=11
    )
    probe = make(redis_client, 0, timeout=LEASE)

    async def settled() -> bool:
        return not (await _state(redis_client, probe))["other"]

    # The shielded clean-ups of cancelled contenders may still be running: wait for them (a slot
    # leaked to a gone task would stay for LEASE seconds, far beyond this bound).
    try:
        await until(settled, "every clean-up to settle", limit=30.0)
    finally:
        state = await _state(redis_client, probe)
        timeouts = sum(isinstance(e, AcquireTimeoutError) for e in report.errors)
        report.record(
            kind,
            topology,
            lost=TASKS - report.cancelled - len(report.results) - timeouts,
            duplicated=over,
            leftovers=len(state["other"]),
            timeouts=timeouts,
            most_holders=most,
            tombstones=state["tombstones"],
            cancelled_waiting=phases["waiting"],
            cancelled_inside=phases["inside"],
            cancelled_releasing=phases["releasing"],
        )
    assert over == 0, f"{over} times too many holders at once (most: {most}, limit {limit})"
    assert most <= limit
    assert report.results, "no contender completed: the storm cancelled everything"
    assert len(report.results) + report.cancelled + timeouts == TASKS
    assert state["other"] == [], f"left held or waiting: {state['other']}"
    # The lease is free for a newcomer, at once.
    assert await probe.try_acquire()
    await probe.release()
