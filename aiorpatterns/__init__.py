"""aiorpatterns: the patterns of *Redis in Action*, async-native on redis.asyncio."""

from __future__ import annotations

from . import errors, keys, locks
from .errors import (
    AcquireTimeoutError,
    AiorpatternsError,
    LeaseLostError,
    NotOwnedError,
    ScriptError,
)
from .keys import Keyspace
from .locks import Lock

__all__ = [
    "AcquireTimeoutError",
    "AiorpatternsError",
    "Keyspace",
    "LeaseLostError",
    "Lock",
    "NotOwnedError",
    "ScriptError",
]

#: Modules whose ``__all__`` must be re-exported here (a test keeps this true).
PUBLIC_MODULES = (errors, keys, locks)
