"""The operations guide's examples: logs, counters and statistics, configuration, IP-to-city
lookup, resumable log processing, replication waits (Redis in Action §4.1-§4.3, §5), on a Redis
server this script starts itself.

Run: ``uv run python examples/guide_ops.py``. The docs include the code between the ``--8<--``
markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from aiorpatterns import (
    CommonLog,
    Config,
    Counters,
    IpLocations,
    LogProcessor,
    RecentLog,
    ShardedHash,
    Stats,
    wait_for_replicas,
)
from aiorpatterns.testing.server import RedisServer


# --8<-- [start:logs]
async def logs_example(redis: Redis) -> None:
    """The newest messages per severity, and the most common ones this hour."""
    recent = RecentLog(redis, "web", keep=100)
    await recent.log("user ann logged in")
    await recent.log("disk almost full", severity="warning")
    [entry] = await recent.recent(severity="warning")
    assert entry.message == "disk almost full"

    common = CommonLog(redis, "web", period=3600)
    for message in ("cache miss", "cache miss", "slow query"):
        await common.log(message)
    current = await common.current()
    assert current.counts[0] == ("cache miss", 2)


# --8<-- [end:logs]


# --8<-- [start:counters]
async def counters_example(redis: Redis) -> None:
    """Hit counters at several precisions, and running statistics of a metric."""
    counters = Counters(redis, precisions=(1, 60))
    await counters.update("hits", 3, now=1_000_000.5)
    await counters.update("hits", 2, now=1_000_000.9)
    [sample] = await counters.get("hits", precision=60)
    assert sample.count == 5

    stats = Stats(redis, "checkout")
    for seconds in (0.2, 0.4, 0.6):
        await stats.update("latency", seconds)
    summary = await stats.get("latency")
    assert summary is not None
    assert summary.count == 3
    assert summary.max == 0.6


# --8<-- [end:counters]


# --8<-- [start:config]
async def config_example(redis: Redis) -> None:
    """A maintenance flag and JSON configuration, read through a short local cache."""
    config = Config(redis, refresh=1.0)
    await config.set_config("redis", "statistics", {"db": 0})
    assert await config.get_config("redis", "statistics") == {"db": 0}
    await config.set_maintenance(True)
    assert await config.is_under_maintenance(wait=0)  # wait=0: skip the local cache
    await config.set_maintenance(False)


# --8<-- [end:config]


# --8<-- [start:geoip]
async def geoip_example(redis: Redis) -> None:
    """IPv4 and IPv6 ranges to cities; a re-import replaces every range at once."""
    places = IpLocations(redis)
    await places.import_cities([("1", "Paris", "IDF", "FR"), ("2", "Lyon", "ARA", "FR")])
    await places.import_ranges([("10.0.0.0/8", "1"), ("2001:db8::/32", "2")])
    paris = await places.find("10.1.2.3")
    assert paris is not None
    assert paris.city == "Paris"
    assert await places.find_id("2001:db8::1") == "2"
    assert await places.find("192.168.0.1") is None


# --8<-- [end:geoip]


# --8<-- [start:geoip-sharded]
async def sharded_cities_example(redis: Redis) -> None:
    """The city table in small hashes of 1,024 sequential ids each (§9.2.1)."""
    cities = ShardedHash(redis, "cities", total_elements=320_000, shard_size=1024, placement="book")
    places = IpLocations(redis, "sharded", cities=cities)
    await places.import_cities([("5000", "Lyon", "ARA", "FR")])
    await places.import_ranges([("10.0.0.0/8", "5000")])
    lyon = await places.find("10.9.8.7")
    assert lyon is not None
    assert lyon.city == "Lyon"
    assert cities.shard_key("5000").endswith("{cities:4}")  # 5000 // 1024


# --8<-- [end:geoip-sharded]


# --8<-- [start:logfiles]
def write_logs(directory: str) -> None:
    Path(directory, "access-1.log").write_text("GET /\nGET /about\n")
    Path(directory, "access-2.log").write_text("POST /login\n")


async def logfiles_example(redis: Redis) -> None:
    """Count the lines of log files exactly once, even if processing stops midway."""
    with tempfile.TemporaryDirectory() as directory:
        write_logs(directory)

        def count_line(pipe: Any, line: bytes) -> None:
            # Queued on the processor's MULTI: the count and the progress commit together.
            pipe.hincrby(processor.key("methods"), line.split()[0].decode(), 1)

        processor = LogProcessor(redis, "access", directory=directory, callback=count_line)
        assert await processor.process() == 3
        assert await processor.process() == 0  # nothing new: nothing counted twice
        assert await redis.hgetall(processor.key("methods")) == {b"GET": b"2", b"POST": b"1"}


# --8<-- [end:logfiles]


# --8<-- [start:replication]
async def replication_example(redis: Redis) -> None:
    """Wait until a write reached one replica; compare the count, never assume it."""
    await redis.set("app:order:1", "paid")
    acked = await wait_for_replicas(redis, 1, timeout=0.1)
    assert acked == 0  # this server has no replica: none acknowledged within 0.1 s


# --8<-- [end:replication]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await logs_example(redis)
            await counters_example(redis)
            await config_example(redis)
            await geoip_example(redis)
            await sharded_cities_example(redis)
            await logfiles_example(redis)
            await replication_example(redis)
        finally:
            await redis.aclose()
    print("ops: ok")


if __name__ == "__main__":
    asyncio.run(main())
