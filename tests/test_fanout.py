"""Fanout on real servers: every group reads everything, dead consumers' entries are reclaimed
(also from a SIGKILLed process), bounded length, safe trimming, the book's file distribution,
cancels.

Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster.
``min_idle`` is short (0.2 s) where entries must be reclaimed; nothing asserts how fast anything
is.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from helpers import NO_REDIS, ends_after_cancel, outcome, until
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.messaging.fanout import (
    MAX_READ_COUNT,
    Fanout,
    FanoutConsumer,
    FanoutEntry,
    FanoutGroup,
)
from aiorpatterns.testing.server import free_port

ROOT = str(Path(__file__).resolve().parents[1])


async def drain(
    consumer: FanoutConsumer, seen: collections.Counter[str], total: int, *, count: int = 50
) -> list[FanoutEntry]:
    """Read and ack until the group (all consumers sharing ``seen``) has ``total`` entries."""
    mine = []
    while sum(seen.values()) < total:
        entries = await consumer.read(count=count, timeout=0.2)
        for entry in entries:
            seen[entry.id] += 1
        mine.extend(entries)
        if entries:
            assert await consumer.ack(entries) == len(entries)
    return mine


# -- fan-out -----------------------------------------------------------------------------------


async def test_three_groups_each_read_everything(redis_client: Any) -> None:
    """3 producers, 3 groups of 2 consumers: every group receives every entry exactly once."""
    fanout = Fanout(redis_client, "logs")
    groups = ["archive", "country", "errors"]
    for group in groups:
        assert await fanout.create_group(group) is True
    assert await fanout.create_group("archive") is False
    total = 300

    async def produce(p: int) -> list[str]:
        ids = [await fanout.publish({"p": p, "n": n}) for n in range(50)]
        return ids + await fanout.publish_many({"p": p, "n": n} for n in range(50, 100))

    seen = {g: collections.Counter[str]() for g in groups}
    readers = [
        drain(fanout.consumer(g, f"{g}-{i}"), seen[g], total) for g in groups for i in range(2)
    ]
    results: list[list[Any]] = await asyncio.gather(*(produce(p) for p in range(3)), *readers)
    published = [i for ids in results[:3] for i in ids]
    assert len(set(published)) == total
    for group in groups:
        assert seen[group] == collections.Counter(published), f"group {group}"
    payloads = [e.payload for batch in results[3:] for e in batch]
    assert sorted((d["p"], d["n"]) for d in payloads) == sorted(
        (p, n) for p in range(3) for n in range(100) for _ in groups
    )
    infos = await fanout.groups()
    assert [(g.name, g.pending, g.lag, g.consumers) for g in infos] == [
        (g, 0, 0, 2) for g in groups
    ]
    # Everything was acknowledged by every group: a safe trim empties the stream.
    assert await fanout.trim() == total
    assert await fanout.length() == 0


def write_logs(folder: Path, sizes: dict[str, int]) -> list[Path]:
    """Write the log files of the book's test, gzipping those named ``*.gz``."""
    paths = []
    for name, lines in sizes.items():
        body = "".join(f"one line {i}\n" for i in range(lines)).encode()
        path = folder / name
        path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
        paths.append(path)
    return paths


def read_lines(path: Path) -> list[str]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as lines:
        return [line.rstrip("\n") for line in lines]


async def test_book_file_distribution(redis_client: Any, tmp_path: Path) -> None:
    """Redis in Action §6.6 and its test (ch06 L975), scaled down tenfold: three log files (1,
    1,000 and, gzipped, 10,000 lines) are copied line by line, and a reader counts the lines
    of each file; once every group is done the stream is cleaned up."""
    sizes = {"temp-1.txt": 1, "temp-2.txt": 1000, "temp-3.txt.gz": 10000}
    paths = write_logs(tmp_path, sizes)
    fanout = Fanout(redis_client, "test:")
    await fanout.create_group("reader")

    async def copy_logs() -> None:
        for path in paths:
            entries = [{"file": path.name, "line": line} for line in read_lines(path)]
            await fanout.publish_many([*entries, {"file": path.name, "eof": True}])

    async def process_logs() -> dict[str, int]:
        counts: collections.Counter[str] = collections.Counter()
        finished: set[str] = set()
        async with fanout.consumer("reader", "only", count=1000) as reader:
            while len(finished) < len(sizes):
                entries = await reader.read(timeout=1)
                for entry in entries:
                    record = entry.payload
                    if record.get("eof"):
                        finished.add(record["file"])
                    else:
                        counts[record["file"]] += 1
                await reader.ack(entries)
        return dict(counts)

    _, counts = await asyncio.gather(copy_logs(), process_logs())
    assert counts == sizes
    assert await fanout.trim() == sum(sizes.values()) + len(sizes)
    assert await fanout.length() == 0
    assert [g.consumers for g in await fanout.groups()] == [0]  # the reader removed itself


# -- dead consumers ----------------------------------------------------------------------------


async def test_a_consumer_stopped_mid_batch_is_reclaimed(redis_client: Any) -> None:
    fanout = Fanout(redis_client, "stop")
    await fanout.create_group("g")
    ids = await fanout.publish_many(range(100))
    victim = fanout.consumer("g", "victim", min_idle=0.2)
    held = await victim.read(count=30, timeout=0)
    assert [e.payload for e in held] == list(range(30))
    del victim  # stops without acking: its 30 entries stay pending
    seen: collections.Counter[str] = collections.Counter()
    rescuer = fanout.consumer("g", "rescuer", min_idle=0.2)
    await drain(rescuer, seen, 100)
    assert seen == collections.Counter(ids)
    (info,) = await fanout.groups()
    assert info.pending == 0
    assert await fanout.trim() == 100


_VICTIM = """
import asyncio, json, sys
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from aiorpatterns.messaging.fanout import Fanout

async def main():
    url, topology = sys.argv[1], sys.argv[2]
    redis = RedisCluster.from_url(url) if topology == "cluster" else Redis.from_url(url)
    consumer = Fanout(redis, "killed").consumer("g", "victim", min_idle=0.2)
    entries = await consumer.read(count=40, timeout=10)
    print(json.dumps([e.id for e in entries]), flush=True)
    await asyncio.sleep(3600)  # "processing": killed here, before any ack

asyncio.run(main())
"""


def url_of(redis: Any) -> tuple[str, str]:
    if isinstance(redis, RedisCluster):
        node = redis.get_default_node()
        return f"redis://{node.host}:{node.port}", "cluster"
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}", "standalone"


async def test_a_sigkilled_consumer_process_is_reclaimed(redis_client: Any) -> None:
    """A consumer in another process is SIGKILLed mid-batch; its entries are reclaimed here."""
    fanout = Fanout(redis_client, "killed")
    await fanout.create_group("g")
    ids = await fanout.publish_many(range(100))
    url, topology = url_of(redis_client)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _VICTIM,
        url,
        topology,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        taken = json.loads(line)
        assert taken == ids[:40]
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    seen: collections.Counter[str] = collections.Counter()
    rescued = await drain(fanout.consumer("g", "rescuer", min_idle=0.2), seen, 100)
    assert seen == collections.Counter(ids)
    assert {e.id for e in rescued} >= set(taken)
    (info,) = await fanout.groups()
    assert info.pending == 0


async def test_a_restarted_consumer_first_gets_back_what_it_held(redis_client: Any) -> None:
    fanout = Fanout(redis_client, "restart")
    await fanout.create_group("g")
    await fanout.publish_many(range(20))
    first = fanout.consumer("g", "w1", min_idle=60)
    assert [e.payload for e in await first.read(count=10, timeout=0)] == list(range(10))
    restarted = fanout.consumer("g", "w1", min_idle=60)  # same name, new process
    again = await restarted.read(count=100, timeout=0)
    assert [e.payload for e in again] == list(range(10))
    assert [e.payload for e in await restarted.read(count=100, timeout=0)] == list(range(10, 20))
    restarted.release(again)
    assert [e.payload for e in await restarted.read(count=5, timeout=0)] == list(range(5))


# -- bounds and trimming -----------------------------------------------------------------------


async def test_maxlen_bounds_the_stream(redis_client: Any) -> None:
    exact = Fanout(redis_client, "exact", maxlen=50, approximate=False)
    ids = []
    for start in range(0, 300, 30):
        ids += await exact.publish_many(range(start, start + 30))
        assert await exact.length() <= 50
    assert await exact.length() == 50
    await exact.create_group("late")
    got = await exact.consumer("late").read(count=1000, timeout=0)
    assert [e.payload for e in got] == list(range(250, 300))
    rough = Fanout(redis_client, "rough", maxlen=150)
    for start in range(0, 3000, 500):
        await rough.publish_many(range(start, start + 500))
        # "~" trims whole nodes only (stream-node-max-entries, 100 by default).
        assert 150 <= await rough.length() <= 150 + 100


async def test_max_age_drops_old_entries(redis_client: Any) -> None:
    fanout = Fanout(redis_client, "aged", max_age=0.2, approximate=False)
    await fanout.publish_many(range(10))
    await asyncio.sleep(0.3)  # the server's clock moves past the first entries' age
    await fanout.publish("new")
    await fanout.create_group("g")
    got = await fanout.consumer("g").read(timeout=0)
    assert [e.payload for e in got] == ["new"]


async def test_trim_keeps_what_any_group_still_needs(redis_client: Any) -> None:
    fanout = Fanout(redis_client, "safe")
    assert await fanout.trim() == 0  # no stream yet
    await fanout.create_group("fast")
    await fanout.create_group("slow")
    ids = await fanout.publish_many(range(10))
    assert await fanout.trim() == 0  # nobody has read anything
    fast = fanout.consumer("fast")
    assert await fast.ack(await fast.read(count=10, timeout=0)) == 10
    slow = fanout.consumer("slow")
    first = await slow.read(count=3, timeout=0)
    assert await fanout.trim() == 0  # delivered to slow but pending
    assert await slow.ack(first[1:]) == 2
    assert await fanout.trim() == 0  # the oldest is still pending
    assert await slow.ack(first[0]) == 1
    assert await fanout.trim() == 3
    middle = await slow.read(count=4, timeout=0)
    assert await slow.ack(middle[:2]) == 2
    assert await fanout.trim() == 2  # up to the oldest pending one
    stored = await redis_client.xrange(fanout.key)
    assert [e[0].decode() for e in stored] == ids[5:]
    assert await slow.ack(middle[2:]) == 2
    assert await fanout.trim() == 2  # what slow has not been delivered yet stays
    assert await fanout.length() == 3
    assert await fanout.delete_group("slow") is True
    assert await fanout.trim() == 3


async def test_entries_trimmed_while_pending_are_counted(redis_client: Any) -> None:
    fanout = Fanout(redis_client, "lossy", maxlen=5, approximate=False)
    await fanout.create_group("g")
    await fanout.publish_many(range(5))
    holder = fanout.consumer("g", "holder", min_idle=0.2)
    assert len(await holder.read(count=5, timeout=0)) == 5
    await fanout.publish_many(range(5, 8))  # drops 0, 1, 2 while holder has them
    restarted = fanout.consumer("g", "holder", min_idle=60)
    got = await restarted.read(count=10, timeout=0)
    assert [e.payload for e in got] == [3, 4]
    assert restarted.skipped == 3
    other = fanout.consumer("g", "other", min_idle=0.2)
    await fanout.publish_many(range(8, 10))  # drops 3 and 4, which holder holds again
    await asyncio.sleep(0.3)  # past min_idle: other's XAUTOCLAIM finds them gone
    assert [e.payload for e in await other.read(count=10, timeout=0)] == [5, 6, 7, 8, 9]
    assert other.skipped == 2


# -- consumers and groups ----------------------------------------------------------------------


async def test_aclose_removes_only_an_idle_consumer(redis_client: Any) -> None:
    fanout = Fanout(redis_client, "close")
    assert await fanout.groups() == []
    await fanout.publish(1)
    await fanout.create_group("g", start="$")
    assert await fanout.consumer("g").read(timeout=0) == []  # "$": only newer entries
    await fanout.publish(2)
    async with fanout.consumer("g", "busy") as busy:
        (entry,) = await busy.read(timeout=0)
        assert entry.payload == 2
    assert [g.consumers for g in await fanout.groups()] == [2]  # busy held an entry
    assert await busy.ack(entry) == 1
    assert await busy.aclose() is True
    assert (await fanout.groups())[0] == FanoutGroup(
        name="g", consumers=1, pending=0, last_delivered_id=entry.id, lag=0
    )
    assert await fanout.delete_group("g") is True
    assert await busy.aclose() is False  # no group any more


async def test_results_are_plain_python(redis_client_text: Any) -> None:
    fanout = Fanout(redis_client_text, "plain")
    await fanout.create_group("g")
    value = {"big": 2**70, "s": "héllo ✓", "l": [None, True, 0.5]}
    (published,) = await fanout.publish_many([value])
    await redis_client_text.xadd(fanout.key, {"line": "from elsewhere"})
    reader = fanout.consumer("g", "r")
    first, foreign = await reader.read(timeout=0)
    assert first == FanoutEntry(
        id=published,
        data=json.dumps(value, ensure_ascii=False, separators=(",", ":")),
        group="g",
        fields={"data": first.data or ""},
    )
    assert first.payload == value
    assert type(first.payload["big"]) is int
    assert foreign.data is None
    assert foreign.fields == {"line": "from elsewhere"}
    with pytest.raises(ValueError, match="no 'data' field"):
        _ = foreign.payload
    assert await reader.ack([first, foreign]) == 2


async def test_a_group_can_start_after_an_entry_id(redis_client: Any) -> None:
    fanout = Fanout(redis_client, "startid")
    first, second, third = await fanout.publish_many(["a", "b", "c"])
    assert await fanout.create_group("after-first", start=first)
    assert await fanout.create_group("after-ms", start=second.split("-")[0] + "-0")
    after_first = await fanout.consumer("after-first").read(timeout=0)
    assert [e.id for e in after_first] == [second, third]
    after_ms = await fanout.consumer("after-ms").read(timeout=0)
    assert [e.id for e in after_ms][-1] == third
    assert first not in [e.id for e in after_ms]


# -- cancellation ------------------------------------------------------------------------------


async def test_cancel_read_at_each_step(redis_client: Any) -> None:
    """Cancelled after k loop turns, a read loses nothing: what the server had handed the
    consumer comes back on its next read; every entry is processed exactly once."""
    fanout = Fanout(redis_client, "cread")
    await fanout.create_group("g")
    ids = await fanout.publish_many(range(200))
    consumer = fanout.consumer("g", "c", min_idle=60)
    seen: collections.Counter[str] = collections.Counter()
    completed = cancelled = 0
    for steps in range(200):
        reading = asyncio.create_task(consumer.read(count=3, timeout=5))
        for _ in range(steps % 40):
            await asyncio.sleep(0)
        reading.cancel()
        entries = await outcome(reading)
        if entries is None:
            cancelled += 1
        else:
            completed += 1
            seen.update(e.id for e in entries)
            assert await consumer.ack(entries) == len(entries)
        if sum(seen.values()) >= 150:
            break
    assert completed >= 3
    assert cancelled >= 3
    await drain(consumer, seen, 200)
    assert seen == collections.Counter(ids)


async def test_cancel_a_waiting_read_never_hangs(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    """A client with a short socket_timeout waits in short XREADGROUP blocks; a cancel landing
    anywhere in that loop (even one redis-py swallows mid-command) ends the read promptly."""
    impatient = await new_client(socket_timeout=0.02)
    fanout = Fanout(impatient, "chang")
    await fanout.create_group("g")
    consumer = fanout.consumer("g", "c", min_idle=60)
    for steps in range(120):
        reading = asyncio.create_task(consumer.read())
        await asyncio.sleep((steps % 30) * 0.001)
        # Nothing was published: every read was waiting, so each one ends cancelled.
        await ends_after_cancel(reading, f"read() cancelled at {steps % 30} ms")
    entry = await fanout.publish("after")
    assert [e.id for e in await consumer.read(timeout=5)] == [entry]


@pytest.mark.parametrize("op", ["publish", "publish_many", "ack"])
async def test_cancel_publish_and_ack_at_each_step(redis_client: Any, op: str) -> None:
    """publish/publish_many/ack are shielded: once started, a cancelled call still completes."""
    fanout = Fanout(redis_client, f"c{op}")
    await fanout.create_group("g")
    consumer = fanout.consumer("g")
    for steps in range(1, 9):  # a task cancelled before its first step never called anything
        entries: list[FanoutEntry] = []
        if op == "ack":
            await fanout.publish(steps)
            entries = await consumer.read(timeout=0)
        call: Coroutine[Any, Any, Any]
        if op == "publish":
            call = fanout.publish(steps)
        elif op == "publish_many":
            call = fanout.publish_many([steps, steps])
        else:
            call = consumer.ack(entries)
        task = asyncio.create_task(call)
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        await outcome(task)
        want = {"publish": steps, "publish_many": 2 * steps, "ack": 0}[op]

        async def settled(want: int = want) -> bool:
            if op == "ack":
                return (await fanout.groups())[0].pending == want
            return await fanout.length() == want

        await until(settled, f"{op} after {steps} steps")


# -- bad input ---------------------------------------------------------------------------------


@pytest.fixture
async def unreachable() -> AsyncIterator[Redis]:
    """A client for a port nobody listens on: any Redis call would raise ConnectionError."""
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


async def test_bad_input_is_refused_before_redis(unreachable: Redis) -> None:
    fanout = Fanout(unreachable, "f")
    consumer = fanout.consumer("g")
    other = FanoutEntry(id="1-0", data="1", group="other", fields={})
    bad: list[tuple[type[Exception], Callable[[], Awaitable[Any]]]] = [
        (TypeError, lambda: fanout.publish(object())),
        (ValueError, lambda: fanout.publish(float("nan"))),
        (TypeError, lambda: fanout.publish_many("abc")),
        (TypeError, lambda: fanout.publish_many([1, {2}])),
        (ValueError, lambda: fanout.create_group("")),
        (TypeError, lambda: fanout.create_group("g", start=0)),  # type: ignore[arg-type]
        *[
            (ValueError, lambda start=start: fanout.create_group("g", start=start))
            for start in ("", "now", "-1", "1-", "1-2-3", "01", " 0", "$$", str(2**64))
        ],
        (ValueError, lambda: consumer.read(count=0)),
        (ValueError, lambda: consumer.read(count=-1)),
        (ValueError, lambda: consumer.read(timeout=-1)),
        (TypeError, lambda: consumer.ack(["1-0"])),  # type: ignore[list-item]
        (ValueError, lambda: consumer.ack(other)),
    ]
    for kind, call in bad:
        with pytest.raises(kind):
            await call()
    assert await fanout.publish_many([]) == []
    assert await consumer.ack([]) == 0
    builds: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: Fanout(None, "f"), TypeError),
        (lambda: Fanout(unreachable, ""), ValueError),
        (lambda: Fanout(unreachable, "f", maxlen=0), ValueError),
        (lambda: Fanout(unreachable, "f", maxlen=True), TypeError),
        (lambda: Fanout(unreachable, "f", max_age=-1), ValueError),
        (lambda: fanout.consumer("g}"), ValueError),
        (lambda: fanout.consumer("g", ""), ValueError),
        (lambda: fanout.consumer("g", min_idle=0), ValueError),
        (lambda: fanout.consumer("g", count=0), ValueError),
        (lambda: FanoutConsumer("f", "g"), TypeError),  # type: ignore[arg-type]
    ]
    for build, kind in builds:
        with pytest.raises(kind):
            build()


async def test_numbers_are_checked_before_redis_and_whole_range_works(redis_client: Any) -> None:
    """Range checks (issue 10): a bad number is refused first; any accepted one works in Redis."""
    offline = Fanout(NO_REDIS, "f")
    with pytest.raises(TypeError, match="approximate"):
        Fanout(NO_REDIS, "f", approximate="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        offline.consumer("g", count=MAX_READ_COUNT + 1)
    with pytest.raises(ValueError, match="count"):
        await offline.consumer("g").read(count=2**63)
    with pytest.raises(TypeError, match="count"):
        await offline.consumer("g").read(count=1.0)  # type: ignore[arg-type]
    # The largest accepted numbers reach Redis intact (not as a Lua float like 9.2e+18).
    fanout = Fanout(redis_client, "wide", maxlen=2**63 - 1, approximate=False)
    await fanout.create_group("g")
    ids = await fanout.publish_many(range(3))
    got = await fanout.consumer("g", "c", count=MAX_READ_COUNT).read(timeout=0)
    assert [e.id for e in got] == ids
