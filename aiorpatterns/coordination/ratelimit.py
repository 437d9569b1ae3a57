"""A distributed rate limiter on the server's clock: fixed and sliding windows, sliding log, GCRA.

Redis in Action has no rate limiter of its own; its nearest patterns are the time-bucketed
counters of §5.2.1 (one count per precision bucket: a fixed window) and the counting semaphore of
§6.3.1 (a ZSET of timestamps trimmed to a timeout: a sliding log), both on the *client's* clock.
Here each decision is one Lua script that reads the server's clock (``redis.call('TIME')``), so
clients with skewed clocks agree, and every step is atomic.

Strategies (``strategy=``), for a limit of ``count`` units per ``period``:

- ``"fixed_window"``: a count per window, windows aligned on multiples of the period since the
  epoch. Exact per window; up to twice the limit can pass around a window's edge. O(1) memory.
- ``"sliding_window"``: two counters, this window's and the previous one's, weighed by the share
  of the previous window still inside the sliding period (rounded down). An approximation of the
  sliding log: exact when traffic is even, off by the unevenness of the previous window
  otherwise; never more than the limit per aligned window. O(1) memory.
- ``"sliding_log"``: one LIST entry (its server time) per unit admitted in the last period;
  exact (never more than the limit in any period), but **O(limit) memory per key**: about 11
  bytes a unit (about 1 MB for a key at a limit of 100,000); each decision counts the live
  entries by a binary search (O(log limit) reads).
- ``"gcra"`` (the default): the generic cell rate algorithm, a token bucket of ``count`` tokens
  refilled at ``count / period`` (bursts up to the limit, then one unit every ``period / count``),
  kept as one theoretical arrival time. Exact in its own sense, with integer arithmetic. O(1).

Limits read ``"10/second"``, ``"100 per minute"``, ``"5/2 seconds"`` or ``Rate(count, period)``.
:meth:`RateLimiter.hit` consumes and answers a :class:`RateDecision` (allowed, remaining,
retry_after, reset_after, limit); :meth:`~RateLimiter.test` answers the same without consuming;
:meth:`~RateLimiter.reset` forgets a key; :meth:`~RateLimiter.wait`, :meth:`~RateLimiter.acquire`
and ``async with limiter.slot(key)`` sleep exactly as long as the server says (its
``retry_after``), never a polling interval, and try again.

Keys (one hash tag per limited key): ``<prefix>:rate:{<name>:<key>}`` (HASH: the strategy's state
and the receipts below) and, for the sliding log, ``…:log`` (LIST of server times, newest first).
Each key expires when its state no longer matters (the end of the window, of the next window for
the sliding window, the bucket refilled for GCRA, the last entry's period for the log), and the
HASH lives at least 10 seconds for its receipts.

Memory bound, and retry safety: every hit passes a fresh call id, and the HASH keeps the replies
of the **last 8 calls that consumed** on its key (a ring of 8 receipts: under 1 KB per key with
its state, whatever the limit), for at least 10 s. The same call sent again (redis-py's ``Retry``
and the cluster client re-send a script whose reply was lost) finds its receipt, answers as the
first run did and consumes nothing. A denied hit consumed nothing: it keeps no receipt and writes
nothing at all (a hammered key's denials cost Redis one read, no write, no replication), and sent
again it is simply decided again. The bound is the price of O(1) memory: a retry that reaches
Redis after 8 newer allowed calls on the same key, or more than 10 s after its first run, is taken
for a new call (redis-py's default schedule retries within about 5 s; a key that busy absorbs one
extra unit).

Cancellation: a cancelled (or failed) hit consumes nothing. If the caller is cancelled while its
hit is in flight, a shielded refund gives back what the hit consumed (the receipt says what it
did) and marks the call refunded, so a hit of that call that Redis runs later (it was sent on
another connection) consumes nothing either. A cancelled :meth:`~RateLimiter.wait` consumes
nothing, wherever it was cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, get_args

from ..core.cancellation import best_effort, cancelling, honour_cancel
from ..core.checks import (
    MAX_SECONDS,
    AsyncRedis,
    check_count,
    check_int,
    check_object,
    check_seconds,
    check_wait,
)
from ..core.errors import AcquireTimeoutError, ScriptError
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from .denials import DenialMemory

__all__ = ["Rate", "RateDecision", "RateLimiter", "RateStrategy"]

#: The strategies of :class:`RateLimiter` (see the module docstring).
RateStrategy: TypeAlias = Literal["fixed_window", "sliding_window", "sliding_log", "gcra"]
STRATEGIES: Final[tuple[RateStrategy, ...]] = get_args(RateStrategy)

#: Most units per period: GCRA's exact integer arithmetic (limit squared) stays below 2^53.
MAX_LIMIT: Final = 10_000_000
#: Shortest period: a millisecond (the scripts count whole microseconds).
MIN_PERIOD: Final = 0.001

_UNITS: Final = {
    **dict.fromkeys(("ms", "msec", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}
_NAMES: Final = ((86400.0, "day"), (3600.0, "hour"), (60.0, "minute"), (1.0, "second"))
_RATE = re.compile(
    r"\s*(?P<count>\d+)\s*(?:/|\s+per\s+)\s*(?P<multiple>\d+(?:\.\d*)?|\.\d+)?\s*(?P<unit>[a-z]+)\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Rate:
    """A limit: ``count`` units per ``period`` seconds (``Rate(10, 1.0)`` is ten a second).

    :meth:`parse` reads the written forms: ``"10/second"``, ``"100 per minute"``,
    ``"5/2 seconds"``, ``"1000/h"``. ``count`` is 1 to :data:`MAX_LIMIT`; ``period`` at least a
    millisecond, kept by the server in whole microseconds.
    """

    count: int
    period: float

    def __post_init__(self) -> None:
        count = check_int(self.count, "count", minimum=1, maximum=MAX_LIMIT)
        period = check_seconds(self.period, "period")
        if period < MIN_PERIOD:
            raise ValueError(f"period must be at least {MIN_PERIOD} seconds, got {self.period!r}")
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "period", period)

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Read ``"<count>/<unit>"``, ``"<count> per <unit>"`` or ``"<count>/<n> <units>"``.

        Units: ms, s/sec/second, m/min/minute, h/hr/hour, d/day (singular or plural).
        """
        if not isinstance(text, str):
            raise TypeError(f"limit must be a str or a Rate, not {type(text).__name__}")
        found = _RATE.fullmatch(text)
        if found is None:
            raise ValueError(
                f"limit must read like '10/second', '100 per minute' or '5/2 seconds', got {text!r}"
            )
        unit = found["unit"].lower()
        if unit not in _UNITS:
            raise ValueError(
                f"limit {text!r}: unknown unit {found['unit']!r} "
                "(use ms, second, minute, hour or day)"
            )
        multiple = float(found["multiple"]) if found["multiple"] else 1.0
        if multiple <= 0:
            raise ValueError(f"limit {text!r}: the period must be positive")
        try:
            return cls(int(found["count"]), multiple * _UNITS[unit])
        except ValueError as exc:
            raise ValueError(f"limit {text!r}: {exc}") from None

    @property
    def period_us(self) -> int:
        """The period in whole microseconds, as the scripts count it."""
        return max(1, round(self.period * 1_000_000))

    def __str__(self) -> str:
        """The limit as :meth:`parse` reads it back: ``"10/second"``, ``"5/2 seconds"``."""
        for seconds, name in _NAMES:
            if self.period == seconds:
                return f"{self.count}/{name}"
            if self.period % seconds == 0:
                return f"{self.count}/{_number(self.period / seconds)} {name}s"
        return f"{self.count}/{_number(self.period)} seconds"


def _number(value: float) -> str:
    """``value`` briefly (``2``, ``0.5``), or all its digits where brief would round it."""
    brief = f"{value:g}"
    return brief if float(brief) == value else repr(value)


def parse_rate(value: object, what: str = "limit") -> Rate:
    """Return ``value`` as a :class:`Rate`: a ``Rate``, or a string :meth:`Rate.parse` reads."""
    if isinstance(value, Rate):
        return value
    if isinstance(value, str):
        return Rate.parse(value)
    raise TypeError(
        f"{what} must be a str such as '10/second' or a Rate, not {type(value).__name__}"
    )


@dataclass(frozen=True, slots=True)
class RateDecision:
    """What the server decided for one hit (or test) of a limited key.

    ``allowed``: whether the units fit (and, for a hit, were consumed). ``remaining``: single
    units still admitted now (after this hit). ``retry_after``: seconds until the same cost would
    fit (0 when allowed). ``reset_after``: seconds until the key is back to full capacity.
    ``limit``: units per period. ``at``: the server's time of the decision (Unix seconds). A
    decision is truthy when allowed, so ``if await limiter.hit(key):`` reads as it should.
    """

    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    reset_after: float
    at: float

    def __bool__(self) -> bool:
        return self.allowed


class RateLimiter:
    """Limit each key to ``limit`` units per period, on the server's clock.

    ``RateLimiter(redis, "api", limit="100/minute", strategy="sliding_window")``; one object
    serves every key (``await limiter.hit(f"user:{uid}")``). See the module docstring for the
    strategies, their memory and their guarantees. Redis in Action §5.2.1 (time-bucketed
    counters) and §6.3.1 (a ZSET of timestamps) are the book's nearest patterns.

    ``name`` must not contain ``':'`` (it separates the name from the limited key in the key
    names) nor ``'}'``; a limited key must not contain ``'}'``.

    ``remember_denials`` (seconds, default 0: off): a hit Redis denies is denied again in this
    process, with no round trip, for the same key and cost until its ``retry_after`` passes, and
    for at most that many seconds (see :mod:`~aiorpatterns.coordination.denials`). Nothing but a
    reset or a refund can make room sooner: this object's :meth:`reset` forgets its memory of the
    key, and a reset or refund made elsewhere is seen here at most ``remember_denials`` seconds
    late. A hammered key then costs Redis about one call per ``retry_after`` instead of one per
    hit. At most 10,000 denials are kept.
    """

    kind: Final = "rate"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        limit: str | Rate,
        strategy: RateStrategy = "gcra",
        keyspace: Keyspace = DEFAULT_KEYSPACE,
        remember_denials: float = 0.0,
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        if ":" in name:
            raise ValueError(
                f"name must not contain ':' (it separates the name from the key): {name!r}"
            )
        self.limit: Rate = parse_rate(limit)
        if strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(map(repr, STRATEGIES))}, got {strategy!r}"
            )
        self.strategy: RateStrategy = strategy
        if remember_denials is None:
            raise TypeError("remember_denials must be a number of seconds (0: off), not None")
        span = _check_timeout(remember_denials, "remember_denials")
        self._denials = DenialMemory(span) if span else None

    # -- public API ----------------------------------------------------------------------------

    def keys(self, key: str) -> tuple[str, str]:
        """The Redis keys of ``key``: its state HASH, and the sliding log's LIST."""
        check_name(key, "key")
        state = self.keyspace.key(self.kind, f"{self.name}:{key}")
        return state, f"{state}:log"

    async def hit(self, key: str, *, cost: int = 1) -> RateDecision:
        """Consume ``cost`` units of ``key`` if they fit now; answer the server's decision.

        A denied hit consumes nothing. Safe to cancel: a cancelled hit consumes nothing.
        """
        keys, cost = self._check(key, cost)
        return await self._hit(keys, cost)

    async def test(self, key: str, *, cost: int = 1) -> RateDecision:
        """Answer whether ``cost`` units of ``key`` would fit now, consuming nothing.

        ``remaining`` is what is left now; ``retry_after`` when ``cost`` would fit.
        """
        keys, cost = self._check(key, cost)
        reply = await script("ratelimit_test")(self.redis, keys, self._args(cost))
        return self._decision(reply)

    async def reset(self, key: str) -> None:
        """Forget everything about ``key``: it is back to full capacity."""
        state, log = self.keys(key)
        if self._denials is not None:
            self._denials.forget(state)
        await self.redis.delete(state, log)

    async def wait(
        self,
        key: str,
        *,
        cost: int = 1,
        timeout: float | None = None,  # noqa: ASYNC109 (bounds the sleeps, and names the error)
    ) -> RateDecision:
        """Consume ``cost`` units of ``key``, sleeping until they fit; answer the allowed decision.

        Each denial says when the units fit (``retry_after``, on the server's clock): the call
        sleeps exactly that long and tries again, never on a polling interval. ``timeout``
        (seconds, ``None``: for ever) bounds the wait: when the next try would come after it,
        :class:`~aiorpatterns.AcquireTimeoutError` is raised at once. Safe to cancel anywhere:
        a cancelled wait consumes nothing.
        """
        keys, cost = self._check(key, cost)
        decision = await self._wait(keys, cost, _check_timeout(timeout))
        if not decision.allowed:
            raise AcquireTimeoutError(
                f"rate limit {self.name!r} ({self.limit}): no room for {cost} on key {key!r} "
                f"within {timeout} s (next in {decision.retry_after:.3f} s)"
            )
        return decision

    async def acquire(
        self,
        key: str,
        *,
        cost: int = 1,
        timeout: float | None = None,  # noqa: ASYNC109 (as wait's)
    ) -> bool:
        """Like :meth:`wait`, but answer False instead of raising when ``timeout`` passes."""
        keys, cost = self._check(key, cost)
        return (await self._wait(keys, cost, _check_timeout(timeout))).allowed

    @contextlib.asynccontextmanager
    async def slot(
        self,
        key: str,
        *,
        cost: int = 1,
        timeout: float | None = None,  # noqa: ASYNC109 (as wait's)
    ) -> AsyncIterator[RateDecision]:
        """``async with limiter.slot(key):`` runs the block once :meth:`wait` admits it.

        Raises :class:`~aiorpatterns.AcquireTimeoutError` when ``timeout`` passes first.
        Nothing is given back when the block ends: a rate limit counts starts, not holders.
        """
        yield await self.wait(key, cost=cost, timeout=timeout)

    def __repr__(self) -> str:
        return f"<RateLimiter {self.name!r} {self.limit} {self.strategy}>"

    # -- mechanics -----------------------------------------------------------------------------

    def _check(self, key: str, cost: object) -> tuple[tuple[str, str], int]:
        keys = self.keys(key)
        units = check_count(cost, "cost")
        if units > self.limit.count:
            raise ValueError(
                f"cost must be at most the limit ({self.limit.count}), got {units}: "
                "it could never fit"
            )
        return keys, units

    def _args(self, cost: int) -> tuple[object, ...]:
        return (self.strategy, self.limit.count, self.limit.period_us, cost)

    async def _hit(self, keys: Sequence[str], cost: int) -> RateDecision:
        """A remembered denial if there is one, else the server's decision (kept if a denial)."""
        if self._denials is None:
            return await self._ask(keys, cost)
        sent = time.monotonic()
        known = self._denials.recall(keys[0], cost, sent)
        if known is not None:
            await asyncio.sleep(0)  # a caller that hits in a loop still lets other tasks run
            return known
        decision = await self._ask(keys, cost)
        if not decision.allowed:
            self._denials.remember(keys[0], cost, sent, decision)
        return decision

    async def _ask(self, keys: Sequence[str], cost: int) -> RateDecision:
        """Run the hit script under a fresh call id; refund it if the caller does not get it."""
        call = os.urandom(8).hex()
        task, before = cancelling()
        consumed_at = 0  # the server time (us) of an allowed hit whose reply came back
        try:
            reply = await script("ratelimit_hit")(self.redis, keys, (*self._args(cost), call))
            decision = self._decision(reply)
            if decision.allowed:
                consumed_at = int(reply[4])
            honour_cancel(task, before)  # redis-py may swallow a cancel (CPython gh-86296)
        except BaseException:
            args = (*self._args(cost), call, consumed_at)
            await best_effort(lambda: script("ratelimit_refund")(self.redis, keys, args))
            raise
        return decision

    async def _wait(
        self,
        keys: Sequence[str],
        cost: int,
        timeout: float | None,  # noqa: ASYNC109 (as wait's)
    ) -> RateDecision:
        """Hit until allowed, sleeping each denial's ``retry_after``; the last denial at timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            decision = await self._hit(keys, cost)
            if decision.allowed:
                return decision
            pause = max(decision.retry_after, 1e-6)
            if deadline is not None and loop.time() + pause > deadline:
                return decision
            await asyncio.sleep(pause)

    def _decision(self, reply: Any) -> RateDecision:
        try:
            allowed, remaining, retry_us, reset_us, now_us = (int(v) for v in reply)
        except (TypeError, ValueError):
            raise ScriptError(f"rate limiter {self.name!r}: unexpected reply {reply!r}") from None
        return RateDecision(
            allowed=allowed == 1,
            limit=self.limit.count,
            remaining=remaining,
            retry_after=retry_us / 1_000_000,
            reset_after=reset_us / 1_000_000,
            at=now_us / 1_000_000,
        )


def _check_timeout(timeout: object, what: str = "timeout") -> float | None:
    """Seconds >= 0 up to :data:`MAX_SECONDS`, or None (for ever)."""
    if timeout is None:
        return None
    wait = check_wait(timeout, what)
    if wait > MAX_SECONDS:
        raise ValueError(f"{what} must be at most {MAX_SECONDS} seconds, got {timeout!r}")
    return wait
