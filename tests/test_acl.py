"""A Redis ACL user limited to ``~aiorp:*`` can run every pattern, and nothing outside it.

The user may run any non-dangerous command (scripting and blocking commands included) but only
on keys under the default prefix, so these tests prove that no pattern reads or writes a key
outside its :class:`~aiorpatterns.Keyspace` (Lua scripts included: Redis checks the keys of
the commands a script runs, declared in KEYS or not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from helpers import Restricted
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from aiorpatterns import FairSemaphore, Keyspace, Lock, Semaphore
from aiorpatterns.core.keys import DEFAULT_KEYSPACE


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.005)


# -- the patterns, each driven end to end through the restricted client ---------------------
# One entry per pattern in EXERCISES, and its out-of-prefix twin in OUTSIDE.


async def exercise_lock(client: Redis, admin: Redis) -> None:
    """Acquire, contended wait with hand-off, extend (add and replace), release."""
    await admin.script_flush()  # the user must be able to load the scripts itself
    holder = Lock(client, "acl", timeout=30)
    waiter = Lock(client, "acl", timeout=30, acquire_timeout=10)
    assert await holder.acquire()
    assert await holder.locked()
    assert 30 < await holder.extend(5) <= 35
    assert await holder.extend(20, replace=True) == 20
    task = asyncio.create_task(waiter.acquire())

    async def queued() -> bool:
        return int(await admin.zcard(DEFAULT_KEYSPACE.key("lock", "acl", "queue"))) == 1

    await _eventually(queued)
    await holder.release()  # hands over: pushes to the waiter's wake list inside the script
    assert await task is True
    assert waiter.fence is not None
    assert waiter.fence > 1
    assert await waiter.owned()
    assert not await holder.try_acquire()
    await waiter.release()
    assert not await waiter.locked()
    renewing = Lock(client, "acl-renewed", timeout=0.3, auto_renew=True)
    async with renewing:
        await asyncio.sleep(0.5)
        assert await renewing.owned()


async def _exercise_slots(kind: type[Semaphore], client: Redis, admin: Redis) -> None:
    """Fill a 2-slot semaphore, queue a third holder, hand a slot over, refresh, release."""
    await admin.script_flush()  # the user must be able to load the scripts itself
    first, second = (kind(client, "acl", limit=2, timeout=30) for _ in range(2))
    waiter = kind(client, "acl", limit=2, timeout=30, acquire_timeout=10)
    assert await first.acquire()
    assert await second.acquire()
    assert await first.holders() == 2
    await first.refresh()
    assert await first.owned()
    task = asyncio.create_task(waiter.acquire())

    async def queued() -> bool:
        return int(await admin.zcard(DEFAULT_KEYSPACE.key(kind.kind, "acl", "queue"))) == 1

    await _eventually(queued)
    await first.release()  # hands the slot to the waiter inside the script
    assert await task is True
    assert await waiter.owned()
    assert not await first.try_acquire()
    await second.release()
    await waiter.release()
    assert await first.holders() == 0
    renewing = kind(client, "acl-renewed", limit=1, timeout=0.3, auto_renew=True)
    async with renewing:
        await asyncio.sleep(0.5)
        assert await renewing.owned()


async def exercise_semaphore(client: Redis, admin: Redis) -> None:
    """The counting semaphore, end to end."""
    await _exercise_slots(Semaphore, client, admin)


async def exercise_fair_semaphore(client: Redis, admin: Redis) -> None:
    """The fair semaphore, end to end, with strictly increasing fencing tokens."""
    await _exercise_slots(FairSemaphore, client, admin)
    fenced = FairSemaphore(client, "acl", limit=2, timeout=30)
    async with fenced:
        assert fenced.fence is not None
        assert fenced.fence > 3  # three grants before this one


def _elsewhere() -> Keyspace:
    return Keyspace("elsewhere")


async def outside_lock(client: Redis) -> None:
    """A lock under another prefix: every key it needs is out of bounds."""
    await Lock(client, "acl", keyspace=_elsewhere()).acquire()


async def outside_semaphore(client: Redis) -> None:
    """A semaphore under another prefix."""
    await Semaphore(client, "acl", limit=2, keyspace=_elsewhere()).acquire()


async def outside_fair_semaphore(client: Redis) -> None:
    """A fair semaphore under another prefix."""
    await FairSemaphore(client, "acl", limit=2, keyspace=_elsewhere()).acquire()


async def outside_semaphore_count(client: Redis) -> None:
    """Counting the holders of a semaphore under another prefix (a read-only script)."""
    await Semaphore(client, "acl", limit=2, keyspace=_elsewhere()).holders()


EXERCISES: dict[str, Callable[[Redis, Redis], Awaitable[None]]] = {
    "fair_semaphore": exercise_fair_semaphore,
    "lock": exercise_lock,
    "semaphore": exercise_semaphore,
}
OUTSIDE: dict[str, Callable[[Redis], Awaitable[None]]] = {
    "fair_semaphore": outside_fair_semaphore,
    "lock": outside_lock,
    "semaphore": outside_semaphore,
    "semaphore_count": outside_semaphore_count,
}


@pytest.mark.parametrize("pattern", sorted(EXERCISES))
async def test_pattern_runs_with_only_its_keyspace(restricted: Restricted, pattern: str) -> None:
    """Each pattern works end to end for a user who may touch only ``aiorp:*`` keys."""
    await EXERCISES[pattern](restricted.client, restricted.admin)
    stray = [k for k in await restricted.admin.keys("*") if not k.startswith(b"aiorp:")]
    assert stray == []


@pytest.mark.parametrize("pattern", sorted(OUTSIDE))
async def test_pattern_outside_its_keyspace_is_refused(
    restricted: Restricted, pattern: str
) -> None:
    """The same user is refused (NoPermissionError) once a pattern uses another prefix."""
    with pytest.raises(NoPermissionError):
        await OUTSIDE[pattern](restricted.client)
    assert await restricted.admin.keys("elsewhere:*") == []


async def test_the_user_really_is_restricted(restricted: Restricted) -> None:
    """Sanity check of the fixture: plain commands outside the prefix are refused."""
    await restricted.client.set("aiorp:acl:{probe}", "1")
    with pytest.raises(NoPermissionError):
        await restricted.client.set("other:probe", "1")
    with pytest.raises(NoPermissionError):
        await restricted.client.flushall()  # @dangerous
