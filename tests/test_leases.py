"""The contract every lease shares: Lock, the semaphores, a ReadWriteLock's write lease
(coordination.leases, §6.2-§6.3, §11.2).

Round trips per uncontended call, the tombstone that refuses a cancelled acquire's late request,
concurrent releases, ``owned()``, and the argument checks every lease makes before Redis.
Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
from helpers import NO_REDIS, until
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from retrysafe import script_names

from aiorpatterns import FairSemaphore, Lock, NotOwnedError, Semaphore
from aiorpatterns.coordination.leases import Lease
from aiorpatterns.coordination.rwlock import ReadWriteLock, RWLease
from aiorpatterns.core.checks import MAX_SECONDS
from aiorpatterns.core.scripts import script
from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.testing.server import free_port

KINDS: dict[str, Callable[..., Lease]] = {
    "Lock": Lock,
    "Semaphore": lambda redis, name, **kw: Semaphore(redis, name, limit=1, **kw),
    "FairSemaphore": lambda redis, name, **kw: FairSemaphore(redis, name, limit=1, **kw),
    # A write lease excludes every other lease of the name, as a lock does (test_rwlock.py
    # covers read leases, which share).
    "ReadWriteLock.write": lambda redis, name, **kw: ReadWriteLock(redis, name, **kw).write(),
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
    token = lease._new_token()
    keys = lease._keys()
    await lease._run(lease._release, keys, token, "abandon")  # the clean-up ran first
    for wait_ms in (0, 3000):  # a try, and a request to queue
        assert int(await lease._run(lease._acquire, keys, token, 30_000, wait_ms)) == -1
    assert await redis_client.zscore(lease._queue, token) is None
    if isinstance(lease, Lock):
        assert await lease.locked() == held_by_other
    elif isinstance(lease, RWLease):
        assert await lease.rwlock.write_locked() == held_by_other
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


def test_bad_numbers_never_reach_redis(make: Callable[..., Lease]) -> None:
    """Durations go through checks.py before anything is sent (on the tripwire client)."""
    for value, error in ((0, ValueError), (-1, ValueError), (math.nan, ValueError),
                         (math.inf, ValueError), ("1", TypeError), (True, TypeError)):  # fmt: skip
        with pytest.raises(error, match="timeout"):
            make(NO_REDIS, "bad", timeout=value)
    with pytest.raises(TypeError, match="redis"):
        make(None, "bad")


async def test_extend_checks_before_redis(make: Callable[..., Lease]) -> None:
    lease = make(NO_REDIS, "bad")
    lease._token = "0" * 32  # as if held: the checks still come first
    with pytest.raises(TypeError, match="replace"):
        await lease.extend(1, replace="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seconds"):
        await lease.extend(math.nan)
    with pytest.raises(ValueError, match="seconds"):
        await lease.extend(MAX_SECONDS + 1)


# -- clean-up survives any exception (issue 10: a client broken by a cancellation storm) ----


class ClientBroke(Exception):
    """Not a RedisError: what a client confused by a cancellation may raise instead."""


class _Flaky:
    """Mixin: the next ``fail[name]`` calls of script ``name`` raise ClientBroke, after running
    on the server when ``ran`` (the reply was lost) or before (nothing was sent)."""

    fail: dict[str, int]
    ran: bool

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if str(args[0]).upper().endswith("EVALSHA"):
            sha = args[1].decode() if isinstance(args[1], bytes) else str(args[1])
            name = script_names().get(sha, "")
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                if self.ran:
                    await super().execute_command(*args, **options)  # type: ignore[misc]
                raise ClientBroke(f"client broke running {name}")
        return await super().execute_command(*args, **options)  # type: ignore[misc]


@pytest.fixture
async def flaky(request: pytest.FixtureRequest, redis_client: Any) -> AsyncIterator[Any]:
    """A client on ``redis_client``'s server whose chosen script calls fail (see _Flaky)."""
    topology = request.node.callspec.params["redis_client"]
    endpoint: Endpoint = request.getfixturevalue(
        "redis_cluster_server" if topology == "cluster" else "redis_server"
    )
    base = RedisCluster if topology == "cluster" else Redis
    kind: Any = type("Flaky" + base.__name__, (_Flaky, base), {})
    client = kind.from_url(endpoint.url)
    client.fail, client.ran = {}, True
    yield client
    await client.aclose()


@pytest.mark.parametrize("ran", [True, False], ids=["reply-lost", "not-sent"])
async def test_release_survives_one_failure(
    flaky: Any, make: Callable[..., Lease], ran: bool
) -> None:
    """A release whose first try breaks (after running, or before) is tried again: the
    ``async with`` exits normally and nothing stays held."""
    lease = make(flaky, "flaky", timeout=60)
    flaky.ran = ran
    async with lease:
        flaky.fail[lease._release] = 1
    assert not lease.lost
    assert flaky.fail[lease._release] == 0
    successor = make(flaky, "flaky", timeout=60)
    assert await successor.try_acquire()
    await successor.release()


async def test_release_that_keeps_failing_never_masks_the_block(
    flaky: Any, make: Callable[..., Lease]
) -> None:
    """Both tries fail: ``release()`` raises the client's error, but an ``async with`` block's
    own exception is what propagates (the lease then ends with its timeout)."""
    flaky.ran = False
    lease = make(flaky, "masked", timeout=60)
    assert await lease.acquire()
    flaky.fail[lease._release] = 2
    with pytest.raises(ClientBroke):
        await lease.release()
    assert not lease.held
    other = make(flaky, "masked2", timeout=60)

    async def block() -> None:
        async with other:
            flaky.fail[other._release] = 2
            raise KeyError("the block's own error")

    with pytest.raises(KeyError):
        await block()


async def test_acquire_whose_reply_was_lost_gives_the_grant_back(
    flaky: Any, make: Callable[..., Lease]
) -> None:
    """The acquire ran (granted) but its reply never came: the caller gets the error, and the
    clean-up releases by token, so nothing is held by an owner that never knew."""
    lease = make(flaky, "lostreply", timeout=60)
    flaky.fail[lease._acquire] = 1
    with pytest.raises(ClientBroke):
        await lease.acquire()
    assert not lease.held
    assert await make(flaky, "lostreply", timeout=60).try_acquire()


async def test_abandon_survives_one_failure(flaky: Any, make: Callable[..., Lease]) -> None:
    """A cancelled waiter whose clean-up breaks once still leaves the queue (second try)."""
    holder = make(flaky, "quitter", timeout=60)
    waiter = make(flaky, "quitter", timeout=60, acquire_timeout=60)
    assert await holder.acquire()
    task = asyncio.ensure_future(waiter.acquire())

    async def queued() -> bool:
        return int(await flaky.zcard(holder._queue)) == 1

    await until(queued, "the waiter to queue")
    flaky.ran = False
    flaky.fail[waiter._release] = 1  # the abandon's first try
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def left() -> bool:
        return int(await flaky.zcard(holder._queue)) == 0 and not flaky.fail[waiter._release]

    await until(left, "the abandon's second try")
    await holder.release()
    assert not await holder.owned()
    assert await make(flaky, "quitter", timeout=60).try_acquire()  # free: not handed to it


async def test_renewer_survives_any_exception(flaky: Any, make: Callable[..., Lease]) -> None:
    """A renewal that breaks with a non-Redis error is tried again next period: the lease is
    kept; when no renewal succeeds for a whole lease, the holder is told it is lost."""
    lost = asyncio.Event()
    lease = make(flaky, "renew", timeout=0.9, auto_renew=True, on_lost=lambda _: lost.set())
    flaky.ran = False
    assert await lease.acquire()
    flaky.fail[lease._extend] = 1
    await until(lambda: _zero(flaky.fail, lease._extend), "the failed renewal")
    await asyncio.sleep(1.2)  # past the first lease: only the renewals after the failure kept it
    assert await lease.owned()
    assert not lease.lost
    flaky.fail[lease._extend] = 10**6  # every renewal from now on fails
    await asyncio.wait_for(lost.wait(), 20)
    assert lease.lost
    with contextlib.suppress(NotOwnedError):
        await lease.release()


async def _zero(counts: dict[str, int], name: str) -> bool:
    return counts.get(name, 0) == 0
