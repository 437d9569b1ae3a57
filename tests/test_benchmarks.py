"""Test the benchmark harness: CLI runs, output shapes, and the book ports' correctness.

Speed is never asserted here (DESIGN: no timed assertions); the tables run for 0.2 s a row
against the session's real server. The ``book-*`` ports are checked as what they claim to be:
a lock admits one holder, a semaphore at most ``limit`` (Redis in Action §6.2, §6.3, §11.2),
except the fair semaphore's own race, which the book describes (§6.3.4).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import helpers
import pytest
from rich.console import Console

from aiorpatterns.testing.pytest_plugin import Endpoint
from benchmarks.baselines import ch04_sessions, ch06_locks, ch06_semaphores, ch11_locks
from benchmarks.cli import TABLES, main, output_path, parser, write_files
from benchmarks.report import (
    caption_of,
    describe_variant,
    print_results,
    render_markdown,
    write_plot,
)
from benchmarks.runner import (
    ClientStats,
    CountingClient,
    Row,
    TableResult,
    drive_clients,
    jain_index,
    load_table,
    percentile,
)

ROW_KEYS = helpers.ROW_KEYS
TOP_KEYS = helpers.TOP_KEYS
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_json(path: Path, table: str, mode: str = "coroutines") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    assert set(data) == TOP_KEYS
    assert data["table"] == table
    assert data["topology"] == "standalone"
    assert data["mode"] == mode
    assert data["duration"] == 0.2
    assert set(data["engine"]) == {"name", "version"}
    assert data["engine"]["name"] in {"redis", "valkey"}
    assert set(data["client"]) == {"python", "redis_py", "hiredis", "loop"}
    assert data["rows"], "no rows"
    for row in data["rows"]:
        assert set(row) == ROW_KEYS, row
        assert set(row["latency_ms"]) == {"p50", "p99"}
        assert set(row["fairness"]) == {"jain", "min", "max"}
        assert row["ops"] >= 0
        assert row["tries"] >= row["ops"]
        assert row["retries"] == row["tries"] - row["ops"]
        assert row["seconds"] > 0
        assert row["book"] is None or row["book"] > 0
        assert row["fairness"]["min"] <= row["fairness"]["max"]
    return data


def _variants(data: dict[str, Any]) -> set[str]:
    return {row["variant"] for row in data["rows"]}


def _run(tmp_path: Path, *args: str) -> None:
    argv = [*args, "--duration", "0.2", "--clients", "1,2", "--quiet"]
    argv += ["--json", str(tmp_path / "out.json"), "--plot", str(tmp_path / "out.png")]
    argv += ["--markdown", str(tmp_path / "out.md")]
    assert main(argv) == 0


def test_all_tables_write_json_png_and_markdown(redis_server: Endpoint, tmp_path: Path) -> None:
    _run(tmp_path, "all", "--url", redis_server.url)
    pipeline = _check_json(tmp_path / "out-pipeline.json", "pipeline")
    assert {"book-plain@tcp", "book-pipeline@tcp", "limit-commands@tcp"} <= _variants(pipeline)
    lock = _check_json(tmp_path / "out-lock.json", "lock")
    assert {
        "book-original",
        "book-lua",
        "redis-py",
        "redis-py-fast",
        "coredis",
        "pottery",
        "limit",
    } <= _variants(lock)
    semaphore = _check_json(tmp_path / "out-semaphore.json", "semaphore")
    assert {
        "book-basic",
        "book-fair",
        "book-fair-lock",
        "py-redis-semaphore",
        "limit",
    } <= _variants(semaphore)
    for data in (pipeline, lock, semaphore):
        assert {row["clients"] for row in data["rows"]} >= {1, 2}
    book_lua_1 = next(r for r in lock["rows"] if r["variant"] == "book-lua" and r["clients"] == 1)
    assert book_lua_1["book"] == pytest.approx(4449.4)
    for name in ("pipeline", "lock", "semaphore"):
        assert (tmp_path / f"out-{name}.png").read_bytes()[:8] == PNG_MAGIC
    markdown = (tmp_path / "out.md").read_text()
    for name in ("pipeline", "lock", "semaphore"):
        assert f"### `{name}`" in markdown
    assert "| variant | clients |" in markdown


def test_our_rows_run_when_our_classes_exist(redis_server: Endpoint, tmp_path: Path) -> None:
    pytest.importorskip("aiorpatterns.coordination.semaphores")
    _run(tmp_path, "semaphore", "--url", redis_server.url)
    data = _check_json(tmp_path / "out.json", "semaphore")
    ours = [r for r in data["rows"] if r["variant"].startswith("aiorpatterns")]
    assert {r["variant"] for r in ours} == {"aiorpatterns", "aiorpatterns-fair"}
    assert all(r["ops"] > 0 for r in ours)


def test_pipeline_table_over_a_unix_socket(redis_server: Endpoint, tmp_path: Path) -> None:
    if redis_server.server is None or not hasattr(redis_server.server, "unix_url"):
        pytest.skip("the session server is external: no Unix socket known")
    _run(tmp_path, "pipeline", "--url", redis_server.server.unix_url)
    data = _check_json(tmp_path / "out.json", "pipeline")
    assert all(row["variant"].endswith("@unix") for row in data["rows"])
    plain = next(r for r in data["rows"] if r["variant"] == "book-plain@unix")
    assert plain["book"] == 3761.0


def test_processes_mode_sums_the_workers(redis_server: Endpoint, tmp_path: Path) -> None:
    _run(tmp_path, "lock", "--url", redis_server.url, "--processes", "2")
    data = _check_json(tmp_path / "out.json", "lock", mode="processes")
    for row in data["rows"]:
        assert row["fairness"]["max"] <= row["ops"]
        if row["variant"] == "book-lua":
            assert row["ops"] > 0


def test_output_paths_get_the_table_name_when_shared() -> None:
    assert output_path(None, "lock", many=True) is None
    assert output_path(Path("x/out.json"), "lock", many=False) == Path("x/out.json")
    assert output_path(Path("x/out.json"), "lock", many=True) == Path("x/out-lock.json")


# -- the report, on fake rows (no server: only the shape of the output is tested) ------------

ENGINE = {"name": "valkey", "version": "8.1.1"}
CLIENT: dict[str, str | None] = {
    "python": "3.12.3",
    "redis_py": "8.1.0",
    "hiredis": "3.2.1",
    "loop": "asyncio",
}


def _fake(name: str, counts: tuple[int, ...] = (1, 2, 5, 10)) -> TableResult:
    """A result of the real table ``name`` with a row per variant and count, numbers wide."""
    table = load_table(name)
    result = TableResult(table, "standalone", "coroutines", 1.0, ENGINE, CLIENT)
    for transport in table.transports:
        for k, v in enumerate(table.variants):
            label = f"{v.name}@{transport}" if table.label_transport else v.name
            for n in v.clients if v.clients is not None else (*counts, *v.also_clients):
                per = [1_234_567 + 7_919 * (k + i) for i in range(n)]
                extra: dict[str, float | None] = {key: 98_765_432.0 for key in table.columns}
                row = Row(
                    label, v.name, transport, n, sum(per), sum(per) * 2, 1.0, (0.25, 123.4),
                    per, v.book_rate(transport, n), v.runs, extra,
                )  # fmt: skip
                result.rows.append(row)
    return result


def _printed(results: list[TableResult], width: int, wide: bool = False) -> str:
    buffer = io.StringIO()
    print_results(Console(width=width, file=buffer, color_system=None), results, wide=wide)
    return buffer.getvalue()


@pytest.mark.parametrize("name", TABLES)
def test_the_terminal_table_fits_100_columns(name: str) -> None:
    result = _fake(name)
    text = _printed([result], width=100)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 100
    for row in result.rows:  # every row on one line, unsqueezed: nothing wrapped or cut
        assert any(
            line.split()[:2] == [row.variant, str(row.clients)]
            and f"{row.ops_per_s:,.0f}" in line
            and "…" not in line
            for line in text.splitlines()
            if line.strip()
        ), row.variant
    assert "p99 ms" in text


def test_wide_prints_every_column() -> None:
    text = _printed([_fake("lock")], width=250, wide=True)
    header = next(line for line in text.splitlines() if line.lstrip().startswith("variant"))
    for title in ("tries", "tries/op", "book tries/op", "% limit", "p50 ms", "min-max"):
        assert title in header
    assert max(len(line) for line in text.splitlines()) > 100


def test_footnotes_and_targets_only_when_used() -> None:
    lock = _printed([_fake("lock")], width=100)
    assert "†" not in lock  # every reference has a row at every count
    assert "targets: 1/5 hold · missed: 10 clients: aiorpatterns acquires" in lock
    assert "target:" not in lock  # one line per table, not one per target
    autocomplete = _printed([_fake("autocomplete")], width=100)
    assert "\u00d7\u2020" in autocomplete  # the 100-client rows: no reference row at 100
    assert "† = vs the reference at 1 client" in autocomplete
    queue = _printed([_fake("queue")], width=100)
    assert "†" not in queue
    assert "targets: " in queue  # the queue's two, on one line
    market = _printed([_fake("market")], width=100)
    assert "targets" not in market  # a table without targets prints none
    markdown = render_markdown([_fake("lock")])
    assert "†" not in markdown
    assert "- target: 10 clients" in markdown


def test_variants_are_described_by_name() -> None:
    lock = load_table("lock")
    assert describe_variant(lock, "book-lua") == "the book's code, sync, a process per client"
    assert describe_variant(lock, "book-lua-async") == "asyncio port of the book's code"
    assert describe_variant(lock, "aiorpatterns") == "ours, coroutines"
    assert describe_variant(lock, "aiorpatterns-procs") == "ours, a process per client"
    assert describe_variant(lock, "limit").startswith("the most this client and server do")
    assert "sleep 1 ms" in describe_variant(lock, "redis-py-fast")
    assert describe_variant(lock, "x", {"lock:x": "mine"}) == "mine"
    caption = " ".join(caption_of(_fake("queue")))
    assert "no ack" in caption
    assert "aiorpatterns-get, aiorpatterns-worker, aiorpatterns-batch = ours, coroutines" in caption
    assert "aiorpatterns-worker-procs = ours, a process per client" in caption


@pytest.mark.parametrize("name", ["lock", "pipeline"])
def test_charts_draw_from_fake_rows(name: str, tmp_path: Path) -> None:
    write_plot(tmp_path / "chart.png", _fake(name, counts=(1, 2)))
    assert (tmp_path / "chart.png").read_bytes()[:8] == PNG_MAGIC


def _flags(*argv: str) -> argparse.Namespace:
    return parser().parse_args(["lock", *argv])


def test_files_are_written_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    results = [_fake("queue", counts=(1,)), _fake("ziplist")]
    assert write_files(_flags(), results) == []
    assert list(tmp_path.iterdir()) == []
    written = write_files(_flags("--out", "o", "--json", "r.json"), results)
    assert sorted(map(str, written)) == [
        *("o/queue.md", "o/queue.png", "o/ziplist.md", "o/ziplist.png"),
        *("r-queue.json", "r-ziplist.json"),
    ]
    assert (tmp_path / "o" / "queue.png").read_bytes()[:8] == PNG_MAGIC
    assert "### `ziplist`" in (tmp_path / "o" / "ziplist.md").read_text()
    assert write_files(_flags("--markdown", "all.md"), results) == [Path("all.md")]


@pytest.mark.parametrize("bad", [["lock", "--clients", "0"], ["lock", "--duration", "-1"], ["x"]])
def test_bad_arguments_are_rejected(bad: list[str]) -> None:
    with pytest.raises(SystemExit):
        main(bad)


def test_statistics() -> None:
    assert jain_index([5, 5, 5]) == pytest.approx(1.0)
    assert jain_index([10, 0]) == pytest.approx(0.5)
    assert jain_index([]) is None
    assert jain_index([0, 0]) is None
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) is None


async def test_a_stray_cancel_does_not_end_a_client() -> None:
    """A CancelledError that nobody asked for (a client library's) is counted, not an early end.

    Ending the client there would end a one-client row at once and leave half its work running.
    """
    stats = [ClientStats()]

    async def op(deadline: float) -> None:
        await asyncio.sleep(0.01)
        if not stats[0].ops:
            stats[0].ops += 1
            raise asyncio.CancelledError  # as a client library might, unasked
        stats[0].ops += 1

    seconds = await drive_clients([op], stats, 0.2)
    assert stats[0].counts == {"stray_cancels": 1}
    assert seconds >= 0.2
    assert stats[0].ops > 1


async def test_the_deadline_cancels_what_is_in_flight() -> None:
    stats = [ClientStats(), ClientStats()]
    ended: list[str] = []

    async def op(deadline: float) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append("op")

    await asyncio.wait_for(drive_clients([op, op], stats, 0.05), timeout=60)
    assert ended == ["op", "op"]
    assert all(not st.counts for st in stats)


async def test_counting_client_counts_attempts_only(redis_standalone_client: Any) -> None:
    stats = ClientStats()
    counting = CountingClient(redis_standalone_client, stats, shas=["0" * 40], set_nx=True)
    assert await counting.set("bench:{t}", "a", nx=True)
    await counting.set("bench:{t}", "b")  # not an attempt
    assert stats.tries == 1
    assert await counting.get("bench:{t}") == b"b"  # everything else passes through


# -- the book ports are what they claim to be ------------------------------------------------

Acquire = Callable[[Any], Awaitable[Any]]
Release = Callable[[Any, Any], Awaitable[Any]]


async def _contend(
    client: Any, acquire: Acquire, release: Release, *, tasks: int, rounds: int
) -> tuple[int, int]:
    """Run ``tasks`` coroutines taking turns; return (most holders at once, acquisitions)."""
    holders = most = acquired = 0

    async def worker() -> None:
        nonlocal holders, most, acquired
        for _ in range(rounds):
            deadline = time.monotonic() + 20
            while not (ident := await acquire(client)):
                assert time.monotonic() < deadline, "never acquired"
                await asyncio.sleep(0.001)
            holders += 1
            acquired += 1
            most = max(most, holders)
            await asyncio.sleep(0.001)  # hold across a few event-loop turns
            holders -= 1
            assert await release(client, ident)

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return most, acquired


LOCKS: dict[str, tuple[Acquire, Release]] = {
    "ch06-acquire_lock_with_timeout": (
        lambda r: ch06_locks.acquire_lock_with_timeout(r, "t", 5, 10, key_prefix="bench:"),
        lambda r, i: ch06_locks.release_lock(r, "t", i, key_prefix="bench:"),
    ),
    "ch06-acquire_lock": (
        lambda r: ch06_locks.acquire_lock(r, "t", 5, key_prefix="bench:"),
        lambda r, i: ch06_locks.release_lock(r, "t", i, key_prefix="bench:"),
    ),
    "ch11-lua": (
        lambda r: ch11_locks.acquire_lock_with_timeout(r, "t", 5, 10, key_prefix="bench:"),
        lambda r, i: ch11_locks.release_lock(r, "t", i, key_prefix="bench:"),
    ),
}


@pytest.mark.parametrize("name", sorted(LOCKS))
async def test_book_locks_exclude(redis_client: Any, name: str) -> None:
    acquire, release = LOCKS[name]
    most, acquired = await _contend(redis_client, acquire, release, tasks=6, rounds=8)
    assert most == 1
    assert acquired == 48
    assert not await redis_client.exists("bench:lock:t")


@pytest.mark.parametrize("name", sorted(LOCKS))
async def test_book_locks_check_the_holder(redis_client_text: Any, name: str) -> None:
    acquire, release = LOCKS[name]
    ident = await acquire(redis_client_text)
    assert isinstance(ident, str)
    assert not await ch06_locks.acquire_lock_with_timeout(
        redis_client_text, "t", 0.05, key_prefix="bench:"
    )
    assert not await release(redis_client_text, "someone-else")
    assert await release(redis_client_text, ident)
    assert not await redis_client_text.exists("bench:lock:t")


async def test_book_lock_with_timeout_sets_whole_seconds(redis_client: Any) -> None:
    ident = await ch06_locks.acquire_lock_with_timeout(redis_client, "t", 1, 2.5)
    assert ident
    assert await redis_client.ttl("lock:t") == 3  # ceil(2.5), the book's whole seconds
    assert await ch06_locks.release_lock(redis_client, "t", str(ident))


SEMNAME = "bench:sem:{t}"
SEMAPHORES: dict[str, tuple[Acquire, Release]] = {
    "basic": (
        lambda r: ch06_semaphores.acquire_semaphore(r, SEMNAME, 3),
        lambda r, i: ch06_semaphores.release_semaphore(r, SEMNAME, i),
    ),
    "fair": (
        lambda r: ch06_semaphores.acquire_fair_semaphore(r, SEMNAME, 3),
        lambda r, i: ch06_semaphores.release_fair_semaphore(r, SEMNAME, i),
    ),
    "fair-lock": (
        lambda r: ch06_semaphores.acquire_semaphore_with_lock(r, SEMNAME, 3, key_prefix="bench:"),
        lambda r, i: ch06_semaphores.release_fair_semaphore(r, SEMNAME, i),
    ),
}


async def test_book_basic_semaphore_respects_its_limit(redis_client: Any) -> None:
    acquire, release = SEMAPHORES["basic"]
    most, acquired = await _contend(redis_client, acquire, release, tasks=8, rounds=10)
    if most > 3:
        # The client takes `now` before its MULTI reaches Redis, so a later `now` can arrive
        # first and rank ahead of a holder already admitted: the book's clock-ranking race
        # (inventory row 20). It shows most on the cluster, whose MULTI yields in between.
        pytest.xfail(f"the book's clock race admitted {most} holders (limit 3)")
    assert most <= 3
    assert acquired == 80
    assert await redis_client.zcard(SEMNAME) == 0


# The fair variants use ZINTERSTORE inside MULTI, which redis-py 8.1's async cluster
# transactions cannot queue (see benchmarks.semaphore): standalone only.
async def test_book_fair_semaphore_with_lock_respects_its_limit(
    redis_standalone_client: Any,
) -> None:
    acquire, release = SEMAPHORES["fair-lock"]
    most, acquired = await _contend(redis_standalone_client, acquire, release, tasks=8, rounds=10)
    assert most <= 3
    assert acquired == 80
    assert await redis_standalone_client.zcard(SEMNAME) == 0
    assert await redis_standalone_client.zcard(SEMNAME + ":owner") == 0


async def test_book_fair_semaphore_admits_up_to_its_limit(redis_standalone_client: Any) -> None:
    acquire, release = SEMAPHORES["fair"]
    r = redis_standalone_client
    held = [await acquire(r) for _ in range(3)]
    assert all(held)
    assert await acquire(r) is None  # full: the loser removes itself
    assert await r.zcard(SEMNAME) == 3
    assert await r.zcard(SEMNAME + ":owner") == 3
    for ident in held:
        assert await release(r, ident)
    assert await acquire(r)


@pytest.mark.xfail(
    strict=False,
    reason="the book's own race (Redis in Action §6.3.4, inventory row 21): INCR and the rank "
    "check are separate transactions, so a slower client can take a slot already granted",
)
async def test_book_fair_semaphore_under_contention(redis_standalone_client: Any) -> None:
    acquire, release = SEMAPHORES["fair"]
    most, _ = await _contend(redis_standalone_client, acquire, release, tasks=8, rounds=10)
    assert most <= 3


async def test_book_update_token_ports_write_the_same_state(redis_client_text: Any) -> None:
    r = redis_client_text
    for i in range(30):
        await ch04_sessions.update_token(r, "tok", "user", f"i{i}", key_prefix="bench:a:")
        await ch04_sessions.update_token_pipeline(r, "tok", "user", f"i{i}", key_prefix="bench:b:")
    for prefix in ("bench:a:", "bench:b:"):
        assert await r.hget(prefix + "login:", "tok") in (b"user", "user")
        assert await r.zcard(prefix + "viewed:tok") == 25
        assert await r.zscore(prefix + "viewed:", "i0") == -1
        assert await r.zcard(prefix + "recent:") == 1
