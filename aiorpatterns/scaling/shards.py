"""Client-side sharding over several Redis servers: pick a server by key, ask every server at once.

Redis in Action chapter 10 (§10.2-§10.3) spreads data over independent servers: a key's shard is
a hash of the key modulo the shard count (``get_sharded_connection``, ``KeyShardedConnection``),
a relation between two ids lives on the shard of the sorted pair (``KeyDataShardedConnection``),
and a read that spans shards asks every one and merges (``sharded_zrangebyscore``).

Today **Redis Cluster with hash tags** is the replacement when data that must be together fits
on one node: every key of one object shares a ``{tag}``, the cluster places and moves the slots,
and a client follows them (this is how every other module of aiorpatterns works). Client-side
sharding is still what is needed when one logical thing is too big for one node (an index, a
follower list): it is cut into pieces, each on its own server or, on a cluster, under its own
tag, and a read fans out to every piece concurrently. :class:`ShardedClients` holds a fixed list
of clients (the shard count is static: changing it moves keys; there is no rebalancing),
:meth:`ShardedClients.scatter` asks all of them with a per-shard timeout and never drops a
shard silently (it raises :class:`ShardsUnavailableError`, or reports the missing shards when
asked to), :func:`zrangebyscore_merged` / :func:`sharded_zrangebyscore` page through one ZSET
cut over several shards with an exclusive ``(score, member)`` cursor (the book's inclusive
boundary repeats items), and :func:`syndicate` delivers a post to the timelines of a sharded
follower list (§10.3.3). Scatter-gather search is :mod:`aiorpatterns.scaling.shardsearch`.

The clients are the caller's (``Redis``, ``RedisCluster`` or ``AutoPipeline``), never closed here.
No Lua here: every command is a read or an idempotent write (ZADD of the same post, the same
trim), so a re-sent command after a lost reply leaves the state of one.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core.checks import (
    INT64_MAX,
    AsyncRedis,
    check_client,
    check_count,
    check_flag,
    check_float,
    check_seconds,
    check_text,
    text,
)
from ..core.errors import ShardsUnavailableError
from ..core.keys import DEFAULT_KEYSPACE, check_name
from ..memory.sharding import shard_of
from ..ops.connections import RedisConnections

__all__ = [
    "ScatterResult",
    "ShardedClients",
    "sharded_from_config",
    "sharded_zrangebyscore",
    "syndicate",
    "zrangebyscore_merged",
]

T = TypeVar("T")

#: Default per-shard timeout of a scatter, in seconds.
DEFAULT_SHARD_TIMEOUT = 5.0

#: What makes a shard "unavailable" (as opposed to a wrong question, which is raised as is).
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)


class ScatterResult(NamedTuple, Generic[T]):
    """What each shard answered (None for a missing one) and the numbers of the missing shards."""

    replies: list[T | None]
    missing: tuple[int, ...]


def check_timeout(timeout: object) -> float | None:
    """Return a per-shard timeout in seconds (None: no timeout of our own), or raise."""
    return check_seconds(timeout, "timeout", allow_none=True)


async def scatter_calls(
    calls: Sequence[Callable[[], Awaitable[T]]],
    *,
    timeout: float | None = DEFAULT_SHARD_TIMEOUT,  # noqa: ASYNC109 - per shard, not overall
    partial: bool = False,
) -> ScatterResult[T]:
    """Run every call concurrently, each bounded by ``timeout``; collect the answers in order.

    A call that fails to connect, times out or loses its connection marks its shard missing:
    :class:`ShardsUnavailableError` unless ``partial``, when the missing shards are reported in
    the result. Any other error (a wrong question) is raised as is, once every call is over.
    The book's threaded variant (``get_shard_results_thread``, §10.3.2) silently returns without
    the shards slower than its timeout; here a shard is never dropped without saying so.
    """

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        if timeout is None:
            return await call()
        return await asyncio.wait_for(call(), timeout)

    outcomes = await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
    replies: list[T | None] = []
    missing: dict[int, BaseException] = {}
    for number, outcome in enumerate(outcomes):
        if isinstance(outcome, _UNAVAILABLE):
            missing[number] = outcome
            replies.append(None)
        elif isinstance(outcome, BaseException):
            # CancelledError of a call (not ours: ours would have been raised by gather) is
            # propagated like any other unexpected error.
            raise outcome
        else:
            replies.append(outcome)
    if missing and not partial:
        raise ShardsUnavailableError(missing)
    return ScatterResult(replies, tuple(missing))


class ShardedClients:
    """A fixed list of clients (one per shard) and the stable choice of a shard for a key.

    Redis in Action §10.2.2 (``get_sharded_connection``) and §10.3.3 (``KeyShardedConnection``,
    ``KeyDataShardedConnection``), as plain methods over clients the caller made: each may be a
    standalone ``Redis``, a ``RedisCluster`` or an ``AutoPipeline``. A key's shard is the CRC-32
    of its text modulo the shard count (:func:`~aiorpatterns.memory.sharding.shard_of`; the book
    adds an ``"x"`` prefix first, so the placement differs from the book's). The count is static:
    changing the list moves keys. The clients are never closed here.
    """

    def __init__(
        self, clients: Iterable[AsyncRedis], *, timeout: float | None = DEFAULT_SHARD_TIMEOUT
    ) -> None:
        if isinstance(clients, str | bytes) or not isinstance(clients, Iterable):
            raise TypeError("clients must be a sequence of redis.asyncio clients")
        listed = list(clients)
        if not listed:
            raise ValueError("clients must hold at least one client")
        self.clients: tuple[AsyncRedis, ...] = tuple(check_client(client) for client in listed)
        self.timeout = check_timeout(timeout)

    def __len__(self) -> int:
        return len(self.clients)

    def __iter__(self) -> Iterator[AsyncRedis]:
        return iter(self.clients)

    def __getitem__(self, shard: int) -> AsyncRedis:
        return self.clients[check_count(shard, "shard", minimum=0)]

    def shard_for(self, key: str | int) -> int:
        """Return the shard number of ``key`` (``KeyShardedConnection[key]``, §10.3.3)."""
        return shard_of(key, shards=len(self.clients))

    def client_for(self, key: str | int) -> AsyncRedis:
        """Return the client of the shard holding ``key``. Redis in Action §10.2.2."""
        return self.clients[self.shard_for(key)]

    def shard_for_ids(self, *ids: str | int) -> int:
        """Return the shard of a relation between ids, whatever their order.

        Redis in Action §10.3.3 (``KeyDataShardedConnection``): a follow between users 7 and 42
        lives on the shard of ``"7:42"``, the same one for ``(7, 42)`` and ``(42, 7)``. Ints
        sort as numbers, strs as text; mixing them is refused.
        """
        if not ids:
            raise ValueError("ids: give at least one id")
        if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            ordered = [str(i) for i in sorted(ids)]
        elif all(isinstance(i, str) for i in ids):
            ordered = sorted(check_name(i, "id") for i in ids)
        else:
            raise TypeError("ids must be all int or all str")
        return shard_of(":".join(ordered), shards=len(self.clients))

    def client_for_ids(self, *ids: str | int) -> AsyncRedis:
        """Return the client of the shard of a relation between ids (see :meth:`shard_for_ids`)."""
        return self.clients[self.shard_for_ids(*ids)]

    async def scatter(
        self,
        call: Callable[[Any], Awaitable[T]],
        *,
        partial: bool = False,
    ) -> ScatterResult[T]:
        """Run ``call(client)`` on every shard concurrently; return the answers in shard order.

        The ``timeout`` given at construction bounds each shard. A shard that is
        down or late raises :class:`ShardsUnavailableError`, or with ``partial`` is reported in
        the result's ``missing`` with a None reply. Redis in Action §10.3.2.
        """
        if not callable(call):
            raise TypeError("call must be a callable taking a client")
        check_flag(partial, "partial")
        calls = [_bind(call, client) for client in self.clients]
        return await scatter_calls(calls, timeout=self.timeout, partial=partial)

    def __repr__(self) -> str:
        return f"<ShardedClients shards={len(self.clients)}>"


async def sharded_from_config(
    connections: RedisConnections,
    component: str,
    shards: int,
    *,
    shard_timeout: float | None = DEFAULT_SHARD_TIMEOUT,
) -> ShardedClients:
    """The :class:`ShardedClients` of ``component``'s ``shards`` servers, from stored settings.

    Shard ``i``'s client is ``connections.get(f"{component}:{i}")``: the settings stored with
    ``Config.set_config("redis", "<component>:<i>", {...})``, built once and rebuilt when they
    change. Redis in Action §10.2.1-10.2.2 (``get_redis_connection`` reading
    ``config:redis:<component>``, ``get_sharded_connection`` its ``<component>:<shard>``); call
    it again to follow a settings change (the shard count itself must stay: changing it moves
    keys). ``shard_timeout`` is the :class:`ShardedClients` per-shard timeout.
    """
    check_name(component, "component")
    count = check_count(shards, "shards")
    clients = [await connections.get(f"{component}:{i}") for i in range(count)]
    return ShardedClients(clients, timeout=shard_timeout)


def _bind(call: Callable[[Any], Awaitable[T]], client: Any) -> Callable[[], Awaitable[T]]:
    return lambda: call(client)


# -- merged ZRANGEBYSCORE ---------------------------------------------------------------------


def _bound(value: object, what: str) -> float:
    """A score bound: a finite double (:func:`check_float`), or an infinity (open end)."""
    if isinstance(value, float) and math.isinf(value):
        return value
    return check_float(value, what)


def _check_after(after: object) -> tuple[float, str] | None:
    if after is None:
        return None
    if not isinstance(after, tuple) or len(after) != 2:
        raise TypeError("after must be None or a (member, score) pair from the previous page")
    member, score = after
    if not isinstance(member, str):
        raise TypeError(f"after: the member must be a str, not {type(member).__name__}")
    return _bound(score, "after score"), member


def _score_arg(value: float) -> str:
    if value == math.inf:
        return "+inf"
    if value == -math.inf:
        return "-inf"
    return repr(value)


async def _shard_page(
    client: Any, key: str, low: float, high: float, num: int, after: tuple[float, str] | None
) -> list[tuple[float, str]]:
    """The first ``num`` items of one shard within bounds and strictly after the cursor.

    Items tied with the cursor's score are ordered by member on the server, so those up to the
    cursor's member form a prefix of the range: the request grows (from offset 0, one snapshot
    per request) until it gets past that prefix or to the end of the range.
    """
    if after is not None:
        low = max(low, after[0])
    limit = num
    while True:
        rows = await client.zrangebyscore(
            key, _score_arg(low), _score_arg(high), start=0, num=limit, withscores=True
        )
        items = [(float(score), text(member)) for member, score in rows]
        if after is not None:
            items = [item for item in items if item > after]
        if len(items) >= num or len(rows) < limit:
            return items[:num]
        limit = min(limit * 2, INT64_MAX)


async def zrangebyscore_merged(
    sources: Iterable[tuple[AsyncRedis, str]],
    *,
    min: float = -math.inf,
    max: float = math.inf,
    num: int = 100,
    after: tuple[str, float] | None = None,
    timeout: float | None = DEFAULT_SHARD_TIMEOUT,  # noqa: ASYNC109 - per shard
) -> list[tuple[str, float]]:
    """Return the first ``num`` ``(member, score)`` pairs of several ZSETs merged by score.

    ``sources`` are ``(client, key)`` pairs: the pieces of one logical ZSET on several servers,
    or under several hash tags of one cluster. Items are ordered by score, then member (the
    ZSET order); ``min``/``max`` bound the scores (inclusive). Pass ``after=`` the last pair of a
    page to get the next one: the cursor is *exclusive* on ``(score, member)``, so no item is
    repeated or skipped even when many share a score. The book's ``sharded_zrangebyscore``
    (Redis in Action §10.3.3) restarts at the last score inclusively, which repeats every item
    with that score. A member present in several pieces with the same score is returned once.
    A piece that does not answer raises :class:`ShardsUnavailableError` (a page without it
    would skip its items for good).
    """
    if isinstance(sources, str | bytes) or not isinstance(sources, Iterable):
        raise TypeError("sources must be an iterable of (client, key) pairs")
    pairs = list(sources)
    if not pairs:
        raise ValueError("sources must hold at least one (client, key) pair")
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError("sources must be (client, key) pairs")
        check_client(pair[0])
        check_text(pair[1], "key")
    low, high = _bound(min, "min"), _bound(max, "max")
    count = check_count(num, "num")
    cursor = _check_after(after)
    limit = check_timeout(timeout)
    calls = [_page_call(client, key, low, high, count, cursor) for client, key in pairs]
    result = await scatter_calls(calls, timeout=limit)
    merged = sorted({item for page in result.replies if page for item in page})
    return [(member, score) for score, member in merged[:count]]


def _page_call(
    client: Any, key: str, low: float, high: float, num: int, after: tuple[float, str] | None
) -> Callable[[], Awaitable[list[tuple[float, str]]]]:
    return lambda: _shard_page(client, key, low, high, num, after)


async def sharded_zrangebyscore(
    shards: ShardedClients,
    key: str,
    *,
    min: float = -math.inf,
    max: float = math.inf,
    num: int = 100,
    after: tuple[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Return the next ``num`` pairs of ZSET ``key`` cut over every shard (see
    :func:`zrangebyscore_merged`). Redis in Action §10.3.3 (``sharded_zrangebyscore``).
    """
    if not isinstance(shards, ShardedClients):
        raise TypeError(f"shards must be a ShardedClients, not {type(shards).__name__}")
    check_text(key, "key")
    return await zrangebyscore_merged(
        [(client, key) for client in shards],
        min=min,
        max=max,
        num=num,
        after=after,
        timeout=shards.timeout,
    )


# -- syndication ------------------------------------------------------------------------------


def default_timeline(follower: str) -> str:
    """The home timeline key of ``follower``: ``<prefix>:home:{<follower>}``."""
    return DEFAULT_KEYSPACE.key("home", follower)


async def syndicate(
    followers: ShardedClients,
    followers_key: str | Callable[[int], str],
    timelines: ShardedClients,
    post: str,
    score: float,
    *,
    timeline_key: Callable[[str], str] = default_timeline,
    batch: int = 1000,
    keep: int = 1000,
) -> int:
    """Add ``post`` (scored ``score``) to the timeline of every follower; return how many.

    Redis in Action §10.3.3 (``syndicate_status``): the follower ZSET ``followers_key`` is cut
    over the ``followers`` shards (a callable names the piece of each shard number instead, for
    pieces under their own hash tags, as :class:`~aiorpatterns.scaling.social.ShardedSocial`
    keeps them); it is read in pages of ``batch`` with the exclusive cursor of
    :func:`zrangebyscore_merged` (the book's inclusive one delivers some followers twice and
    re-queues itself), each follower's timeline (``timeline_key(follower)``) is placed on a
    ``timelines`` shard by its key, and one pipeline per shard adds the post and trims the
    timeline to its newest ``keep`` items. The book starts a new client per call; here the
    caller's are used. The delivery is not atomic across servers: an interruption (an error,
    a cancellation) leaves some timelines updated, and running it again is safe (ZADD of the
    same post is idempotent).
    """
    if not isinstance(followers, ShardedClients) or not isinstance(timelines, ShardedClients):
        raise TypeError("followers and timelines must be ShardedClients")
    if callable(followers_key):
        pieces = [check_text(followers_key(n), "followers key") for n in range(len(followers))]
    else:
        pieces = [check_text(followers_key, "followers_key")] * len(followers)
    check_text(post, "post")
    score = check_float(score, "score")
    if not callable(timeline_key):
        raise TypeError("timeline_key must be a callable")
    size = check_count(batch, "batch")
    keep = check_count(keep, "keep")
    delivered = 0
    after: tuple[str, float] | None = None
    while True:
        page = await zrangebyscore_merged(
            zip(followers, pieces, strict=True), num=size, after=after, timeout=followers.timeout
        )
        if not page:
            return delivered
        grouped: dict[int, list[str]] = defaultdict(list)
        for follower, _ in page:
            home = check_text(timeline_key(follower), "timeline key")
            grouped[timelines.shard_for(home)].append(home)
        await scatter_calls(
            [_deliver_call(timelines[s], homes, post, score, keep) for s, homes in grouped.items()],
            timeout=timelines.timeout,
        )
        delivered += len(page)
        if len(page) < size:
            return delivered
        after = page[-1]


def _deliver_call(
    client: Any, homes: list[str], post: str, score: float, keep: int
) -> Callable[[], Awaitable[None]]:
    async def deliver() -> None:
        async with client.pipeline(transaction=False) as pipe:
            for home in homes:
                pipe.zadd(home, {post: score})
                pipe.zremrangebyrank(home, 0, -keep - 1)
            await pipe.execute()

    return deliver
