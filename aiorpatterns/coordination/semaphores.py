"""Counting semaphores with per-holder leases, FIFO hand-off and server time.

Redis in Action §6.3 builds a counting semaphore from a ZSET of holders scored by the *client's*
clock (§6.3.1), then a "fair" one that orders holders by a counter instead (§6.3.2), with a
refresh (§6.3.3), and finally guards it with a lock (§6.3.5) because its two transactions race
(§6.3.4). §11.2.2 moves the basic one into Lua but still passes the
client's clock. Here every step is one Lua script that reads the server's clock
(``redis.call('TIME')``), so:

- no holder can over-admit or expire others early with a skewed clock, and the fair semaphore's
  counter/rank race is gone without a lock (INCR, ZADD and the rank test are one atomic step);
- a slot that frees (a release, or a lease that ran out) goes straight to the first live waiter,
  woken through its client's wake-up channel: FIFO, no polling, no starvation, and a newcomer's
  ``try_acquire()`` never overtakes the queue;
- each holder has its own lease: :meth:`~Semaphore.refresh` or ``auto_renew=True`` keeps it,
  and a holder that crashed loses its slot when its lease ends;
- a cancelled ``acquire()`` gives back whatever it was handed and leaves a tombstone for a few
  seconds, so that its own request, if Redis runs it after the clean-up (it was sent on another
  connection), is refused rather than granting a slot nobody will release.

One object holds at most one slot (tasks sharing an object take turns on it): give each
concurrent holder its own object with the same ``name`` and ``limit``.

Keys (one hash tag), for :class:`Semaphore`: ``<prefix>:semaphore:{<name>}`` (ZSET token -> end of
lease, server ms), ``…:queue``, ``…:waiters`` and one wake-up list per waiting client. For
:class:`FairSemaphore`: ``<prefix>:fair_semaphore:{<name>}`` (timeouts ZSET, as above),
``…:owner`` (ZSET token -> counter), ``…:counter``, ``…:queue``, ``…:waiters``. A released or
abandoned token leaves a tombstone, ``…:queue:<token>``, for 15 s, and ``extend(seconds)`` a receipt
``<holders key>:<call id>`` for two minutes. Every key expires when its last lease or waiter
does, except the fair semaphore's counter (its values are fencing tokens, which must never
repeat).

A server restart without persistence forgets every slot: holders find out at their next
``refresh()`` or ``release()`` (:class:`~aiorpatterns.NotOwnedError`; on a client without
retries ``refresh()`` first raises redis-py's ``ConnectionError`` on its stale connection, while
``release()`` tries again, as every clean-up does), and a waiter gets a slot on
the restarted server if its client reconnects, else redis-py's ``ConnectionError``: never a hang.
The cluster failover caveat of :mod:`aiorpatterns.coordination.locks` applies to slots as well.

Every step is safe to run twice (a client retry after a lost reply): acquire recognises its token
holding or queued, release retires its token with a short-lived tombstone that a second run
recognises, and ``extend(seconds)`` keeps a receipt under a fresh call id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..core.checks import AsyncRedis, check_count
from ..core.keys import DEFAULT_KEYSPACE, Keyspace
from ..core.scripts import script
from .leases import Lease

__all__ = ["FairSemaphore", "Semaphore"]


class Semaphore(Lease):
    """A counting semaphore named ``name`` admitting ``limit`` holders at once (§6.3.1, §11.2).

    Redis in Action §6.3.1 keeps holders in a ZSET scored by time; here the score is the end of
    each holder's lease on the server's clock. ``timeout`` is the lease in seconds,
    ``acquire_timeout`` how long :meth:`acquire` waits (``None``: forever).
    ``async with Semaphore(redis, "api", limit=5):`` raises
    :class:`~aiorpatterns.AcquireTimeoutError` on timeout and
    :class:`~aiorpatterns.LeaseLostError` if the slot was lost before the block ended.
    """

    kind = "semaphore"
    _acquire = "semaphore_acquire"
    _release = "semaphore_release"
    _extend = "semaphore_extend"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        limit: int,
        timeout: float = 10.0,
        acquire_timeout: float | None = 10.0,
        auto_renew: bool = False,
        on_lost: Callable[[Any], Awaitable[None] | None] | None = None,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.limit = check_count(limit, "limit")
        super().__init__(
            redis,
            name,
            timeout=timeout,
            acquire_timeout=acquire_timeout,
            auto_renew=auto_renew,
            on_lost=on_lost,
            keyspace=keyspace,
        )
        self.key = self.keyspace.key(self.kind, name)
        self._waiters = self.keyspace.key(self.kind, name, "waiters")

    def _keys(self) -> Sequence[str]:
        return (self.key, self._queue, self._waiters)

    def _extend_keys(self) -> Sequence[str]:
        return (self.key,)

    async def _run(self, name: str, keys: Sequence[str], *args: object) -> Any:
        # The acquire and release scripts also need the limit (ARGV after the Lease convention):
        # the release hands every free slot to a waiter, so it must know how many there are.
        if name in (self._acquire, self._release):
            args = (*args, self.limit)
        return await super()._run(name, keys, *args)

    async def _owns(self, token: str) -> bool:
        # The keys the extend script checks: a lease that ended is not owned, even unreclaimed.
        return bool(await script("semaphore_owned")(self.redis, self._extend_keys(), (token,)))

    async def refresh(self) -> None:
        """Reset the lease of the held slot to ``timeout`` seconds.

        Redis in Action §6.3.3 (``refresh_fair_semaphore``) and §11.2.2. Raises
        :class:`~aiorpatterns.NotOwnedError` if the slot is not held or was lost.
        """
        await self.extend(self.timeout or 0.0, replace=True)

    async def holders(self) -> int:
        """Return how many slots are held right now (holders whose lease has not ended).

        Counted on the server's clock, like every step here (Redis in Action §6.3.1).
        """
        return int(await script("semaphore_holders")(self.redis, (self.key,)))

    def __repr__(self) -> str:
        state = "held" if self._token else "not held"
        return f"<{type(self).__name__} {self.key!r} limit={self.limit} {state}>"


class FairSemaphore(Semaphore):
    """A counting semaphore that orders holders by a counter (Redis in Action §6.3.2-§6.3.5).

    The book's fair structure: a timeouts ZSET, an owner ZSET scored by a counter, and the
    counter. The book runs INCR and the rank test in separate transactions, which lets a slower
    client "steal" a slot (§6.3.4), and adds a lock to fix it (§6.3.5); here they are one Lua
    step. Each grant's counter value is exposed as :attr:`fence`, a fencing token that strictly
    increases per name.
    """

    kind = "fair_semaphore"
    _acquire = "fair_semaphore_acquire"
    _release = "fair_semaphore_release"
    _extend = "fair_semaphore_extend"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        limit: int,
        timeout: float = 10.0,
        acquire_timeout: float | None = 10.0,
        auto_renew: bool = False,
        on_lost: Callable[[Any], Awaitable[None] | None] | None = None,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        super().__init__(
            redis,
            name,
            limit=limit,
            timeout=timeout,
            acquire_timeout=acquire_timeout,
            auto_renew=auto_renew,
            on_lost=on_lost,
            keyspace=keyspace,
        )
        self._owner_key = self.keyspace.key(self.kind, name, "owner")
        self._counter_key = self.keyspace.key(self.kind, name, "counter")

    def _keys(self) -> Sequence[str]:
        return (self.key, self._owner_key, self._counter_key, self._queue, self._waiters)

    def _extend_keys(self) -> Sequence[str]:
        return (self.key, self._owner_key)

    @property
    def fence(self) -> int | None:
        """The counter value of the current hold (strictly increasing per name), or None."""
        return self._grant
