"""The contract Lock, Semaphore and FairSemaphore share (aiorpatterns.leases, §6.2-§6.3, §11.2).

Round trips per uncontended call, the tombstone that refuses a cancelled acquire's late request,
concurrent releases, ``owned()``, and the argument checks every lease makes before Redis.
Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns import FairSemaphore, Lock, NotOwnedError, Semaphore
from aiorpatterns.checks import MAX_SECONDS
from aiorpatterns.leases import Lease
from aiorpatterns.pytest_plugin import Endpoint
from aiorpatterns.scripts import script
from aiorpatterns.server import free_port

KINDS: dict[str, Callable[..., Lease]] = {
    "Lock": Lock,
    "Semaphore": lambda redis, name, **kw: Semaphore(redis, name, limit=1, **kw),
    "FairSemaphore": lambda redis, name, **kw: FairSemaphore(redis, name, limit=1, **kw),
}


@pytest.fixture(params=list(KINDS))
def make(request: pytest.FixtureRequest) -> Callable[..., Lease]:
    return KINDS[request.param]


class CountingConnection(Connection):
    """A real connection that counts its writes to the socket: one per round trip."""

    writes: ClassVar[int] = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counted(redis_server: Endpoint) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, connection_class=CountingConnection)
    await client.ping()  # connect (and its hand-shake) before anything is counted
    yield client
    await client.aclose()


async def test_uncontended_acquire_and_release_are_one_round_trip_each(
    counted: Redis, make: Callable[..., Lease]
) -> None:
    lease = make(counted, "trips")
    for name in (lease._acquire, lease._release):
        await script(name).load(counted)  # EVALSHA finds the script: no NOSCRIPT retry
    for _ in range(3):
        CountingConnection.writes = 0
        assert await lease.acquire()
        assert CountingConnection.writes == 1
        await lease.release()
        assert CountingConnection.writes == 2
        assert await lease.try_acquire()
        await lease.release()
        assert CountingConnection.writes == 4


@pytest.mark.parametrize("held_by_other", [False, True], ids=["free", "held"])
async def test_a_late_acquire_of_an_abandoned_token_is_refused(
    redis_client: Any, make: Callable[..., Lease], held_by_other: bool
) -> None:
    """A cancelled acquire's own request, run by Redis after its clean-up (it went out on
    another connection), must not grant (or queue) a token nobody will release."""
    lease = make(redis_client, "tomb", timeout=30)
    other = make(redis_client, "tomb", timeout=30)
    if held_by_other:
        assert await other.acquire()
    token = os.urandom(16).hex()
    keys = lease._keys()
    await lease._run(lease._release, keys, token, "abandon")  # the clean-up ran first
    for wait_ms in (0, 3000):  # a try, and a request to queue
        assert int(await lease._run(lease._acquire, keys, token, 30_000, wait_ms)) == -1
    assert await redis_client.zscore(lease._queue, token) is None
    if isinstance(lease, Lock):
        assert await lease.locked() == held_by_other
    else:
        assert isinstance(lease, Semaphore)
        assert await lease.holders() == int(held_by_other)
    if held_by_other:
        assert await other.owned()
        await other.release()
    assert await lease.try_acquire()  # nothing of the refused token is in the way
    assert await lease.owned()
    await lease.release()


async def test_concurrent_releases_release_once(
    redis_client: Any, make: Callable[..., Lease]
) -> None:
    """Two tasks releasing one object at once: one releases, the other is told it is not held."""
    lease = make(redis_client, "twice", timeout=30)
    assert await lease.acquire()
    results = await asyncio.gather(lease.release(), lease.release(), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["NoneType", "NotOwnedError"]
    assert not lease.held
    assert not lease.lost  # the lease was not lost: the second call simply found nothing held
    assert not await lease.owned()
    successor = make(redis_client, "twice", timeout=30)
    assert await successor.try_acquire()
    await successor.release()


async def test_owned_asks_redis(redis_client: Any, make: Callable[..., Lease]) -> None:
    """``held`` is what the object believes; ``owned()`` asks Redis (a lease can run out)."""
    lease = make(redis_client, "owned", timeout=0.2)
    assert not await lease.owned()
    assert await lease.acquire()
    assert lease.held
    assert await lease.owned()
    await asyncio.sleep(0.3)
    assert lease.held
    assert not await lease.owned()
    with pytest.raises(NotOwnedError):
        await lease.release()
    assert lease.lost


# -- bad input, before Redis ---------------------------------------------------------------


@pytest.fixture
async def unreachable() -> AsyncIterator[Redis]:
    """A client for a port nobody listens on: any Redis call would raise ConnectionError."""
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"timeout": MAX_SECONDS + 1}, ValueError, "timeout"),
        ({"timeout": 1e300}, ValueError, "timeout"),
        ({"acquire_timeout": MAX_SECONDS * 2}, ValueError, "acquire_timeout"),
        ({"auto_renew": "yes"}, TypeError, "auto_renew"),
        ({"auto_renew": 1}, TypeError, "auto_renew"),
        ({"on_lost": "log it"}, TypeError, "on_lost"),
        ({"on_lost": 5}, TypeError, "on_lost"),
    ],
)
def test_caps_flags_and_callbacks_are_checked(
    unreachable: Redis,
    make: Callable[..., Lease],
    options: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        make(unreachable, "bad", **options)


async def test_call_caps_and_flags_are_checked_before_redis(
    unreachable: Redis, make: Callable[..., Lease]
) -> None:
    lease = make(unreachable, "bad")
    with pytest.raises(ValueError, match="acquire_timeout"):
        await lease.acquire(acquire_timeout=MAX_SECONDS + 1)
    with pytest.raises(TypeError, match="blocking"):
        await lease.acquire(blocking="no")  # type: ignore[arg-type]
    assert make(unreachable, "ok", timeout=MAX_SECONDS).timeout == MAX_SECONDS
    assert not lease.held
