"""The search guide's examples: autocomplete, recent contacts, the inverted index, ad targeting,
job search (Redis in Action §6.1, §7), on a Redis server this script starts itself.

Run: ``uv run python examples/guide_search.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import AdIndex, Autocomplete, JobIndex, RecentContacts, SearchIndex
from aiorpatterns.testing.server import RedisServer


# --8<-- [start:autocomplete]
async def autocomplete_example(redis: Redis) -> None:
    """Prefix completion over a guild's members: a read-only ZRANGE BYLEX."""
    members = Autocomplete(redis, "guild:7")
    await members.join("alice", "albert", "bob", "Ålborg")
    assert await members.complete("al") == ["albert", "alice"]
    assert await members.complete("Å") == ["Ålborg"]  # any Unicode
    assert await members.count("a") == 2

    recent = RecentContacts(redis, size=100)  # the newest 100 contacts per user
    for contact in ("ann", "andy", "bob", "ann"):
        await recent.add("me", contact)
    assert await recent.contacts("me") == ["ann", "bob", "andy"]  # newest first
    assert await recent.complete("me", "an") == ["ann", "andy"]


# --8<-- [end:autocomplete]


# --8<-- [start:index]
async def search_index_example(redis: Redis) -> None:
    """Index documents, query with +synonyms and -exclusions, sort by a field."""
    index = SearchIndex(redis, "docs")
    await index.index_document("1", "redis lists and sets", fields={"updated": 10})
    await index.index_document("2", "redis streams for logs", fields={"updated": 20})
    await index.index_document("3", "postgres tables", fields={"updated": 30})
    result = await index.search("redis -logs")
    assert (result.total, result.ids) == (1, ["1"])
    result = await index.search("redis +postgres", sort="-updated")  # redis OR postgres
    assert result.ids == ["3", "2", "1"]


# --8<-- [end:index]


# --8<-- [start:ads]
async def ads_example(redis: Redis) -> None:
    """Target the ad with the highest eCPM for a location and page content."""
    ads = AdIndex(redis)
    await ads.index_ad("a1", locations=["usa"], content="cheap flights", ad_type="cpm", bid=1.0)
    await ads.index_ad("a2", locations=["usa"], content="redis hosting", ad_type="cpm", bid=2.0)
    targeting = await ads.target_ads(["usa"], "fast redis hosting")
    assert targeting is not None
    assert targeting.ad_id == "a2"
    assert await ads.record_click(targeting.target_id, targeting.ad_id)  # learning from clicks


# --8<-- [end:ads]


# --8<-- [start:jobs]
async def jobs_example(redis: Redis) -> None:
    """Find the jobs whose every required skill a candidate has."""
    jobs = JobIndex(redis)
    await jobs.index_job("backend", ["python", "redis"])
    await jobs.index_job("frontend", ["typescript"])
    assert await jobs.find_jobs(["python", "redis", "sql"]) == ["backend"]
    assert await jobs.is_qualified("frontend", ["typescript"])


# --8<-- [end:jobs]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await autocomplete_example(redis)
            await search_index_example(redis)
            await ads_example(redis)
            await jobs_example(redis)
        finally:
            await redis.aclose()
    print("search: ok")


if __name__ == "__main__":
    asyncio.run(main())
