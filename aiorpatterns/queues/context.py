"""What a handler may know about the task it runs: :class:`TaskContext`.

Redis in Action §6.4.1's callbacks get the task's arguments only. A handler of a
:class:`~aiorpatterns.Worker` that declares a parameter named ``ctx`` is also given the context
of its task (its id, the attempt, the queue, when it was enqueued, when its timeout ends), so it
can log, report progress against the id ``put`` returned, or spend its time budget wisely.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from .taskqueue import Task

__all__ = ["TaskContext"]

#: The parameter name that asks for the context.
CONTEXT_PARAMETER = "ctx"


@dataclass(frozen=True, slots=True)
class TaskContext:
    """The task a handler runs, as its worker knows it."""

    #: The task's id (what ``put`` returned: ``queue.status(ctx.task_id)`` follows it).
    task_id: str
    #: The name of the queue it came from.
    queue: str
    #: The task name it was queued under (``put_call``'s ``name``).
    name: str
    #: This delivery's number, from 1; the task is dead-lettered after ``max_attempts``.
    attempt: int
    max_attempts: int
    priority: str
    #: When it was enqueued (Unix seconds, the server's clock).
    enqueued_at: float
    #: When the handler's timeout ends (Unix seconds, this machine's clock), or None.
    deadline: float | None
    #: The delivery itself (payload, claim, visibility deadline, last error).
    task: Task


def wants_context(handler: Any) -> bool:
    """True if ``handler`` declares a ``ctx`` parameter (keyword or positional)."""
    try:
        parameters = inspect.signature(handler).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    found = parameters.get(CONTEXT_PARAMETER)
    return found is not None and found.kind is not inspect.Parameter.POSITIONAL_ONLY
