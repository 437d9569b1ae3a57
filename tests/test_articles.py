"""Test Articles: posting, one vote per user (atomic), pages in one round trip, group caches.

Redis in Action §1.3 (``post_article``, ``article_vote``, ``get_articles``, ``add_remove_groups``,
``get_group_articles``) and the book's ``test_article_functionality``. Every test runs on a
standalone server and a cluster; the ``_text`` ones also with ``decode_responses`` on and off.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from helpers import NO_REDIS
from redis.crc import key_slot

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.webapp.articles import VOTE_SCORE, Article, Articles, Vote


async def test_book_article_functionality(redis_client_text: Any) -> None:
    site = Articles(redis_client_text)
    article = await site.post_article("username", title="A title", link="http://www.google.com")
    assert article == "1"
    posted = await site.get_article(article)
    assert posted is not None
    assert (posted.title, posted.link, posted.poster, posted.votes) == (
        "A title",
        "http://www.google.com",
        "username",
        1,
    )
    assert posted.score == pytest.approx(posted.posted + VOTE_SCORE)
    assert await site.article_vote("other_user", article) is Vote.VOTED
    voted = await site.get_article(article)
    assert voted is not None
    assert voted.votes == 2
    assert voted.score == pytest.approx(posted.posted + 2 * VOTE_SCORE)
    assert await site.get_articles(page=1) == [voted]
    assert await site.add_remove_groups(article, add=["new-group"])
    assert await site.get_group_articles("new-group", page=1) == [voted]
    assert all(isinstance(a, Article) for a in await site.get_articles())


async def test_one_vote_per_user_and_changing_it(redis_client: Any) -> None:
    site = Articles(redis_client)
    article = await site.post_article("poster", title="t", link="")
    assert await site.article_vote("poster", article) is Vote.ALREADY  # posting is a vote
    assert await site.article_vote("u", article) is Vote.VOTED
    assert await site.article_vote("u", article) is Vote.ALREADY
    assert await site.article_vote("d", article, down=True) is Vote.VOTED
    got = await site.get_article(article)
    assert got is not None
    assert (got.votes, got.downvotes) == (2, 1)
    assert got.score == pytest.approx(got.posted + VOTE_SCORE)
    assert await site.article_vote("u", article, down=True) is Vote.CHANGED
    assert await site.article_vote("u", article, down=True) is Vote.ALREADY
    got = await site.get_article(article)
    assert got is not None
    assert (got.votes, got.downvotes) == (1, 2)
    assert got.score == pytest.approx(got.posted - VOTE_SCORE)
    assert bool(Vote.VOTED)
    assert bool(Vote.CHANGED)
    assert not any(map(bool, (Vote.ALREADY, Vote.CLOSED, Vote.MISSING)))


async def test_unknown_article_is_missing_not_a_type_error(redis_client: Any) -> None:
    site = Articles(redis_client)
    assert await site.article_vote("u", "42") is Vote.MISSING
    assert await site.get_article("42") is None
    assert not await site.add_remove_groups("42", add=["g"])
    assert await site.group_members("g") == set()
    assert await redis_client.exists(site.voters_key("42")) == 0


async def test_voting_closes_after_the_window(redis_client: Any) -> None:
    site = Articles(redis_client, vote_window=0.2)
    article = await site.post_article("p", title="t", link="l")
    assert await site.article_vote("a", article) is Vote.VOTED
    assert await redis_client.pttl(site.voters_key(article)) > 0  # the voter record expires
    await asyncio.sleep(0.3)
    assert await site.article_vote("b", article) is Vote.CLOSED
    got = await site.get_article(article)
    assert got is not None
    assert got.votes == 2


async def test_concurrent_voters_are_counted_exactly(redis_client: Any) -> None:
    site = Articles(redis_client)
    article = await site.post_article("poster", title="hot", link="l")
    users = [f"user{i}" for i in range(50)]
    # Every user votes, and every third one votes twice at the same time.
    calls = [site.article_vote(u, article) for u in users]
    calls += [site.article_vote(u, article) for u in users[::3]]
    outcomes = await asyncio.gather(*calls)
    assert outcomes.count(Vote.VOTED) == 50
    assert outcomes.count(Vote.ALREADY) == len(users[::3])
    got = await site.get_article(article)
    assert got is not None
    assert got.votes == 51
    assert got.score == pytest.approx(got.posted + 51 * VOTE_SCORE)
    assert await redis_client.hlen(site.voters_key(article)) == 51


async def test_pages_by_score_and_time(redis_client_text: Any) -> None:
    site = Articles(redis_client_text, page_size=2)
    ids = [await site.post_article(f"p{i}", title=f"t{i}", link="") for i in range(5)]
    # Votes reorder by score: ids[1] gets 3 extra votes, ids[3] gets 1.
    for user in ("a", "b", "c"):
        await site.article_vote(user, ids[1])
    await site.article_vote("a", ids[3])
    by_score = [a.id for p in (1, 2, 3) for a in await site.get_articles(page=p)]
    assert by_score == [ids[1], ids[3], ids[4], ids[2], ids[0]]
    by_time = [a.id for p in (1, 2, 3) for a in await site.get_articles(page=p, order="time")]
    assert by_time == ids[::-1]
    assert await site.get_articles(page=4) == []
    first = (await site.get_articles(page=1))[0]
    assert (first.votes, first.title) == (4, "t1")


async def test_group_pages_and_membership(redis_client_text: Any) -> None:
    site = Articles(redis_client_text)
    a, b, c = [await site.post_article("p", title=t, link="") for t in "abc"]
    assert await site.add_remove_groups(a, add=["redis", "python"])
    assert await site.add_remove_groups(b, add=["redis"])
    assert await site.add_remove_groups(c, add=["python"])
    await site.article_vote("x", b)
    assert [x.id for x in await site.get_group_articles("redis")] == [b, a]
    assert [x.id for x in await site.get_group_articles("redis", order="time")] == [b, a]
    assert [x.id for x in await site.get_group_articles("python")] == [c, a]
    # Removing drops the cache: the change shows at once, not after group_ttl.
    assert await site.add_remove_groups(a, remove=["redis"], add=["misc"])
    assert [x.id for x in await site.get_group_articles("redis")] == [b]
    assert await site.group_members("misc") == {a}
    assert await site.get_group_articles("empty") == []


async def test_group_cache_is_built_once_and_always_expires(redis_client: Any) -> None:
    site = Articles(redis_client, group_ttl=30)
    article = await site.post_article("p", title="t", link="")
    await site.add_remove_groups(article, add=["g"])
    cache = site.group_cache_key("g")
    results = await asyncio.gather(*(site.get_group_articles("g") for _ in range(30)))
    assert all([x.id for x in r] == [article] for r in results)
    ttl = await redis_client.pttl(cache)
    assert 0 < ttl <= 30_000
    # The cache holds exactly the site's scores.
    cached = await redis_client.zscore(cache, article)
    assert cached == await redis_client.zscore(site.score_key, article)
    # A vote changes the data at once; the order is cached until the TTL.
    await site.article_vote("v", article)
    got = await site.get_group_articles("g")
    assert got[0].votes == 2


async def test_a_cancelled_group_read_leaves_no_immortal_cache(redis_client: Any) -> None:
    site = Articles(redis_client)
    article = await site.post_article("p", title="t", link="")
    await site.add_remove_groups(article, add=["g"])
    for delay in (0, 0.0001, 0.001, 0.005):
        await redis_client.delete(site.group_cache_key("g"))
        task = asyncio.create_task(site.get_group_articles("g"))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.02)
        ttl = await redis_client.pttl(site.group_cache_key("g"))
        assert ttl == -2 or ttl > 0  # absent, or expiring: never -1


async def test_a_cancelled_vote_is_all_or_nothing(redis_client: Any) -> None:
    site = Articles(redis_client)
    article = await site.post_article("p", title="t", link="")
    for i, delay in enumerate((0, 0.0001, 0.001, 0.005)):
        task = asyncio.create_task(site.article_vote(f"u{i}", article))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.02)
    got = await site.get_article(article)
    assert got is not None
    voters = await redis_client.hlen(site.voters_key(article))
    assert got.votes == voters
    assert got.score == pytest.approx(got.posted + voters * VOTE_SCORE)


async def test_every_key_shares_one_slot_under_the_prefix(redis_client: Any) -> None:
    site = Articles(redis_client, "news", keyspace=Keyspace("app"))
    article = await site.post_article("p", title="t", link="")
    await site.add_remove_groups(article, add=["g:1"])
    await site.get_group_articles("g:1")
    keys = [text async for text in redis_client.scan_iter(match="*")]
    names = {k.decode() if isinstance(k, bytes) else k for k in keys}
    assert names == {
        site.seq_key,
        site.posts_key,
        site.votes_key,
        site.score_key,
        site.time_key,
        site.voters_key(article),
        site.group_key("g:1"),
        site.group_cache_key("g:1"),
    }
    assert {key_slot(k.encode()) for k in names} == {key_slot(b"{news}")}
    assert all(k.startswith("app:article:{news}:") for k in names)


async def test_sites_are_independent(redis_client: Any) -> None:
    one, two = Articles(redis_client, "one"), Articles(redis_client, "two")
    article = await one.post_article("p", title="t", link="")
    assert await two.get_article(article) is None
    assert await two.article_vote("u", article) is Vote.MISSING
    assert await two.get_articles() == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.post_article(1, title="t", link="l"), TypeError),
        (lambda s: s.post_article("", title="t", link="l"), ValueError),
        (lambda s: s.post_article("u", title="", link="l"), ValueError),
        (lambda s: s.post_article("u", title="t", link=None), TypeError),
        (lambda s: s.article_vote("u", 1), TypeError),
        (lambda s: s.article_vote("u", "article:1"), ValueError),
        (lambda s: s.article_vote("", "1"), ValueError),
        (lambda s: s.article_vote("u", "1", down=1), TypeError),
        (lambda s: s.get_article("x"), ValueError),
        (lambda s: s.get_articles(page=0), ValueError),
        (lambda s: s.get_articles(page="1"), TypeError),
        (lambda s: s.get_articles(order="votes"), ValueError),
        (lambda s: s.get_group_articles("", page=1), ValueError),
        (lambda s: s.get_group_articles("g", order=None), TypeError),
        (lambda s: s.add_remove_groups("1", add="group"), TypeError),
        (lambda s: s.add_remove_groups("1", add=["g"], remove=["g"]), ValueError),
        (lambda s: s.add_remove_groups("1", add=["a}b"]), ValueError),
    ],
)
async def test_bad_input_is_rejected_before_redis(call: Any, error: type[Exception]) -> None:
    site = Articles(NO_REDIS)  # any Redis call would fail with AttributeError
    with pytest.raises(error):
        await call(site)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"redis": None}, TypeError),
        ({"name": ""}, ValueError),
        ({"vote_window": 0}, ValueError),
        ({"vote_window": "week"}, TypeError),
        ({"vote_score": float("nan")}, ValueError),
        ({"page_size": 0}, ValueError),
        ({"group_ttl": True}, TypeError),
        ({"keyspace": "app"}, TypeError),
    ],
)
def test_bad_construction_is_rejected(kwargs: dict[str, Any], error: type[Exception]) -> None:
    options: dict[str, Any] = {"redis": NO_REDIS, **kwargs}
    redis = options.pop("redis")
    with pytest.raises(error):
        Articles(redis, **options)


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        # The page's last rank must fit a Redis integer.
        (lambda s: s.get_articles(page=2**62), ValueError, "page"),
        (lambda s: s.get_group_articles("g", page=2**63), ValueError, "page"),
        (lambda s: s.get_articles(page=0), ValueError, "page"),
        (lambda s: s.get_articles(page=1.0), TypeError, "page"),
    ],
)
async def test_numbers_are_range_checked_before_redis(
    call: Any, error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        await call(Articles(NO_REDIS))
