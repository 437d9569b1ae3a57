"""The exceptions aiorpatterns raises, all under :class:`AiorpatternsError`.

::

    AiorpatternsError
    ├── AcquireTimeoutError (also TimeoutError)   a lock or slot was not acquired in time
    ├── NotOwnedError                              release/extend/refresh of a lease not held
    │   └── LeaseLostError                         the lease of an ``async with`` block was lost
    └── ScriptError                                a Lua script returned something it never should

Bad arguments raise the built-in ``ValueError`` / ``TypeError`` before anything reaches Redis.
A Redis that is down surfaces as redis-py's own ``redis.exceptions.ConnectionError``.
"""

from __future__ import annotations

__all__ = [
    "AcquireTimeoutError",
    "AiorpatternsError",
    "LeaseLostError",
    "NotOwnedError",
    "ScriptError",
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


class ScriptError(AiorpatternsError):
    """A Lua script answered with a value outside its documented contract."""
