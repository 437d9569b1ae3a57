"""Run a peer whose pins clash with ours in an environment of its own, as one row's share.

A peer that cannot be installed beside redis-py 8.2 (arq pins ``redis<6``) is not forced into
the project's environment. Its row's workload (:class:`IsolatedWorkload`) starts a child with
``uv run --isolated --no-project --with <peer>==<version> python -m benchmarks.peers.<module>``:
uv builds (once, then from its cache) a throwaway environment holding the peer and what it
pins, and the child imports only the standard library, the peer and :mod:`benchmarks.peers`
(never the runner, nor aiorpatterns). The child opens its clients (:func:`child_main`: a
:class:`~benchmarks.peers.QueueRun` of the peer), prints a ready line, and waits; the row's first
op tells it to go, every op then sleeps to the deadline, and the child runs its clients for the
row's duration and prints one JSON line of per-client counts and latencies, which ``close``
adds to the row's :class:`~benchmarks.runner.ClientStats`. So the runner times, cancels and
merges such a row as any other; only the clients live in another process.

``IsolatedPeer.environment()`` (a variant's ``requires=`` through the peer module's
``__getattr__``) builds the environment and imports the peer in it once per process, so a row
whose environment cannot be built (no ``uv``, no PyPI and nothing cached) is skipped with a note
instead of failing, and the row's own start does not pay for the build.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import QueuePeer, QueueRun

if TYPE_CHECKING:
    from ..runner import ClientStats, Job, Op

__all__ = ["IsolatedPeer", "IsolatedWorkload", "child_main"]

#: The project's root: the child imports ``benchmarks.peers`` from here.
ROOT = Path(__file__).resolve().parents[2]
READY = "benchmarks-isolated: ready"
RESULT = "benchmarks-isolated: result "
#: Seconds a child may take to build its environment and open its clients.
START = 120.0
#: Seconds a child may take beyond the row's duration to stop and report.
UNWIND = 30.0


class IsolatedPeer:
    """A peer installed in an environment of its own: ``requirements`` and the module to run."""

    def __init__(self, module: str, requirements: Sequence[str], imports: str) -> None:
        self.module = module
        self.requirements = tuple(requirements)
        #: A module of the peer's that must import in its environment.
        self.imports = imports
        self._checked: str | None = None
        self._offline = False

    def command(self, *args: str) -> list[str]:
        """The ``uv run`` command line that runs ``python *args`` in the peer's environment."""
        uv = shutil.which("uv")
        if uv is None:
            raise RuntimeError("uv is not on PATH: isolated peers run with `uv run --isolated`")
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        withs = [part for req in self.requirements for part in ("--with", req)]
        offline = ["--offline"] if self._offline else []
        return [
            uv,
            "run",
            "--isolated",
            "--no-project",
            "--quiet",
            *offline,
            "--python",
            python,
            *withs,
            "python",
            *args,
        ]

    def environ(self) -> dict[str, str]:
        """The child's environment: ours without our venv, with the project root importable."""
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["PYTHONPATH"] = str(ROOT)
        return env

    def environment(self) -> str:
        """Build the peer's environment and import the peer in it (once); say what it holds."""
        if self._checked is not None:
            return self._checked
        probe = (
            f"import importlib.metadata as m, {self.imports}; "
            f"print(' '.join(d + '==' + m.version(d) for d in {self._names()!r}))"
        )
        errors = []
        for offline in (False, True):  # no PyPI: uv's cache may still hold the environment
            self._offline = offline
            found = subprocess.run(
                self.command("-c", probe),
                capture_output=True,
                text=True,
                timeout=START,
                cwd=ROOT,
                env=self.environ(),
                check=False,
            )
            if found.returncode == 0:
                self._checked = found.stdout.strip()
                return self._checked
            errors.append(_last_line(found.stderr))
        raise RuntimeError(f"uv could not build {' '.join(self.requirements)}: {errors[0]}")

    def _names(self) -> list[str]:
        names = []
        for req in self.requirements:
            name = req
            for mark in "=<>!~[; ":
                name = name.split(mark)[0]
            names.append(name)
        return names

    def workload(self, job: Job) -> IsolatedWorkload:
        """The row's workload factory (a variant's ``workload=``)."""
        return IsolatedWorkload(self, job)


class IsolatedWorkload:
    """One process' share of an isolated peer's row: a child running the peer's clients."""

    def __init__(self, peer: IsolatedPeer, job: Job) -> None:
        self.peer = peer
        self.job = job
        self.proc: asyncio.subprocess.Process | None = None
        self.stats: Sequence[ClientStats] = ()
        self.went = False
        self.errors: IO[bytes] | None = None

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        if self.job.target.topology != "standalone":
            raise RuntimeError("isolated peers run on a standalone server")
        self.peer.environment()
        self.stats = stats
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (the child's stderr; closed in close())
        args = ["--url", self.job.target.url, "--clients", str(len(stats))]
        self.proc = await asyncio.create_subprocess_exec(
            *self.peer.command("-m", self.peer.module, *args, "--duration", str(self.job.duration)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.errors,
            cwd=ROOT,
            env=self.peer.environ(),
        )
        await self._line(READY, START)
        return [self._op() for _ in stats]

    def _op(self) -> Op:
        async def op(deadline: float) -> None:
            if not self.went:
                self.went = True
                assert self.proc is not None
                assert self.proc.stdin is not None
                self.proc.stdin.write(b"go\n")
                await self.proc.stdin.drain()
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))

        return op

    async def _line(self, prefix: str, wait: float) -> str:
        """The child's next line starting with ``prefix`` (peers may print other lines)."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        async with asyncio.timeout(wait):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError(f"{self.peer.module} stopped: {self._stderr()}")
                if line.startswith(prefix):
                    return line[len(prefix) :]

    def _stderr(self) -> str:
        if self.errors is None:
            return ""
        self.errors.seek(0)
        return _last_line(self.errors.read().decode(errors="replace"))

    async def close(self) -> None:
        proc = self.proc
        if proc is None:
            return
        try:
            if self.went:
                found = json.loads(await self._line(RESULT, self.job.duration + UNWIND))
                rows = zip(found["ops"], found["tries"], found["latencies"], strict=True)
                for st, (ops, tries, latencies) in zip(self.stats, rows, strict=True):
                    st.ops += ops
                    st.tries += tries
                    st.latencies.extend(latencies)
            elif proc.stdin is not None:
                proc.stdin.close()  # the child closes its clients and exits
            await asyncio.wait_for(proc.wait(), UNWIND)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            if self.errors is not None:
                self.errors.close()
            self.proc = None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


# -- in the child ------------------------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.ops = 0
        self.tries = 0
        self.latencies: list[float] = []


def child_main(peer: QueuePeer, argv: Sequence[str] | None = None) -> None:
    """The child's entry point: run ``peer``'s clients for one row, as the parent asks."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_child(peer, args.url, args.clients, args.duration))


async def _child(peer: QueuePeer, url: str, clients: int, duration: float) -> None:
    run = QueueRun(peer, url)
    tallies = [_Tally() for _ in range(clients)]
    try:
        ops = await run.open(tallies)
        print(READY, flush=True)
        go = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if go.strip() != "go":
            return  # the parent gave up before the row started
        deadline = time.perf_counter() + duration

        async def drive(op: Any) -> None:
            while time.perf_counter() < deadline:
                await op(deadline)

        tasks = [asyncio.create_task(drive(op)) for op in ops]
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=UNWIND)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        with contextlib.suppress(Exception):
            await run.close()
    result = {
        "ops": [t.ops for t in tallies],
        "tries": [t.tries for t in tallies],
        "latencies": [t.latencies for t in tallies],
    }
    print(RESULT + json.dumps(result), flush=True)
