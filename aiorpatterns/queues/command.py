"""The worker command: run a :class:`~aiorpatterns.Worker` as a service.

``aiorpatterns worker package.module:attribute`` (or ``python -m aiorpatterns.worker …``) imports
``attribute``: a :class:`~aiorpatterns.Worker`, or a function (plain or ``async``) that returns
one, and serves its queues until SIGTERM or SIGINT. Redis in Action §6.4.1 runs
``worker_watch_queue`` in a ``while not QUIT`` loop and leaves the process management to the
reader; this is that part, as a deployment expects it:

- **Stopping** (SIGTERM, SIGINT): stop claiming, let running handlers finish for the worker's
  ``grace`` seconds, cancel the rest and give their tasks back to the queue at once (they never
  wait for their visibility timeout), close the clients and exit 0. A second signal while
  stopping is logged and ignored: the grace period bounds the stop.
- **Health** (``--check``): a serving worker writes a health beat (its pid, host, counts and
  running handlers as JSON) every ``--health-interval`` seconds, under its own key
  ``<prefix>:worker:{<queues>}:health:<name>`` that lives for two intervals and a second;
  ``--name`` defaults to the host name, which a container or a pod makes unique (give each of
  several workers on one host its own). ``aiorpatterns worker TARGET --check`` (same
  ``--name``) exits 0 while that worker's beat is alive, else 1, however many other replicas
  beat: a container health check, or ``ExecStartPost`` of a systemd unit.
- **Options** override the worker's own: ``--concurrency``, ``--queues`` (serve only these of
  its queues), ``--grace``, ``--log-level``. The startup log names the queues, the handlers and
  the settings, so a misconfigured deployment shows at once.

Built on anyio (a task group for the beat and the service, a signal receiver); the handlers run
as :class:`~aiorpatterns.Worker` runs them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio

from ..core.checks import check_count, check_seconds, check_wait
from ..core.keys import check_name
from .worker import Worker

__all__ = ["health_key", "load_worker", "main"]

log = logging.getLogger("aiorpatterns.worker")

#: Exit statuses: served and stopped cleanly (or a live beat), no live beat, a bad command line.
OK, UNHEALTHY, USAGE = 0, 1, 2

HEALTH_INTERVAL = 5.0


class UsageError(Exception):
    """A target or option the command cannot use (exit status 2, with this message)."""


def health_key(worker: Worker, name: str) -> str:
    """The key the serving ``worker`` called ``name`` beats on (its first queue's keyspace).

    Its tag is the set of queue names, so every replica's beat of one deployment shares a slot.
    """
    names = "+".join(sorted({q.name for q in worker.queues}))
    return worker.queues[0].keyspace.key("worker", names, "health", name)


async def load_worker(target: str) -> Worker:
    """Import ``module:attribute`` and return the :class:`Worker` it names or makes."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"expected package.module:attribute, got {target!r}")
    sys.path.insert(0, os.getcwd())  # as ``python -m`` would: the app's modules by their names
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(found, Worker) and callable(found):
        found = found()
        if inspect.isawaitable(found):
            found = await found
    if not isinstance(found, Worker):
        raise UsageError(f"{target} is not a Worker, nor a function returning one")
    return found


def _configure(worker: Worker, args: argparse.Namespace) -> None:
    """Apply the command line's overrides to ``worker`` (checked as the constructor checks)."""
    if args.concurrency is not None:
        worker.concurrency = check_count(args.concurrency, "--concurrency")
    if args.grace is not None:
        worker.grace = check_wait(args.grace, "--grace")
    if args.queues is not None:
        names = [check_name(n.strip(), "queue name") for n in args.queues.split(",")]
        by_name = {q.name: q for q in worker.queues}
        unknown = sorted(set(names) - set(by_name))
        if unknown:
            raise UsageError(f"--queues names {unknown}; the worker serves {sorted(by_name)}")
        worker.queues = tuple(by_name[n] for n in dict.fromkeys(names))


async def _beat(worker: Worker, key: str, interval: float) -> None:
    """Write the health beat every ``interval`` seconds while serving (a failure is logged)."""
    host, ttl_ms = socket.gethostname(), int((2 * interval + 1) * 1000)
    redis = worker.queues[0].redis
    while True:
        stats = worker.stats
        beat = {
            "at": time.time(),
            "pid": os.getpid(),
            "host": host,
            "running": worker.running,
            "acked": stats.acked,
            "retried": stats.retried,
            "dead": stats.dead,
            "released": stats.released,
        }
        try:
            await redis.set(key, json.dumps(beat), px=ttl_ms)
        except Exception as exc:  # Redis away for a moment: the beat lapses, the worker serves on
            log.warning("health beat failed: %r", exc)
        await anyio.sleep(interval)


async def _serve(worker: Worker, key: str, interval: float) -> int:
    queues = ", ".join(q.name for q in worker.queues)
    async with anyio.create_task_group() as group:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await worker.start()
            group.start_soon(_beat, worker, key, interval)
            log.info(
                "worker %d serving queues [%s] with handlers [%s]: concurrency %d, grace %.1f s, "
                "health beat every %.1f s at %s",
                *(os.getpid(), queues, ", ".join(sorted(worker.handlers)), worker.concurrency),
                *(worker.grace, interval, key),
            )
            async for signum in signals:
                log.info(
                    "%s: stopping; running handlers have %.1f s to finish, the rest go back",
                    signal.Signals(signum).name,
                    worker.grace,
                )
                break
            group.start_soon(_ignore_more, signals)
            await worker.aclose()
        group.cancel_scope.cancel()
    stats = worker.stats
    log.info(
        "worker %d stopped: %d acked, %d retried, %d dead-lettered, %d given back",
        *(os.getpid(), stats.acked, stats.retried, stats.dead, stats.released),
    )
    return OK


async def _ignore_more(signals: Any) -> None:
    async for signum in signals:
        log.info("%s: already stopping", signal.Signals(signum).name)


async def _check(worker: Worker, key: str) -> int:
    beat = await worker.queues[0].redis.get(key)
    if beat is None:
        print(f"no live health beat at {key}", file=sys.stderr)
        return UNHEALTHY
    print(beat.decode() if isinstance(beat, bytes) else beat)
    return OK


async def _run(args: argparse.Namespace) -> int:
    worker = await load_worker(args.target)
    try:
        _configure(worker, args)
        interval = check_seconds(args.health_interval, "--health-interval")
        key = health_key(worker, check_name(args.name or socket.gethostname(), "--name"))
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    try:
        return await (_check(worker, key) if args.check else _serve(worker, key, interval))
    finally:
        for client in {id(q.redis): q.redis for q in worker.queues}.values():
            await client.aclose()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiorpatterns", description="aiorpatterns commands")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser(
        "worker",
        help="serve a Worker's queues until SIGTERM/SIGINT",
        description="Serve a Worker's queues until SIGTERM or SIGINT (then stop gracefully).",
    )
    worker.add_argument(
        "target", help="package.module:attribute, a Worker or a function returning one"
    )
    worker.add_argument("--concurrency", type=int, help="handlers running at once")
    worker.add_argument("--queues", help="comma-separated names: serve only these queues")
    worker.add_argument("--grace", type=float, help="seconds running handlers get to finish")
    worker.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default INFO)",
    )
    worker.add_argument(
        "--health-interval",
        type=float,
        default=HEALTH_INTERVAL,
        help=f"seconds between health beats (default {HEALTH_INTERVAL})",
    )
    worker.add_argument(
        "--name",
        help="this worker's name in its health key (default: the host name; give each of "
        "several workers on one host its own)",
    )
    worker.add_argument(
        "--check", action="store_true", help="exit 0 if the worker NAME beat lately, else 1"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: the process's); return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return anyio.run(_run, args)
    except UsageError as exc:
        print(f"aiorpatterns worker: {exc}", file=sys.stderr)
        return USAGE
