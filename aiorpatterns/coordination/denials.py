"""Denials remembered in-process: a key Redis refused is refused here until its retry time.

A rate limiter's denial says when the same cost would fit (``retry_after``, on the server's
clock). Until then nothing another caller does can make room sooner, but a refund or a reset:
hits only consume, and time only frees what the decision already counted. So a denial can be
answered again without a round trip until then. :class:`DenialMemory` keeps such denials for a
:class:`~aiorpatterns.coordination.ratelimit.RateLimiter` built with ``remember_denials=``, so a
hammered key costs Redis about one call per ``retry_after`` instead of one per hit (not in the
book: its nearest patterns, §5.2.1 and §6.3.1, have no limiter to hammer).

The memory is cautious on both sides: it counts from the moment the hit was *sent* (the server
decided later, so its retry time is no earlier than that plus ``retry_after``), and never keeps a
denial longer than its ``span``, which bounds how late a :meth:`~RateLimiter.reset` or refund
made by another process is seen here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ratelimit import RateDecision

__all__ = ["DenialMemory"]


@dataclass(frozen=True, slots=True)
class _Denial:
    sent: float  # monotonic seconds: when the denied hit was sent
    until: float  # monotonic seconds: when the memory of it ends
    decision: RateDecision


class DenialMemory:
    """Denials by (key, cost), each kept until its retry time and at most ``span`` seconds.

    At most ``size`` denials are kept: when full, the oldest ones go (first those that ended).
    Times are ``time.monotonic()`` seconds, passed in by the caller.
    """

    def __init__(self, span: float, size: int = 10_000) -> None:
        self.span = span
        self.size = size
        self._kept: dict[tuple[str, int], _Denial] = {}

    def recall(self, key: str, cost: int, now: float) -> RateDecision | None:
        """The remembered denial of ``cost`` units of ``key``, its times moved on to ``now``."""
        found = self._kept.get((key, cost))
        if found is None:
            return None
        if now >= found.until:
            del self._kept[(key, cost)]
            return None
        past = now - found.sent
        was = found.decision
        return dataclasses.replace(
            was,
            retry_after=max(0.0, was.retry_after - past),
            reset_after=max(0.0, was.reset_after - past),
            at=was.at + past,
        )

    def remember(self, key: str, cost: int, sent: float, decision: RateDecision) -> None:
        """Keep ``decision`` (a denial of ``cost`` units of ``key``, sent at ``sent``)."""
        lasts = min(decision.retry_after, self.span)
        if lasts <= 0:
            return
        self._kept.pop((key, cost), None)  # re-inserted last: the dict's order is the age
        if len(self._kept) >= self.size:
            self._make_room(sent)
        self._kept[(key, cost)] = _Denial(sent, sent + lasts, decision)

    def forget(self, key: str) -> None:
        """Drop every denial of ``key`` (it was reset here)."""
        for kept in [k for k in self._kept if k[0] == key]:
            del self._kept[kept]

    def __len__(self) -> int:
        return len(self._kept)

    def _make_room(self, now: float) -> None:
        """Drop the oldest denials while they have ended or the memory is full: O(1) a call
        amortised, however many keys a flood of new ones brings."""
        kept = self._kept
        while kept:
            key, oldest = next(iter(kept.items()))
            if len(kept) < self.size and now < oldest.until:
                return
            del kept[key]
