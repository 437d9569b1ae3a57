"""How every pattern waits in Redis: bounded slices, the client's socket timeout, wait arguments.

A waiter never blocks in Redis for longer than :data:`MAX_WAIT_SLICE` (or the client's socket
timeout allows), then re-checks: a lost wake-up costs latency, never liveness.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["MAX_WAIT_SLICE", "block_ms", "blocking_cap"]

#: Longest a waiter blocks before it re-checks (and refreshes its place in a wait queue).
MAX_WAIT_SLICE = 1.0


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
