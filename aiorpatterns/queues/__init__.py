"""Task queues: the reliable queue with priorities, delays, visibility timeouts, retries and dead
letters, and the worker that runs its tasks (Redis in Action §6.4).
"""

from __future__ import annotations

from .taskqueue import (
    DeadLetter,
    QueueCounts,
    Task,
    TaskQueue,
)
from .worker import (
    Worker,
    WorkerStats,
)

__all__ = [
    "DeadLetter",
    "QueueCounts",
    "Task",
    "TaskQueue",
    "Worker",
    "WorkerStats",
]
