"""Test PageCache, RowCache and RowCacheWorker: no stampede, one refresher per row, clean stops.

Redis in Action §2.3-§2.5 (``cache_request``, ``can_cache``, ``schedule_row_cache``,
``cache_rows``) and the book's ``test_cache_request`` and ``test_cache_rows``. Every test runs
on a standalone server and a cluster; the ``_text`` ones also with ``decode_responses`` on/off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

import pytest
from helpers import until

from aiorpatterns.caching import PageCache, RowCache, RowCacheWorker, request_digest
from aiorpatterns.sessions import Sessions

URL = "http://test.com/?item=itemX"


async def test_book_cache_request(redis_client_text: Any) -> None:
    sessions = Sessions(redis_client_text)
    await sessions.update_token("t", "username", "itemX")
    pages = PageCache(redis_client_text, sessions=sessions)
    result = await pages.cache_request(URL, lambda r: "content for " + r)
    assert result == "content for " + URL

    def fail(request: str) -> str:
        raise AssertionError("the page was cached")

    assert await pages.cache_request(URL, fail) == result
    assert not await pages.can_cache("http://test.com/")
    assert not await pages.can_cache("http://test.com/?item=itemX&_=1234536")
    assert not await pages.can_cache("http://test.com/?item=unviewed")
    assert 0 < await redis_client_text.pttl(pages.page_key(URL)) <= 300_000


async def test_key_is_a_stable_digest_and_empty_pages_are_cached(redis_client: Any) -> None:
    pages = PageCache(redis_client)
    assert pages.page_key(URL).endswith(request_digest(URL) + "}")
    assert request_digest(URL) == hashlib.sha256(URL.encode()).hexdigest()
    calls = 0

    async def empty(request: str) -> str:
        nonlocal calls
        calls += 1
        return ""

    assert await pages.cache_request(URL, empty) == ""
    assert await pages.cache_request(URL, empty) == ""
    assert calls == 1
    assert await pages.get_page(URL) == ""
    assert await pages.invalidate(URL)
    assert await pages.get_page(URL) is None


async def test_concurrent_misses_render_once(redis_client: Any) -> None:
    pages = PageCache(redis_client)
    calls = 0

    async def render(request: str) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return "page"

    results = await asyncio.gather(*(pages.cache_request(URL, render) for _ in range(30)))
    assert results == ["page"] * 30
    assert calls == 1


async def test_a_failed_or_cancelled_render_hands_the_claim_on(redis_client: Any) -> None:
    pages = PageCache(redis_client, claim_timeout=30)
    started = asyncio.Event()

    async def slow(request: str) -> str:
        started.set()
        await asyncio.sleep(10)
        return "never"

    first = asyncio.create_task(pages.cache_request(URL, slow))
    await started.wait()
    second = asyncio.create_task(pages.cache_request(URL, lambda r: "second"))
    await asyncio.sleep(0.05)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    # The waiter takes over at once, long before the 30 s claim would expire.
    assert await asyncio.wait_for(second, 5) == "second"

    async def broken(request: str) -> str:
        raise RuntimeError("boom")

    await pages.invalidate(URL)
    with pytest.raises(RuntimeError):
        await pages.cache_request(URL, broken)
    assert await pages.cache_request(URL, lambda r: "ok") == "ok"
    assert not await redis_client.exists(pages.page_key(URL) + ":claim")


async def test_book_cache_rows(redis_client_text: Any) -> None:
    rows = RowCache(redis_client_text)
    fetched: list[str] = []

    def fetch(row: str) -> dict[str, Any]:
        fetched.append(row)
        return {"id": row, "data": "data to cache...", "n": len(fetched)}

    assert await rows.schedule_row_cache("itemX", delay=0.3)
    assert await redis_client_text.zcard(rows.schedule_key) == 1
    async with RowCacheWorker(rows, fetch, idle=0.05) as worker:
        await until(lambda: _cached(rows, "itemX"), "the first copy")
        first = await rows.get_row("itemX")
        await until(lambda: _changed(rows, "itemX", first), "a refresh")
        assert not await rows.schedule_row_cache("itemX", delay=-1)
        assert await rows.get_row("itemX") is None
        await asyncio.sleep(0.4)
        assert await rows.get_row("itemX") is None
        assert worker.refreshed >= 2
    assert await redis_client_text.zcard(rows.schedule_key) == 0


async def _cached(rows: RowCache, row: str) -> bool:
    return await rows.get_row(row) is not None


async def _changed(rows: RowCache, row: str, before: Any) -> bool:
    return await rows.get_row(row) not in (None, before)


async def test_two_workers_never_refresh_one_row_at_once(redis_client: Any) -> None:
    rows = RowCache(redis_client)
    busy: set[str] = set()
    overlaps = 0
    counts: dict[str, int] = {}

    async def fetch(row: str) -> int:
        nonlocal overlaps
        if row in busy:
            overlaps += 1
        busy.add(row)
        await asyncio.sleep(0.01)
        busy.discard(row)
        counts[row] = counts.get(row, 0) + 1
        return counts[row]

    for i in range(5):
        await rows.schedule_row_cache(f"r{i}", delay=0.02)
    async with RowCacheWorker(rows, fetch, idle=0.05), RowCacheWorker(rows, fetch, idle=0.05):
        await until(lambda: _all_refreshed(counts, 5, 5), "five refreshes of every row")
    assert overlaps == 0
    assert await redis_client.hlen(rows.claims_key) == 0  # closing handed every claim back


async def _all_refreshed(counts: dict[str, int], rows: int, times: int) -> bool:
    return len(counts) == rows and min(counts.values()) >= times


async def test_diverged_zsets_and_gone_rows_are_dropped(redis_client: Any) -> None:
    rows = RowCache(redis_client)
    await redis_client.zadd(rows.schedule_key, {"orphan": 1})  # no delay: book TypeError
    await rows.schedule_row_cache("gone", delay=5)
    assert await rows.cache_rows(lambda row: None) == "gone"
    assert await rows.cache_rows(lambda row: 1) is None
    assert await redis_client.zcard(rows.schedule_key) == 0
    assert await redis_client.zcard(rows.delay_key) == 0


async def test_a_failing_fetch_is_retried(redis_client: Any) -> None:
    rows = RowCache(redis_client)
    await rows.schedule_row_cache("r", delay=60)

    def broken(row: str) -> Any:
        raise RuntimeError("db down")

    assert await rows.cache_rows(broken, retry=0.05) == "r"
    assert await rows.get_row("r") is None
    await asyncio.sleep(0.1)
    assert await rows.cache_rows(lambda row: {"ok": True}) == "r"
    assert await rows.get_row("r") == {"ok": True}


async def test_a_cancelled_refresh_gives_the_row_back(redis_client: Any) -> None:
    rows = RowCache(redis_client)
    await rows.schedule_row_cache("r", delay=60)
    started = asyncio.Event()

    async def slow(row: str) -> int:
        started.set()
        await asyncio.sleep(10)
        return 1

    task = asyncio.create_task(rows.cache_rows(slow, lease=30))
    await started.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await redis_client.hlen(rows.claims_key) == 0
    assert await rows.cache_rows(lambda row: 2) == "r"  # due at once, not after the lease
    assert await rows.get_row("r") == 2
    for delay in (0, 0.0001, 0.001, 0.005):
        await rows.schedule_row_cache("s", delay=60)
        task = asyncio.create_task(rows.cache_rows(lambda row: 3))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.02)
        assert await redis_client.hlen(rows.claims_key) == 0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda p, r: p.cache_request(1, lambda x: x), TypeError),
        (lambda p, r: p.cache_request("", lambda x: x), ValueError),
        (lambda p, r: p.cache_request(URL, None), TypeError),
        (lambda p, r: p.can_cache(None), TypeError),
        (lambda p, r: r.schedule_row_cache("", delay=1), ValueError),
        (lambda p, r: r.schedule_row_cache("x", delay="1"), TypeError),
        (lambda p, r: r.schedule_row_cache("x", delay=float("inf")), ValueError),
        (lambda p, r: r.cache_rows(None), TypeError),
        (lambda p, r: r.cache_rows(lambda x: x, lease=0), ValueError),
        (lambda p, r: r.get_row(5), TypeError),
    ],
)
async def test_bad_input_is_rejected_before_redis(call: Any, error: type[Exception]) -> None:
    pages, rows = PageCache(object()), RowCache(object())
    with pytest.raises(error):
        await call(pages, rows)


def test_bad_construction_is_rejected() -> None:
    with pytest.raises(TypeError):
        PageCache(None)
    with pytest.raises(ValueError, match="ttl"):
        PageCache(object(), ttl=0)
    with pytest.raises(TypeError):
        PageCache(object(), sessions="s")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RowCacheWorker("rows", print)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lease"):
        RowCacheWorker(RowCache(object()), print, lease=-1)
