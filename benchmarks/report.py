"""Show benchmark results: a rich table per book table, markdown for the README, a PNG chart.

Every row is printed beside the book's published rate and the ratios measured in the same run:
to the table's reference variants (the book's own code, and redis-py's lock) at the same client
count, and to the ``limit`` row, the most this client and server can do with the same round
trips. Redis in Action §4.5 and §11.2 print the tables this module reproduces.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table as RichTable
from rich.text import Text

from .runner import Row, Table, TableResult

__all__ = [
    "Goal",
    "RichReporter",
    "goals_of",
    "print_results",
    "render_markdown",
    "write_json",
    "write_plot",
]


#: The terminal table's width by default (``--wide``: every column, however wide).
COMPACT_WIDTH = 100
DASH = "\u2013"
TIMES = "\u00d7"


# -- progress --------------------------------------------------------------------------------


class RichReporter:
    """A rich progress bar over every row of the run, with notes printed above it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=4,
            transient=True,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, total: int) -> None:
        self.task = self.progress.add_task("starting", total=total)

    def running(self, description: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=description)

    def advance(self) -> None:
        if self.task is not None:
            self.progress.advance(self.task)

    def note(self, message: str) -> None:
        self.progress.console.print(f"[yellow]note:[/] {message}")


# -- numbers ---------------------------------------------------------------------------------


def _find(rows: Sequence[Row], base: str, transport: str, clients: int) -> Row | None:
    for row in rows:
        if row.base == base and row.transport == transport and row.clients == clients:
            return row
    return None


def ratio_to(rows: Sequence[Row], row: Row, base: str) -> tuple[float | None, bool]:
    """``row``'s rate over ``base``'s at the same clients (else 1 client, flagged True)."""
    ref = _find(rows, base, row.transport, row.clients)
    fallback = False
    if ref is None:
        ref, fallback = _find(rows, base, row.transport, 1), True
    if ref is None or ref.ops_per_s <= 0:
        return None, fallback
    return row.ops_per_s / ref.ops_per_s, fallback


def is_limit_row(base: str) -> bool:
    """Whether ``base`` is a table's ``limit`` row (``limit``, ``limit-commands``), not a peer
    whose name starts the same way (the ``limits`` package's rows, ``limits-fixed``)."""
    return base == "limit" or base.startswith("limit-")


def limit_share(rows: Sequence[Row], row: Row) -> float | None:
    """``row``'s rate as a fraction of the ``limit`` row (same clients, else the best limit)."""
    ref = _find(rows, "limit", row.transport, row.clients)
    if ref is None:
        limits = [r for r in rows if r.base == "limit" and r.transport == row.transport]
        ref = max(limits, key=lambda r: r.ops_per_s, default=None)
    if ref is None or ref.ops_per_s <= 0:
        return None
    return row.ops_per_s / ref.ops_per_s


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}"


def _ratio(value: float | None, fallback: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:.2f}{TIMES}" + ("†" if fallback else "")


Column = tuple[str, Callable[[Row], str]]


def _columns(result: TableResult) -> list[Column]:
    """Every column (``--wide``, and the markdown): counts, rates, ratios, latency, fairness."""
    rows = result.rows
    table = result.table
    variants = {v.name: v for v in table.variants}
    tries = table.unit != "calls"
    cols: list[Column] = [
        ("variant", lambda r: r.variant),
        ("clients", lambda r: str(r.clients)),
    ]
    if tries:
        cols.append(("tries", lambda r: _num(r.tries)))
    cols.append((table.unit, lambda r: _num(r.ops)))
    if tries:
        cols.append(("tries/op", lambda r: _num(r.tries / r.ops, 2) if r.ops else DASH))
    cols.append((f"{table.unit}/s", lambda r: _num(r.ops_per_s)))
    if any(r.book is not None for r in rows):
        cols.append(("book /s", lambda r: _num(r.book)))
    if any(v.book_tries for v in table.variants):

        def book_tries(r: Row) -> str:
            v = variants.get(r.base)
            return _num(v.book_tries_per_op(r.transport, r.clients), 2) if v else DASH

        cols.append(("book tries/op", book_tries))
    cols += _ratio_columns(result)
    cols.append(("% limit", lambda r: _num(_pct(limit_share(rows, r)), 0)))
    cols += _extra_columns(result)
    cols.append(("p50 ms", lambda r: _num(r.latencies_ms[0], 3)))
    cols.append(("p99 ms", lambda r: _num(r.latencies_ms[1], 3)))
    cols.append(("Jain", lambda r: _num(r.jain, 3)))
    cols.append(
        ("min-max", lambda r: f"{min(r.per_client, default=0)}{DASH}{max(r.per_client, default=0)}")
    )
    return cols


def _ratio_columns(result: TableResult) -> list[Column]:
    """One ratio column per reference of the table, headed by the reference's name."""
    cols: list[Column] = []
    for ref in result.table.references:

        def rel(r: Row, ref: str = ref) -> str:
            return _ratio(*ratio_to(result.rows, r, ref))

        cols.append((f"{TIMES} {ref}", rel))
    return cols


def _extra_columns(result: TableResult) -> list[Column]:
    """The table's own columns (``Table.columns``), headed by their key with spaces."""
    cols: list[Column] = []
    for key in result.table.columns:

        def extra(r: Row, key: str = key) -> str:
            return _num(_extra(r, key))

        cols.append((key.replace("_", " "), extra))
    return cols


def compact_columns(result: TableResult, width: int = COMPACT_WIDTH) -> list[Column]:
    """The columns a reader needs, as many as fit ``width`` characters, in the wide order.

    Always the variant, its clients, the rate, the book's rate (where the book has one), the
    ratio to each reference, p99 and, with more than one client, Jain's index; then, while the
    table still fits: tries per op (where some row retried), the share of the ``limit`` row and
    the table's own columns.
    """
    rows = result.rows
    unit = result.table.unit
    rate = f"{unit}/s" if len(unit) <= 9 else f"{unit}\n/s"
    cols: list[tuple[Column, bool]] = [
        (("variant", lambda r: r.variant), False),
        (("clients", lambda r: str(r.clients)), False),
        (("tries/op", lambda r: _num(r.tries / r.ops, 2) if r.ops else DASH), True),
        ((rate, lambda r: _num(r.ops_per_s)), False),
        (("book/s", lambda r: _num(r.book)), False),
    ]
    cols += [((_short(title), fn), False) for title, fn in _ratio_columns(result)]
    cols.append((("% limit", lambda r: _num(_pct(limit_share(rows, r)), 0)), True))
    cols.append((("p99 ms", lambda r: _ms(r.latencies_ms[1])), False))
    cols.append((("Jain", lambda r: _num(r.jain, 2)), False))
    cols += [(col, True) for col in _extra_columns(result)]
    cols = [(col, optional) for col, optional in cols if _wanted(result, col[0])]
    chosen = [col for col, optional in cols if not optional]
    for col in (col for col, optional in cols if optional):
        more = [c for c, _ in cols if c in chosen or c is col]
        if _width(result, more) <= width:
            chosen = more
    return chosen


def _wanted(result: TableResult, title: str) -> bool:
    """Whether the compact table shows the column ``title`` for these rows at all."""
    rows = result.rows
    if title == "book/s":
        return any(r.book is not None for r in rows)
    if title == "tries/op":
        return any(r.retries for r in rows if not is_limit_row(r.base))
    if title == "Jain":
        return any(r.clients > 1 for r in rows)
    return True


def _short(title: str) -> str:
    """A ratio header on two lines, ``book-`` over the rest of the name: the column stays narrow."""
    head, book, tail = title.partition(" book-")
    return f"{head} book-\n{tail}" if book else title


def _ms(value: float | None) -> str:
    """Milliseconds with three significant digits or so: 0.123, 1.23, 12.3, 123."""
    if value is None:
        return DASH
    return f"{value:,.{2 if value < 10 else 1 if value < 100 else 0}f}"


def _width(result: TableResult, cols: Sequence[Column]) -> int:
    """How many characters the rich table of ``cols`` takes when nothing wraps."""
    measure = Console(width=10_000, file=io.StringIO())
    return measure.measure(_rich_table(result, cols, caption=False)).maximum


def _extra(row: Row, key: str) -> float | None:
    """A table's extra column: a number ``around_row`` measured, or a property of the row."""
    value = row.extra[key] if key in row.extra else getattr(row, key, None)
    return None if value is None else float(value)


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def _header(result: TableResult) -> str:
    engine = result.engine
    client = result.client
    return (
        f"{engine['name']} {engine['version']}, {result.topology}, {result.mode}, "
        f"{result.duration:g} s per row; Python {client['python']}, redis-py {client['redis_py']}, "
        f"hiredis {client['hiredis'] or 'off'}, {client['loop']}"
    )


# -- goals -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Goal:
    """A target the README reports: a sentence, the measured value, and whether it holds."""

    text: str
    value: str
    holds: bool | None


def goals_of(result: TableResult) -> list[Goal]:
    """The targets of a table, evaluated on its rows (None: a row needed is missing)."""
    rows = result.rows
    name = result.table.name
    goals: list[Goal] = []
    if name == "pipeline":
        for transport in ("tcp", "unix"):
            auto = next(
                (
                    r
                    for r in rows
                    if r.base == "aiorpatterns-autopipeline" and r.transport == transport
                ),
                None,
            )
            ref = _find(rows, "book-pipeline", transport, 1)
            if auto is None and ref is None:
                continue
            ratio = auto.ops_per_s / ref.ops_per_s if auto and ref and ref.ops_per_s else None
            goals.append(
                Goal(
                    f"{transport}: aiorpatterns-autopipeline ({auto.clients if auto else 100} "
                    f"clients) ≥ 2.5{TIMES} book-pipeline (1 client)",
                    _ratio(ratio),
                    None if ratio is None else ratio >= 2.5,
                )
            )
    if name == "lock":
        counts = sorted({r.clients for r in rows if r.base == "aiorpatterns"})
        n = 10 if 10 in counts else (counts[-1] if counts else 10)
        ours = _find(rows, "aiorpatterns", "tcp", n) or next(
            (r for r in rows if r.base == "aiorpatterns" and r.clients == n), None
        )
        for ref_name in ("book-lua", "redis-py"):
            ratio = ratio_to(rows, ours, ref_name)[0] if ours else None
            goals.append(
                Goal(
                    f"{n} clients: aiorpatterns acquires ≥ 2.0{TIMES} {ref_name}",
                    _ratio(ratio),
                    None if ratio is None else ratio >= 2.0,
                )
            )
        per = ours.tries / ours.ops if ours and ours.ops else None
        goals.append(
            Goal(
                f"{n} clients: aiorpatterns tries/acquire ≤ 1.05",
                _num(per, 3),
                None if per is None else per <= 1.05,
            )
        )
        jain = ours.jain if ours else None
        goals.append(
            Goal(
                f"{n} clients: aiorpatterns fairness (Jain) ≥ 0.9",
                _num(jain, 3),
                None if jain is None else jain >= 0.9,
            )
        )
        procs = next((r for r in rows if r.base == "aiorpatterns-procs" and r.clients == n), None)
        ratio = ratio_to(rows, procs, "book-lua")[0] if procs else None
        goals.append(
            Goal(
                f"{n} clients: aiorpatterns-procs acquires ≥ 1.5{TIMES} book-lua",
                _ratio(ratio),
                None if ratio is None else ratio >= 1.5,
            )
        )
    if name == "ratelimit":
        # Ours against limits' row of the same strategy (limits' moving window is its log).
        for ours_name, peer in (("fixed", "fixed"), ("sliding", "sliding"), ("log", "moving")):
            mine = next(
                (r for r in rows if r.base == f"aiorpatterns-{ours_name}" and r.clients == 10),
                None,
            )
            ratio = ratio_to(rows, mine, f"limits-{peer}")[0] if mine else None
            goals.append(
                Goal(
                    f"10 clients: aiorpatterns-{ours_name} ≥ 2{TIMES} limits-{peer}",
                    _ratio(ratio),
                    None if ratio is None else ratio >= 2.0,
                )
            )
    if name == "queue":
        goals += _queue_goals(rows)
    if name == "cache":
        goals += _cache_goals(rows)
    if name == "autocomplete":
        tens = [
            r
            for r in rows
            if r.base in ("aiorpatterns", "aiorpatterns-autopipeline") and r.clients == 10
        ]
        best = max(tens, key=lambda r: r.ops_per_s, default=None)
        ratio = ratio_to(rows, best, "book-lua")[0] if best else None
        clean = best is not None and best.retries == 0 and best.extra.get("writes") == 0
        goals.append(
            Goal(
                f"10 clients: best of aiorpatterns(-autopipeline) ≥ 1.5{TIMES} book-lua, "
                "with 0 retries and 0 writes",
                f"{_ratio(ratio)} ({best.variant if best else DASH}, "
                f"{best.retries if best else DASH} retries, "
                f"{_num(best.extra.get('writes')) if best else DASH} writes)",
                None if ratio is None else ratio >= 1.5 and clean,
            )
        )
        auto = _find(rows, "aiorpatterns-autopipeline", "tcp", 100) or next(
            (r for r in rows if r.base == "aiorpatterns-autopipeline" and r.clients == 100), None
        )
        lua = max(
            (r for r in rows if r.base == "book-lua"), key=lambda r: r.ops_per_s, default=None
        )
        ratio = auto.ops_per_s / lua.ops_per_s if auto and lua and lua.ops_per_s else None
        goals.append(
            Goal(
                f"100 clients: aiorpatterns-autopipeline ≥ 3{TIMES} the best book-lua row"
                + (f" ({lua.clients} clients)" if lua else ""),
                _ratio(ratio),
                None if ratio is None else ratio >= 3.0,
            )
        )
    return goals


#: The cache table's peer rows of warm hits.
CACHE_PEERS = ("cashews", "aiocache")


def _cache_goals(rows: Sequence[Row]) -> list[Goal]:
    """At 10 callers: our best remote hit row ≥ 1.5 times the best peer's, and near-cache hits
    ≥ 20 times our remote hits."""
    tens = {r.base: r for r in rows if r.clients == 10}
    ours = [tens[b] for b in ("aiorpatterns", "aiorpatterns-autopipeline") if b in tens]
    best = max(ours, key=lambda r: r.ops_per_s, default=None)
    peers = [tens[b] for b in CACHE_PEERS if b in tens and tens[b].ops_per_s > 0]
    top = max(peers, key=lambda r: r.ops_per_s, default=None)
    ratio = best.ops_per_s / top.ops_per_s if best and top else None
    goals = [
        Goal(
            f"10 callers: best aiorpatterns hit row ≥ 1.5{TIMES} the best of cashews, aiocache",
            f"{_ratio(ratio)} ({best.base if best else DASH} vs {top.base if top else DASH})",
            None if ratio is None else ratio >= 1.5,
        )
    ]
    near, remote = tens.get("aiorpatterns-near"), tens.get("aiorpatterns")
    ratio = near.ops_per_s / remote.ops_per_s if near and remote and remote.ops_per_s else None
    goals.append(
        Goal(
            f"10 callers: aiorpatterns-near ≥ 20{TIMES} aiorpatterns (remote hits)",
            _ratio(ratio),
            None if ratio is None else ratio >= 20,
        )
    )
    return goals


#: The queue table's peer rows (the job queues users pick instead).
QUEUE_PEERS = ("saq", "streaq", "taskiq", "arq")


def _queue_goals(rows: Sequence[Row]) -> list[Goal]:
    """At 10 clients: reliable (acked) processing ≥ 1.0 times the book's list queue, and our worker
    ≥ 1.5 times the best peer's tasks/s with a p99 no worse than the best peer's."""
    tens = [r for r in rows if r.clients == 10]
    book = next((r for r in tens if r.base == "book-list"), None)
    ours = [r for r in tens if r.base.startswith("aiorpatterns-")]
    best = max(ours, key=lambda r: r.ops_per_s, default=None)
    ratio = best.ops_per_s / book.ops_per_s if best and book and book.ops_per_s else None
    goals = [
        Goal(
            f"10 clients: best aiorpatterns row (acked) ≥ 1.0{TIMES} book-list (no ack)",
            f"{_ratio(ratio)} ({best.base if best else DASH})",
            None if ratio is None else ratio >= 1.0,
        )
    ]
    worker = next((r for r in tens if r.base == "aiorpatterns-worker"), None)
    peers = [r for r in tens if r.base in QUEUE_PEERS and r.ops_per_s > 0]
    top = max(peers, key=lambda r: r.ops_per_s, default=None)
    p99s = [p for p in (_p99(r) for r in peers) if p is not None]
    ratio = worker.ops_per_s / top.ops_per_s if worker and top and top.ops_per_s else None
    mine = _p99(worker) if worker else None
    fast = ratio is not None and ratio >= 1.5
    holds = None if ratio is None or mine is None or not p99s else fast and mine <= min(p99s)
    goals.append(
        Goal(
            f"10 clients: aiorpatterns-worker ≥ 1.5{TIMES} the best peer, p99 ≤ the best peer's",
            f"{_ratio(ratio)} vs {top.base if top else DASH}, p99 "
            f"{_num(mine, 3) if mine is not None else DASH} ms vs "
            f"{_num(min(p99s), 3) if p99s else DASH} ms",
            holds,
        )
    )
    return goals


def _mark(holds: bool | None) -> str:
    return {True: "holds", False: "MISSED", None: "not measured"}[holds]


def targets_line(result: TableResult) -> str | None:
    """The table's targets in one line of rich markup: how many hold, then each one missed."""
    goals = goals_of(result)
    if not goals:
        return None
    held = sum(goal.holds is True for goal in goals)
    colour = "green" if held == len(goals) else "yellow"
    parts = [f"[{colour}]targets: {held}/{len(goals)} hold[/]"]
    missed = [f"{goal.text} ({goal.value})" for goal in goals if goal.holds is False]
    if missed:
        parts.append("[red]missed:[/] " + escape("; ".join(missed)))
    unmeasured = sum(goal.holds is None for goal in goals)
    if unmeasured:
        parts.append(f"{unmeasured} not measured (rows missing)")
    return " · ".join(parts)


def uses_fallback(result: TableResult) -> bool:
    """Whether a ratio is taken against the reference's 1-client row (printed with †)."""
    rows, refs = result.rows, result.table.references
    pairs = (ratio_to(rows, row, ref) for row in rows for ref in refs)
    return any(ratio is not None and fallback for ratio, fallback in pairs)


# -- output ----------------------------------------------------------------------------------

FALLBACK_NOTE = "† = vs the reference at 1 client (it has no row at this client count)."


def _row_style(row: Row) -> str | None:
    if is_limit_row(row.base):
        return "dim"
    return "green" if row.base.startswith("aiorpatterns") else None


def _rich_table(result: TableResult, cols: Sequence[Column], caption: bool = True) -> RichTable:
    """The rows of ``result`` under ``cols``, a section per transport."""
    table = RichTable(
        title=f"[bold]{result.table.name}[/]: {escape(result.table.title)}",
        box=box.SIMPLE_HEAD,
        padding=(0, 0, 0, 1),
        show_edge=False,
        caption=_header(result) if caption else None,
        header_style="bold cyan",
        title_justify="left",
        caption_justify="left",
    )
    for i, (title, _) in enumerate(cols):
        table.add_column(
            title, justify="left" if i == 0 else "right", vertical="bottom", no_wrap=i == 0
        )
    previous: str | None = None
    for row in result.rows:
        if previous is not None and previous != row.transport:
            table.add_section()
        table.add_row(*(fn(row) for _, fn in cols), style=_row_style(row))
        previous = row.transport
    return table


def print_results(console: Console, results: Sequence[TableResult], *, wide: bool = False) -> None:
    """Print one rich table per book table, then its notes, footnotes and targets.

    By default the table holds the columns of :func:`compact_columns` and fits 100 characters;
    ``wide`` prints every column.
    """
    for result in results:
        cols = _columns(result) if wide else compact_columns(result)
        console.print(_rich_table(result, cols))
        notes = [result.table.notes, FALLBACK_NOTE if uses_fallback(result) else ""]
        lines = [Text(note, style="dim") for note in notes if note]
        lines += [Text(note, style="yellow") for note in result.skipped]
        targets = targets_line(result)
        if targets is not None:
            lines.append(Text.from_markup(targets))
        for line in lines:
            console.print(Padding(line, (0, 0, 0, 2)))
        console.print()


def render_markdown(results: Sequence[TableResult]) -> str:
    """Every table as GitHub markdown, every column, with its header line, notes and goals."""
    out: list[str] = []
    for result in results:
        cols = _columns(result)
        out.append(f"### `{result.table.name}`: {result.table.title}\n")
        out.append(f"_{_header(result)}_\n")
        out.append("| " + " | ".join(title for title, _ in cols) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|")
        for row in result.rows:
            out.append("| " + " | ".join(fn(row) for _, fn in cols) + " |")
        out.append("")
        notes = [result.table.notes, FALLBACK_NOTE if uses_fallback(result) else ""]
        out.append(" ".join(note for note in notes if note))
        for note in result.skipped:
            out.append(f"\n- {note}")
        goals = goals_of(result)
        if goals:
            out.append("")
            for goal in goals:
                out.append(f"- target: {goal.text}: **{goal.value}** ({_mark(goal.holds)})")
        out.append("")
    return "\n".join(out)


def write_json(path: Path, result: TableResult) -> None:
    """Write ``result`` as JSON (``TableResult.as_json``) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_json(), indent=2) + "\n")


def write_markdown(path: Path, results: Sequence[TableResult]) -> None:
    """Write :func:`render_markdown` of ``results`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(results))


# -- what each variant is --------------------------------------------------------------------

#: What a variant is, by ``"<table>:<variant>"`` or ``"<variant>"``, where the name rules of
#: :func:`describe_variant` say too little. A table's ``notes`` say the rest.
DESCRIBE: dict[str, str] = {
    "lock:redis-py": "redis-py's asyncio Lock, sleep 0.1 s (its default), coroutines",
    "lock:redis-py-fast": "redis-py's asyncio Lock, sleep 1 ms, coroutines",
    "lock:coredis": "coredis' asyncio Lock, coroutines",
    "lock:pottery": "pottery's AIORedlock on one master, coroutines",
    "lock:aiorpatterns-rwlock": "ours, ReadWriteLock: 90% reads, 10% writes, coroutines",
    "semaphore:py-redis-semaphore": "py-redis-semaphore's asyncio Semaphore, coroutines",
    "autocomplete:walrus": "walrus' Autocomplete, sync, a process per client",
    "limit-commands": "the limit, with the book's 5 commands per call",
    "queue:book-list": "the book's list queue (RPUSH, BLPOP): no ack, a crash loses the task",
}


def describe_variant(table: Table, name: str, describe: Mapping[str, str] | None = None) -> str:
    """What the variant ``name`` of ``table`` is, in a few words, for a chart's caption.

    ``describe`` (then :data:`DESCRIBE`) is looked up by ``"<table>:<variant>"`` and by
    ``"<variant>"``; else the name says it: ``book-X`` is the book's code (sync, a process per
    client, or its asyncio port: ``book-X-async``), ``aiorpatterns*`` is ours, ``limit*`` the
    machine's limit, anything else a peer.
    """
    base = name.split("@")[0]
    lookup = {**DESCRIBE, **(describe or {})}
    for key in (f"{table.name}:{base}", base):
        if key in lookup:
            return lookup[key]
    runs = next((v.runs for v in table.variants if v.name == base), "coroutines")
    return _describe_by_name(base, runs)


def _describe_by_name(base: str, runs: str) -> str:
    apart = runs != "coroutines"  # each client in its own process
    if base.startswith("book-"):
        if base.endswith("-async") or not apart:
            return "asyncio port of the book's code"
        return "the book's code, sync, a process per client"
    if base.startswith("aiorpatterns"):
        via = " through AutoPipeline" if "autopipeline" in base else ""
        return f"ours{via}, " + ("a process per client" if apart else "coroutines")
    if is_limit_row(base):
        return "the most this client and server do with the same round trips"
    if base.startswith("lmove-") and base[6:].isdigit():
        n = int(base[6:])
        return f"LMOVE rotating a list of {n:,} item" + ("" if n == 1 else "s")
    if base.startswith("redis-py"):
        return "redis-py's own implementation"
    return "a peer library, as its users install it"


def caption_of(result: TableResult, describe: Mapping[str, str] | None = None) -> list[str]:
    """What each variant of ``result`` is (alike ones share a clause), then the table's notes."""
    alike: dict[str, list[str]] = {}
    for base in dict.fromkeys(row.base for row in result.rows):
        alike.setdefault(describe_variant(result.table, base, describe), []).append(base)
    named = "; ".join(f"{', '.join(bases)} = {what}" for what, bases in alike.items())
    return [part for part in (named and named + ".", result.table.notes) if part]


# -- charts ----------------------------------------------------------------------------------

#: One marker per book variant for the book's published rate.
MARKERS = ("*", "D", "X", "P", "v", "^", "s", "p", "h", "<", ">", "d")


def _p99(row: Row) -> float | None:
    return row.latencies_ms[1]


def _jain(row: Row) -> float | None:
    return row.jain if row.clients > 1 else None  # one client is always fair


#: The panels of a chart: title, y label, the value of a row (None: no bar).
PANELS: dict[str, tuple[str, str, Callable[[Row], float | None]]] = {
    "rate": ("throughput", "{unit} per second", lambda r: r.ops_per_s),
    "p99": ("p99 latency", "ms (99th percentile)", _p99),
    "jain": ("fairness", "Jain's index over clients", _jain),
}


@dataclass(frozen=True, slots=True)
class _Chart:
    """What the panels of one chart share: rows, variants (bars), client counts, colours."""

    rows: list[Row]
    bases: list[str]
    counts: list[int]
    colours: dict[str, Any]

    @property
    def width(self) -> float:
        return 0.8 / max(1, len(self.bases))

    def points(
        self, base: str, transport: str, value: Callable[[Row], float | None]
    ) -> tuple[list[float], list[float]]:
        """The x (within its client-count group) and y of each of ``base``'s bars."""
        i = self.bases.index(base)
        xs: list[float] = []
        ys: list[float] = []
        for j, n in enumerate(self.counts):
            row = _find(self.rows, base, transport, n)
            y = None if row is None else value(row)
            if y is not None:
                xs.append(j - 0.4 + self.width * (i + 0.5))
                ys.append(y)
        return xs, ys


def _chart_of(result: TableResult) -> _Chart:
    import matplotlib.pyplot as plt

    rows = result.rows
    bases = [b for b in dict.fromkeys(r.base for r in rows) if not is_limit_row(b)]
    counts = sorted({r.clients for r in rows if not is_limit_row(r.base)})
    palette = plt.get_cmap("tab10")
    return _Chart(rows, bases, counts, {b: palette(i % 10) for i, b in enumerate(bases)})


def _panels(chart: _Chart) -> list[str]:
    """The rate panel, then p99 and fairness where some row of a variant has them."""
    measured = [r for r in chart.rows if r.base in chart.bases]
    return ["rate"] + [p for p in ("p99", "jain") if any(PANELS[p][2](r) for r in measured)]


def _bars(ax: Any, chart: _Chart, transport: str, panel: str) -> None:
    """One bar per variant and client count; ours outlined thick."""
    for base in chart.bases:
        xs, ys = chart.points(base, transport, PANELS[panel][2])
        ours = base.startswith("aiorpatterns")
        colour = chart.colours[base]
        ax.bar(
            xs, ys, width=chart.width * 0.92, label=base, color=colour,
            edgecolor="black" if ours else colour, linewidth=2.2 if ours else 0.0, zorder=2,
        )  # fmt: skip


def _book_marks(ax: Any, chart: _Chart, transport: str) -> None:
    """The book's published rate over each bar that has one, a marker per book variant."""
    booked = [b for b in chart.bases if any(r.base == b and r.book for r in chart.rows)]
    for k, base in enumerate(booked):
        xs, ys = chart.points(base, transport, lambda r: r.book)
        ax.scatter(
            xs, ys, marker=MARKERS[k % len(MARKERS)], s=90, color=chart.colours[base],
            edgecolors="black", linewidths=0.9, zorder=4, label=f"{base} in the book",
        )  # fmt: skip


def _limits(ax: Any, chart: _Chart, transport: str, top: float) -> None:
    """``limit`` rows as a dashed line over their group (bars would flatten the rest)."""
    limits = [r for r in chart.rows if r.base == "limit" and r.transport == transport]
    found = [(j, _find(limits, "limit", transport, n)) for j, n in enumerate(chart.counts)]
    spans = [(j - 0.42, j + 0.42, lim) for j, lim in found if lim is not None]
    best = max(limits, key=lambda r: r.ops_per_s, default=None)
    if not spans and best is not None:  # one limit for every group (a 1-client row): once
        spans = [(-0.42, len(chart.counts) - 0.58, best)]
    for left, right, lim in spans:
        y = min(lim.ops_per_s, top * 0.97)
        if lim.ops_per_s <= top:
            ax.hlines(y, left, right, colors="0.35", linestyles="dashed", lw=1.2)
        ax.annotate(
            f"limit {lim.ops_per_s:,.0f}/s" + ("" if lim.ops_per_s <= top else " ↑"),
            ((left + right) / 2, y), xytext=(0, 3), textcoords="offset points",
            ha="center", va="bottom", fontsize=8, color="0.3",
        )  # fmt: skip


def _rate_panel(ax: Any, chart: _Chart, transport: str) -> None:
    """Throughput bars, the book's rates, the limit; log scale when the bars span 50 times."""
    rates = [r.ops_per_s for r in chart.rows if r.base in chart.bases and r.ops_per_s > 0]
    books = [r.book for r in chart.rows if r.base in chart.bases and r.book]
    top = max([*rates, *books], default=1.0) * 1.3 or 1.0
    _bars(ax, chart, transport, "rate")
    _book_marks(ax, chart, transport)
    _limits(ax, chart, transport, top)
    if _log_scale(ax, [*rates, *books]):
        ax.set_ylim(min(rates + books) / 2, top * 2)
    else:
        ax.set_ylim(0, top)


def _log_scale(ax: Any, values: Sequence[float]) -> bool:
    """Put the y axis on a log scale when ``values`` span more than 50 times; say whether."""
    wide = bool(values) and max(values) > 50 * min(values)
    if wide:
        ax.set_yscale("log")
    return wide


def _metric_panel(ax: Any, chart: _Chart, transport: str, panel: str) -> None:
    """p99 (log scale when it spans a wide range) or Jain's index (0 to 1) bars."""
    _bars(ax, chart, transport, panel)
    values = [v for r in chart.rows if r.base in chart.bases and (v := PANELS[panel][2](r))]
    if panel == "jain":
        ax.set_ylim(0, 1.05)
        ax.axhline(1.0, color="0.5", linestyle=":", lw=1)
    else:
        _log_scale(ax, values)


def _style(ax: Any, chart: _Chart, panel: str, unit: str, title: str) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.set_xticks(range(len(chart.counts)), [str(n) for n in chart.counts])
    ax.set_xlabel("clients")
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(PANELS[panel][1].format(unit=unit))
    if panel == "rate":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def write_plot(path: Path, result: TableResult, describe: Mapping[str, str] | None = None) -> None:
    """Write a PNG: throughput, p99 and fairness panels (a row of them per transport).

    A bar per variant and client count, ours (``aiorpatterns*``) outlined thick; the book's
    published rate as a marker over its variant's bar; ``limit`` as a dashed line. Under the
    legend, a caption names each variant (:func:`caption_of`, ``describe`` overriding).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chart = _chart_of(result)
    transports = list(dict.fromkeys(r.transport for r in result.rows)) or ["tcp"]
    panels = _panels(chart)
    ratios = [1.6 if p == "rate" else 1.0 for p in panels]
    width = max(7.5, 4.2 * sum(ratios))
    caption = [
        line
        for part in caption_of(result, describe)
        for line in textwrap.wrap(part, int(width * 16))
    ]
    fig = plt.figure(figsize=(width, 1.0 + 3.8 * len(transports) + 0.16 * len(caption) + 0.6))
    axes = fig.subplots(len(transports), len(panels), squeeze=False, width_ratios=ratios)
    for row_axes, transport in zip(axes, transports, strict=True):
        over = f" over {transport}" if len(transports) > 1 else ""
        for ax, panel in zip(row_axes, panels, strict=True):
            if panel == "rate":
                _rate_panel(ax, chart, transport)
            else:
                _metric_panel(ax, chart, transport, panel)
            _style(ax, chart, panel, result.table.unit, PANELS[panel][0] + over)
    _legend_and_caption(fig, axes, result, caption)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _legend_and_caption(fig: Any, axes: Any, result: TableResult, caption: list[str]) -> None:
    """The title above, the legend (bars and book marks) and the caption below the panels."""
    handles: dict[str, Any] = {}
    for ax in axes[:, 0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    height = fig.get_figheight()
    bottom = (0.16 * len(caption) + 0.2) / height
    ncol = min(len(handles), 5) or 1
    legend_h = 0.24 * -(-len(handles) // ncol) / height
    fig.legend(
        list(handles.values()), list(handles), loc="lower center", ncol=ncol, fontsize=8.5,
        frameon=False, bbox_to_anchor=(0.5, bottom),
    )  # fmt: skip
    fig.text(0.01, bottom - 0.08 / height, "\n".join(caption), ha="left", va="top", fontsize=8)
    engine = result.engine
    fig.suptitle(
        f"{result.table.name}: {result.table.title}\n"
        f"{engine['name']} {engine['version']}, {result.topology}, {result.mode}, "
        f"{result.duration:g} s per row",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, bottom + legend_h + 0.02, 1, 1))
