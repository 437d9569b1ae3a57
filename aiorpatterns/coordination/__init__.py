"""Coordination: locks, semaphores and a read-write lock on one lease mechanism with FIFO
hand-off, fencing and auto-renewal (Redis in Action §6.2, §6.3, §11.2), and a rate limiter.
"""

from __future__ import annotations

from .locks import (
    Lock,
)
from .ratelimit import (
    Rate,
    RateDecision,
    RateLimiter,
    RateStrategy,
)
from .rwlock import (
    ReadLease,
    ReadWriteLock,
    WriteLease,
)
from .semaphores import (
    FairSemaphore,
    Semaphore,
)

__all__ = [
    "FairSemaphore",
    "Lock",
    "Rate",
    "RateDecision",
    "RateLimiter",
    "RateStrategy",
    "ReadLease",
    "ReadWriteLock",
    "Semaphore",
    "WriteLease",
]
