"""How every pattern waits in Redis: bounded slices, the client's socket timeout, wait arguments,
and the backoff of a loop that keeps serving while Redis fails.

A waiter never blocks in Redis for longer than :data:`MAX_WAIT_SLICE` (or the client's socket
timeout allows), then re-checks: a lost wake-up costs latency, never liveness.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["MAX_WAIT_SLICE", "Backoff", "block_ms", "blocking_cap"]

#: Longest a waiter blocks before it re-checks (and refreshes its place in a wait queue).
MAX_WAIT_SLICE = 1.0


class Backoff:
    """The pauses of a loop retrying a failing step: ``first`` seconds, doubling up to ``most``
    (by default 0.1 s up to 5 s, the workers' and the scheduler's).

    ``pause`` is the next pause; :meth:`sleep` takes it and doubles the one after, and
    :meth:`reset` (the step worked) starts again from ``first``. The workers, the scheduler, the
    near cache's tracking and the row cache's refresher back off with one.
    """

    __slots__ = ("first", "most", "pause")

    def __init__(self, first: float = 0.1, most: float = 5.0) -> None:
        self.first, self.most = first, most
        self.pause = first

    def take(self) -> float:
        """The next pause, doubling the one after (at most ``most``)."""
        pause = self.pause
        self.pause = min(pause * 2, self.most)
        return pause

    async def sleep(self) -> None:
        """Sleep the next pause."""
        await asyncio.sleep(self.take())

    def reset(self) -> None:
        self.pause = self.first


def blocking_cap(redis: Any) -> float | None:
    """Longest blocking command the client can wait for: half its ``socket_timeout``, if any.

    redis-py applies ``socket_timeout`` to blocking commands too, so a longer BLPOP would fail
    with ``TimeoutError`` instead of returning empty. The server may answer a BLPOP up to
    ``1/hz`` (100 ms) late, so a short socket timeout can still fire; the waiter then re-checks.
    """
    getter = getattr(redis, "get_connection_kwargs", None)
    try:
        value = getter().get("socket_timeout") if callable(getter) else None
    except Exception:  # a wrapper without connection kwargs: no cap known
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return max(float(value) / 2, 0.001)
    return None


def block_ms(deadline: float | None, cap: float | None) -> int | None:
    """How long the next ``XREAD``/``XREADGROUP … BLOCK`` may wait (ms, at least 1).

    At most :data:`MAX_WAIT_SLICE` and ``cap``; None once ``deadline`` (loop time) has passed.
    """
    pause = MAX_WAIT_SLICE if cap is None else min(MAX_WAIT_SLICE, cap)
    if deadline is not None:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return None
        pause = min(pause, left)
    return max(1, int(pause * 1000))
