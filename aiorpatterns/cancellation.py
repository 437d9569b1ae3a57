"""Cancellation helpers every pattern shares: honour a swallowed cancel, shield a finishing step.

On Python 3.11 redis-py can swallow a cancellation that lands as a command is written
(``asyncio.wait_for``, CPython gh-86296): a loop that waits in Redis checks, each turn, whether
its task was cancelled meanwhile, and raises as 3.12 would. A step that must complete once
called (a release, an ack, a send) runs shielded: the caller gets ``CancelledError`` at once,
the step still finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.exceptions import RedisError

T = TypeVar("T")


def cancelling() -> tuple[asyncio.Task[Any] | None, int]:
    """The current task and its pending cancellation count, for :func:`honour_cancel`."""
    task = asyncio.current_task()
    return task, task.cancelling() if task is not None else 0


def honour_cancel(task: asyncio.Task[Any] | None, before: int) -> None:
    """Raise CancelledError if ``task`` was cancelled since it had ``before`` pending."""
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError


def observe(task: asyncio.Future[Any]) -> None:
    """Mark a shielded task's outcome as seen, so asyncio logs nothing when nobody awaits it."""
    if not task.cancelled():
        task.exception()


async def shielded(step: Awaitable[T]) -> T:
    """Run ``step`` to completion even if the caller is cancelled meanwhile.

    A cancelled caller gets CancelledError at once; the step still finishes, so a send or an
    ack that was called happens exactly once instead of maybe.
    """
    done = asyncio.ensure_future(step)
    done.add_done_callback(observe)  # a cancelled caller never reads the outcome
    return await asyncio.shield(done)


async def best_effort(step: Awaitable[object]) -> None:
    """Run a clean-up step shielded, swallowing its failure (the caller is already failing)."""
    with contextlib.suppress(RedisError, OSError, asyncio.CancelledError):
        await shielded(step)
