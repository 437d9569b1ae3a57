"""What every pattern stands on: key names, the Lua script registry, automatic pipelining,
the error tree, cancellation and waiting helpers, and the argument checks.

Nothing here imports a pattern family; every family imports from here.
"""

from __future__ import annotations

from .autopipeline import (
    AutoPipeline,
    AutoPipelineStats,
)
from .errors import (
    AcquireTimeoutError,
    AiorpatternsError,
    LeaseLostError,
    LimitsMismatchError,
    NotOwnedError,
    ProgressConflictError,
    ReentryError,
    ReplicaNotAttachedError,
    ReplicationError,
    ScriptError,
    ShardsUnavailableError,
    SyncTimeoutError,
    TaskAbortedError,
    TaskFailedError,
)
from .keys import (
    Keyspace,
)
from .scripts import (
    Script,
    script,
)

__all__ = [
    "AcquireTimeoutError",
    "AiorpatternsError",
    "AutoPipeline",
    "AutoPipelineStats",
    "Keyspace",
    "LeaseLostError",
    "LimitsMismatchError",
    "NotOwnedError",
    "ProgressConflictError",
    "ReentryError",
    "ReplicaNotAttachedError",
    "ReplicationError",
    "Script",
    "ScriptError",
    "ShardsUnavailableError",
    "SyncTimeoutError",
    "TaskAbortedError",
    "TaskFailedError",
    "script",
]
