"""A distributed lock with a lease, fencing tokens, FIFO hand-off and optional auto-renewal.

Redis in Action §6.2 builds a lock from SETNX + EXPIRE and a WATCH/MULTI release, polling every
millisecond; §11.2 moves acquire and release into Lua. Both are races or busy loops on today's
Redis: SETNX then EXPIRE can leave a lock without a TTL, TTLs are whole seconds, there is no
fencing and no fairness. This lock keeps the book's shape (a random token in
a string key, compare-and-delete release) and fixes the rest:

- acquire and lease are one atomic step, in milliseconds; an uncontended acquire is one round trip,
  a release is one round trip;
- every grant also yields ``fence``, a strictly increasing integer from the same step, so a guarded
  resource can reject writes from a holder whose lease ran out (store the highest fence seen);
- waiters queue in FIFO order and are handed the lock by the release itself, woken through
  their client's wake-up channel (one blocked connection for all the waiting tasks of a client;
  none at all when the releasing client is the waiter's): no polling, no thundering herd, no
  starvation;
- ``auto_renew=True`` keeps the lease alive while held; if it is lost anyway (a long pause, a
  failover), :attr:`Lock.lost` turns True and ``on_lost(lock)`` is called, so the holder can stop.

Keys (one hash tag): ``<prefix>:lock:{<name>}`` (the token), ``…:fence``, ``…:queue``,
``…:waiters``, one wake-up list per waiting client, ``…:queue:wake:<client id>``, and a
released or abandoned token's tombstone for 15 s, ``…:queue:<token>``. ``extend(seconds)``
leaves a receipt ``<lock>:<call id>`` for two minutes. The fence counter is the only key
without a TTL: resetting it would break fencing.

Cluster failover caveat (as for every single-instance Redis lock): replication is asynchronous,
so a primary that dies right after granting a lock may fail over to a replica that never saw it,
and a second client can then acquire the same name. Fencing tokens keep the guarded resource safe;
the fence counter itself can also repeat values across such a failover.

Every step is safe to run twice (a client retry after a lost reply): acquire recognises its token
holding (same fence) or queued, release retires its token with a short-lived tombstone that a
second run recognises, and ``extend(seconds)`` keeps a receipt under a fresh call id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..core.checks import AsyncRedis
from ..core.keys import DEFAULT_KEYSPACE, Keyspace
from .leases import Lease

__all__ = ["Lock"]


class Lock(Lease):
    """A lease-based mutual-exclusion lock named ``name`` (Redis in Action §6.2, §11.2).

    ``timeout`` is the lease in seconds; ``acquire_timeout`` how long :meth:`acquire` waits
    (``None``: forever). ``async with Lock(redis, "cart:42"):`` raises
    :class:`~aiorpatterns.AcquireTimeoutError` on timeout and
    :class:`~aiorpatterns.LeaseLostError` if the lease was lost before the block ended.
    """

    kind = "lock"
    _acquire = "lock_acquire"
    _release = "lock_release"
    _extend = "lock_extend"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        timeout: float = 10.0,
        acquire_timeout: float | None = 10.0,
        auto_renew: bool = False,
        on_lost: Callable[[Any], Awaitable[None] | None] | None = None,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
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
        self._fence_key = self.keyspace.key(self.kind, name, "fence")
        self._waiters = self.keyspace.key(self.kind, name, "waiters")

    def _keys(self) -> Sequence[str]:
        return (self.key, self._fence_key, self._queue, self._waiters)

    def _extend_keys(self) -> Sequence[str]:
        return (self.key,)

    @property
    def fence(self) -> int | None:
        """The fencing token of the current hold (strictly increasing per name), or None."""
        return self._grant

    async def locked(self) -> bool:
        """True if anyone holds the lock right now."""
        return bool(await self.redis.exists(self.key))

    async def _owns(self, token: str) -> bool:
        value = await self.redis.get(self.key)
        return (value.decode() if isinstance(value, bytes) else value) == token

    def __repr__(self) -> str:
        state = f"held, fence={self._grant}" if self._token else "not held"
        return f"<Lock {self.key!r} {state}>"
