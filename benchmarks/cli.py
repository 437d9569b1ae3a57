"""Parse ``python -m benchmarks`` arguments, run the tables, print and write the results.

The harness of Redis in Action's benchmark tables (§4.5 pipelines, §11.2 locks, §6.3
semaphores, ...): ``python -m benchmarks <table|all>``. Without ``--url`` it starts its own
server (or cluster) through :mod:`aiorpatterns.testing.server`. It prints a table that fits 100
columns (``--wide``: every column) and writes files only when asked: ``--json``, ``--plot``,
``--markdown``, or ``--out DIR`` for all three.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from .report import (
    COMPACT_WIDTH,
    RichReporter,
    print_results,
    write_json,
    write_markdown,
    write_plot,
)
from .runner import RunPlan, SilentReporter, TableResult, run_plan

__all__ = ["TABLES", "main", "output_path", "write_files"]

TABLES = (
    "pipeline",
    "lock",
    "semaphore",
    "autocomplete",
    "queue",
    "market",
    "ziplist",
    "ratelimit",
    "cache",
)
#: A benchmark that is not a table of rates (counts of lost tasks): its own arguments, not in
#: ``all`` (``python -m benchmarks queue-crash --help``).
CRASH = "queue-crash"
#: Another (origin calls when many processes miss one cold key): ``cache-stampede --help``.
STAMPEDE = "cache-stampede"


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
        epilog=f"{CRASH}: tasks lost when a worker is SIGKILLed mid-run; {STAMPEDE}: origin "
        "calls when many processes miss one cold key. Benchmarks with arguments of their own "
        f"(python -m benchmarks {CRASH} --help), not part of all.",
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
        default=0.5,
        help="seconds per row (default 0.5; the book's rows are 10)",
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
    p.add_argument(
        "--wide",
        action="store_true",
        help="print every column (default: the columns that fit 100 characters)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    files = p.add_argument_group("files", "written only when asked; nothing is written by default")
    files.add_argument(
        "--json", type=Path, metavar="F", help="rows as JSON (F-<table>.json when several tables)"
    )
    files.add_argument(
        "--plot", type=Path, metavar="F.png", help="a chart (F-<table>.png when several tables)"
    )
    files.add_argument("--markdown", type=Path, metavar="F", help="markdown of every table")
    files.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="<table>.json, .png and .md of each table into DIR (the flags above win)",
    )
    return p


def output_path(given: Path | None, table: str, many: bool) -> Path | None:
    """The file for ``table``: ``given``, suffixed ``-<table>`` when several tables share it."""
    if given is None:
        return None
    return given.with_name(f"{given.stem}-{table}{given.suffix}") if many else given


def _file(given: Path | None, out: Path | None, table: str, suffix: str, many: bool) -> Path | None:
    """:func:`output_path` of ``given``, else ``<out>/<table><suffix>`` under ``--out``."""
    path = output_path(given, table, many)
    if path is None and out is not None:
        path = out / f"{table}{suffix}"
    return path


def write_files(args: argparse.Namespace, results: Sequence[TableResult]) -> list[Path]:
    """Write the files the flags ask for (none by default); return their paths."""
    many = len(results) > 1
    written: list[Path] = []
    for result in results:
        name = result.table.name
        writers: list[tuple[Path | None, str, Callable[[Path, TableResult], None]]] = [
            (args.json, ".json", write_json),
            (args.plot, ".png", write_plot),
        ]
        for given, suffix, write in writers:
            path = _file(given, args.out, name, suffix, many)
            if path is not None:
                write(path, result)
                written.append(path)
        if args.out is not None and args.markdown is None:
            write_markdown(args.out / f"{name}.md", [result])
            written.append(args.out / f"{name}.md")
    if args.markdown is not None:
        write_markdown(args.markdown, results)
        written.append(args.markdown)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == [CRASH]:  # not a Table: a benchmark of its own (benchmarks/queue_crash.py)
        from .queue_crash import main as crash_main

        return crash_main(given[1:])
    if given[:1] == [STAMPEDE]:  # the same kind (benchmarks/cache_stampede.py)
        from .cache_stampede import main as stampede_main

        return stampede_main(given[1:])
    args = parser().parse_args(given)
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
    if not console.is_terminal:  # piped or captured: as wide as the table is meant to be
        console = Console(width=240 if args.wide else COMPACT_WIDTH)
    results: list[TableResult]
    if args.quiet:
        results = run_plan(plan, SilentReporter())
    else:
        with RichReporter(console) as reporter:
            results = run_plan(plan, reporter)
    print_results(console, results, wide=args.wide)
    written = write_files(args, results)
    if written:
        console.print("wrote " + ", ".join(str(p) for p in written))
    return 0
