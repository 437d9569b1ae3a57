"""Show benchmark results: a rich table per book table, markdown for the README, a PNG chart.

Every row is printed beside the book's published rate and the ratios measured in the same run:
to the table's reference variants (the book's own code, and redis-py's lock) at the same client
count, and to the ``limit`` row, the most this client and server can do with the same round
trips. Redis in Action §4.5 and §11.2 print the tables this module reproduces.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
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

from .runner import Row, TableResult

__all__ = [
    "Goal",
    "RichReporter",
    "goals_of",
    "print_results",
    "render_markdown",
    "write_json",
    "write_plot",
]


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


def _columns(result: TableResult) -> list[tuple[str, Callable[[Row], str]]]:
    rows = result.rows
    table = result.table
    variants = {v.name: v for v in table.variants}
    tries = table.unit != "calls"
    cols: list[tuple[str, Callable[[Row], str]]] = [
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
    for ref in table.references:

        def rel(r: Row, ref: str = ref) -> str:
            return _ratio(*ratio_to(rows, r, ref))

        cols.append((f"{TIMES} {ref}", rel))
    cols.append(("% limit", lambda r: _num(_pct(limit_share(rows, r)), 0)))
    for key in table.columns:

        def extra(r: Row, key: str = key) -> str:
            return _num(_extra(r, key))

        cols.append((key.replace("_", " "), extra))
    cols.append(("p50 ms", lambda r: _num(r.latencies_ms[0], 3)))
    cols.append(("p99 ms", lambda r: _num(r.latencies_ms[1], 3)))
    cols.append(("Jain", lambda r: _num(r.jain, 3)))
    cols.append(
        ("min-max", lambda r: f"{min(r.per_client, default=0)}{DASH}{max(r.per_client, default=0)}")
    )
    return cols


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


def _mark(holds: bool | None) -> str:
    return {True: "holds", False: "MISSED", None: "not measured"}[holds]


# -- output ----------------------------------------------------------------------------------


def print_results(console: Console, results: Sequence[TableResult]) -> None:
    """Print one rich table per book table, its notes and its goals."""
    for result in results:
        table = RichTable(
            title=f"[bold]{result.table.name}[/]: {result.table.title}",
            caption=_header(result),
            header_style="bold cyan",
        )
        cols = _columns(result)
        for i, (title, _) in enumerate(cols):
            table.add_column(title, justify="left" if i == 0 else "right", no_wrap=i == 0)
        previous = None
        for row in result.rows:
            style = (
                "dim"
                if row.base.startswith("limit")
                else ("green" if "aiorpatterns" in row.base else None)
            )
            if previous is not None and previous[0] != row.transport:
                table.add_section()
            table.add_row(*(fn(row) for _, fn in cols), style=style)
            previous = (row.transport, row.base)
        console.print(table)
        console.print(f"  {result.table.notes}")
        console.print("  † vs the reference at 1 client (no row at this client count).")
        for note in result.skipped:
            console.print(f"  [yellow]{note}[/]")
        for goal in goals_of(result):
            colour = {True: "green", False: "red", None: "yellow"}[goal.holds]
            console.print(f"  target: {goal.text}: {goal.value} [{colour}]{_mark(goal.holds)}[/]")
        console.print()


def render_markdown(results: Sequence[TableResult]) -> str:
    """Every table as GitHub markdown, with its header line, notes and goals."""
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
        out.append(f"{result.table.notes} † = vs the reference at 1 client.")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.as_json(), indent=2) + "\n")


def write_plot(path: Path, result: TableResult) -> None:
    """Grouped bars: one group per client count, one bar per variant, a panel per transport.

    ``limit`` rows are not bars (they would flatten every other bar): each is a dashed line over
    its group, labelled with its rate, or only the label when it is far above the bars.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    rows = result.rows
    transports = list(dict.fromkeys(r.transport for r in rows)) or ["tcp"]
    bases = [b for b in dict.fromkeys(r.base for r in rows) if not b.startswith("limit")]
    counts = sorted({r.clients for r in rows if not r.base.startswith("limit")})
    palette = plt.get_cmap("tab10")
    colours = {base: palette(i % 10) for i, base in enumerate(bases)}
    fig, axes = plt.subplots(
        1, len(transports), figsize=(max(7.0, 6.0 * len(transports)), 5.2), squeeze=False
    )
    width = 0.8 / max(1, len(bases))
    peak = max((r.ops_per_s for r in rows if r.base in bases), default=1.0) or 1.0
    top = peak * 1.3
    for ax, transport in zip(axes[0], transports, strict=True):
        for i, base in enumerate(bases):
            xs, ys = [], []
            for j, n in enumerate(counts):
                row = _find(rows, base, transport, n)
                if row is not None:
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(row.ops_per_s)
            if xs:
                ax.bar(xs, ys, width=width * 0.95, label=base, color=colours[base])
        limits = [r for r in rows if r.base == "limit" and r.transport == transport]
        found = [(j, _find(limits, "limit", transport, n)) for j, n in enumerate(counts)]
        spans = [(j - 0.42, j + 0.42, lim) for j, lim in found if lim is not None]
        best = max(limits, key=lambda r: r.ops_per_s, default=None)
        if not spans and best is not None:  # one limit for every group (a 1-client row): once
            spans = [(-0.42, len(counts) - 0.58, best)]
        for left, right, lim in spans:
            y = min(lim.ops_per_s, top * 0.97)
            if lim.ops_per_s <= top:
                ax.hlines(y, left, right, colors="0.35", linestyles="dashed", lw=1.2)
            ax.annotate(
                f"limit {lim.ops_per_s:,.0f}/s" + ("" if lim.ops_per_s <= top else " ↑"),
                ((left + right) / 2, y), xytext=(0, 3), textcoords="offset points",
                ha="center", va="bottom", fontsize=8, color="0.3",
            )  # fmt: skip
        ax.set_ylim(0, max([top, *(min(r.ops_per_s, top) * 1.08 for r in limits)]))
        ax.set_xticks(range(len(counts)), [str(n) for n in counts])
        ax.set_xlabel("clients")
        if len(transports) > 1:
            ax.set_title(f"over {transport}", fontsize=10)
        ax.set_ylabel(f"{result.table.unit} per second")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9, frameon=False
    )
    engine = result.engine
    fig.suptitle(
        f"{result.table.name}: {result.table.title}\n"
        f"{engine['name']} {engine['version']}, {result.topology}, {result.mode}, "
        f"{result.duration:g} s per row",
        fontsize=11,
    )
    legend_rows = (len(labels) + 3) // 4
    fig.tight_layout(rect=(0, 0.05 * legend_rows + 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
