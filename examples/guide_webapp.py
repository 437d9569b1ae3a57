"""The web application guide's examples: login sessions and carts, article voting, the
marketplace, the page cache (Redis in Action §1.3, §2, §4.4), on a Redis server this script
starts itself.

Run: ``uv run python examples/guide_webapp.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import Articles, Market, PageCache, Sessions
from aiorpatterns.testing.server import RedisServer
from aiorpatterns.webapp import Purchase, Vote


# --8<-- [start:sessions]
async def sessions_example(redis: Redis) -> None:
    """Login tokens, recently viewed items, a shopping cart."""
    sessions = Sessions(redis, history=25)
    await sessions.update_token("token-1", "ann", item="item-7")
    await sessions.update_token("token-1", "ann", item="item-9")
    assert await sessions.check_token("token-1") == "ann"
    assert await sessions.viewed("token-1") == ["item-9", "item-7"]  # newest first
    await sessions.add_to_cart("token-1", "item-9", count=2)
    assert await sessions.cart("token-1") == {"item-9": 2}
    # Keep the newest `limit` sessions; older ones lose their token, history and cart.
    assert await sessions.clean_sessions(limit=10) == 0


# --8<-- [end:sessions]


# --8<-- [start:articles]
async def articles_example(redis: Redis) -> None:
    """Post articles, vote once per user, read pages ordered by score."""
    articles = Articles(redis, page_size=10)
    first = await articles.post_article("ann", title="Redis in Action", link="https://x.test/1")
    second = await articles.post_article("bob", title="asyncio", link="https://x.test/2")
    assert await articles.article_vote("eve", second) is Vote.VOTED
    assert await articles.article_vote("eve", second) is Vote.ALREADY  # one vote per user
    page = await articles.get_articles(page=1, order="score")
    assert [a.id for a in page] == [second, first]
    await articles.add_remove_groups(first, add=["databases"])
    assert [a.id for a in await articles.get_group_articles("databases")] == [first]


# --8<-- [end:articles]


# --8<-- [start:market]
async def market_example(redis: Redis) -> None:
    """List an item, buy it at the agreed price: one Lua step, no lock, no retry loop."""
    market = Market(redis)
    await market.add_items("seller", "sword")
    await market.deposit("buyer", 100)
    assert await market.list_item("sword", "seller", 60)
    assert await market.purchase_item("buyer", "sword", "seller", 50) is Purchase.PRICE_CHANGED
    assert await market.purchase_item("buyer", "sword", "seller", 60) is Purchase.BOUGHT
    assert await market.purchase_item("buyer", "sword", "seller", 60) is Purchase.GONE
    assert await market.inventory("buyer") == {"sword"}
    assert (await market.funds("buyer"), await market.funds("seller")) == (40, 60)


# --8<-- [end:market]


# --8<-- [start:pages]
async def page_cache_example(redis: Redis) -> None:
    """Render an item page once; concurrent requests share that one rendering."""
    pages = PageCache(redis, ttl=300)
    renders = 0

    async def render(request: str) -> str:
        nonlocal renders
        renders += 1
        await asyncio.sleep(0.05)  # the slow part the cache saves
        return f"<html>{request}</html>"

    request = "https://shop.test/view?item=42"
    bodies = await asyncio.gather(*(pages.cache_request(request, render) for _ in range(10)))
    assert set(bodies) == {"<html>https://shop.test/view?item=42</html>"}
    assert renders == 1  # no stampede: one renderer, nine waiters
    assert await pages.invalidate(request)


# --8<-- [end:pages]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await sessions_example(redis)
            await articles_example(redis)
            await market_example(redis)
            await page_cache_example(redis)
        finally:
            await redis.aclose()
    print("webapp: ok")


if __name__ == "__main__":
    asyncio.run(main())
