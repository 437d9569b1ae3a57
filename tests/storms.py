"""Cancellation storms: many concurrent calls, about half cancelled at random moments.

A sweep cancels one call at each await point in turn; a storm cancels many calls at once, at
moments nobody chose, while others run: the cancels land between, during and after each other's
steps. :func:`storm` runs ``tasks`` calls of ``call(i)``, cancels a random ``share`` of them after
a random delay, and fails on any exception except ``CancelledError`` and the ``allowed`` ones. The
test then reads the keys itself: nothing held by nobody, nothing lost, nothing duplicated, and
records its figures with :meth:`Storm.record` (written to ``$AIORP_STORM_LOG`` as JSON lines when
that is set, for the closing note's table).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Storm:
    """What a storm did: each call's result, how many were cancelled, how many errors."""

    tasks: int
    results: list[Any] = field(default_factory=list)
    cancelled: int = 0
    errors: list[BaseException] = field(default_factory=list)

    def record(self, pattern: str, topology: str, **figures: int) -> None:
        """Write this storm's figures (lost, duplicated, leftovers, ...) to the storm log."""
        path = os.environ.get("AIORP_STORM_LOG")
        if not path:
            return
        row = {"pattern": pattern, "topology": topology, "tasks": self.tasks}
        row |= {"cancelled": self.cancelled, "completed": len(self.results), **figures}
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(row) + "\n")


async def storm(
    call: Callable[[int], Awaitable[Any]],
    *,
    tasks: int = 50,
    share: float = 0.5,
    within: float = 0.05,
    allowed: tuple[type[BaseException], ...] = (),
    seed: int | None = None,
) -> Storm:
    """Run ``call(0..tasks-1)`` concurrently and cancel about ``share`` of them within ``within`` s.

    Fails if any call raised something other than ``CancelledError`` or ``allowed``, and if no
    cancel landed at all (the storm would have tested nothing).
    """
    rng = random.Random(seed)
    running = [asyncio.ensure_future(call(i)) for i in range(tasks)]
    doomed = [t for t in running if rng.random() < share]

    async def cancel_later(task: asyncio.Future[Any]) -> None:
        await asyncio.sleep(rng.uniform(0, within))
        task.cancel()

    cancellers = [asyncio.ensure_future(cancel_later(t)) for t in doomed]
    outcomes = await asyncio.gather(*running, return_exceptions=True)
    await asyncio.gather(*cancellers)
    report = Storm(tasks=tasks)
    for result in outcomes:
        if isinstance(result, asyncio.CancelledError):
            report.cancelled += 1
        elif isinstance(result, BaseException):
            report.errors.append(result)
        else:
            report.results.append(result)
    unexpected = [e for e in report.errors if not isinstance(e, allowed)]
    assert not unexpected, f"{len(unexpected)} calls failed, first: {unexpected[0]!r}"
    assert report.cancelled, "no cancel landed: the storm tested nothing"
    return report
