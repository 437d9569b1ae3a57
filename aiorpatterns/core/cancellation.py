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
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("aiorpatterns")

#: How many times a clean-up step is tried before it is given up (and logged).
CLEANUP_TRIES = 2


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


async def best_effort(step: Callable[[], Awaitable[object]]) -> None:
    """Run a clean-up step shielded, swallowing (and logging) its failure.

    The caller is already failing, so nothing is raised, whatever the client throws: not only
    ``RedisError`` and ``OSError`` but any exception (a client bug is not a ``RedisError``
    either). A failed step is tried once more, on whatever connection the client gives next
    (a connection that failed is dropped from the pool); every clean-up script is safe to run
    twice, so a try whose reply was lost does no harm. A caller cancelled meanwhile returns at
    once; the tries go on shielded.
    """
    with contextlib.suppress(asyncio.CancelledError):
        await cleanup(step)


async def cleanup(step: Callable[[], Awaitable[object]]) -> None:
    """:func:`best_effort` for a caller that must not swallow its own cancellation.

    The step's failure is swallowed (and logged) as there, and it is tried twice, shielded, on
    one task; a caller cancelled meanwhile gets CancelledError at once, the tries go on.
    """
    await shielded(_tries(step))


async def _tries(step: Callable[[], Awaitable[object]]) -> None:
    for attempt in range(1, CLEANUP_TRIES + 1):
        try:
            await step()
            return
        except Exception as exc:
            if attempt == CLEANUP_TRIES:
                log.warning("clean-up step failed %d times, giving up: %r", attempt, exc)
            else:
                log.info("clean-up step failed, trying once more: %r", exc)
