"""Run-twice tests of the search, ads and jobs scripts (issue 10, DESIGN "Retry safety").

Every script call is sent twice by ``twice_client`` (``retrysafe.py``), as redis-py's ``Retry``
or the cluster client does after a lost reply: the keyspace must be the state of one run (one
increment, one view, one click, one target id, no second scratch or cached result) and the caller
must see what a single run answers (the same removal flag, value, target id, result id and page).
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import text
from retrysafe import assert_retry_safe, plain

from aiorpatterns.core.scripts import script
from aiorpatterns.search.ads import AdIndex
from aiorpatterns.search.index import SearchIndex
from aiorpatterns.search.jobs import JobIndex, JobLevelIndex, JobYearsIndex

DOCS = {
    "1": ("red shoes for running", {"updated": 30, "votes": 2, "title": "b"}),
    "2": ("blue shoes and red hats", {"updated": 10, "votes": 5, "title": "a"}),
    "3": ("green hats for walking", {"updated": 20, "votes": 1, "title": "c"}),
    "4": ("red running hats", {"updated": 40, "votes": 3, "title": "d"}),
}


async def volatile(client: Any) -> list[Any]:
    """Read and delete every key named after a token (receipts, scratch keys, cached results).

    Their names differ between two runs, so :func:`assert_retry_safe` cannot pair them up: the
    scenario returns them instead, as a sorted list (what each holds and whether it expires).
    """
    found = []
    async for raw in client.scan_iter(match="aiorp:*", count=1000):
        key = text(raw)
        if plain(key) == key:
            continue
        kind = text(await client.type(key))
        if kind == "string":
            content: Any = text(await client.get(key))
        elif kind == "set":
            content = sorted(text(m) for m in await client.smembers(key))
        elif kind == "list":
            content = [text(m) for m in await client.lrange(key, 0, -1)]
        else:
            content = [(text(m), s) for m, s in await client.zrange(key, 0, -1, withscores=True)]
        found.append(repr((plain(key), kind, plain(content), await client.pttl(key) > 0)))
        await client.unlink(key)
    return sorted(found)


async def _indexed(client: Any, **options: Any) -> SearchIndex:
    index = SearchIndex(client, "docs", **options)
    for docid, (content, fields) in DOCS.items():
        await index.index_document(docid, content, fields=fields)
    return index


# -- search --------------------------------------------------------------------------------------


@pytest.mark.retry_safe("search_index")
async def test_index_and_remove_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        index = await _indexed(client)
        seen: list[Any] = [await index.index_document("1", "red boots", fields={"updated": 1})]
        seen.append(await index.index_document("1", "red boots"))  # the same words again
        seen.append(await index.index_document("5", "the of a"))  # stop words only
        seen.append(await index.remove_document("2"))
        seen.append(await index.remove_document("2"))  # gone already
        seen.append(await index.remove_document("ghost"))
        seen.append(sorted(await index.documents()))
        seen.append(sorted(await index.words("1")))
        seen.append(await volatile(client))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:-1] == [2, 2, 0, True, False, False, ["1", "3", "4", "5"], ["boots", "red"]]
    assert all(entry.endswith("True)") for entry in seen[-1])  # receipts expire


@pytest.mark.retry_safe("search_fields")
async def test_set_and_increment_fields_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        index = await _indexed(client)
        await index.set_fields("1", {"votes": 7, "title": "z"})
        await index.set_fields("2", {"updated": 1.5e308})
        seen: list[Any] = [await index.incr_field("1", "votes")]
        seen.append(await index.incr_field("1", "votes", 2.5))
        seen.append(await index.incr_field("9", "updated", -4))  # a new document's field
        try:
            await index.incr_field("2", "updated", 1e308)  # a refusal: out of range
        except ValueError as error:
            seen.append(str(error))
        seen.append(await index.fields("1"))
        seen.append(await index.search_zsorted("shoes", weights={"votes": 1}))
        seen.append(await volatile(client))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:3] == [8.0, 10.5, -4.0]
    assert "range" in seen[3]
    assert seen[4] == {"updated": "30", "votes": "10.5", "title": "z"}
    assert seen[5].ids == ["1", "2"]


@pytest.mark.retry_safe("search_members", "search_setop")
async def test_matches_and_set_operations_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        index = await _indexed(client)
        seen: list[Any] = [sorted(await index.match("red +green -walking"))]
        seen.append(sorted(await index.match("hats")))
        for op in (index.intersect, index.union, index.difference):
            key = await op(["hats", "red"], ttl=60)
            members = sorted(text(m) for m in await client.smembers(key))
            seen.append((members, 0 < await client.pttl(key) <= 60_000))
        seen.append(len(await volatile(client)))  # one SET per operation, no scratch key
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [
        ["1", "2", "4"],
        ["2", "3", "4"],
        (["2", "4"], True),
        (["1", "2", "3", "4"], True),
        (["3"], True),
        3,
    ]


@pytest.mark.retry_safe("search_sort", "search_page", "search_zsort")
async def test_sorted_searches_and_cached_pages_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        index = await _indexed(client, server_sort=False)
        first = await index.search("red +hats", sort="-updated", num=2)
        again = await index.search("red +hats", sort="-updated", start=2, result_id=first.result_id)
        text_order = await index.search("shoes hats -green", sort="title")
        none = await index.search("nothing")
        stale = await index.search("hats", result_id="gone")  # expired: searched again
        scored = await index.search_zsorted("red", weights={"votes": 2, "updated": 0.5}, num=1)
        next_scored = await index.search_zsorted(
            "red", weights={"votes": 2, "updated": 0.5}, start=1, result_id=scored.result_id
        )
        ascending = await index.search_zsorted(
            "red", weights={"votes": 2, "updated": 0.5}, desc=False, result_id=scored.result_id
        )
        ids = [first.result_id, again.result_id, scored.result_id, next_scored.result_id]
        pages = [first, again, text_order, none, stale, scored, next_scored, ascending]
        return pages, ids, await volatile(client)

    pages, ids, cached = await assert_retry_safe(redis_client, twice_client, scenario)
    first, again, text_order, none, stale, scored, next_scored, ascending = pages
    assert (first.total, first.ids, again.ids) == (4, ["4", "1"], ["3", "2"])
    assert ids[0] == ids[1]
    assert ids[2] == ids[3]
    assert text_order.ids == ["2"]
    assert none == (0, [], None)
    assert stale.ids == ["4", "3", "2"]
    assert stale.result_id != "gone"
    assert (scored.ids, next_scored.ids) == (["4"], ["1", "2"])
    assert ascending.ids == ["2", "1", "4"]
    assert len(cached) == 4
    assert all(entry.endswith("True)") for entry in cached)


@pytest.mark.retry_safe("search_store")
async def test_stored_query_twice(redis_client: Any, twice_client: Any) -> None:
    """The query step of ``SORT … BY`` (in a MULTI on a standalone server), run by itself."""

    async def scenario(client: Any) -> Any:
        index = await _indexed(client)
        keys, args = index._plan(index.parse("red +blue -running"))
        count = await script("search_store")(client, keys, [60_000, *args])
        stored = sorted(text(m) for m in await client.smembers(keys[0]))
        expires = 0 < await client.pttl(keys[0]) <= 60_000
        return count, stored, expires, len(await volatile(client))

    assert await assert_retry_safe(redis_client, twice_client, scenario) == (1, ["2"], True, 1)


# -- ads -----------------------------------------------------------------------------------------


async def _ads(client: Any, **options: Any) -> AdIndex:
    ads = AdIndex(client, **options)
    await ads.index_ad("cpc", locations=["US", "CA"], content="red shoes", ad_type="cpc", bid=1.0)
    await ads.index_ad("cpa", locations=["US"], content="red hats", ad_type="cpa", bid=2.0)
    await ads.index_ad("cpm", locations=["UK"], content="wool hats", ad_type="cpm", bid=0.5)
    return ads


@pytest.mark.retry_safe("ads_index")
async def test_index_and_remove_ads_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        ads = await _ads(client)
        seen: list[Any] = [
            await ads.index_ad("cpc", locations=["UK"], content="blue", ad_type="cpc", bid=3.0)
        ]
        seen.append(await ads.remove_ad("cpa"))
        seen.append(await ads.remove_ad("cpa"))  # gone already
        seen.append(await ads.remove_ad("ghost"))
        seen.append([await ads.ecpm(a) for a in ("cpc", "cpa", "cpm")])
        seen.append(await volatile(client))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:-1] == [3.0, True, False, False, [3.0, None, 0.5]]


@pytest.mark.retry_safe("ads_target", "ads_record_view", "ads_record_click", "ads_update")
async def test_target_view_and_click_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        ads = await _ads(client, update_every=2)
        seen: list[Any] = []
        for locations, content in [
            (["US"], "red shoes"),
            (["US", "UK"], "red hats"),
            (["CA"], "shoes"),
            (["UK"], "wool"),
            (["FR"], "red"),  # no ad there
        ]:
            seen.append(await ads.target_ads(locations, content))
        seen.append(await ads.record_click(1, "cpc"))
        seen.append(await ads.record_click(2, "cpa"))
        seen.append(await ads.record_click(2, "cpa", action=True))
        seen.append(await ads.record_click(4, "cpm"))
        seen.append(await ads.record_click(3, "ghost"))  # unknown ad
        seen.append(await ads.update_ecpms("cpc"))
        seen.append(await ads.update_ecpms("ghost"))
        seen.append([await ads.ecpm(a) for a in ("cpc", "cpa", "cpm")])
        seen.append([await ads.average_per_1k(t) for t in ("cpc", "cpa", "cpm")])
        seen.append(await ads.bonus("cpc", "shoes"))
        seen.append(await volatile(client))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert [t and tuple(t) for t in seen[:5]] == [
        (1, "cpa"),
        (2, "cpa"),
        (3, "cpc"),
        (4, "cpm"),
        None,
    ]
    assert seen[5:12] == [True, True, True, True, False, True, False]


# -- jobs ----------------------------------------------------------------------------------------


@pytest.mark.retry_safe("jobs_index", "jobs_find")
@pytest.mark.parametrize("variant", [JobIndex, JobLevelIndex, JobYearsIndex])
async def test_index_remove_and_find_jobs_twice(
    redis_client: Any, twice_client: Any, variant: type[JobIndex]
) -> None:
    def needs(*pairs: tuple[str, float]) -> Any:
        if variant is JobIndex:
            return [skill for skill, _ in pairs]
        return [(skill, int(n) if variant is JobLevelIndex else n) for skill, n in pairs]

    async def scenario(client: Any) -> Any:
        jobs = variant(client)
        await jobs.index_job("dev", needs(("python", 2), ("redis", 1)))
        await jobs.index_job("ops", needs(("linux", 1), ("redis", 2)))
        await jobs.index_job("dev", needs(("python", 1), ("lua", 0.5)))  # re-indexed
        seen: list[Any] = [await jobs.remove_job("ops")]
        seen.append(await jobs.remove_job("ops"))  # gone already
        seen.append(await jobs.remove_job("ghost"))
        await jobs.index_job("dba", needs(("redis", 1)))
        seen.append(await jobs.find_jobs(needs(("python", 2), ("lua", 1), ("redis", 1))))
        seen.append(await jobs.find_jobs(needs(("redis", 0))))
        seen.append(await jobs.requirements("dev"))
        seen.append(sorted(await jobs.jobs()))
        seen.append(await volatile(client))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:4] == [True, False, False, ["dba", "dev"]]
    assert seen[4] == ([] if variant is not JobIndex else ["dba"])
    assert seen[6] == ["dba", "dev"]
