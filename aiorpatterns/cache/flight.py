"""Single flight: of the callers that miss one cache key, in any process, one computes.

Redis in Action §2.3 (``cache_request``) lets every caller that misses render the page at once:
a stampede on the origin whenever a popular entry expires. A :class:`Flight` is one caller's
part in the fix, shared by :class:`~aiorpatterns.Cache` and
:class:`~aiorpatterns.webapp.PageCache`:

- :meth:`Flight.claim` reads the entry or claims the right to compute it (``cache_claim.lua``,
  one step): a hit, a claim, or "wait, the claim lasts N ms more";
- a waiter blocks on the entry's ready list through the client's latch channel
  (:func:`~aiorpatterns.core.wakeup.latch_wait`: the waiters of one client share one blocked
  connection), never a polling loop, and for no longer than the claim lasts: a computer that
  crashed costs its lease, after which a waiter claims and computes;
- the computer stores the value and wakes every waiter in one step (:meth:`Flight.fill`), or
  gives the claim up at once if it fails or is cancelled (:meth:`Flight.release`).

Every step carries the caller's random token, so a step re-sent by a client retry recognises
its first run; a caller cancelled while its claim is on the wire gives the claim back.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..core.cancellation import best_effort, cleanup, observe
from ..core.checks import AsyncRedis, text
from ..core.scripts import script
from ..core.wakeup import latch_wait

__all__ = ["Flight", "flight_keys"]

#: The longest one blocking wait lasts before re-checking (below redis-py's socket timeouts).
MAX_BLOCK = 1.0
#: The shortest blocking wait (a blocking timeout of 0 would block forever).
MIN_BLOCK = 0.01


def flight_keys(entry_key: str) -> list[str]:
    """The keys of one entry's flight: the entry, its claim, its ready list, its fresh mark."""
    return [entry_key, f"{entry_key}:claim", f"{entry_key}:ready", f"{entry_key}:fresh"]


@dataclass(eq=False)
class Flight:
    """One caller's claim on one entry (see the module docstring)."""

    redis: AsyncRedis
    keys: list[str]
    #: How long a claim lasts (ms): what a crashed computer costs its waiters at most.
    lease_ms: int
    #: Serve a value past its soft TTL to everyone but the one caller that refreshes it.
    soft: bool = False
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    _woken: int = field(default=0, repr=False)

    async def claim(self, reject: str = "") -> tuple[str, Any]:
        """One claim step: ``(state, entry or claim ms left)``; see ``cache_claim.lua``.

        ``reject`` names an entry version the caller found invalid: it counts as missing.
        Shielded: a caller cancelled or failing meanwhile gives a won claim back.
        """
        args = [self.token, self.lease_ms, "1" if self.soft else "0", reject]
        step = asyncio.ensure_future(script("cache_claim")(self.redis, self.keys, args))
        step.add_done_callback(observe)
        try:
            reply = await asyncio.shield(step)
        except BaseException:
            await best_effort(lambda: self._release_if_claimed(step))
            raise
        state = text(reply[0])
        return state, reply[1] if len(reply) > 1 else None

    async def wait(self, claim_left_ms: Any, seconds: float | None = None) -> bool:
        """Wait for the computer's value: until woken, the claim ends or ``seconds`` pass.

        Returns whether a signal woke the waiter. A signal that keeps coming while the claim
        stays (left by an earlier computation) is not spun on: the waiter backs off.
        """
        left = int(claim_left_ms) / 1000
        if left <= 0:
            return False  # the claim just ended: claim again
        if self._woken > 1:
            await asyncio.sleep(MIN_BLOCK * self._woken)
        block = min(left, MAX_BLOCK, seconds if seconds is not None else MAX_BLOCK)
        woken = await latch_wait(self.redis, self.keys[2], max(block, MIN_BLOCK))
        self._woken = self._woken + 1 if woken else 0
        return woken

    async def fill(self, entry: str | bytes, ttl_ms: int, soft_ms: int = 0) -> None:
        """Store the computed entry and wake the waiters, if this caller still holds the claim.

        Shielded: a caller cancelled now still stores it. A fill that fails (Redis away) is
        only a lost cache write: the waiters claim again when the lease ends. A caller whose
        claim ended or was dropped (an invalidation) stores nothing.
        """
        await cleanup(lambda: self._store("fill", entry, ttl_ms, soft_ms))

    async def release(self) -> None:
        """Give the claim up at once (the computation failed or was cancelled)."""
        await cleanup(lambda: self._store("release", "", 0, 0))

    async def _store(self, mode: str, entry: str | bytes, ttl_ms: int, soft_ms: int) -> int:
        args = [self.token, mode, entry, ttl_ms, soft_ms, self.lease_ms]
        return int(await script("cache_store")(self.redis, self.keys, args))

    async def _release_if_claimed(self, step: asyncio.Future[Any]) -> None:
        """Release the claim if the claim step won it, or by token if its reply never came."""
        try:
            won = text((await step)[0]) in ("claimed", "refresh")
        except Exception:
            won = True  # it may have run on the server: release by token anyway
        if won:
            await self._store("release", "", 0, 0)
