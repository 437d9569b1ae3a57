"""Cancellation storms on Social's fan-out and on ShardedSearch (issue 10, ``storms.py``).

Many posts fan out to many followers while about half are cancelled at random moments:
afterwards every completed post is in every follower's home timeline, and once the cancelled
fan-outs are resumed (``fan_out_all`` of each status the profiles list, as ``post_status``
documents) no follower misses a status, no status exists twice, the counters agree, and every
key left without an expiry is one of the network's own. Many scatter-gather searches over three
shards (three servers, or three hash tags of the cluster) are cancelled the same way: every
completed search got the brute-force answer, and every temporary key expires.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from helpers import text
from redis.asyncio import Redis
from storms import storm

from aiorpatterns.scaling.shardsearch import ShardedSearch
from aiorpatterns.search.index import SearchIndex, parse_query, tokenize
from aiorpatterns.social.network import Social
from aiorpatterns.testing.server import RedisServer

AUTHORS = 5
FOLLOWERS = 40

# The keys a network keeps for good (anything else must expire, e.g. a receipt).
_OWN = re.compile(
    r"aiorp:social:\{social\}:(logins|seq)"
    r"|aiorp:social:\{social:\d+\}:(user|statuses|profile|home|following|followers|edges:out|edges:in)"
)


def _topology(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["redis_client"])


async def _persistent(client: Any, match: str = "aiorp:*") -> set[str]:
    """Every key under ``match`` that never expires."""
    return {
        text(raw)
        async for raw in client.scan_iter(match=match, count=1000)
        if await client.pttl(raw) == -1
    }


async def _expiring_without_end(client: Any, pattern: str) -> int:
    """How many keys under ``pattern`` have no expiry."""
    return sum([await client.pttl(raw) == -1 async for raw in client.scan_iter(match=pattern)])


async def test_cancelled_fan_outs_lose_nothing_once_resumed(
    request: pytest.FixtureRequest, redis_client: Any
) -> None:
    social = Social(redis_client, fanout_batch=4)  # many batches: cancels land mid-fan-out
    authors = [await social.create_user(f"author{i}", "A") for i in range(AUTHORS)]
    followers = [await social.create_user(f"follower{i}", "F") for i in range(FOLLOWERS)]
    for follower in followers:
        for author in authors:
            await social.follow_user(follower, author)

    async def post(i: int) -> str:
        return await social.post_status(authors[i % AUTHORS], f"m{i}")

    # A round without cancels sets the storm's window (a parameter, never an assertion): the
    # cancels then land over the whole time the posts of a round take.
    loop = asyncio.get_running_loop()
    began = loop.time()
    first = await asyncio.gather(*(post(i) for i in range(50, 100)))
    report = await storm(post, tasks=50, within=loop.time() - began, seed=10)
    completed = set(report.results) | set(first)
    assert completed, "no post completed: the storm cancelled everything"

    async def home(uid: int) -> set[str]:
        return {text(s) for s in await redis_client.zrange(social.timeline_key(uid), 0, -1)}

    # Every completed post reached every follower.
    for follower in followers:
        missing = completed - await home(follower)
        assert not missing, f"follower {follower} misses completed posts {sorted(missing)}"

    # Each status exists once, and each author's counter, record and profile agree.
    posted: set[str] = set()
    messages: Counter[str] = Counter()
    for author in authors:
        profile = {
            text(s)
            for s in await redis_client.zrange(social.timeline_key(author, "profile"), 0, -1)
        }
        records = await redis_client.hgetall(social.statuses_key(author))
        user = await social.get_user(author)
        assert user is not None
        assert user.posts == len(profile) == len(records)
        assert {text(k) for k in records} == profile
        posted |= profile
        messages.update(
            m.message for m in await social.get_status_messages(author, "profile", count=100)
        )
    duplicated = sum(n - 1 for n in messages.values())
    assert duplicated == 0, f"a post was stored more than once: {messages}"
    assert completed <= posted
    assert len(posted) <= 100

    # A cancelled fan-out is resumable: run it again for every status, then nobody misses one.
    for status_id in sorted(posted):
        await social.fan_out_all(status_id)
    lost = 0
    for follower in followers:
        lost += len(posted - await home(follower))
        assert await home(follower) == posted
    # Nothing held by nobody: every key that never expires is one of the network's own.
    leftovers = sorted(k for k in await _persistent(redis_client) if not _OWN.fullmatch(k))
    assert not leftovers, leftovers
    report.record(
        "Social fan-out",
        _topology(request),
        lost=lost,
        duplicated=duplicated,
        leftovers=len(leftovers),
        statuses=len(posted),
        followers=FOLLOWERS,
    )


# -- ShardedSearch ----------------------------------------------------------------------------


@pytest.fixture
async def shard_clients(
    request: pytest.FixtureRequest,
    redis_client: Any,
    new_client: Callable[..., Awaitable[Any]],
    extra_servers: list[RedisServer],
) -> AsyncIterator[list[Any]]:
    """Three shard clients: three servers (standalone), or one cluster client three times.

    The cluster client's pool is larger than redis-py's default (100 connections per node, and
    ``MaxConnectionsError`` at once beyond): two of the three tags may share a node, and the
    storm's 50 searches then use 100 connections of it at the same moment.
    """
    if _topology(request) == "cluster":
        yield [await new_client(max_connections=1000)] * 3
        return
    extras = [Redis.from_url(s.url) for s in extra_servers]
    try:
        for extra in extras:
            await extra.flushall()
        yield [redis_client, *extras]
    finally:
        for extra in extras:
            await extra.aclose()


WORDS = ["alpha", "beta", "gamma", "delta", "omega"]
QUERIES = ["alpha", "beta -gamma", "alpha delta", "omega +beta", "gamma -alpha -omega"]


def _expected(docs: dict[str, tuple[set[str], int]], query: str, num: int) -> tuple[int, list[str]]:
    """The brute-force answer: matches sorted by ``updated``, newest first, and their count."""
    parsed = parse_query(query)
    found = [
        docid
        for docid, (words, _) in docs.items()
        if all(words & set(g) for g in parsed.groups) and not words & set(parsed.excluded)
    ]
    found.sort(key=lambda d: docs[d][1], reverse=True)
    return len(found), found[:num]


async def test_cancelled_sharded_searches_leave_only_expiring_keys(
    request: pytest.FixtureRequest, shard_clients: list[Any]
) -> None:
    run = uuid.uuid4().hex[:8]
    search = ShardedSearch([SearchIndex(c, f"s{n}-{run}") for n, c in enumerate(shard_clients)])
    rng = random.Random(10)
    docs: dict[str, tuple[set[str], int]] = {}
    for n in range(60):
        content = " ".join(rng.sample(WORDS, rng.randint(1, 4)))
        docs[f"d{n}"] = (tokenize(content), n)
        await search.index_document(f"d{n}", content, fields={"updated": n})
    shards = list({id(c): c for c in shard_clients}.values())
    before = [await _persistent(c) for c in shards]

    async def one(i: int) -> tuple[str, int, list[str]]:
        query = QUERIES[i % len(QUERIES)]
        if i % 2:
            found = await search.search_zsorted(query, num=5, ttl=60)
        else:
            found = await search.search(query, num=5, ttl=60)
        return query, found.total, found.ids

    report = await storm(one, tasks=50, within=0.05, seed=10)
    assert report.results, "no search completed: the storm cancelled everything"
    wrong = 0
    duplicated = 0
    for query, total, ids in report.results:
        duplicated += len(ids) - len(set(ids))
        if (total, ids) != _expected(docs, query, 5):
            wrong += 1
    # Every temporary key and cached result expires; nothing new lives for ever.
    leftovers = 0
    for shard, kept in zip(shards, before, strict=True):
        leftovers += await _expiring_without_end(shard, f"*{run}*:tmp:*")
        leftovers += await _expiring_without_end(shard, f"*{run}*:result:*")
        leftovers += len(await _persistent(shard) - kept)
    report.record(
        "ShardedSearch",
        _topology(request),
        lost=wrong,
        duplicated=duplicated,
        leftovers=leftovers,
        shards=len(shard_clients),
    )
    assert wrong == 0, f"{wrong} completed searches got a wrong answer"
    assert duplicated == 0
    assert leftovers == 0
    # The cached results that survived still give the right pages.
    for query in QUERIES:
        found = await search.search(query, num=5)
        assert (found.total, found.ids) == _expected(docs, query, 5)
