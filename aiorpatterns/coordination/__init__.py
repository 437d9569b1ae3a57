"""Coordination: locks and semaphores on one lease mechanism with FIFO hand-off, fencing and
auto-renewal (Redis in Action §6.2, §6.3, §11.2).
"""

from __future__ import annotations

from .locks import (
    Lock,
)
from .semaphores import (
    FairSemaphore,
    Semaphore,
)

__all__ = [
    "FairSemaphore",
    "Lock",
    "Semaphore",
]
