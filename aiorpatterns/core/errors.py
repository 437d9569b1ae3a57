"""The exceptions aiorpatterns raises, all under :class:`AiorpatternsError`.

::

    AiorpatternsError
    ├── AcquireTimeoutError (also TimeoutError)   a lock or slot was not acquired in time
    ├── LimitsMismatchError                        cluster nodes disagree on compact-encoding limits
    ├── NotOwnedError                              release/extend/refresh of a lease not held
    │   └── LeaseLostError                         the lease of an ``async with`` block was lost
    ├── ProgressConflictError                      another log processor moved the progress
    ├── ReentryError (also RuntimeError)           a holder acquired again what it already holds
    ├── ReplicationError                           a replication wait could not be carried out
    │   ├── ReplicaNotAttachedError                not a replica of this master, or link down
    │   └── SyncTimeoutError (also TimeoutError)   the replica did not catch up in time
    ├── ScriptError                                a Lua script returned something it never should
    ├── ShardsUnavailableError                     shards that failed to answer a scatter-gather
    ├── TaskAbortedError                           the task whose result was awaited was aborted
    └── TaskFailedError                            the task whose result was awaited died

Bad arguments raise the built-in ``ValueError`` / ``TypeError`` before anything reaches Redis.
A Redis that is down surfaces as redis-py's own ``redis.exceptions.ConnectionError``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AcquireTimeoutError",
    "AiorpatternsError",
    "LeaseLostError",
    "LimitsMismatchError",
    "NotOwnedError",
    "ProgressConflictError",
    "ReentryError",
    "ReplicaNotAttachedError",
    "ReplicationError",
    "ScriptError",
    "ShardsUnavailableError",
    "SyncTimeoutError",
    "TaskAbortedError",
    "TaskFailedError",
]


class AiorpatternsError(Exception):
    """Base class of every exception raised by aiorpatterns itself."""


class AcquireTimeoutError(AiorpatternsError, TimeoutError):
    """A lock or semaphore slot could not be acquired within ``acquire_timeout``."""


class NotOwnedError(AiorpatternsError):
    """The caller does not hold the lease it tried to release, extend or refresh.

    Either it was never acquired, it was already released, or it expired and may now belong to
    someone else.
    """


class LeaseLostError(NotOwnedError):
    """An ``async with`` block ended after its lease had expired or been taken over."""


class ReentryError(AiorpatternsError, RuntimeError):
    """The task holding a lock or semaphore slot tried to acquire it again through the same object.

    A lease is not re-entrant: waiting for it would wait for the caller itself, so the second
    acquire fails at once instead of running into ``acquire_timeout``.
    """


class ScriptError(AiorpatternsError):
    """A Lua script answered with a value outside its documented contract."""


class ShardsUnavailableError(AiorpatternsError):
    """Some shards failed to answer (down, or slower than the per-shard timeout).

    ``missing`` holds their numbers (positions in the shard list), ``errors`` what each raised.
    """

    def __init__(self, errors: dict[int, BaseException]) -> None:
        self.errors = dict(sorted(errors.items()))
        self.missing: tuple[int, ...] = tuple(self.errors)
        detail = "; ".join(f"shard {i}: {type(e).__name__}: {e}" for i, e in self.errors.items())
        super().__init__(f"{len(self.missing)} shard(s) did not answer: {detail}")


class ProgressConflictError(AiorpatternsError):
    """The recorded progress moved under this processor: another one runs with the same name."""


class ReplicationError(AiorpatternsError):
    """A replication wait could not be carried out (unsupported command, misconfiguration)."""


class ReplicaNotAttachedError(ReplicationError):
    """The replica is not a replica, its link is down, or it follows another master."""


class SyncTimeoutError(ReplicationError, TimeoutError):
    """The replica is attached but did not catch up within the timeout."""


class LimitsMismatchError(AiorpatternsError):
    """The nodes of a cluster do not share the same compact-encoding limits.

    ``differences`` maps each differing setting to ``{node: value}`` (``None``: not set there).
    """

    def __init__(self, differences: Mapping[str, Mapping[str, str | None]]) -> None:
        self.differences = {name: dict(values) for name, values in differences.items()}
        detail = "; ".join(
            f"{name}: " + ", ".join(f"{node}={value}" for node, value in sorted(values.items()))
            for name, values in sorted(self.differences.items())
        )
        super().__init__(f"cluster nodes disagree on compact-encoding limits: {detail}")


class TaskFailedError(AiorpatternsError):
    """The task whose result was awaited died (dead-lettered): its message gives the reason."""


class TaskAbortedError(AiorpatternsError):
    """The task whose result was awaited was aborted (:meth:`~aiorpatterns.TaskQueue.abort`)."""
