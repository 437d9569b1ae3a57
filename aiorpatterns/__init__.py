"""aiorpatterns: the patterns of *Redis in Action*, async-native on redis.asyncio.

Every class takes your ``redis.asyncio`` client (``Redis``, ``RedisCluster`` or an
:class:`AutoPipeline` around either) first, and never closes it. See the README's pattern table
for the book section behind each one.
"""

from __future__ import annotations

from . import autopipeline, errors, keys, locks, semaphores, sessions
from .autopipeline import AutoPipeline, AutoPipelineStats
from .errors import (
    AcquireTimeoutError,
    AiorpatternsError,
    LeaseLostError,
    NotOwnedError,
    ScriptError,
)
from .keys import Keyspace
from .locks import Lock
from .semaphores import FairSemaphore, Semaphore
from .sessions import Sessions

__all__ = [
    "AcquireTimeoutError",
    "AiorpatternsError",
    "AutoPipeline",
    "AutoPipelineStats",
    "FairSemaphore",
    "Keyspace",
    "LeaseLostError",
    "Lock",
    "NotOwnedError",
    "ScriptError",
    "Semaphore",
    "Sessions",
]

#: Modules whose ``__all__`` must be re-exported here (a test keeps this true).
PUBLIC_MODULES = (autopipeline, errors, keys, locks, semaphores, sessions)
