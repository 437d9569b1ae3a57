"""Decisions per second on one rate-limited key: our four strategies beside limits' three.

Redis in Action has no rate limiter and so no table for one (its time-bucketed counters, §5.2.1,
are the nearest pattern); this table measures what a rate-limiter user sizes: how many
decisions per second one hot key serves, and how much memory a key takes. With 1, 2, 5 and 10
clients all hitting one key limited to 1,000 a second, rows:

- ``aiorpatterns-fixed`` / ``-sliding`` / ``-log`` / ``-gcra``:
  :class:`~aiorpatterns.coordination.ratelimit.RateLimiter` with ``strategy="fixed_window"``,
  ``"sliding_window"``, ``"sliding_log"`` and ``"gcra"``; one object per client, each client on
  its own connection; a decision is one ``hit()`` (one run of ``ratelimit_hit.lua``);
- ``aiorpatterns-<strategy>-autopipeline``: the same, all of a process' clients sharing one
  :class:`~aiorpatterns.core.autopipeline.AutoPipeline` (one connection);
- ``aiorpatterns-fixed-remember``: ``aiorpatterns-fixed`` built with ``remember_denials=1.0``: a
  hit Redis denied is denied again in-process, with no round trip, until its retry time (the
  hot key's case: most of its hits are denials);
- ``limits-fixed`` / ``limits-moving`` / ``limits-sliding``: limits 5.8's async
  ``FixedWindowRateLimiter``, ``MovingWindowRateLimiter`` and ``SlidingWindowCounterRateLimiter``
  on its async Redis storage (:mod:`benchmarks.peers.limits_ratelimit`), a storage per client;
- ``limit``: ``INCR`` on one key, 100 per pipeline, per client (the smallest write a decision
  could be).

``decisions`` counts every answered hit, allowed or not (the JSON's ``allowed`` counts those
admitted: the burst of a fresh key, then about the limit a second). ``bytes at 10`` /
``1k`` / ``100k``: ``MEMORY USAGE`` (exact, ``SAMPLES 0``) of all of one key's keys, filled to a
limit of 10, 1,000 and 100,000 per hour (one hit of the whole limit, then 10 more), measured once
per run before the rows. Ratios are to ``limits-fixed`` (limits' cheapest strategy).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import RedisCluster

from .peers.limits_ratelimit import KEY_PREFIX, close_storage, limits_ratelimit, limits_storage
from .runner import (
    BENCH_PREFIX,
    ClientPerCoroutine,
    ClientStats,
    Job,
    Op,
    Row,
    Table,
    Target,
    Variant,
    connect,
    pipelined_limit,
)

if TYPE_CHECKING:
    from aiorpatterns.coordination.ratelimit import RateStrategy

__all__ = ["LIMIT", "MEMORY", "OURS", "TABLE", "measure_memory"]

#: The hot key's limit: 1,000 decisions a second are allowed, the rest refused.
LIMIT = "1000/second"
KEY = "hot"
BATCH = 100
#: Our rows' strategy words -> :class:`RateLimiter` strategies.
OURS: dict[str, RateStrategy] = {
    "fixed": "fixed_window",
    "sliding": "sliding_window",
    "log": "sliding_log",
    "gcra": "gcra",
}
#: The limits (per hour) at which a key's memory is measured, and their column names.
MEMORY_LIMITS = {10: "bytes_at_10", 1_000: "bytes_at_1k", 100_000: "bytes_at_100k"}
#: Bytes per key by (variant, limit), filled by :func:`measure_memory` (in ``prepare``).
MEMORY: dict[tuple[str, int], int] = {}
SCRIPTS = ("ratelimit_hit", "ratelimit_test", "ratelimit_refund")


def _keyspace() -> Any:
    from aiorpatterns.core.keys import Keyspace

    return Keyspace(BENCH_PREFIX.rstrip(":"))


#: ``remember_denials`` of the ``aiorpatterns-fixed-remember`` row (seconds).
REMEMBER = 1.0


def _limiter(
    client: Any, strategy: str, limit: Any = LIMIT, name: str = "bench", remember: float = 0.0
) -> Any:
    from aiorpatterns.coordination.ratelimit import RateLimiter

    return RateLimiter(
        client,
        name,
        limit=limit,
        strategy=OURS[strategy],
        keyspace=_keyspace(),
        remember_denials=remember,
    )


def _op(limiter: Any, st: ClientStats) -> Op:
    async def op(deadline: float) -> None:
        t = time.perf_counter()
        decision = await limiter.hit(KEY)
        st.tries += 1  # a decision is one try: it never retries
        st.success(t)
        if decision.allowed:
            st.count("allowed")

    return op


def _ours(strategy: str, remember: float = 0.0) -> Callable[[Job], ClientPerCoroutine]:
    def factory(job: Job) -> ClientPerCoroutine:
        return ClientPerCoroutine(
            job, lambda client, st, _: _op(_limiter(client, strategy, remember=remember), st)
        )

    return factory


class _AutoPipelined:
    """All of a process' clients on one connection, through one AutoPipeline."""

    def __init__(self, job: Job, strategy: str) -> None:
        self.job = job
        self.strategy = strategy
        self.client: Any = None
        self.auto: Any = None

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        from aiorpatterns.core.autopipeline import AutoPipeline

        self.client = await connect(self.job.target)
        self.auto = AutoPipeline(self.client)
        limiter = _limiter(self.auto, self.strategy)
        return [_op(limiter, st) for st in stats]

    async def close(self) -> None:
        if self.auto is not None:
            await self.auto.aclose()
        if self.client is not None:
            await self.client.aclose()


def _autopipelined(strategy: str) -> Callable[[Job], _AutoPipelined]:
    return lambda job: _AutoPipelined(job, strategy)


_limit = pipelined_limit(BENCH_PREFIX + "limit:ratelimit", lambda pipe, key: pipe.incr(key), BATCH)


# -- memory per key --------------------------------------------------------------------------


def _target_of(client: Any) -> Target:
    """The target a connected client talks to (``prepare`` is handed a client, not a URL)."""
    if isinstance(client, RedisCluster):
        node = client.get_default_node()
        return Target(f"redis://{node.host}:{node.port}", "cluster")
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return Target(f"unix://{kwargs['path']}", "standalone", "unix")
    return Target(f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}")


async def _bytes(client: Any, keys: Sequence[Any]) -> int:
    total = 0
    for key in keys:
        total += int(await client.memory_usage(key, samples=0) or 0)
    return total


async def _ours_memory(client: Any, strategy: str, limit: int) -> int:
    from aiorpatterns.coordination.ratelimit import Rate

    limiter = _limiter(client, strategy, Rate(limit, 3600.0), name="memory")
    await limiter.hit("full", cost=limit)
    for _ in range(10):  # fills the ring of receipts
        await limiter.hit("full")
    used = await _bytes(client, limiter.keys("full"))
    await limiter.reset("full")
    return used


async def _limits_memory(client: Any, storage: Any, strategy: str, limit: int) -> int:
    from limits import parse
    from limits.aio import strategies

    from .peers.limits_ratelimit import STRATEGIES

    limiter = getattr(strategies, STRATEGIES[strategy])(storage)
    item = parse(f"{limit}/hour")
    await limiter.hit(item, "full", cost=limit)
    for _ in range(10):
        await limiter.hit(item, "full")
    keys = [key async for key in client.scan_iter(match=KEY_PREFIX + "*")]
    used = await _bytes(client, keys)
    for key in keys:
        await client.unlink(key)
    return used


async def measure_memory(client: Any) -> dict[tuple[str, int], int]:
    """Bytes per key of every variant at each of :data:`MEMORY_LIMITS`; also kept in MEMORY."""
    found: dict[tuple[str, int], int] = {}
    for word in OURS:
        for limit in MEMORY_LIMITS:
            used = await _ours_memory(client, word, limit)
            found[(f"aiorpatterns-{word}", limit)] = used
            found[(f"aiorpatterns-{word}-autopipeline", limit)] = used
            if word == "fixed":
                found[("aiorpatterns-fixed-remember", limit)] = used
    with contextlib.suppress(ImportError):  # not installed: its rows skip, and say why
        storage = limits_storage(_target_of(client))
        try:
            for word in ("fixed", "moving", "sliding"):
                for limit in MEMORY_LIMITS:
                    used = await _limits_memory(client, storage, word, limit)
                    found[(f"limits-{word}", limit)] = used
        finally:
            await close_storage(storage)
    MEMORY.update(found)
    return found


async def _prepare(client: Any) -> None:
    from aiorpatterns.core.scripts import script

    for name in SCRIPTS:
        await script(name).load(client)
    await measure_memory(client)


async def _prepare_if_available(client: Any) -> None:
    with contextlib.suppress(ImportError, AttributeError):  # not there yet: the rows skip
        await _prepare(client)


def _derive(row: Row) -> Mapping[str, float | None]:
    """The variant's memory per key (measured once, before the rows)."""
    return {column: MEMORY.get((row.base, limit)) for limit, column in MEMORY_LIMITS.items()}


_OURS_NEEDS = "aiorpatterns.coordination.ratelimit:RateLimiter"
_LIMITS_NEEDS = "limits.aio.strategies:SlidingWindowCounterRateLimiter"

TABLE = Table(
    name="ratelimit",
    title=f"One rate-limited key ({LIMIT}): decisions per second, memory per key",
    unit="decisions",
    variants=(
        *(Variant(f"aiorpatterns-{w}", _ours(w), requires=_OURS_NEEDS) for w in OURS),
        Variant("aiorpatterns-fixed-remember", _ours("fixed", REMEMBER), requires=_OURS_NEEDS),
        *(
            Variant(f"aiorpatterns-{w}-autopipeline", _autopipelined(w), requires=_OURS_NEEDS)
            for w in OURS
        ),
        *(
            Variant(f"limits-{w}", limits_ratelimit(w, LIMIT, KEY), requires=_LIMITS_NEEDS)
            for w in ("fixed", "moving", "sliding")
        ),
        Variant("limit", _limit),
    ),
    references=("limits-fixed",),
    prepare=_prepare_if_available,
    notes=(
        "No book numbers (Redis in Action has no rate limiter). All clients hit one key limited "
        f"to {LIMIT}; decisions = hits answered, allowed or not. limits 5.8 runs on its redis-py "
        "storage (its async-redis extra pins coredis<6, which clashes with the lock table's "
        "coredis 6.9; its redis extra pins redis<8). bytes at N = MEMORY USAGE of one key filled "
        "to a limit of N per hour (columns shown with --wide). "
        f"limit = {BATCH} INCR per pipeline, per client. aiorpatterns-fixed-remember: "
        f"remember_denials={REMEMBER} (denials answered in-process until their retry time; "
        "the targets count the rows that ask Redis every hit)."
    ),
    params={"limit": LIMIT, "memory_limits": list(MEMORY_LIMITS)},
    derive=_derive,
    columns=tuple(MEMORY_LIMITS.values()),
)
