"""A read-write lock: many readers or one writer, in FIFO order, with fenced writes.

Redis in Action §6.2 builds a lock for one holder at a time. A resource that many may read at
once but only one may change (a document, a configuration blob, a cache being rebuilt) wants
more: any number of readers together, or exactly one writer (redis-py issue #2372 asks for it;
Redisson's ``RReadWriteLock`` is the JVM's answer). This one stands on the lease mechanism of
:class:`~aiorpatterns.Lock` and the semaphores (:mod:`aiorpatterns.coordination.leases`):

- readers are a ZSET token -> end of lease on the server's clock, the writer a string whose PX
  expiry is its lease, so a crashed holder of either kind lets the others in when its lease ends;
- one FIFO queue holds readers and writers alike: once anyone waits, a newcomer waits behind it,
  so a stream of readers never starves a writer. When the lock frees (the writer leaves, or the
  last reader does, or a lease runs out) the queue's head gets it: a writer alone, or the first
  reader and every reader behind it up to the next writer, all at once; each is woken through
  its client's wake-up channel, as a lock's waiter is (no polling);
- every write grant INCRs a fence counter: :attr:`WriteLease.fence` strictly increases per name,
  so the storage a writer changes can reject a writer whose lease ran out. Readers take no fence
  of their own: :attr:`ReadLease.fence` is the fence of the last write granted before the read
  (0 before the first), the version of the data the reader sees;
- ``auto_renew``, ``extend()``, cancellation safety (a cancelled or timed-out acquire gives back
  what it was handed, and a waiting writer that gives up lets the readers behind it in) and
  retry safety are those of every lease.

``rw.read()`` and ``rw.write()`` return a fresh lease object on each call:
``async with rw.read(): ...`` or ``async with rw.write() as w: await store.put(doc, w.fence)``.
A lease object can be acquired again after its release. The lock is not re-entrant: a task that
holds a read or write lease made by one :class:`ReadWriteLock` and asks the same object for
another (a nested read, or an upgrade from reading to writing) gets
:class:`~aiorpatterns.ReentryError` at once, since it could wait for itself (a writer queued
between the two reads waits for the first, the second waits for the writer).

Keys (one hash tag): ``<prefix>:rwlock:{<name>}:writer`` (the writer's token),
``…:readers`` (ZSET), ``…:fence``, ``…:queue``, ``…:waiters``, one wake-up list per waiting
client, ``…:queue:wake:<client id>``, and a released or abandoned token's tombstone for 15 s,
``…:queue:<token>``.
``extend(seconds)`` leaves a receipt ``…:writer:<call id>`` or ``…:readers:<call id>`` for two
minutes. The fence counter is the only key without a TTL: resetting it would break fencing. The
cluster failover caveat of :mod:`aiorpatterns.coordination.locks` applies here too.

Every step is safe to run twice (a client retry after a lost reply): acquire recognises its token
holding or queued, release retires its token with a short-lived tombstone that a second run
recognises, and ``extend(seconds)`` keeps a receipt under a fresh call id.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from ..core.checks import (
    AsyncRedis,
    check_callable,
    check_client,
    check_flag,
    check_keyspace,
    check_seconds,
)
from ..core.errors import ReentryError
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from .leases import Lease

__all__ = ["ReadLease", "ReadWriteLock", "WriteLease"]

KIND = "rwlock"


class ReadWriteLock:
    """Many readers or one writer on ``name``, served first come, first served (§6.2 extended).

    ``timeout`` is each hold's lease in seconds, ``acquire_timeout`` how long ``acquire()``
    waits (``None``: forever), ``auto_renew`` keeps a held lease alive and ``on_lost(lease)`` is
    called if it is lost anyway; they apply to every lease :meth:`read` and :meth:`write` make.
    Redis in Action §6.2 builds the one-holder lock this extends; the readers' ZSET on the
    server's clock is §6.3's semaphore.
    """

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
        self.redis = check_client(redis)
        self.name = check_name(name)
        self.keyspace = check_keyspace(keyspace)
        self.timeout = check_seconds(timeout, "timeout")
        self.acquire_timeout = check_seconds(acquire_timeout, "acquire_timeout", allow_none=True)
        self.auto_renew = check_flag(auto_renew, "auto_renew")
        self.on_lost = check_callable(on_lost, "on_lost", allow_none=True)
        self.writer_key = keyspace.key(KIND, name, "writer")
        self.readers_key = keyspace.key(KIND, name, "readers")
        self.fence_key = keyspace.key(KIND, name, "fence")
        self.queue_key = keyspace.key(KIND, name, "queue")
        self.waiters_key = keyspace.key(KIND, name, "waiters")
        # Every lease made here, while it lives: a task holding one may not ask for another.
        self._leases: weakref.WeakSet[RWLease] = weakref.WeakSet()

    def read(self) -> ReadLease:
        """Return a new lease that holds the lock for reading, beside other readers."""
        lease = ReadLease(self)
        self._leases.add(lease)
        return lease

    def write(self) -> WriteLease:
        """Return a new lease that holds the lock for writing, alone."""
        lease = WriteLease(self)
        self._leases.add(lease)
        return lease

    async def readers(self) -> int:
        """Return how many readers hold the lock right now (on the server's clock, §6.3.1)."""
        return int(await script("semaphore_holders")(self.redis, (self.readers_key,)))

    async def write_locked(self) -> bool:
        """Return True if a writer holds the lock right now."""
        return bool(await self.redis.exists(self.writer_key))

    def _holding(self, task: asyncio.Task[Any]) -> RWLease | None:
        """Return the lease made here that ``task`` holds, if any."""
        for lease in list(self._leases):
            if lease.held and lease._holder is task:
                return lease
        return None

    def __repr__(self) -> str:
        return f"<ReadWriteLock {self.keyspace.tag(KIND, self.name)!r}>"


class RWLease(Lease):
    """What a read and a write lease of a :class:`ReadWriteLock` share: keys, scripts, tokens.

    Both kinds run the same scripts; a token's prefix (``r-`` or ``w-``) tells them its kind,
    in the holders' records and in the one wait queue alike.
    """

    kind = KIND
    _acquire = "rwlock_acquire"
    _release = "rwlock_release"
    _extend = "rwlock_extend"
    _prefix: ClassVar[str]
    _mode: ClassVar[str]

    def __init__(self, rwlock: ReadWriteLock) -> None:
        super().__init__(
            rwlock.redis,
            rwlock.name,
            timeout=rwlock.timeout,
            acquire_timeout=rwlock.acquire_timeout,
            auto_renew=rwlock.auto_renew,
            on_lost=rwlock.on_lost,
            keyspace=rwlock.keyspace,
        )
        self.rwlock = rwlock

    def _keys(self) -> Sequence[str]:
        rw = self.rwlock
        return (rw.writer_key, rw.readers_key, rw.fence_key, rw.queue_key, rw.waiters_key)

    def _extend_keys(self) -> Sequence[str]:
        return (self.rwlock.writer_key, self.rwlock.readers_key)

    def _new_token(self) -> str:
        return f"{self._prefix}-{super()._new_token()}"

    def _check_reentry(self, task: asyncio.Task[Any] | None) -> None:
        held = self.rwlock._holding(task) if task is not None else None
        if held is not None:
            raise ReentryError(
                f"{self.kind} {self.name!r} is already held for {held._mode} by this task "
                f"through this ReadWriteLock, which is not re-entrant (a nested hold or an "
                f"upgrade could wait for itself): release it first"
            )


class ReadLease(RWLease):
    """A hold of a :class:`ReadWriteLock` for reading: shared with other readers, never a writer.

    Made by :meth:`ReadWriteLock.read`; ``acquire()``, ``try_acquire()``, ``release()``,
    ``extend()``, ``owned()``, ``held`` and ``lost`` behave as :class:`~aiorpatterns.Lock`'s.
    Its lease is a score in the readers' ZSET on the server's clock (Redis in Action §6.3.1).
    """

    _prefix = "r"
    _mode = "reading"

    @property
    def fence(self) -> int | None:
        """The fence of the last write granted before this read (0 if none yet), or None.

        Not a fence of its own (readers do not exclude each other): the version of the data
        this reader sees. Every later writer's fence is larger.
        """
        return None if self._grant is None else self._grant - 1

    async def _owns(self, token: str) -> bool:
        # The readers' ZSET on the server's clock: a lease that ended is not owned, even unpruned.
        keys = (self.rwlock.readers_key,)
        return bool(await script("semaphore_owned")(self.redis, keys, (token,)))

    def __repr__(self) -> str:
        state = f"held, fence={self.fence}" if self._token else "not held"
        return f"<ReadLease {self.rwlock.keyspace.tag(KIND, self.name)!r} {state}>"


class WriteLease(RWLease):
    """A hold of a :class:`ReadWriteLock` for writing: alone, with a fencing token.

    Made by :meth:`ReadWriteLock.write`; ``acquire()``, ``try_acquire()``, ``release()``,
    ``extend()``, ``owned()``, ``held`` and ``lost`` behave as :class:`~aiorpatterns.Lock`'s
    (Redis in Action §6.2).
    """

    _prefix = "w"
    _mode = "writing"

    @property
    def fence(self) -> int | None:
        """The fencing token of the current hold (strictly increasing per name), or None."""
        return self._grant

    async def _owns(self, token: str) -> bool:
        value = await self.redis.get(self.rwlock.writer_key)
        return (value.decode() if isinstance(value, bytes) else value) == token

    def __repr__(self) -> str:
        state = f"held, fence={self._grant}" if self._token else "not held"
        return f"<WriteLease {self.rwlock.keyspace.tag(KIND, self.name)!r} {state}>"
