"""File distribution (Redis in Action §6.6) on real servers: the book's test, many consumers,
back-pressure, sender and consumer crashes, the readers, the country aggregate, bad input.

Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster.
Waits are on conditions (``until``) or on the tasks themselves; nothing asserts how fast
anything is.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import signal
import sys
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from helpers import NO_REDIS, blocked_clients, cancel_after, text, until
from retrysafe import assert_retry_safe, snapshot

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.messaging.chat import Chats
from aiorpatterns.messaging.files import (
    DailyCountryAggregate,
    FileDistribution,
    SentFile,
    readblocks,
    readblocks_gz,
    readlines,
)
from aiorpatterns.ops.geoip import IpLocations

ROOT = Path(__file__).resolve().parent.parent


class Tally:
    """A callback that counts each delivery's lines and commits them at the end of the file,
    once per ``file.id`` (what a callback does to count exactly once, whatever crashes)."""

    def __init__(self) -> None:
        self.open: dict[SentFile, list[bytes]] = {}
        #: file.id -> (consumer, name, lines) committed at the end of a delivery
        self.committed: dict[str, tuple[int, str, list[bytes]]] = {}
        #: (consumer, name) -> deliveries started / completed
        self.started: Counter[tuple[int, str]] = Counter()
        self.completed: Counter[tuple[int, str]] = Counter()

    async def __call__(self, file: SentFile, line: bytes | None) -> None:
        if file not in self.open:
            self.open[file] = []
            self.started[file.consumer, file.name] += 1
        if line is not None:
            self.open[file].append(line)
            return
        lines = self.open.pop(file)
        self.committed.setdefault(file.id, (file.consumer, file.name, lines))
        self.completed[file.consumer, file.name] += 1

    def lines(self, consumer: int = 0) -> dict[str, list[bytes]]:
        return {name: lines for c, name, lines in self.committed.values() if c == consumer}

    def counts(self, consumer: int = 0) -> dict[str, int]:
        return {name: len(lines) for name, lines in self.lines(consumer).items()}


def write_files(directory: Path, files: dict[str, int]) -> dict[str, list[bytes]]:
    """Write files of numbered lines (``.gz`` ones compressed); return each one's lines."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, count in files.items():
        lines = [f"{name} line {i} {os.urandom(4).hex()}\n".encode() for i in range(count)]
        data = b"".join(lines)
        if name.endswith(".gz"):
            data = gzip.compress(data)
        (directory / name).write_bytes(data)
        written[name] = lines
    return written


def size_of(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir())


async def channel_keys(redis: Any) -> list[str]:
    """Keys of the distribution and its chats, receipts (expiring, token-named) left out."""
    found = []
    for pattern in ("aiorp:files:*", "aiorp:filechat:*", "aiorp:filechats:*"):
        found += [text(k) async for k in redis.scan_iter(match=pattern)]
    return sorted(k for k in found if not re.search(r":[0-9a-f]{32}$", k))


# -- the book's test ----------------------------------------------------------------------------


async def test_book_file_distribution(redis_client_text: Any, tmp_path: Path) -> None:
    """Redis in Action ch06 ``test_file_distribution``: three files (one line, 10,000 lines, a
    gzip of 100,000 lines), one consumer, a limit that holds them all; the per-file line
    counts are [1, 10000, 100000], and the sender's clean-up leaves nothing behind."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "temp-1.txt").write_bytes(b"one line\n")
    (logs / "temp-2.txt").write_bytes(10000 * b"many lines\n")
    with gzip.open(logs / "temp-3.txt.gz", "wb") as out:
        for _ in range(100000):
            out.write(f"random line {os.urandom(16).hex()}\n".encode())
    dist = FileDistribution(redis_client_text, "test")
    sender = asyncio.create_task(dist.send(logs, count=1, limit=size_of(logs) + 1))
    index = [0]
    counts = [0, 0, 0]

    def callback(file: SentFile, line: bytes | None) -> None:
        if line is None:
            index[0] += 1
        else:
            counts[index[0]] += line.endswith(b"\n")

    assert await dist.consume(0, callback) == 3
    assert counts == [1, 10000, 100000]
    assert await sender == 3
    assert await channel_keys(redis_client_text) == []


# -- many consumers -----------------------------------------------------------------------------


async def test_several_consumers_each_see_every_file_once(
    redis_client: Any, tmp_path: Path
) -> None:
    """Three consumers each process every file exactly once, in name order; a file stays
    until the last of them has finished it, then it is deleted."""
    written = write_files(tmp_path / "d", {"a.log": 50, "b.log.gz": 300, "c.log": 0, "d.log": 7})
    dist = FileDistribution(redis_client, "many", block_size=64)
    tally = Tally()
    gate = asyncio.Event()
    order: dict[int, list[str]] = defaultdict(list)

    async def slow_last(file: SentFile, line: bytes | None) -> None:
        if file.consumer == 2 and file.name == "a.log":
            await gate.wait()  # consumer 2 holds a.log back until the test has looked
        if line is None:
            order[file.consumer].append(file.name)
        await tally(file, line)

    sender = asyncio.create_task(dist.send(tmp_path / "d", count=3))
    consumers = [asyncio.create_task(dist.consume(i, slow_last)) for i in range(3)]

    async def others_finished_a() -> bool:
        return (0, "a.log") in tally.completed and (1, "a.log") in tally.completed

    await until(others_finished_a, "consumers 0 and 1 to finish a.log")
    # Consumer 2 has not finished it: its bytes are still there.
    assert await redis_client.strlen(dist.file_key(1)) == (tmp_path / "d" / "a.log").stat().st_size
    assert "a.log" in await dist.pending()
    gate.set()
    assert await asyncio.gather(*consumers) == [4, 4, 4]
    assert await sender == 4
    for consumer in range(3):
        assert tally.lines(consumer) == written
        assert order[consumer] == sorted(written)
    assert set(tally.started.values()) == {1}
    assert await redis_client.exists(dist.file_key(1)) == 0
    assert await channel_keys(redis_client) == []


async def test_ten_consumers_are_counted_as_integers(redis_client: Any, tmp_path: Path) -> None:
    """The book compares '2' >= '10' as bytes and deletes a file after two of ten consumers:
    here the file stays until all ten have finished it."""
    write_files(tmp_path / "d", {"a.log": 3})
    dist = FileDistribution(redis_client, "ten")
    sender = asyncio.create_task(dist.send(tmp_path / "d", count=10))
    tally = Tally()
    first = [asyncio.create_task(dist.consume(i, tally)) for i in range(9)]

    async def nine_done() -> bool:
        return len(tally.completed) == 9

    await until(nine_done, "nine consumers to finish")
    assert await redis_client.strlen(dist.file_key(1)) > 0
    assert await dist.held() > 0
    last = asyncio.create_task(dist.consume(9, tally))
    assert await asyncio.gather(*first, last) == [1] * 10
    await sender
    assert await redis_client.exists(dist.file_key(1)) == 0


async def test_a_consumer_started_first_waits_for_the_sender(
    redis_client: Any, tmp_path: Path
) -> None:
    """A consumer with no distribution to read waits (blocked, not polling) until one begins."""
    written = write_files(tmp_path / "d", {"x.log": 5})
    dist = FileDistribution(redis_client, "early")
    tally = Tally()
    consumer = asyncio.create_task(dist.consume(0, tally))

    async def waiting() -> bool:
        return await blocked_clients(redis_client) >= 1

    await until(waiting, "the consumer to block")
    assert not consumer.done()
    assert await dist.send(tmp_path / "d", count=1) == 1
    assert await consumer == 1
    assert tally.lines() == written


# -- back-pressure ------------------------------------------------------------------------------

# The bytes of every file held, and the reserved counter, read in one step.
_HELD = """
local total = 0
for _, n in ipairs(redis.call('HKEYS', KEYS[1])) do
  total = total + redis.call('STRLEN', ARGV[1] .. n)
end
return {total, tonumber(redis.call('GET', KEYS[2]) or '0')}
"""


async def test_back_pressure_keeps_the_channel_under_its_limit(
    redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for one file at a time, the bytes in Redis never pass the limit, and the
    sender, refused, is woken by the consumer's finish: every wait slice is made far longer
    than the test may take, so a sender waiting for a timer would never finish."""
    monkeypatch.setattr("aiorpatterns.core.waiting.MAX_WAIT_SLICE", 600.0)
    monkeypatch.setattr("aiorpatterns.core.wakeup.MAX_WAIT_SLICE", 600.0)
    written = write_files(tmp_path / "d", {f"{i:02}.log": 400 for i in range(6)})
    biggest = max(p.stat().st_size for p in (tmp_path / "d").iterdir())
    limit = biggest + biggest // 2  # never room for two
    assert size_of(tmp_path / "d") > 3 * limit
    dist = FileDistribution(redis_client, "bp", block_size=512)
    prefix = dist.file_key(1).removesuffix("1")
    gate = asyncio.Event()
    tally = Tally()

    async def held_back(file: SentFile, line: bytes | None) -> None:
        if file.number == 1:
            await gate.wait()
        await tally(file, line)

    sender = asyncio.create_task(dist.send(tmp_path / "d", count=1, limit=limit))
    consumer = asyncio.create_task(dist.consume(0, held_back))
    worst = [0, 0]
    stop = False

    async def watch() -> None:
        while not stop:
            data, reserved = await redis_client.eval(_HELD, 2, dist.keys[2], dist.keys[3], prefix)
            worst[0], worst[1] = max(worst[0], int(data)), max(worst[1], int(reserved))
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())

    async def sender_blocked() -> bool:
        # File 1 is held by the gated consumer; the sender, refused room for file 2, waits in
        # XREAD (the consumer is in its callback, not in Redis).
        return list(await dist.pending()) == ["00.log"] and await blocked_clients(redis_client) >= 1

    await until(sender_blocked, "the sender to wait for room")
    assert not sender.done()
    gate.set()
    assert await asyncio.wait_for(sender, 120) == 6
    assert await asyncio.wait_for(consumer, 120) == 6
    stop = True
    await watcher
    assert 0 < worst[0] <= limit
    assert 0 < worst[1] <= limit
    assert tally.lines() == written


async def test_a_file_larger_than_the_limit_is_refused_before_redis(tmp_path: Path) -> None:
    write_files(tmp_path / "d", {"small.log": 1, "big.log": 1000})
    dist = FileDistribution(NO_REDIS, "big")
    with pytest.raises(ValueError, match=r"'big.log' is \d+ bytes, more than limit=100"):
        await dist.send(tmp_path / "d", count=1, limit=100)


# -- sender crashes -----------------------------------------------------------------------------


async def test_a_sender_cancelled_anywhere_resumes_without_duplicates(
    redis_client: Any, tmp_path: Path
) -> None:
    """Cancel the sender at successive points (mid-copy, between copy and announcement, while
    waiting for room), run it again each time: every file arrives whole, once."""
    written = write_files(tmp_path / "d", {"a.log": 300, "b.log.gz": 2000, "c.log": 300})
    dist = FileDistribution(redis_client, "resume", block_size=256)
    limit = size_of(tmp_path / "d")  # room for all: the sender never waits here
    for turns in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        await cancel_after(dist.send(tmp_path / "d", count=1, limit=limit, done=False), turns)
    tally = Tally()
    consumer = asyncio.create_task(dist.consume(0, tally))
    assert await dist.send(tmp_path / "d", count=1, limit=limit) >= 0
    assert await consumer == 3
    assert tally.lines() == written
    assert set(tally.started.values()) == {1}
    assert await channel_keys(redis_client) == []


async def test_an_announcement_sent_twice_is_processed_once(
    redis_client: Any, tmp_path: Path
) -> None:
    """What a sender killed between its announcement and its record does on resume."""
    written = write_files(tmp_path / "d", {"a.log": 10, "b.log": 10})
    dist = FileDistribution(redis_client, "twice")
    assert await dist.send(tmp_path / "d", count=2, done=False) == 2
    run = text(await redis_client.hget(dist.keys[0], "id"))
    chat = dist.chat_id(run)
    # The record of file 1's announcement is lost: the resumed sender announces it again.
    await redis_client.srem(dist.keys[5], "1")
    assert await dist.send(tmp_path / "d", count=2, done=False) == 1
    assert await redis_client.zcard(dist.chats.keys(chat)[2]) == 4  # hello, a, b, a again
    tally = Tally()
    consumers = [asyncio.create_task(dist.consume(i, tally)) for i in range(2)]
    assert await dist.send(tmp_path / "d", count=2) == 0
    assert await asyncio.gather(*consumers) == [2, 2]
    for consumer in range(2):
        assert tally.lines(consumer) == written
    assert set(tally.started.values()) == {1}


_KILLED_SENDER = """
import asyncio, sys
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from aiorpatterns.messaging.files import FileDistribution

async def main(url: str, topology: str, directory: str) -> None:
    client = (RedisCluster if topology == "cluster" else Redis).from_url(url)
    await FileDistribution(client, "killed", block_size=512).send(directory, count=1, done=False)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_killed_sender_resumes_mid_file(
    request: pytest.FixtureRequest, redis_client: Any, tmp_path: Path
) -> None:
    topology = request.node.callspec.params["redis_client"]
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    url = request.getfixturevalue(fixture).url
    written = write_files(tmp_path / "d", {"a.log": 40000, "b.log": 10})
    size = (tmp_path / "d" / "a.log").stat().st_size
    dist = FileDistribution(redis_client, "killed", block_size=512)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_SENDER, url, topology, str(tmp_path / "d"), cwd=ROOT
    )

    async def mid_copy() -> bool:
        return 0 < int(await redis_client.strlen(dist.file_key(1))) < size

    try:
        await until(mid_copy, "the child to copy part of a.log", limit=60)
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        code = await child.wait()
    assert code == -signal.SIGKILL, "the child finished before it could be killed"
    assert await redis_client.strlen(dist.file_key(1)) < size
    tally = Tally()
    consumer = asyncio.create_task(dist.consume(0, tally))
    assert await dist.send(tmp_path / "d", count=1) == 2
    assert await consumer == 2
    assert tally.lines() == written


async def test_resuming_without_a_file_being_sent_is_refused(
    redis_client: Any, tmp_path: Path
) -> None:
    """A file reserved by a crashed run must come back, or its bytes would stay reserved."""
    write_files(tmp_path / "d", {"a.log": 5000, "b.log": 100})
    dist = FileDistribution(redis_client, "gone", block_size=64)

    async def copying() -> bool:
        return int(await redis_client.strlen(dist.file_key(1))) > 0

    task = asyncio.create_task(dist.send(tmp_path / "d", count=1, done=False))
    await until(copying, "the sender to start copying a.log")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if await redis_client.sismember(dist.keys[5], "1"):
        pytest.skip("the cancel landed after a.log was announced")
    (tmp_path / "d" / "a.log").unlink()
    with pytest.raises(FileNotFoundError, match=r"a\.log"):
        await dist.send(tmp_path / "d", count=1)


async def test_a_distribution_in_progress_keeps_its_count(
    redis_client: Any, tmp_path: Path
) -> None:
    write_files(tmp_path / "d", {"a.log": 1})
    dist = FileDistribution(redis_client, "count")
    assert await dist.send(tmp_path / "d", count=2, done=False) == 1
    with pytest.raises(ValueError, match="2 consumers, not count=3"):
        await dist.send(tmp_path / "d", count=3)
    with pytest.raises(ValueError, match="consumer=2 is not among the 2 consumers"):
        await dist.consume(2, Tally())


# -- consumer crashes ---------------------------------------------------------------------------


async def test_a_consumer_cancelled_mid_file_reads_it_again_and_counts_it_once(
    redis_client: Any, tmp_path: Path
) -> None:
    written = write_files(tmp_path / "d", {"a.log": 20, "b.log": 500, "c.log": 20})
    dist = FileDistribution(redis_client, "cc", block_size=128)
    sender = asyncio.create_task(dist.send(tmp_path / "d", count=1))
    tally = Tally()
    reached = asyncio.Event()

    async def stop_mid_b(file: SentFile, line: bytes | None) -> None:
        await tally(file, line)
        if file.name == "b.log" and len(tally.open.get(file, ())) == 250:
            reached.set()
            await asyncio.Event().wait()  # cancelled here

    first = asyncio.create_task(dist.consume(0, stop_mid_b))
    await reached.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert tally.counts() == {"a.log": 20}
    # The cancel gave the announcement back: the restarted consumer reads b.log from its start.
    assert await dist.consume(0, tally) == 2
    assert await sender == 3
    assert tally.lines() == written
    assert tally.started[0, "b.log"] == 2
    assert tally.completed == Counter({(0, "a.log"): 1, (0, "b.log"): 1, (0, "c.log"): 1})


async def test_a_crash_after_the_commit_and_before_the_finish_counts_once(
    redis_client: Any, tmp_path: Path
) -> None:
    """The window the book's INCR leaves open: the aggregate is written, the consumer dies
    before the file is marked finished, the file is read again; its receipt keeps the day's
    counts exact."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.log").write_bytes(
        b"10.0.0.1 2024-05-01 GET /\n10.0.0.2 2024-05-01 GET /\n20.0.0.1 2024-05-01 GET /\n"
        b"20.0.0.1 2024-05-02 GET /\n99.0.0.1 2024-05-02 unknown\nbad\n"
    )
    (tmp_path / "d" / "b.log").write_bytes(b"10.0.0.9 2024-05-02 x\n")
    locations = await geo(redis_client)
    aggregate = DailyCountryAggregate(redis_client, locations)
    dist = FileDistribution(redis_client, "agg")
    sender = asyncio.create_task(dist.send(tmp_path / "d", count=1))

    class Crash(Exception):
        pass

    crashed: list[str] = []

    async def crash_once(file: SentFile, line: bytes | None) -> None:
        await aggregate(file, line)
        if line is None and not crashed:
            crashed.append(file.name)
            raise Crash  # after the commit, before the finish

    with pytest.raises(Crash):
        await dist.consume(0, crash_once)
    assert crashed == ["a.log"]
    assert await aggregate.counts("2024-05-01") == {"FR": 2, "US": 1}
    assert await dist.consume(0, crash_once) == 2
    await sender
    assert await aggregate.counts("2024-05-01") == {"FR": 2, "US": 1}
    assert await aggregate.counts("2024-05-02") == {"US": 1, "FR": 1}
    assert aggregate.skipped == 2 * 2  # the unknown address and the bad line, read twice


_KILLED_CONSUMER = """
import asyncio, sys
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from aiorpatterns.messaging.files import FileDistribution

async def main(url: str, topology: str) -> None:
    client = (RedisCluster if topology == "cluster" else Redis).from_url(url)
    dist = FileDistribution(client, "kc", block_size=256, claim_timeout=0.5)
    seen = 0

    async def callback(file, line):
        nonlocal seen
        if line is None:
            await client.hsetnx("aiorp:test:{kc}:counts", file.id, seen)
            return
        seen += 1
        if seen % 50 == 0:
            await client.set("aiorp:test:{kc}:progress", seen)
            await asyncio.sleep(0.005)

    await dist.consume(0, callback)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_killed_consumer_resumes_and_counts_exactly(
    request: pytest.FixtureRequest, redis_client: Any, tmp_path: Path
) -> None:
    topology = request.node.callspec.params["redis_client"]
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    url = request.getfixturevalue(fixture).url
    written = write_files(tmp_path / "d", {"a.log": 20000, "b.log": 30})
    dist = FileDistribution(redis_client, "kc", block_size=256, claim_timeout=0.5)
    sender = asyncio.create_task(dist.send(tmp_path / "d", count=1))
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_CONSUMER, url, topology, cwd=ROOT
    )

    async def mid_file() -> bool:
        return int(await redis_client.get("aiorp:test:{kc}:progress") or 0) > 0

    try:
        await until(mid_file, "the child to read part of a.log", limit=60)
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        code = await child.wait()
    assert code == -signal.SIGKILL, "the child finished before it could be killed"
    assert not await redis_client.hgetall("aiorp:test:{kc}:counts")
    tally = Tally()
    # The killed consumer's claim runs out (claim_timeout), then a.log is read from the start.
    assert await dist.consume(0, tally) == 2
    await sender
    assert tally.lines() == written
    assert not await redis_client.hgetall("aiorp:test:{kc}:counts")


# -- the readers --------------------------------------------------------------------------------


async def collect(blocks: Any) -> list[bytes]:
    return [b async for b in blocks]


@pytest.mark.parametrize(
    "data",
    [b"", b"\n", b"a", b"a\n", b"a\nb", b"\n\nx\n\n", b"line\n" * 40, b"x" * 300 + b"\ny\n"],
)
async def test_readers_split_lines_across_block_boundaries(redis_client: Any, data: bytes) -> None:
    key = "aiorp:test:{read}:data"
    if data:
        await redis_client.set(key, data)
    for block_size in (1, 2, 3, 7, 64, 2**17):
        blocks = await collect(readblocks(redis_client, key, block_size=block_size))
        assert b"".join(blocks) == data
        assert all(blocks)
        assert all(len(b) <= block_size for b in blocks)
        lines = await collect(readlines(readblocks(redis_client, key, block_size=block_size)))
        assert lines == data.splitlines(keepends=True)
        sized = readblocks(redis_client, key, block_size=block_size, size=len(data))
        assert b"".join(await collect(sized)) == data
    with pytest.raises(RuntimeError, match="fewer than"):
        await collect(readblocks(redis_client, key, size=len(data) + 1))


async def test_readblocks_gz_reads_members_and_refuses_bad_data(redis_client_text: Any) -> None:
    """Binary content comes back as bytes even on a client that decodes replies."""
    redis = redis_client_text
    key = "aiorp:test:{gz}:data"
    plain = b"".join(f"{i} {os.urandom(8).hex()}\n".encode() for i in range(3000))
    header_flags = gzip.compress(plain, mtime=0)
    two = gzip.compress(plain[:1000]) + gzip.compress(plain[1000:])  # concatenated members
    for data, expected in ((header_flags, plain), (two, plain), (zlib.compress(plain), plain)):
        await redis.set(key, data)
        for block_size in (5, 100, 2**17):
            got = await collect(readblocks_gz(redis, key, block_size=block_size))
            assert b"".join(got) == expected
            lines = await collect(readlines(readblocks_gz(redis, key, block_size=block_size)))
            assert lines == expected.splitlines(keepends=True)
    await redis.set(key, header_flags[:-30])
    with pytest.raises(ValueError, match="ends in the middle"):
        await collect(readblocks_gz(redis, key))
    await redis.set(key, b"not gzip at all")
    with pytest.raises(ValueError, match="not valid gzip"):
        await collect(readblocks_gz(redis, key))
    bomb = gzip.compress(b"\0" * 10_000_000)
    await redis.set(key, bomb)
    sizes = [len(b) async for b in readblocks_gz(redis, key)]
    assert sum(sizes) == 10_000_000
    assert max(sizes) <= 2**18


# -- the country aggregate ----------------------------------------------------------------------


async def geo(redis: Any) -> IpLocations:
    locations = IpLocations(redis, "files-test")
    await locations.import_ranges([("10.0.0.0/8", "1"), ("20.0.0.0/8", "2")])
    await locations.import_cities([("1", "Paris", "IDF", "FR"), ("2", "Boston", "MA", "US")])
    return locations


async def test_daily_country_aggregate_adds_across_files_and_consumers(
    redis_client: Any, tmp_path: Path
) -> None:
    """The book's example on top: lines per country per day, added (not replaced) file by
    file, ``daily:country:<day>`` under the prefix."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "1.log").write_bytes(b"10.1.1.1 2024-05-01 a\n20.1.1.1 2024-05-01 b\n")
    with gzip.open(tmp_path / "d" / "2.log.gz", "wb") as out:
        out.write(b"10.1.1.2 2024-05-01 c\n10.1.1.2 2024-05-02 d\n::1 2024-05-02 v6\n")
    aggregate = DailyCountryAggregate(redis_client, await geo(redis_client))
    assert aggregate.key("2024-05-01") == "aiorp:daily:{country}:2024-05-01"
    dist = FileDistribution(redis_client, "countries")
    sender = asyncio.create_task(dist.send(tmp_path / "d", count=2))
    # Two consumers both aggregating: each adds its own reading of every file.
    both = await asyncio.gather(dist.consume(0, aggregate), dist.consume(1, aggregate))
    assert list(both) == [2, 2]
    await sender
    assert await aggregate.counts("2024-05-01") == {"FR": 4, "US": 2}
    assert await aggregate.counts("2024-05-02") == {"FR": 2}
    assert aggregate.skipped == 2


# -- retries and bad input ----------------------------------------------------------------------


@pytest.mark.retry_safe(
    "files_begin", "files_reserve", "files_finish", "files_end", "files_country_add"
)
async def test_file_distribution_steps_run_twice(
    redis_client: Any, twice_client: Any, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.log").write_bytes(b"10.0.0.1 2024-05-01 a\n" * 20)
    (tmp_path / "d" / "b.log").write_bytes(b"20.0.0.1 2024-05-01 b\n" * 30)
    (tmp_path / "d" / "c.log").write_bytes(b"20.0.0.1 2024-05-02 c\n" * 10)
    limit = size_of(tmp_path / "d")

    async def scenario(client: Any) -> list[Any]:
        seen: list[Any] = []
        dist = FileDistribution(client, "rt", block_size=100)
        seen.append(await dist.send(tmp_path / "d", count=2, limit=limit, done=False))
        seen.append(await dist.send(tmp_path / "d", count=2, limit=limit, done=False))
        seen.append((await dist.held(), await dist.pending()))
        seen.append(await snapshot(client))
        aggregate = DailyCountryAggregate(client, await geo(client))
        tally = Tally()
        consumers = [
            asyncio.create_task(dist.consume(0, aggregate)),
            asyncio.create_task(dist.consume(1, tally)),
        ]
        seen.append(await dist.send(tmp_path / "d", count=2, limit=limit))
        seen.append(await asyncio.gather(*consumers))
        seen.append(tally.counts(1))
        seen.append(await aggregate.counts("2024-05-01"))
        seen.append(await aggregate.counts("2024-05-02"))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[0] == 3
    assert seen[1] == 0
    assert seen[5] == [3, 3]
    assert seen[6] == {"a.log": 20, "b.log": 30, "c.log": 10}
    assert seen[7] == {"FR": 20, "US": 30}
    assert seen[8] == {"US": 10}


async def test_bad_input_is_refused_before_redis(tmp_path: Path) -> None:
    write_files(tmp_path / "d", {"a.log": 1})
    with pytest.raises(TypeError, match="redis"):
        FileDistribution(None, "x")  # type: ignore[arg-type]
    for bad_name in ("", "a}b"):
        with pytest.raises(ValueError, match="name"):
            FileDistribution(NO_REDIS, bad_name)
    with pytest.raises(TypeError):
        FileDistribution(NO_REDIS, 42)  # type: ignore[arg-type]
    for bad_block in (0, -1, 2**40, 1.5, True):
        with pytest.raises((TypeError, ValueError), match="block_size"):
            FileDistribution(NO_REDIS, "x", block_size=bad_block)  # type: ignore[arg-type]
    for bad_claim in (0, -1, float("nan"), "1"):
        with pytest.raises((TypeError, ValueError), match="claim_timeout"):
            FileDistribution(NO_REDIS, "x", claim_timeout=bad_claim)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keyspace"):
        FileDistribution(NO_REDIS, "x", keyspace="aiorp")  # type: ignore[arg-type]
    dist = FileDistribution(NO_REDIS, "x", keyspace=Keyspace("other"))
    d = tmp_path / "d"
    for bad_count in (0, -1, 10_001, 1.0, True, None, "3"):
        with pytest.raises((TypeError, ValueError), match="count"):
            await dist.send(d, count=bad_count)  # type: ignore[arg-type]
    for bad_limit in (0, -5, 2**60, 1.5, False):
        with pytest.raises((TypeError, ValueError), match="limit"):
            await dist.send(d, count=1, limit=bad_limit)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="done"):
        await dist.send(d, count=1, done=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path"):
        await dist.send(42, count=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a directory"):
        await dist.send(tmp_path / "missing", count=1)
    with pytest.raises(ValueError, match="not a directory"):
        await dist.send(d / "a.log", count=1)
    for bad_consumer in (-1, 10_000, 1.0, True, "0"):
        with pytest.raises((TypeError, ValueError), match="consumer"):
            await dist.consume(bad_consumer, Tally())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callback"):
        await dist.consume(0, "print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="locations"):
        DailyCountryAggregate(NO_REDIS, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="receipt_ttl"):
        DailyCountryAggregate(NO_REDIS, IpLocations(NO_REDIS), receipt_ttl=0)
    with pytest.raises(ValueError, match="block_size"):
        await collect(readblocks(NO_REDIS, "k", block_size=0))
    with pytest.raises(ValueError, match="size"):
        await collect(readblocks_gz(NO_REDIS, "k", size=-1))
    with pytest.raises(TypeError, match="redis"):
        await collect(readblocks(object(), "k"))  # type: ignore[arg-type]


def test_the_chats_of_files_are_apart_from_users_chats() -> None:
    dist = FileDistribution(NO_REDIS, "logs")
    assert isinstance(dist.chats, Chats)
    assert dist.chats.keys("logs:1")[0] == "aiorp:filechat:{logs:1}:members"
    assert dist.keys[0] == "aiorp:files:{logs}:run"
    assert dist.file_key(3) == "aiorp:files:{logs}:file:3"
