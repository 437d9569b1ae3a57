"""Task queues: the reliable queue with priorities, delays, visibility timeouts, retries and dead
letters, the worker that runs its tasks, and periodic tasks (Redis in Action §6.4).
"""

from __future__ import annotations

from ..core.serializers import JsonSerializer, MsgspecJSON, Serializer
from .context import TaskContext
from .periodic import Cron, Periodic, Scheduler
from .taskqueue import (
    DeadLetter,
    QueueCounts,
    Task,
    TaskQueue,
    TaskStatus,
)
from .worker import (
    Worker,
    WorkerStats,
)

__all__ = [
    "Cron",
    "DeadLetter",
    "JsonSerializer",
    "MsgspecJSON",
    "Periodic",
    "QueueCounts",
    "Scheduler",
    "Serializer",
    "Task",
    "TaskContext",
    "TaskQueue",
    "TaskStatus",
    "Worker",
    "WorkerStats",
]
