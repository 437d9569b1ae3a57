"""Cancellation storms on the page cache and the row cache workers (issue 10, rule 3).

Many callers ask for the same few pages at once while about half of them, renderers included,
are cancelled at random moments: every surviving caller gets its page, no page is rendered by
two callers at once, and no claim is left held by nobody. Many row cache workers start and are
cancelled mid-refresh: no claim is left, every scheduled row stays scheduled and due within its
delay, and no row is refreshed by two workers at once. Both topologies; the figures go to the
storm log (``storms.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import until
from storms import storm

from aiorpatterns.webapp.caching import PageCache, RowCache, RowCacheWorker

PAGES = [f"http://test.com/?item=p{i}" for i in range(3)]


def _topology(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["redis_client"])


async def test_page_cache_storm(redis_client: Any, request: pytest.FixtureRequest) -> None:
    # Long claim and wait: a claim left by a cancelled renderer would stall every waiter (and
    # fail the test's bounded waits) instead of being taken over after a timeout.
    pages = PageCache(redis_client, name="storm", claim_timeout=60, wait=60)
    rendering: dict[str, int] = dict.fromkeys(PAGES, 0)
    started: dict[str, int] = dict.fromkeys(PAGES, 0)
    finished: dict[str, int] = dict.fromkeys(PAGES, 0)
    overlaps = 0

    async def render(page: str) -> str:
        nonlocal overlaps
        if rendering[page]:
            overlaps += 1  # two renderers of one page at once: a claim was not single
        rendering[page] += 1
        started[page] += 1
        try:
            await asyncio.sleep(0.02)
            if started[page] == 1:
                # The first renderer of each page is cancelled mid-render, whatever the storm
                # picked: its claim must pass to a waiter at once.
                task = asyncio.current_task()
                assert task is not None
                task.cancel()
            await asyncio.sleep(0.03)
        finally:
            rendering[page] -= 1
        finished[page] += 1
        return "content of " + page

    async def call(i: int) -> tuple[str, str]:
        page = PAGES[i % len(PAGES)]
        return page, await pages.cache_request(page, render)

    report = await storm(call, tasks=60, within=0.15)
    assert report.results, "no call completed: the storm cancelled everything"
    assert all(n >= 2 for n in started.values()), "a cancelled renderer was not replaced"
    lost = sum(1 for page, got in report.results if got != "content of " + page)

    async def no_claim() -> bool:
        found = [await redis_client.exists(pages.page_key(p) + ":claim") for p in PAGES]
        return not any(found)

    await until(no_claim, "every claim given back")
    leftovers = sum([await redis_client.exists(pages.page_key(p) + ":claim") for p in PAGES])
    # Once a page is rendered to the end it is cached: no later claim, no second full render.
    duplicated = overlaps + sum(max(0, n - 1) for n in finished.values())
    for page, got in report.results:
        assert await pages.get_page(page) == got
    report.record(
        "PageCache",
        _topology(request),
        lost=lost,
        duplicated=duplicated,
        leftovers=leftovers,
        renders=sum(started.values()),
    )
    assert (lost, duplicated, leftovers) == (0, 0, 0)


async def test_row_cache_worker_storm(redis_client: Any, request: pytest.FixtureRequest) -> None:
    rows = RowCache(redis_client, name="storm")
    names = [f"r{i}" for i in range(10)]
    for row in names:
        await rows.schedule_row_cache(row, delay=0.02)
    busy: set[str] = set()
    overlaps = 0

    async def fetch(row: str) -> dict[str, str]:
        nonlocal overlaps
        if row in busy:
            overlaps += 1
        busy.add(row)
        try:
            await asyncio.sleep(0.01)
        finally:
            busy.discard(row)
        return {"row": row}

    async def call(i: int) -> int:
        # A lease far longer than the test: a claim left behind would keep its row away.
        async with RowCacheWorker(rows, fetch, lease=120, idle=0.05) as worker:
            await until(lambda: _done(worker, 2), "two refreshes")
        return worker.refreshed

    report = await storm(call, tasks=50, within=0.3)
    assert report.results, "no worker completed: the storm cancelled everything"

    async def no_claim() -> bool:
        return await redis_client.hlen(rows.claims_key) == 0

    await until(no_claim, "every claim given back")
    receipts = [k async for k in redis_client.scan_iter(match=rows.claims_key + ":*")]
    leftovers = await redis_client.hlen(rows.claims_key) + len(receipts)
    schedule = await redis_client.zrange(rows.schedule_key, 0, -1, withscores=True)
    lost = len(names) - len(schedule) + len(names) - await redis_client.zcard(rows.delay_key)
    seconds, micros = await redis_client.time()
    now = seconds + micros / 1e6
    # Every row is due within its delay (and a worker's retry), never at a lease's end.
    stuck = [row for row, due in schedule if due > now + 10]
    report.record(
        "RowCacheWorker",
        _topology(request),
        lost=lost + len(stuck),
        duplicated=overlaps,
        leftovers=leftovers,
    )
    assert (lost, stuck, overlaps, leftovers) == (0, [], 0, 0)
    for row in names:
        assert await rows.get_row(row) == {"row": row}


async def _done(worker: RowCacheWorker, refreshes: int) -> bool:
    return worker.refreshed >= refreshes
