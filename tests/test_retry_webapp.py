"""Run-twice tests of the webapp family: caches, sessions, articles, market, recent contacts.

Every writing script of the family runs twice through ``twice_client`` (retrysafe.py): the
caller must see what one run answers and the keyspace must hold what one run leaves. The
lost-reply tests run a claim on the server and lose its reply: the clean-up must still give the
claim back, by token. DESIGN, "Retry safety"; issue 10, rules 1, 2 and 4.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from retrysafe import assert_retry_safe, plain, script_names

from aiorpatterns.core.scripts import script
from aiorpatterns.search.autocomplete import RecentContacts
from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.webapp.articles import Articles, Vote
from aiorpatterns.webapp.caching import PageCache, RowCache
from aiorpatterns.webapp.market import Market
from aiorpatterns.webapp.sessions import Sessions

URL = "http://test.com/?item=itemX"

_RECEIPT = re.compile(r":[0-9a-f]{32}$")


async def _receipts(client: Any) -> list[Any]:
    """The receipts a scenario left (key and reply, masked, sorted), deleted once read.

    ``snapshot`` names keys with their tokens masked, so several receipts of one base would
    collapse into one entry there: a scenario returns them as a list instead.
    """
    found = []
    async for raw in client.scan_iter(match="aiorp:*", count=1000):
        key = raw.decode() if isinstance(raw, bytes) else raw
        if _RECEIPT.search(key):
            found.append((plain(key), plain(await client.get(key))))
            await client.delete(key)
    return sorted(found, key=repr)


@pytest.mark.retry_safe("cache_claim", "cache_store")
async def test_page_cache_steps_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        # A short wait: before the fix, a second claim run made the caller wait on its own
        # claim, then render uncached.
        pages = PageCache(client, claim_timeout=30, wait=2)
        renders: list[str] = []

        async def render(request: str) -> str:
            renders.append(request)
            return "page of " + request

        async def broken(request: str) -> str:
            raise RuntimeError("render failed")

        first = await pages.cache_request(URL, render)
        again = await pages.cache_request(URL, render)  # a hit: no claim, no render
        other = URL + "2"
        with pytest.raises(RuntimeError):
            await pages.cache_request(other, broken)  # claimed, then released
        after = await pages.cache_request(other, render)
        return [first, again, after, renders, await _receipts(client)]

    await assert_retry_safe(redis_client, twice_client, scenario)


@pytest.mark.retry_safe("cache_row_schedule", "cache_row_claim", "cache_row_store")
async def test_row_cache_steps_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        rows = RowCache(client)
        for row in ("r1", "r2", "r3", "r4"):
            assert await rows.schedule_row_cache(row, delay=60)
        seen = [await rows.cache_rows(lambda row: {"row": row})]  # store
        seen.append(await rows.cache_rows(lambda row: None))  # drop: the row is gone

        def broken(row: str) -> Any:
            raise RuntimeError("db down")

        seen.append(await rows.cache_rows(broken, retry=30))  # retry later
        # A claim whose reply was lost, released by token alone (no row named).
        claim = await script("cache_row_claim")(client, rows._keys, ["a" * 32, "30"])
        await rows._finish("", "a" * 32, "release")
        seen.append(await rows.cache_rows(lambda row: [row]))  # the released row, due now
        seen.append(await rows.schedule_row_cache("r1", delay=-1))  # removed with its copy
        return [
            seen,
            claim,
            await client.hlen(rows.claims_key),
            await rows.get_row("r4"),
            await _receipts(client),
        ]

    once = await assert_retry_safe(redis_client, twice_client, scenario)
    assert once[0] == ["r1", "r2", "r3", "r4", False]
    assert once[2] == 0


@pytest.mark.retry_safe("session_update", "cart_update", "session_rescale", "session_clean")
async def test_session_steps_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        sessions = Sessions(client)
        await sessions.update_token("t1", "ann", "item1")
        await sessions.update_token("t1", "ann", "item2")
        await sessions.update_token("t2", "bob", "item1")
        await sessions.update_token("t2", "bob")
        carts = [await sessions.add_to_cart("t1", "a", count=2)]
        carts.append(await sessions.add_to_cart("t2", "b", count=3))
        carts.append(await sessions.add_to_cart("t2", "b", count=0))
        carts.append(await sessions.add_to_cart("nobody", "b", count=1))
        views = await client.zrange(sessions.viewed_key, 0, -1, withscores=True)
        remaining = await sessions.rescale_viewed(factor=0.5)
        rescaled = await client.zrange(sessions.viewed_key, 0, -1, withscores=True)
        removed = await sessions.clean_sessions(limit=1)
        return [
            carts,
            views,
            remaining,
            rescaled,
            removed,
            await sessions.check_token("t1"),
            await _receipts(client),
        ]

    once = await assert_retry_safe(redis_client, twice_client, scenario)
    assert once[4] == 1  # t1, the oldest, logged out


@pytest.mark.retry_safe("article_post", "article_vote", "article_groups", "article_page")
async def test_article_steps_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        site = Articles(client)
        one = await site.post_article("ann", title="one", link="http://one")
        two = await site.post_article("bob", title="two", link="http://two")
        votes = [await site.article_vote("carl", one)]  # voted
        votes.append(await site.article_vote("carl", one, down=True))  # changed
        votes.append(await site.article_vote("carl", one, down=True))  # already
        votes.append(await site.article_vote("ann", one))  # already: posting is a vote
        votes.append(await site.article_vote("carl", "999"))  # missing
        groups = [await site.add_remove_groups(one, add=["g", "h"])]
        groups.append(await site.add_remove_groups(two, add=["g"]))
        page = await site.get_group_articles("g")  # builds the group's cache
        groups.append(await site.add_remove_groups(one, remove=["g"]))
        groups.append(await site.add_remove_groups("999", add=["g"]))
        articles = [await site.get_article(one), await site.get_article(two)]
        return [[one, two], votes, groups, page, articles, await _receipts(client)]

    once = await assert_retry_safe(redis_client, twice_client, scenario)
    assert once[1] == [Vote.VOTED, Vote.CHANGED, Vote.ALREADY, Vote.ALREADY, Vote.MISSING]
    assert once[0] == ["1", "2"]


async def test_a_late_retry_of_a_post_keeps_the_votes_cast_since(redis_client: Any) -> None:
    # A post's reply lost, the retry sent after a backoff: votes cast meanwhile must stay.
    site = Articles(redis_client)
    article = await site.post_article("ann", title="t", link="")
    before = await site.get_article(article)
    assert await site.article_vote("bob", article) is Vote.VOTED
    keys = [site.posts_key, site.votes_key, site.downvotes_key, site.score_key, site.time_key]
    keys.append(site.voters_key(article))
    meta = await redis_client.hget(site.posts_key, article)
    args = [article, meta, "ann", site.vote_window, site.vote_score]
    await script("article_post")(redis_client, keys, args)
    after = await site.get_article(article)
    assert before is not None
    assert after is not None
    assert after.votes == 2
    assert after.posted == before.posted
    assert after.score == before.score + site.vote_score


@pytest.mark.retry_safe("market_list", "market_unlist", "market_purchase")
async def test_market_steps_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        market = Market(client)
        await market.add_items("seller", "sword", "shield", "bow")
        await market.deposit("buyer", 100)
        seen: list[Any] = [await market.list_item("sword", "seller", 40)]
        seen.append(await market.list_item("sword", "seller", 40))  # no longer in inventory
        seen.append(await market.list_item("shield", "seller", 30))
        seen.append(await market.list_item("bow", "seller", 500))
        seen.append(await market.purchase_item("buyer", "sword", "seller", 40))
        seen.append(await market.purchase_item("buyer", "sword", "seller", 40))  # gone
        seen.append(await market.purchase_item("buyer", "shield", "seller", 20))  # price
        seen.append(await market.purchase_item("buyer", "bow", "seller", 500))  # funds
        seen.append(await market.unlist_item("shield", "seller"))
        seen.append(await market.unlist_item("shield", "seller"))  # not listed
        funds = [await market.funds("buyer"), await market.funds("seller")]
        return [
            seen,
            funds,
            await market.inventory("buyer"),
            await market.inventory("seller"),
            await _receipts(client),
        ]

    once = await assert_retry_safe(redis_client, twice_client, scenario)
    assert [bool(s) for s in once[0]] == [True, False, True, True, True] + [False] * 3 + [
        True,
        False,
    ]
    assert once[1] == [60, 40]


@pytest.mark.retry_safe("autocomplete_contact_add")
async def test_contact_add_runs_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        contacts = RecentContacts(client, size=3)
        added = [await contacts.add("u", c) for c in ("ann", "bob", "ann", "cy", "dee", "bob")]
        return [added, await contacts.contacts("u"), await _receipts(client)]

    once = await assert_retry_safe(redis_client, twice_client, scenario)
    assert once[:2] == [[True, True, False, True, True, True], ["bob", "dee", "cy"]]


# --- Lost replies: the claim ran on the server, its reply never came --------------------------


class _Lost:
    """Mixin: the scripts named in ``lose`` run on the server, then their reply is lost."""

    lose: set[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = await super().execute_command(*args, **options)  # type: ignore[misc]
        if str(args[0]).upper() == "EVALSHA":
            sha = args[1].decode() if isinstance(args[1], bytes) else str(args[1])
            name = script_names().get(sha)
            if name in self.lose:
                self.lose.discard(name)  # once: the clean-up's own steps get their replies
                raise RedisConnectionError(f"{name}: reply lost")
        return reply


class _LostRedis(_Lost, Redis):
    pass


class _LostCluster(_Lost, RedisCluster):
    pass


@pytest.fixture
async def losing(
    request: pytest.FixtureRequest, redis_client: Any
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Make a client on ``redis_client``'s server that loses the reply of the named scripts."""
    topology = request.node.callspec.params["redis_client"]
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    endpoint: Endpoint = request.getfixturevalue(fixture)
    made: list[Any] = []

    async def make(*names: str) -> Any:
        kind = _LostCluster if topology == "cluster" else _LostRedis
        client = kind.from_url(endpoint.url)
        client.lose = set(names)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def test_a_lost_page_claim_reply_still_releases_by_token(
    redis_client: Any, losing: Callable[..., Awaitable[Any]]
) -> None:
    client = await losing("cache_claim")
    pages = PageCache(client, claim_timeout=60)
    with pytest.raises(RedisConnectionError):
        await pages.cache_request(URL, lambda r: "never")
    assert not await redis_client.exists(pages.page_key(URL) + ":claim")
    # Nobody waits for a claim held by nobody: the next caller renders at once.
    assert await asyncio.wait_for(pages.cache_request(URL, lambda r: "page"), 10) == "page"


async def test_a_lost_row_claim_reply_still_releases_by_token(
    redis_client: Any, losing: Callable[..., Awaitable[Any]]
) -> None:
    rows = RowCache(redis_client)
    await rows.schedule_row_cache("r", delay=60)
    lossy = RowCache(await losing("cache_row_claim"))
    with pytest.raises(RedisConnectionError):
        await lossy.cache_rows(lambda row: 1, lease=60)
    assert await redis_client.hlen(rows.claims_key) == 0
    # Due at once again, not after the 60 s lease.
    assert await rows.cache_rows(lambda row: 2) == "r"
    assert await rows.get_row("r") == 2
    assert [k async for k in redis_client.scan_iter(match=rows.claims_key + ":*")] == []


async def test_a_lost_row_store_reply_releases_the_row(
    redis_client: Any, losing: Callable[..., Awaitable[Any]]
) -> None:
    # The store ran (its reply lost): the release that follows by token finds nothing to do.
    rows = RowCache(redis_client)
    await rows.schedule_row_cache("r", delay=60)
    lossy = RowCache(await losing("cache_row_store"))
    with pytest.raises(RedisConnectionError):
        await lossy.cache_rows(lambda row: {"v": 1})
    assert await redis_client.hlen(rows.claims_key) == 0
    assert await rows.get_row("r") == {"v": 1}
