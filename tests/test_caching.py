"""Test PageCache, RowCache and RowCacheWorker: no stampede, one refresher per row, clean stops.

Redis in Action §2.3-§2.5 (``cache_request``, ``can_cache``, ``schedule_row_cache``,
``cache_rows``) and the book's ``test_cache_request`` and ``test_cache_rows``. Every test runs
on a standalone server and a cluster; the ``_text`` ones also with ``decode_responses`` on/off.
Issue 11 item 3b: PageCache cached only ``?item=`` pages, silently; now it caches every request
unless ``should_cache`` says no, and caches ``bytes`` pages as bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Any

import pytest
import redis
from helpers import NO_REDIS, until
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from aiorpatterns.core.scripts import script
from aiorpatterns.webapp.caching import (
    PageCache,
    RowCache,
    RowCacheWorker,
    book_can_cache,
    request_digest,
)
from aiorpatterns.webapp.sessions import Sessions

URL = "http://test.com/?item=itemX"


async def test_book_cache_request(redis_client_text: Any) -> None:
    sessions = Sessions(redis_client_text)
    await sessions.update_token("t", "username", "itemX")
    pages = PageCache(redis_client_text, should_cache=book_can_cache(sessions))
    result = await pages.cache_request(URL, lambda r: "content for " + r)
    assert result == "content for " + URL

    def fail(request: str) -> str:
        raise AssertionError("the page was cached")

    assert await pages.cache_request(URL, fail) == result
    assert not await pages.can_cache("http://test.com/")
    assert not await pages.can_cache("http://test.com/?item=itemX&_=1234536")
    assert not await pages.can_cache("http://test.com/?item=unviewed")
    assert 0 < await redis_client_text.pttl(pages.page_key(URL)) <= 300_000
    # Outside the rule, a page is rendered on every request and never stored.
    calls: list[str] = []
    product = "http://test.com/product"

    def render(request: str) -> str:
        calls.append(request)
        return "p"

    for _ in range(2):
        assert await pages.cache_request(product, render) == "p"
    assert calls == [product, product]
    assert not await redis_client_text.exists(pages.page_key(product))
    top_one = PageCache(redis_client_text, should_cache=book_can_cache(sessions, top=1))
    await sessions.update_token("t", "username", "itemY")
    await sessions.update_token("t", "username", "itemY")
    assert await top_one.can_cache("http://test.com/?item=itemY")
    assert not await top_one.can_cache(URL)  # ranks second now


async def test_every_request_is_cached_by_default(redis_client: Any) -> None:
    # The reported footgun: a user's /product page was rendered on every request.
    pages = PageCache(redis_client)
    calls: list[str] = []

    async def render(request: str) -> str:
        calls.append(request)
        return "page of " + request

    requests = ["http://shop/product", "/product?id=7", "http://shop/?item=1&_=123", "/"]
    for request in requests * 2:
        assert await pages.cache_request(request, render) == "page of " + request
        assert await pages.can_cache(request)
    assert calls == requests
    for request in requests:
        assert await pages.get_page(request) == "page of " + request


async def test_should_cache_decides_sync_or_async(redis_client: Any) -> None:
    asked: list[str] = []

    def only_products(request: str) -> bool:
        asked.append(request)
        return request.startswith("/product")

    async def never(request: str) -> bool:
        return False

    pages = PageCache(redis_client, should_cache=only_products)
    calls: list[str] = []

    def render(request: str) -> bytes:
        calls.append(request)
        return request.encode()

    for request in ["/product", "/cart", "/product", "/cart"]:
        assert await pages.cache_request(request, render) == request.encode()
    assert calls == ["/product", "/cart", "/cart"]
    assert asked == ["/product", "/cart", "/product", "/cart"]
    assert not await redis_client.exists(pages.page_key("/cart"))
    uncached = PageCache(redis_client, "uncached", should_cache=never)
    assert await uncached.cache_request("/product", render) == b"/product"
    assert not await redis_client.exists(uncached.page_key("/product"))
    assert not await redis_client.exists(uncached.page_key("/product") + ":claim")


PAGES: list[str | bytes] = [
    "héllo ✓ wörld",
    "",
    b"\x1f\x8b\x08\x00\xff\xfe\x00 not utf-8 \x80\xc3",
    b"",
    bytes(range(256)) * 8,
    "b" + "not bytes, though it starts like a marker",
    "s",
]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"{type(p).__name__}-{len(p)}")
async def test_str_and_bytes_pages_come_back_as_rendered(redis_client_text: Any, page: Any) -> None:
    pages = PageCache(redis_client_text)
    calls = 0

    async def render(request: str) -> Any:
        nonlocal calls
        calls += 1
        return page

    first = await pages.cache_request(URL, render)
    hit = await pages.cache_request(URL, render)
    assert calls == 1
    for got in (first, hit, await pages.get_page(URL)):
        assert type(got) is type(page)
        assert got == page


async def test_pages_read_back_whatever_decode_responses(
    redis_client: Any, new_client: Any
) -> None:
    # A page stored by one process is read by another that may decode replies or not.
    decoding, raw = await new_client(decode_responses=True), await new_client()
    binary, words = b"\xff\xfe\x00\x80", "naïve ✓"
    writer = PageCache(decoding)
    assert await writer.cache_request("/bin", lambda r: binary) == binary
    writer = PageCache(raw)
    assert await writer.cache_request("/txt", lambda r: words) == words
    for client in (decoding, raw):
        reader = PageCache(client)
        assert await reader.cache_request("/bin", _never) == binary
        assert await reader.cache_request("/txt", _never) == words
        assert await reader.get_page("/bin") == binary
        assert await reader.get_page("/txt") == words


def _never(request: str) -> Any:
    raise AssertionError("rendered, though the page was cached")


@pytest.mark.parametrize("wrong", [None, 42, bytearray(b"x"), memoryview(b"x"), ["x"]])
async def test_a_page_neither_str_nor_bytes_is_refused_and_not_cached(
    redis_client: Any, wrong: Any
) -> None:
    pages = PageCache(redis_client, claim_timeout=30)
    with pytest.raises(TypeError, match="str or bytes"):
        await pages.cache_request(URL, lambda r: wrong)
    assert not await redis_client.exists(pages.page_key(URL))
    assert not await redis_client.exists(pages.page_key(URL) + ":claim")  # handed on at once
    assert await asyncio.wait_for(pages.cache_request(URL, lambda r: "ok"), 5) == "ok"
    uncached = PageCache(NO_REDIS, should_cache=lambda r: False)
    with pytest.raises(TypeError, match="str or bytes"):
        await uncached.cache_request(URL, lambda r: wrong)


async def test_a_foreign_value_is_rendered_over_not_served(
    redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pages = PageCache(redis_client)
    for foreign in ("<html>written by 0.1, no marker", "b!!! not base64"):
        await redis_client.set(pages.page_key(URL), foreign)
        with caplog.at_level(logging.WARNING, logger="aiorpatterns.webapp.caching"):
            assert await pages.cache_request(URL, lambda r: "fresh") == "fresh"
            assert await pages.get_page(URL) is None
        assert "no page written by PageCache" in caplog.text
        caplog.clear()


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


class _SlowStore:
    """Mixin: every cache_row_store is held back until ``go`` is set (``sent`` says it waits)."""

    sent: asyncio.Event
    go: asyncio.Event

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if str(args[0]).upper() == "EVALSHA" and args[1] == script("cache_row_store").sha:
            self.sent.set()
            await self.go.wait()
        return await super().execute_command(*args, **options)  # type: ignore[misc]


class _SlowRedis(_SlowStore, Redis):
    pass


class _SlowCluster(_SlowStore, RedisCluster):
    pass


async def test_closing_a_worker_mid_store_returns_once_the_row_is_handed_back(
    redis_client: Any, request: pytest.FixtureRequest
) -> None:
    # Issue 10 item 6: aclose() returned while the worker's store (shielded) was still in
    # flight, so a claim was still in `claims` after the close; under CPU load, every time.
    topology = request.node.callspec.params["redis_client"]
    endpoint = request.getfixturevalue(
        "redis_cluster_server" if topology == "cluster" else "redis_server"
    )
    slow: Any = (_SlowCluster if topology == "cluster" else _SlowRedis).from_url(endpoint.url)
    slow.sent, slow.go = asyncio.Event(), asyncio.Event()
    try:
        rows = RowCache(slow)
        await rows.schedule_row_cache("r", delay=60)
        worker = RowCacheWorker(rows, lambda row: {"v": 1}, idle=0.05)
        worker.start()
        await slow.sent.wait()  # fetched; the store is about to be sent
        closing = asyncio.create_task(worker.aclose())
        # A bounded wait for what must not happen: aclose() returning with the row claimed.
        await asyncio.wait([closing], timeout=0.1)
        assert not closing.done(), "aclose() returned before the row was stored"
        slow.go.set()
        await closing
        assert await redis_client.hlen(rows.claims_key) == 0
        assert await rows.get_row("r") == {"v": 1}
    finally:
        slow.go.set()
        await slow.aclose()


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
        (lambda p, r: PageCache(NO_REDIS, should_cache=_one).can_cache(URL), TypeError),
        (lambda p, r: PageCache(NO_REDIS, should_cache=_none).cache_request(URL, str), TypeError),
        (lambda p, r: p.get_page(b"/bytes"), TypeError),
        (lambda p, r: r.schedule_row_cache("", delay=1), ValueError),
        (lambda p, r: r.schedule_row_cache("x", delay="1"), TypeError),
        (lambda p, r: r.schedule_row_cache("x", delay=float("inf")), ValueError),
        (lambda p, r: r.schedule_row_cache("x", delay=float("nan")), ValueError),
        (lambda p, r: r.schedule_row_cache("x", delay=1e10), ValueError),  # beyond MAX_SECONDS
        (lambda p, r: r.schedule_row_cache("x", delay=True), TypeError),
        (lambda p, r: r.cache_rows(lambda x: x, retry=float("nan")), ValueError),
        (lambda p, r: r.cache_rows(None), TypeError),
        (lambda p, r: r.cache_rows(lambda x: x, lease=0), ValueError),
        (lambda p, r: r.get_row(5), TypeError),
    ],
)
async def test_bad_input_is_rejected_before_redis(call: Any, error: type[Exception]) -> None:
    pages, rows = PageCache(NO_REDIS), RowCache(NO_REDIS)
    with pytest.raises(error):
        await call(pages, rows)


# should_cache must answer a bool: a truthy int or a forgotten return is a mistake, not a yes.
def _one(request: str) -> Any:
    return 1


async def _none(request: str) -> Any:
    return None


def test_bad_construction_is_rejected() -> None:
    with pytest.raises(TypeError):
        PageCache(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        PageCache(NO_REDIS, ttl=0)
    with pytest.raises(TypeError, match="should_cache must be callable"):
        PageCache(NO_REDIS, should_cache=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PageCache(NO_REDIS, sessions="s")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="sessions must be a Sessions"):
        book_can_cache(NO_REDIS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top"):
        book_can_cache(Sessions(NO_REDIS), top=0)
    for make in (PageCache, RowCache):
        with pytest.raises(TypeError, match=r"from redis\.asyncio import Redis"):
            make(redis.Redis())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="redis must be"):
            make("redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RowCacheWorker("rows", print)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lease"):
        RowCacheWorker(RowCache(NO_REDIS), print, lease=-1)
