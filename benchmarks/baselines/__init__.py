"""Port the book's own code to asyncio, faithfully: the ``book-*`` rows of the tables.

Each function is the listing of *Redis in Action* translated to ``redis.asyncio`` and nothing
more: the same commands in the same order, the same client clocks, the same 1 ms back-off, the
same races (inventory §1 rows 17-22). Two additions change no behaviour: ``key_prefix`` (so a
benchmark keeps every key under ``bench:``) and ``on_try`` (a callback run before each
acquisition attempt, so a table can count tries). Python 2 ``str`` comparisons become
comparisons of decoded text. Redis in Action §4.5, §6.2, §6.3 and §11.2.
"""

from __future__ import annotations

from . import (
    ch04_market,
    ch04_sessions,
    ch06_locks,
    ch06_market,
    ch06_semaphores,
    ch11_locks,
    ch11_market,
)

__all__ = [
    "ch04_market",
    "ch04_sessions",
    "ch06_locks",
    "ch06_market",
    "ch06_semaphores",
    "ch11_locks",
    "ch11_market",
]
