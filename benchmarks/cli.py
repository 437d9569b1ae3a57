"""Parse ``python -m benchmarks`` arguments, run the tables, print and write the results.

The harness of Redis in Action's benchmark tables (§4.5 pipelines, §11.2 locks, and §6.3
semaphores): ``python -m benchmarks <pipeline|lock|semaphore|all>``. Without ``--url`` it starts
its own server (or cluster) through :mod:`aiorpatterns.testing.server`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from .report import RichReporter, print_results, render_markdown, write_json, write_plot
from .runner import RunPlan, SilentReporter, TableResult, run_plan

__all__ = ["TABLES", "main", "output_path"]

TABLES = ("pipeline", "lock", "semaphore", "autocomplete", "queue", "market", "ziplist")
RESULTS_DIR = Path("bench-results")


def _clients(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of client counts: {text!r}") from None
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError(f"client counts must be positive: {text!r}")
    return tuple(dict.fromkeys(counts))


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Reproduce Redis in Action's benchmark tables beside aiorpatterns.",
    )
    p.add_argument("table", choices=(*TABLES, "all"), help="which table (or all of them)")
    p.add_argument(
        "--clients",
        type=_clients,
        default=(1, 2, 5, 10),
        help="client counts, comma-separated (default 1,2,5,10)",
    )
    p.add_argument(
        "--duration",
        type=_positive,
        default=1.0,
        help="seconds per row (default 1; the book's rows are 10)",
    )
    p.add_argument("--url", help="use this server instead of starting one (redis:// or unix://)")
    p.add_argument(
        "--topology",
        choices=("standalone", "cluster"),
        default="standalone",
        help="start (or, with --url, expect) a standalone server or a cluster",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=0,
        metavar="P",
        help="spread the clients over P processes (default: coroutines, one process)",
    )
    p.add_argument("--json", type=Path, metavar="F", help="JSON output (one file per table)")
    p.add_argument("--plot", type=Path, metavar="F.png", help="PNG chart (one file per table)")
    p.add_argument("--markdown", type=Path, metavar="F", help="markdown output (every table)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p  # fmt: skip


def output_path(given: Path | None, default: Path, table: str, many: bool) -> Path:
    """The file for ``table``: ``given`` (suffixed ``-<table>`` when several tables share it)."""
    if given is None:
        return default
    return given.with_name(f"{given.stem}-{table}{given.suffix}") if many else given


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = parser().parse_args(argv)
    if args.processes < 0:
        parser().error("--processes must be 0 or more")
    tables = TABLES if args.table == "all" else (args.table,)
    plan = RunPlan(
        tables=tables,
        clients=args.clients,
        duration=args.duration,
        url=args.url,
        topology=args.topology,
        processes=args.processes,
    )
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze 15 columns into 80
        console = Console(width=200)
    results: list[TableResult]
    if args.quiet:
        results = run_plan(plan, SilentReporter())
    else:
        with RichReporter(console) as reporter:
            results = run_plan(plan, reporter)
    print_results(console, results)
    many = len(results) > 1
    written: list[Path] = []
    for result in results:
        name = result.table.name
        json_path = output_path(args.json, RESULTS_DIR / f"{name}.json", name, many)
        write_json(json_path, result)
        plot_path = output_path(args.plot, RESULTS_DIR / f"{name}.png", name, many)
        write_plot(plot_path, result)
        written += [json_path, plot_path]
    md_path = args.markdown or RESULTS_DIR / f"{args.table}.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(render_markdown(results))
    written.append(md_path)
    console.print("wrote " + ", ".join(str(p) for p in written))
    return 0
