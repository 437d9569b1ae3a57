"""One cold key, many callers in many processes: origin calls and waits (``cache-stampede``).

Redis in Action §2.3's ``cache_request`` renders a missing page in every caller that misses it:
when a popular entry expires, the origin gets one call per concurrent caller (a stampede). This
benchmark measures what each cache a user would pick does instead: for each system, P processes
(4 by default) each start C callers (25) of one cached async function on one cold key at the
same moment (every process waits on one go-signal); the origin takes 50 ms and counts its calls
in Redis (``INCR``). It reports, per system: origin calls, and each caller's wait (from its call
to its value) at p50, p99 and max.

Systems, each with the stampede protection its documentation offers:

- ``aiorpatterns``: :class:`~aiorpatterns.Cache` (``@cache.cached``): one caller claims the key,
  the others wait for its value on their client's wake-up channel (no polling);
- ``cashews-lock``: cashews' ``@cache(ttl, lock=True)``: a lock per key, its waiters poll it;
  ``cashews``: its default ``@cache(ttl)``, no protection;
- ``aiocache-stampede``: aiocache's ``cached_stampede`` (a Redis lock, waiters poll with a
  sleep); ``aiocache``: its default ``cached``, no protection.

Not a :class:`~benchmarks.runner.Table` (a handful of counts from one scripted scenario, as
``queue-crash``): ``python -m benchmarks cache-stampede`` hands its arguments over; not part of
``all``. Child processes run ``python -m benchmarks.cache_stampede --child <system> ...``.
Every key written is under ``bench:``, deleted after each system's row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["SYSTEMS", "StampedeRow", "main", "run_stampede"]

SYSTEMS = ("aiorpatterns", "cashews-lock", "cashews", "aiocache-stampede", "aiocache")
MECHANISMS = {
    "aiorpatterns": "one claim per key; waiters woken by the wake-up channel (no polling)",
    "cashews-lock": "@cache(ttl, lock=True): a lock per key; waiters poll it",
    "cashews": "@cache(ttl): no protection (its default)",
    "aiocache-stampede": "cached_stampede: a Redis lock; waiters poll with a sleep",
    "aiocache": "cached: no protection (its default)",
}
PREFIX = "bench:stampede:"


@dataclass
class StampedeRow:
    """One system's result."""

    system: str
    callers: int
    origin_calls: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mechanism: str


def _calls_key(run: str) -> str:
    return f"{PREFIX}{run}:calls"


def _go_key(run: str) -> str:
    return f"{PREFIX}{run}:go"


async def _system(name: str, url: str, origin: Any) -> tuple[Any, Any]:
    from .cache import ours_cache
    from .peers.aiocache_cache import aiocache_cache
    from .peers.cashews_cache import cashews_cache
    from .runner import Target

    target = Target(url)
    if name == "aiorpatterns":
        return await ours_cache(target, origin)
    if name.startswith("cashews"):
        return await cashews_cache(target, origin, locked=name == "cashews-lock")
    return await aiocache_cache(target, origin, stampede=name == "aiocache-stampede")


async def _child_run(args: argparse.Namespace) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(args.url)

    async def origin(n: int) -> dict[str, Any]:
        await redis.incr(_calls_key(args.run))
        await asyncio.sleep(args.origin)
        return {"id": n}

    load, close = await _system(args.child, args.url, origin)
    key = int(uuid.UUID(args.run).int % 10**12)  # one cold key per run
    print("ready", flush=True)
    await redis.blpop([_go_key(args.run)], 60)

    async def call() -> float:
        started = time.perf_counter()
        await load(key)
        return (time.perf_counter() - started) * 1000

    waits = await asyncio.gather(*(call() for _ in range(args.callers)))
    print(json.dumps(waits), flush=True)
    await close()
    await redis.aclose()


def _child(args: argparse.Namespace) -> int:
    asyncio.run(_child_run(args))
    return 0


async def _line(process: asyncio.subprocess.Process, seconds: float = 60) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), seconds)).decode().strip()


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def stampede_one(
    url: str, system: str, *, processes: int, callers: int, origin: float
) -> StampedeRow:
    """Run one system's stampede; delete what it wrote."""
    from redis.asyncio import Redis

    run = str(uuid.uuid4())
    command = [sys.executable, "-m", "benchmarks.cache_stampede", "--child", system]
    command += ["--url", url, "--run", run, "--callers", str(callers), "--origin", str(origin)]
    children = [
        await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        for _ in range(processes)
    ]
    redis = Redis.from_url(url)
    try:
        for child in children:
            if await _line(child) != "ready":
                raise RuntimeError(f"{system}: a caller process did not start")
        await redis.rpush(_go_key(run), *["go"] * processes)
        waits: list[float] = []
        for child in children:
            waits += json.loads(await _line(child))
        calls = int(await redis.get(_calls_key(run)) or 0)
        return StampedeRow(
            system=system,
            callers=len(waits),
            origin_calls=calls,
            p50_ms=round(_percentile(waits, 0.5), 1),
            p99_ms=round(_percentile(waits, 0.99), 1),
            max_ms=round(max(waits), 1),
            mechanism=MECHANISMS[system],
        )
    finally:
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
            await child.wait()
        async for key in redis.scan_iter(match="bench:*", count=1000):
            await redis.delete(key)
        await redis.aclose()


def _available(system: str) -> str | None:
    module = {"cashews": "cashews", "aiocache": "aiocache"}.get(system.split("-")[0])
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError:
        return f"{module} is not installed"
    return None


async def run_stampede(
    url: str,
    systems: Sequence[str] = SYSTEMS,
    *,
    processes: int = 4,
    callers: int = 25,
    origin: float = 0.05,
) -> tuple[list[StampedeRow], list[str]]:
    """Every system's row, and a note for each one that could not run."""
    rows: list[StampedeRow] = []
    skipped: list[str] = []
    for system in systems:
        why = _available(system)
        if why is not None:
            skipped.append(f"cache-stampede: skipped {system}: {why}")
            continue
        rows.append(
            await stampede_one(url, system, processes=processes, callers=callers, origin=origin)
        )
    return rows, skipped


def print_stampede(console: Any, rows: Sequence[StampedeRow], skipped: Sequence[str]) -> None:
    """The rows as a compact rich table, the mechanisms under it."""
    from rich import box
    from rich.table import Table as RichTable

    table = RichTable(
        title="[bold]cache-stampede[/]: one cold key, callers in several processes (§2.3)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        header_style="bold cyan",
        title_justify="left",
    )
    for i, title in enumerate(("system", "callers", "origin calls", "p50 ms", "p99 ms", "max ms")):
        table.add_column(title, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(
            row.system,
            *(str(v) for v in (row.callers, row.origin_calls, row.p50_ms, row.p99_ms, row.max_ms)),
            style="green" if row.system == "aiorpatterns" else None,
        )
    console.print(table)
    for row in rows:
        console.print(f"  [dim]{row.system}: {row.mechanism}[/]")
    for note in skipped:
        console.print(f"  [yellow]{note}[/]")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks cache-stampede",
        description="Origin calls and waits when many processes miss one cold key at once.",
    )
    p.add_argument("--processes", type=int, default=4, help="caller processes (default 4)")
    p.add_argument("--callers", type=int, default=25, help="callers per process (default 25)")
    p.add_argument(
        "--origin", type=float, default=0.05, help="seconds the origin takes (default 0.05)"
    )
    p.add_argument("--url", help="use this server instead of starting one (standalone)")
    p.add_argument("--json", type=Path, metavar="F", help="write the rows as JSON to F")
    child = p.add_argument_group("caller process (started by this benchmark)")
    child.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    child.add_argument("--run", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one caller process); return the exit status."""
    args = parser().parse_args(argv)
    if args.processes < 1 or args.callers < 1 or args.origin <= 0:
        parser().error("--processes and --callers must be 1 or more, --origin positive")
    if args.child is not None:
        return _child(args)

    from rich.console import Console

    from aiorpatterns.testing.server import RedisServer

    console = Console()
    if not console.is_terminal:
        console = Console(width=100)
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(RedisServer()).url
        rows, skipped = asyncio.run(
            run_stampede(url, processes=args.processes, callers=args.callers, origin=args.origin)
        )
    print_stampede(console, rows, skipped)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
