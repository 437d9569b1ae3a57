"""Test the ``autocomplete`` benchmark table and the book's autocomplete ports.

The table (Redis in Action §11.3.1, inventory §2c) runs for 0.2 s a row against the session's
real servers; speed is never asserted, only the shape of its JSON and that the library rows
wrote nothing and leaked no marker. The ``book-*`` ports of §6.1 and §11.3.1 are checked against
the book's own test scenarios (inventory §3), on both topologies.
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import helpers
import pytest

from aiorpatterns.search.autocomplete import Autocomplete
from aiorpatterns.testing.pytest_plugin import Endpoint
from benchmarks import autocomplete as table
from benchmarks.baselines import ch06_autocomplete, ch11_autocomplete
from benchmarks.cli import main
from benchmarks.runner import ClientStats, Job, Target

ROW_KEYS = helpers.ROW_KEYS | {"writes", "leaked_markers", "runs"}
TOP_KEYS = helpers.TOP_KEYS | {"params"}
VARIANTS = {
    "book-original",
    "book-lua",
    "book-original-async",
    "book-lua-async",
    "aiorpatterns",
    "aiorpatterns-procs",
    "aiorpatterns-autopipeline",
    "walrus",
    "limit",
}
#: Rows that do not run on a cluster: the asyncio WATCH row (redis-py's asyncio cluster WATCH
#: can deadlock; the sync one runs) and walrus (no cluster client).
NOT_ON_CLUSTER = {"book-original-async", "walrus"}
OURS = {"aiorpatterns", "aiorpatterns-procs", "aiorpatterns-autopipeline", "limit"}
LUA = {"book-lua", "book-lua-async"}
RUNS = {
    "book-original": "sync",
    "book-lua": "sync",
    "walrus": "sync",
    "aiorpatterns-procs": "processes",
}
#: The ch11 test's sentence: 'these are some words that we will be autocompleting on'.
WORDS = ["these", "are", "some", "words", "that", "we", "will", "be", "autocompleting", "on"]
BOOK_PORTS = [ch06_autocomplete, ch11_autocomplete]


def _run(tmp_path: Path, *args: str) -> dict[str, Any]:
    argv = ["autocomplete", *args, "--duration", "0.2", "--clients", "1,2", "--quiet"]
    argv += ["--json", str(tmp_path / "out.json"), "--plot", str(tmp_path / "out.png")]
    argv += ["--markdown", str(tmp_path / "out.md")]
    assert main(argv) == 0
    data: dict[str, Any] = json.loads((tmp_path / "out.json").read_text())
    return data


def _check(data: dict[str, Any], topology: str) -> None:
    assert set(data) == TOP_KEYS
    assert data["table"] == "autocomplete"
    assert data["topology"] == topology
    params = data["params"]
    assert params["guild_size"] == 1000
    assert params["name_lengths"] == [5, 10]
    assert set(params["prefix_lengths"]) == {"1", "2", "3"}
    assert sum(params["prefix_lengths"].values()) == params["prefixes"] == 1000
    rows = data["rows"]
    expected = VARIANTS - NOT_ON_CLUSTER if topology == "cluster" else VARIANTS
    assert {r["variant"] for r in rows} == expected
    for variant in expected:
        counts = {1, 2} if variant in RUNS else {1, 2, table.MANY}  # no 100 processes
        assert {r["clients"] for r in rows if r["variant"] == variant} == counts, variant
    for row in rows:
        assert set(row) == ROW_KEYS, row
        assert row["runs"] == RUNS.get(row["variant"], "coroutines"), row
        assert row["tries"] >= row["ops"] >= 0
        assert row["retries"] == row["tries"] - row["ops"]
        # Calls in flight at the deadline run to their end: the book's calls leak no marker
        # unless a client dies mid-call.
        assert row["leaked_markers"] == 0, row
        if row["variant"] == "walrus":  # its index is seeded before the row: searches read
            assert row["writes"] == 0, row
        if row["variant"] in OURS:
            assert row["leaked_markers"] == 0, row
            assert row["writes"] == 0, row
            assert row["retries"] == 0, row
        if row["variant"] in LUA:
            assert row["leaked_markers"] == 0, row  # the script is atomic
            assert row["retries"] == 0, row
        # One call of the limit row is a pipeline of 100 (on a cluster, split over the nodes):
        # on a loaded machine not one may end within a 0.2 s row, so only the single calls must.
        # test_the_limit_row_keeps_100_calls_per_pipeline checks the limit row's calls.
        watch = {"book-original", "book-original-async", "limit"}
        if row["variant"] not in watch and row["clients"] <= 2:
            assert row["ops"] > 0, row
    lua_1 = next(r for r in rows if r["variant"] == "book-lua" and r["clients"] == 1)
    assert lua_1["book"] == pytest.approx(6444.0)
    original_2 = next(r for r in rows if r["variant"] == "book-original" and r["clients"] == 2)
    assert original_2["book"] == pytest.approx(1755.1)
    assert all(r["book"] is None for r in rows if r["variant"].endswith("-async"))


def test_table_on_a_standalone_server(redis_server: Endpoint, tmp_path: Path) -> None:
    data = _run(tmp_path, "--url", redis_server.url)
    _check(data, "standalone")
    lua = [r for r in data["rows"] if r["variant"] in LUA and r["ops"]]
    assert all(r["writes"] >= 4 * r["ops"] for r in lua)  # two markers added, two removed
    markdown = (tmp_path / "out.md").read_text()
    assert "### `autocomplete`" in markdown
    assert "| retries | writes | leaked markers |" in markdown
    assert "target: 10 clients" in markdown  # reported, not measured at 1-2 clients
    assert "target: 100 clients" in markdown
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"


def test_table_on_a_cluster(redis_cluster_server: Endpoint, tmp_path: Path) -> None:
    _check(_run(tmp_path, "--url", redis_cluster_server.url, "--topology", "cluster"), "cluster")


async def test_only_non_empty_pages_in_time_count(redis_standalone_client: Any) -> None:
    """Inventory §2c: an autocomplete is a call that returned results, before the deadline."""
    far = time.perf_counter() + 60

    async def page(items: list[str], on_try: Any) -> list[str]:
        on_try()
        return items

    st = ClientStats()
    await table._count(st, far, partial(page, []))
    assert (st.tries, st.ops) == (1, 0)
    await table._count(st, far, partial(page, ["ab"]))
    assert (st.tries, st.ops) == (2, 1)
    await table._count(st, time.perf_counter(), partial(page, ["ab"]))  # ended late
    assert (st.tries, st.ops) == (2, 1)

    async def complete(prefix: str) -> list[str]:
        return []

    op = table._single_op(complete, st, 0)
    await op(far)
    assert (st.tries, st.ops) == (3, 1)


async def test_a_call_cut_off_at_the_deadline_cleans_up(redis_standalone_client: Any) -> None:
    """The runner cancels a client at the deadline: its book-original call still ends cleanly."""
    r = redis_standalone_client
    await r.zadd(table.BOOK_KEY, dict.fromkeys(table.NAMES, 0))
    stats = [ClientStats() for _ in range(20)]
    clients = [r] * len(stats)  # one connection pool: the WATCH loops contend
    ops = [
        table._book_original(_job(len(stats))).make_op(c, st, i)
        for i, (c, st) in enumerate(zip(clients, stats, strict=True))
    ]
    deadline = time.perf_counter() + 0.05
    tasks = [asyncio.create_task(_drive(op, deadline)) for op in ops]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert await table._leaked(r, [table.BOOK_KEY]) == 0
    assert await r.zcard(table.BOOK_KEY) == len(table.NAMES)


async def _drive(op: Any, deadline: float) -> None:
    while time.perf_counter() < deadline:
        await op(deadline)


def _job(clients: int) -> Job:
    target = Target("redis://unused")
    return Job("autocomplete", "limit", clients, clients, 1.0, target)


async def test_the_limit_row_keeps_100_calls_per_pipeline(redis_standalone_client: Any) -> None:
    """At 100 clients too: the limit row is a ceiling for every row, the autopipeline's too."""
    r = redis_standalone_client
    await table._ours(r).join(*table.NAMES)
    for clients in (1, table.MANY):
        st = ClientStats()
        op = table._limit(_job(clients)).make_op(r, st, 0)
        await op(time.perf_counter() + 60)
        assert st.tries == st.ops == table.BATCH == 100


def test_the_workload_is_fixed() -> None:
    assert len(table.NAMES) == len(set(table.NAMES)) == 1000
    assert all(5 <= len(n) <= 10 and n.isascii() and n.isalpha() for n in table.NAMES)
    assert all(n == n.lower() for n in table.NAMES)
    names = set(table.NAMES)
    assert all(1 <= len(p) <= 3 for p in table.PREFIXES)
    assert all(any(n.startswith(p) for n in names) for p in table.PREFIXES)
    assert table._names() == table.NAMES
    assert table._prefixes(table.NAMES) == table.PREFIXES


# -- the book ports give the book's answers (inventory §3) -----------------------------------------


@pytest.mark.parametrize("port", BOOK_PORTS, ids=["ch06-watch", "ch11-lua"])
async def test_book_port_autocomplete_on_prefix(redis_client: Any, port: Any) -> None:
    """ch11 ``test_autocomplet_on_prefix``, with the ch06 WATCH version and the Lua one."""
    for word in WORDS:
        await ch06_autocomplete.join_guild(redis_client, "test", word, key_prefix="bench:")
    complete = port.autocomplete_on_prefix
    assert await complete(redis_client, "test", "th", key_prefix="bench:") == ["that", "these"]
    assert await complete(redis_client, "test", "w", key_prefix="bench:") == ["we", "will", "words"]
    assert await complete(redis_client, "test", "autocompleting", key_prefix="bench:") == [
        "autocompleting"
    ]
    assert await table._leaked(redis_client, ["bench:members:test"]) == 0  # markers removed
    assert await redis_client.zcard("bench:members:test") == len(WORDS)


@pytest.mark.parametrize("port", BOOK_PORTS, ids=["ch06-watch", "ch11-lua"])
async def test_book_port_address_book_autocomplete(redis_client: Any, port: Any) -> None:
    """ch06 ``test_address_book_autocomplete``: 'je' finds 3, then 2 after jeff leaves."""
    for name in ("jeff", "jenny", "jack", "jennifer"):
        await ch06_autocomplete.join_guild(redis_client, "test", name)
    assert len(await port.autocomplete_on_prefix(redis_client, "test", "je")) == 3
    await ch06_autocomplete.leave_guild(redis_client, "test", "jeff")
    assert len(await port.autocomplete_on_prefix(redis_client, "test", "je")) == 2


async def test_book_port_contacts(redis_client_text: Any) -> None:
    """ch06 ``test_add_update_contact`` against the ported LIST functions."""
    r = redis_client_text
    for i in range(10):
        await ch06_autocomplete.add_update_contact(r, "user", f"contact-{i // 3}-{i}")
    everyone = [
        x.decode() if isinstance(x, bytes) else x for x in await r.lrange("recent:user", 0, -1)
    ]
    assert len(everyone) >= 10
    await ch06_autocomplete.add_update_contact(r, "user", "contact-1-4")
    assert await ch06_autocomplete.fetch_autocomplete_list(r, "user", "contact-1-4") == [
        "contact-1-4"
    ]
    assert (await r.lindex("recent:user", 0)) in (b"contact-1-4", "contact-1-4")
    await ch06_autocomplete.remove_contact(r, "user", "contact-2-6")
    everyone = await ch06_autocomplete.fetch_autocomplete_list(r, "user", "c")
    assert len(everyone) >= 9
    assert "contact-2-6" not in everyone
    assert await ch06_autocomplete.fetch_autocomplete_list(r, "user", "contact-2-") == [
        c for c in everyone if c.startswith("contact-2-")
    ]


async def test_book_ports_keep_their_flaws(redis_client: Any) -> None:
    """The ports are the book's code: a name holding '{' is dropped (inventory row 9)."""
    for name in ("a{b", "ab"):
        await ch06_autocomplete.join_guild(redis_client, "flaw", name, key_prefix="bench:")
    for port in BOOK_PORTS:
        got = await port.autocomplete_on_prefix(redis_client, "flaw", "a", key_prefix="bench:")
        assert got == ["ab"]
    assert ch06_autocomplete.find_prefix_range("abc") == ("abb{", "abc{")
    assert ch06_autocomplete.find_prefix_range("a") == ("`{", "a{")
    ours = Autocomplete(redis_client, "flaw")
    await ours.join("a{b", "ab")
    assert await ours.complete("a") == ["ab", "a{b"]


async def test_leak_count_sees_a_markers_left_behind(redis_client: Any) -> None:
    """A caller that dies between the ZADD of its markers and the EXEC leaves them forever."""
    key = "bench:members:leak"
    await redis_client.zadd(key, {"alpha": 0, "beta": 0, "al{x": 0, "am{x": 0})
    assert await table._leaked(redis_client, [key]) == 2
    assert await table._dirty(redis_client) >= 4
