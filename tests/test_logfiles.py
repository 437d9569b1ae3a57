"""Resumable log processing (Redis in Action §4.3.2), on standalone Redis and Redis Cluster."""

from __future__ import annotations

import asyncio
import gzip
import signal
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import NO_REDIS, outcome, text, until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, ResponseError

from aiorpatterns.core.errors import ProgressConflictError
from aiorpatterns.ops.logfiles import LogProcessor, LogProgress, process_logs
from aiorpatterns.testing.server import free_port

ROOT = Path(__file__).resolve().parent.parent


def write_logs(directory: Path, files: dict[str, int], *, start: int = 0) -> list[bytes]:
    """Write (or append to) log files of numbered lines; return the lines written, in order."""
    written: list[bytes] = []
    for name, count in files.items():
        lines = [f"{name} line {i}\n".encode() for i in range(start, start + count)]
        data = b"".join(lines)
        if name.endswith(".gz"):
            with gzip.open(directory / name, "ab") as out:
                out.write(data)
        else:
            with (directory / name).open("ab") as out:
                out.write(data)
        written += lines
    return written


def counting(processor: LogProcessor) -> Any:
    """A callback counting each line in a HASH of the processor's own hash tag."""

    async def count(pipe: Any, line: bytes) -> None:
        pipe.hincrby(processor.key("seen"), line, 1)

    return count


def processor(redis: Any, directory: Path, name: str = "app", **options: Any) -> LogProcessor:
    made = LogProcessor(redis, name, directory=directory, callback=lambda p, line: None, **options)
    made.callback = counting(made)
    return made


async def seen(redis: Any, made: LogProcessor) -> Counter[bytes]:
    raw = await redis.hgetall(made.key("seen"))
    return Counter({text(k).encode(): int(v) for k, v in raw.items()})


async def test_book_scenario_processes_every_line_once(redis_client: Any, tmp_path: Path) -> None:
    lines = write_logs(tmp_path, {"2026-01-01.log": 25, "2026-01-02.log": 10, "2026-01-03.log": 7})
    made = processor(redis_client, tmp_path, batch=10)
    assert await made.progress() is None
    assert await made.process() == len(lines)
    assert await seen(redis_client, made) == Counter(lines)
    size = (tmp_path / "2026-01-03.log").stat().st_size
    assert await made.progress() == LogProgress("2026-01-03.log", size)
    assert await made.process() == 0  # nothing new: nothing twice
    assert await seen(redis_client, made) == Counter(lines)


async def test_progress_is_identical_with_or_without_decoding(
    redis_client_text: Any, tmp_path: Path
) -> None:
    write_logs(tmp_path, {"a.log": 3})
    made = processor(redis_client_text, tmp_path)
    await made.process()
    progress = await made.progress()
    assert progress == LogProgress("a.log", (tmp_path / "a.log").stat().st_size)
    assert type(progress.file) is str
    assert type(progress.offset) is int


async def test_cancel_at_successive_points_then_resume_counts_each_line_once(
    redis_client: Any, tmp_path: Path
) -> None:
    lines = write_logs(tmp_path, {"a.log": 12, "b.log.gz": 9, "c.log": 11})
    partial = 0
    # Cancel after 0, 6, 12, ... loop turns, then after 0, 5, 10, ... ms: redis-py runs a
    # cluster transaction's commands in a thread, so there loop turns alone may not reach
    # a point mid-way through the files.
    for steps in range(0, 240, 6):
        made = processor(redis_client, tmp_path, f"cut{steps}", batch=4)
        task = asyncio.create_task(made.process())
        if steps < 120:
            for _ in range(steps):
                await asyncio.sleep(0)
        else:
            await asyncio.sleep((steps - 120) / 1200)
        task.cancel()
        await outcome(task)
        if (await made.progress()) is not None:
            partial += (await seen(redis_client, made)) != Counter(lines)
        await processor(redis_client, tmp_path, f"cut{steps}", batch=4).process()
        assert await seen(redis_client, made) == Counter(lines), steps
    assert partial, "no cancellation landed mid-way through the files"


async def test_cancel_from_inside_the_callback_then_resume(
    redis_client: Any, tmp_path: Path
) -> None:
    lines = write_logs(tmp_path, {"a.log": 10, "b.log": 10})
    for stop in (1, 3, 4, 5, 9, 17):
        made = processor(redis_client, tmp_path, f"stop{stop}", batch=4)
        calls = 0
        inner = made.callback

        async def count_then_cancel(
            pipe: Any, line: bytes, inner: Any = inner, stop: int = stop
        ) -> None:
            nonlocal calls
            calls += 1
            await inner(pipe, line)
            if calls == stop:
                task = asyncio.current_task()
                assert task is not None
                task.cancel()

        made.callback = count_then_cancel
        calls = 0
        with pytest.raises(asyncio.CancelledError):
            await made.process()
        before = await seen(redis_client, made)
        # Whole batches only (4 lines each, a file's last one shorter), never part of one.
        assert sum(before.values()) in {0, 4, 8, 10, 14, 18, 20}
        assert set(before.values()) <= {1}
        await processor(redis_client, tmp_path, f"stop{stop}", batch=4).process()
        assert await seen(redis_client, made) == Counter(lines)


_KILLED = """
import asyncio, sys
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.cluster import RedisCluster
from aiorpatterns.ops.logfiles import LogProcessor

async def main(url: str, topology: str, directory: str) -> None:
    client = (RedisCluster if topology == "cluster" else Redis).from_url(url)
    made = LogProcessor(client, "killed", directory=directory, callback=print, batch=3)

    async def count(pipe, line):
        pipe.hincrby(made.key("seen"), line, 1)
        await asyncio.sleep(0.003)

    made.callback = count
    await made.process()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_kill_9_mid_file_then_resume_counts_each_line_once(
    request: pytest.FixtureRequest, redis_client: Any, tmp_path: Path
) -> None:
    topology = request.node.callspec.params["redis_client"]
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    url = request.getfixturevalue(fixture).url
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = write_logs(logs, {"a.log": 150, "b.log": 150})
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED, url, topology, str(logs), cwd=ROOT
    )
    made = processor(redis_client, logs, "killed", batch=3)

    async def mid_way() -> bool:
        progress = await made.progress()
        return progress is not None and progress.offset > 0

    try:
        await until(mid_way, "the child to commit a batch", limit=30)
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        code = await child.wait()
    assert code == -signal.SIGKILL, "the child finished before it could be killed"
    assert sum((await seen(redis_client, made)).values()) < len(lines)
    await made.process()
    assert await seen(redis_client, made) == Counter(lines)


async def test_gzip_files_are_read_decompressed_and_resumed(
    redis_client: Any, tmp_path: Path
) -> None:
    lines = write_logs(tmp_path, {"1.log.gz": 30, "2.log": 5})
    made = processor(redis_client, tmp_path, batch=7)
    calls = 0
    inner = made.callback

    async def stop_after_two_batches(pipe: Any, line: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 15:
            raise RuntimeError("crash")
        await inner(pipe, line)

    made.callback = stop_after_two_batches
    with pytest.raises(RuntimeError, match="crash"):
        await made.process()
    assert await made.progress() == LogProgress("1.log.gz", sum(map(len, lines[:14])))
    made.callback = inner
    assert await made.process() == len(lines) - 14
    assert await seen(redis_client, made) == Counter(lines)


async def test_a_growing_file_is_followed_and_a_partial_line_waits(
    redis_client: Any, tmp_path: Path
) -> None:
    lines = write_logs(tmp_path, {"a.log": 3, "b.log": 2})
    with (tmp_path / "b.log").open("ab") as out:
        out.write(b"half a li")
    made = processor(redis_client, tmp_path)
    assert await made.process() == 5  # the newest file's partial line is not finished yet
    lines += write_logs(tmp_path, {"b.log": 2, "c.log": 0}, start=2)
    lines[5] = b"half a li" + lines[5]
    # b.log is no longer the newest file: its last line counts even without a newline.
    with (tmp_path / "b.log").open("ab") as out:
        out.write(b"no newline")
    lines.append(b"no newline")
    assert await made.process() == 3
    assert await seen(redis_client, made) == Counter(lines)


async def test_rotated_and_truncated_files(redis_client: Any, tmp_path: Path) -> None:
    first = write_logs(tmp_path, {"1.log": 4, "2.log": 4})
    made = processor(redis_client, tmp_path)
    await made.process()
    # 2.log was rotated away: processing resumes with the next name.
    (tmp_path / "1.log").unlink()
    (tmp_path / "2.log").unlink()
    later = write_logs(tmp_path, {"3.log": 3})
    assert await made.process() == 3
    # 3.log was copied away and truncated in place: it is a new file, read from the start.
    (tmp_path / "3.log").write_bytes(b"")
    fresh = write_logs(tmp_path, {"3.log": 1}, start=100)
    assert await made.process() == 1
    assert await seen(redis_client, made) == Counter(first + later + fresh)


async def test_a_failing_callback_commits_nothing_of_its_batch(
    redis_client: Any, tmp_path: Path
) -> None:
    lines = write_logs(tmp_path, {"a.log": 10})
    made = processor(redis_client, tmp_path, batch=4)
    inner = made.callback

    async def fail_on_line_six(pipe: Any, line: bytes) -> None:
        await inner(pipe, line)
        if line == lines[5]:
            raise ValueError("bad line")

    made.callback = fail_on_line_six
    with pytest.raises(ValueError, match="bad line"):
        await made.process()
    assert await seen(redis_client, made) == Counter(lines[:4])
    made.callback = inner
    await made.process()
    assert await seen(redis_client, made) == Counter(lines)


async def test_atomic_mode_on_cluster_refuses_keys_outside_the_tag(
    redis_client: Any, tmp_path: Path
) -> None:
    write_logs(tmp_path, {"a.log": 3})

    def elsewhere(pipe: Any, line: bytes) -> None:
        pipe.hincrby("aiorp:other:{elsewhere}", line, 1)

    made = LogProcessor(redis_client, "app", directory=tmp_path, callback=elsewhere)
    if isinstance(redis_client, RedisCluster):
        with pytest.raises((RedisClusterException, ResponseError)):
            await made.process()
        assert await made.progress() is None
        assert await redis_client.exists("aiorp:other:{elsewhere}") == 0
    else:  # one server holds every key: the transaction is fine
        assert await made.process() == 3


async def test_at_least_once_mode_writes_anywhere(redis_client: Any, tmp_path: Path) -> None:
    lines = write_logs(tmp_path, {"a.log": 9, "b.log": 4})
    keys = [f"aiorp:other:{{k{i}}}" for i in range(5)]

    def spread(pipe: Any, line: bytes) -> None:
        pipe.incr(keys[int(line.split()[-1]) % 5])

    made = LogProcessor(
        redis_client, "loose", directory=tmp_path, callback=spread, atomic=False, batch=4
    )
    assert await made.process() == len(lines)
    assert sum([int(await redis_client.get(k) or 0) for k in keys]) == len(lines)
    assert await made.progress() == LogProgress("b.log", (tmp_path / "b.log").stat().st_size)


async def test_two_processors_with_one_name_are_detected(redis_client: Any, tmp_path: Path) -> None:
    write_logs(tmp_path, {"a.log": 8})
    both = asyncio.Event()
    started = 0

    async def wait_for_both(pipe: Any, line: bytes) -> None:
        nonlocal started
        started += 1
        if started == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)
        pipe.incr("aiorp:other:{count}")

    made = [
        LogProcessor(
            redis_client, "twin", directory=tmp_path, callback=wait_for_both, atomic=False, batch=8
        )
        for _ in range(2)
    ]
    results = await asyncio.gather(*(m.process() for m in made), return_exceptions=True)
    assert both.is_set()  # they really overlapped
    assert sorted(type(r).__name__ for r in results) == ["ProgressConflictError", "int"]
    assert ProgressConflictError in {type(r) for r in results}


async def test_follow_picks_up_new_lines_until_cancelled(redis_client: Any, tmp_path: Path) -> None:
    lines = write_logs(tmp_path, {"a.log": 2})
    made = processor(redis_client, tmp_path)
    task = asyncio.create_task(made.follow(interval=0.02))

    async def caught_up() -> bool:
        return await seen(redis_client, made) == Counter(lines)

    await until(caught_up, "the first lines")
    lines += write_logs(tmp_path, {"a.log": 3, "b.log": 1}, start=2)
    await until(caught_up, "the appended lines")
    task.cancel()
    assert await outcome(task) is None


async def test_process_logs_function(redis_client: Any, tmp_path: Path) -> None:
    lines = write_logs(tmp_path, {"x.log": 5})
    got: list[bytes] = []

    def keep(pipe: Any, line: bytes) -> None:
        got.append(line)

    assert await process_logs(redis_client, tmp_path, keep, name="fn") == 5
    assert got == lines
    assert await process_logs(redis_client, tmp_path, keep, name="fn") == 0


async def test_corrupt_progress_and_files(redis_client: Any, tmp_path: Path) -> None:
    write_logs(tmp_path, {"a.log": 2})
    made = processor(redis_client, tmp_path)
    await redis_client.hset(made.progress_key, mapping={"file": "a.log", "offset": "x"})
    with pytest.raises(ValueError, match="offset"):
        await made.process()
    await made.reset()
    (tmp_path / "b.log.gz").write_bytes(b"not gzip at all\n")
    with pytest.raises(OSError, match="gzip"):
        await made.process()
    assert await made.progress() == LogProgress("a.log", (tmp_path / "a.log").stat().st_size)


def committed_before(files: list[list[bytes]], batch: int, crash: int) -> int:
    """Lines committed when call number ``crash`` of the callback fails (0: it never does)."""
    done = 0
    for lines in files:
        for first in range(0, len(lines), batch):
            chunk = lines[first : first + batch]
            if done < crash <= done + len(chunk):
                return done
            done += len(chunk)
    return done


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(0, 12), min_size=1, max_size=4),
    batch=st.integers(1, 6),
    crash=st.integers(0, 50),
)
async def test_matches_a_model_whatever_the_crash_point(
    redis_client: Any, sizes: list[int], batch: int, crash: int
) -> None:
    with tempfile.TemporaryDirectory() as where:
        directory = Path(where)
        per_file = [
            write_logs(directory, {f"{i:02}.log" + (".gz" if i % 2 else ""): n})
            for i, n in enumerate(sizes)
        ]
        lines = [line for chunk in per_file for line in chunk]
        made = processor(redis_client, directory, uuid.uuid4().hex[:10], batch=batch)
        inner = made.callback
        calls = 0

        async def crashing(pipe: Any, line: bytes) -> None:
            nonlocal calls
            calls += 1
            if calls == crash:
                raise RuntimeError("crash")
            await inner(pipe, line)

        made.callback = crashing
        crashed = False
        try:
            await made.process()
        except RuntimeError:
            crashed = True
        assert crashed == (0 < crash <= len(lines))
        committed = sum((await seen(redis_client, made)).values())
        assert committed == committed_before(per_file, batch, crash)
        made.callback = inner
        assert await made.process() == len(lines) - committed
        assert await seen(redis_client, made) == Counter(lines)
        await redis_client.delete(made.key("seen"), made.progress_key)


def _offline() -> Redis:
    return Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))


async def test_bad_input_is_refused_before_redis(tmp_path: Path) -> None:
    offline = _offline()

    def ok(pipe: Any, line: bytes) -> None:
        pass

    with pytest.raises(TypeError):
        LogProcessor(None, "x", directory=tmp_path, callback=ok)
    with pytest.raises(ValueError, match="name"):
        LogProcessor(offline, "", directory=tmp_path, callback=ok)
    with pytest.raises(ValueError, match="name"):
        LogProcessor(offline, "a}b", directory=tmp_path, callback=ok)
    with pytest.raises(TypeError):
        LogProcessor(offline, "x", directory=42, callback=ok)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LogProcessor(offline, "x", directory=tmp_path, callback="no")  # type: ignore[arg-type]
    for bad_batch in (0, -1, 1.5, True):
        with pytest.raises((TypeError, ValueError)):
            LogProcessor(offline, "x", directory=tmp_path, callback=ok, batch=bad_batch)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LogProcessor(offline, "x", directory=tmp_path, callback=ok, atomic=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LogProcessor(offline, "x", directory=tmp_path, callback=ok, pattern="")
    made = LogProcessor(offline, "x", directory=tmp_path / "missing", callback=ok)
    with pytest.raises(ValueError, match="not a directory"):
        await made.process()
    with pytest.raises(ValueError, match="part"):
        made.key()
    with pytest.raises(ValueError, match="interval"):
        await made.follow(interval=0)
    await offline.aclose()


def test_a_batch_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch"):
        LogProcessor(NO_REDIS, "x", directory=tmp_path, callback=lambda p, line: None, batch=2**63)


async def test_follow_interval_out_of_range_is_refused_before_redis(tmp_path: Path) -> None:
    made = LogProcessor(NO_REDIS, "x", directory=tmp_path, callback=lambda p, line: None)
    for bad in (0, -1.0, float("nan"), float("inf"), 2e9):
        with pytest.raises(ValueError, match="interval"):
            await made.follow(interval=bad)
