"""Test the ``market`` benchmark table and its ports of the book's marketplace.

The table (Redis in Action §11.3.2, inventory §2d) runs for 0.3 s a row against the session's real
servers, standalone and cluster; speed is never asserted, only the shape of its JSON, that
every row listed and bought, and that nothing is left behind. The ports are checked against
the book's own test scenarios (ch04 ``test_list_item``/``test_purchase_item``, ch11
``test_marketplace``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import bench_keys_left, ops_by_variant, run_table

from aiorpatterns.testing.pytest_plugin import Endpoint
from benchmarks import market as table
from benchmarks.baselines import ch04_market, ch06_market, ch11_market
from benchmarks.runner import ClientStats

BOOK = {"book-no-lock", "book-lock", "book-fine-lock", "book-lua"}
VARIANTS = {
    *BOOK,
    *(name + "-async" for name in BOOK),
    "aiorpatterns",
    "aiorpatterns-autopipeline",
    "limit",
}
#: Rows that never retry: no WATCH anywhere in them.
NO_RETRIES = VARIANTS - {"book-no-lock", "book-no-lock-async"}
#: Rows that always buy in a 0.3 s row: nothing starves their buyers.
BUYING = {"book-lua", "book-lua-async", "aiorpatterns", "aiorpatterns-autopipeline"}


def _t(value: Any) -> Any:
    """A reply as text, whether the client decodes responses or not."""
    if isinstance(value, set):
        return {_t(v) for v in value}
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_market_table_rows(topology: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    endpoint: Endpoint = request.getfixturevalue(fixture)
    data = run_table(
        tmp_path, "market", "--duration", "0.3", "--url", endpoint.url, "--topology", topology
    )
    assert (data["table"], data["topology"]) == ("market", topology)
    rows = {(r["variant"], r["clients"]) for r in data["rows"]}
    assert rows <= {(v, n) for v in VARIANTS for n in (1, 5)}
    watching = {"book-no-lock-async", "book-lock-async", "book-fine-lock-async"}
    if topology == "cluster":  # redis-py's asyncio cluster WATCH can deadlock; the sync one runs
        assert not {v for v, _ in rows} & watching
    expected = VARIANTS - watching if topology == "cluster" else VARIANTS
    assert {(v, n) for v in expected for n in (1, 5)} == rows
    for row in data["rows"]:
        name = row["variant"]
        assert row["tries"] >= row["ops"], row
        if name in NO_RETRIES:
            assert row["retries"] == 0, row
        if name == "limit":
            continue
        assert row["listed"] > 0, row
        if name in BUYING:
            assert row["ops"] > 0, row
            assert (row["avg_wait_ms"] or 0) > 0, row
        book = table.BOOK_BOUGHT.get(name)
        expected = book / 60 if book is not None and row["clients"] == 5 else None
        assert row["book"] == (None if expected is None else pytest.approx(expected))
    # Pipelines of 100 listings and sales: a loaded 0.3 s row may end before one of them does.
    assert ops_by_variant(data["rows"])["limit"] > 0
    assert "### `market`" in (tmp_path / "out.md").read_text()
    assert bench_keys_left(endpoint.url, topology) == [], "the table left keys behind"


class _Hiccup(table.Ours):
    """Our shop, whose first listing is cancelled from inside, as a client library might."""

    def __init__(self) -> None:
        super().__init__()
        self.hiccups = 1

    async def sell(self, client: Any, seller: str, item: str, price: int) -> bool:
        if self.hiccups:
            self.hiccups -= 1
            raise asyncio.CancelledError
        return await super().sell(client, seller, item, price)


async def test_a_pair_outlives_a_stray_cancel_of_its_lister(redis_client: Any) -> None:
    """The buyer goes on to the deadline and its time is counted (a CI failure once)."""
    st = ClientStats()
    op = table._pair_op(_Hiccup(), redis_client, redis_client, st)
    await op(time.perf_counter() + 1.0)  # time enough for a first listing on a loaded machine
    assert st.counts["stray_cancels"] == 1
    assert "buyer_seconds" in st.counts  # counted even if funding outlasted the row


async def test_ch04_ports_pass_the_books_tests(redis_client_text: Any) -> None:
    """ch04 ``test_list_item`` (L305) and ``test_purchase_item`` (L325), under one hash tag."""
    r, p = redis_client_text, "t:{m}:"
    await r.sadd(p + "inventory:userX", "itemX")
    assert await ch04_market.list_item(r, "itemX", "userX", 10, key_prefix=p)
    assert await r.zscore(p + "market:", "itemX.userX") == 10
    assert await ch04_market.list_item(r, "itemX", "userX", 10, key_prefix=p) is None
    await r.hset(p + "users:userY", "funds", 125)
    assert await ch04_market.purchase_item(r, "userY", "itemX", "userX", 9, key_prefix=p) is None
    assert await ch04_market.purchase_item(r, "userY", "itemX", "userX", 10, key_prefix=p)
    assert _t(await r.smembers(p + "inventory:userY")) == {"itemX"}
    assert _t(await r.hget(p + "users:userY", "funds")) == "115"
    assert _t(await r.hget(p + "users:userX", "funds")) == "10"
    assert await r.zscore(p + "market:", "itemX.userX") is None


@pytest.mark.parametrize("fine", [False, True])
async def test_ch06_ports_buy_under_a_lock(redis_client_text: Any, fine: bool) -> None:
    r, p = redis_client_text, "t:{m}:"
    lockname = ch06_market.item_lockname("i", "s") if fine else "market:"
    await r.sadd(p + "inventory:s", "i")
    assert await ch06_market.list_item_with_lock(r, "i", "s", 7, lockname=lockname, key_prefix=p)
    await r.hset(p + "users:b", "funds", 5)
    buy = ch06_market.purchase_item_with_lock
    assert await buy(r, "b", "i", "s", lockname=lockname, key_prefix=p) is None  # 5 < 7
    await r.hset(p + "users:b", "funds", 7)
    assert await buy(r, "b", "i", "s", lockname=lockname, key_prefix=p) is True
    assert _t(await r.hget(p + "users:b", "funds")) == "0"
    assert await r.exists(p + "lock:" + lockname) == 0, "the lock was released"


async def test_ch11_ports_pass_the_books_test(redis_client_text: Any) -> None:
    """ch11 ``test_marketplace`` (L660), with its listing script's ZADD repaired."""
    r, p = redis_client_text, "t:{m}:"
    await ch11_market.load(r)
    await r.sadd(p + "inventory:1", "1")
    await r.hset(p + "users:2", "funds", 5)
    assert not await ch11_market.list_item(r, "2", "1", 10, key_prefix=p)
    assert await ch11_market.list_item(r, "1", "1", 10, key_prefix=p)
    assert await r.zscore(p + "market:", "1.1") == 10  # the repository's script stores 1.1
    assert not await ch11_market.purchase_item(r, "2", "1", "1", key_prefix=p)
    await r.zadd(p + "market:", {"1.1": 4})
    assert await ch11_market.purchase_item(r, "2", "1", "1", key_prefix=p)
    assert _t(await r.hget(p + "users:2", "funds")) == "1"
