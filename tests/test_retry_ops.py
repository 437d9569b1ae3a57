"""Run-twice tests of the ops and memory patterns' scripts (issue 10, DESIGN "Retry safety").

Every script call is sent twice by ``twice_client`` (``retrysafe.py``), as redis-py's ``Retry``
or the cluster client does after a lost reply: the keyspace must be the state of one run and the
caller must see what a single run answers (one count added, one sample, one log line, one visitor,
a re-import switched in once, a log processor's progress moved once).
"""

from __future__ import annotations

import itertools
import types
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio.client
import redis.asyncio.cluster
import redis.exceptions
from helpers import NO_REDIS
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from retrysafe import assert_retry_safe as _assert_retry_safe

from aiorpatterns.memory.visitors import UniqueVisitors
from aiorpatterns.ops.counters import AccessTimer, Counters, Stats, slowest
from aiorpatterns.ops.geoip import IpLocations
from aiorpatterns.ops.logfiles import LogProcessor
from aiorpatterns.ops.logs import CommonLog, RecentLog

NOW = 1_700_000_003.25
LONG = 10**9  # a period no real boundary crosses during a run


_TOKENS = {"next": itertools.count(1)}


@pytest.fixture(autouse=True)
def numbered_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the tokens the patterns draw ``t1``, ``t2``, ... (restarted by each run).

    Receipts live at ``<base>:<token>``: with random tokens every receipt of one base looks the
    same once masked, and the two runs' keyspaces could not be compared key by key. Numbered
    tokens (left unmasked) make each call's receipt its own key, the same key in both runs.
    """
    monkeypatch.setattr(
        uuid, "uuid4", lambda: types.SimpleNamespace(hex=f"t{next(_TOKENS['next'])}")
    )


async def assert_retry_safe(
    client: Any, twice: Any, scenario: Callable[[Any], Awaitable[Any]]
) -> Any:
    """``retrysafe.assert_retry_safe``, each run drawing the same numbered tokens."""

    async def numbered(target: Any) -> Any:
        _TOKENS["next"] = itertools.count(1)
        return await scenario(target)

    return await _assert_retry_safe(client, twice, numbered)


@pytest.mark.retry_safe("counter_update", "counter_clean")
async def test_counters_count_once_and_clean_once(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        counters = Counters(client, "g", precisions=(1, 5, 60), samples=2)
        for delta, count in enumerate([3, 1, 4, 1, 5, 9, 2]):
            await counters.update("hits", count, now=NOW + delta)
        await counters.update("misses", 7, now=NOW)
        seen: list[Any] = [await counters.get("hits", precision=1)]
        seen.append(await counters.clean(now=NOW + 6))  # trims old samples
        gone = Counters(client, "g2", precisions=(1, 5), samples=0)
        await gone.update("once", 1, now=NOW)
        seen.append(await gone.clean(now=NOW))  # empties the counter: it leaves the index
        seen.append(await gone.names())
        seen.append(await counters.names())
        seen.append([await counters.get("hits", precision=p) for p in (1, 5, 60)])
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert [s.count for s in seen[0]] == [3, 1, 4, 1, 5, 9, 2]
    assert seen[1] > 0
    assert seen[2] == 2
    assert seen[3] == []
    assert seen[4] == ["hits", "misses"]


async def test_a_sum_past_int64_writes_nothing(redis_client: Any) -> None:
    counters = Counters(redis_client, "sum", precisions=(1, 5))
    await counters.update("big", 2**63 - 10, now=NOW)
    before = [await counters.get("big", precision=p) for p in (1, 5)]
    # A new 1 s sample (fits) but the same 5 s sample (overflows): the book's order would count
    # the first precision and fail on the second, a half-written step.
    with pytest.raises(ValueError, match="count"):
        await counters.update("big", 20, now=NOW + 1)
    assert [await counters.get("big", precision=p) for p in (1, 5)] == before
    await counters.update("big", 9, now=NOW + 1)  # exactly INT64_MAX still fits
    assert (await counters.get("big", precision=5))[0].count == 2**63 - 1


async def test_a_count_past_int64_is_refused_before_redis() -> None:
    counters = Counters(NO_REDIS)
    with pytest.raises(ValueError, match="count"):
        await counters.update("a", 2**63)


@pytest.mark.retry_safe("stats_update", "stats_read", "stats_slowest")
async def test_stats_add_one_sample_and_rotate_once(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        stats = Stats(client, "page", period=LONG)
        seen: list[Any] = [await stats.update("ms", 2.0), await stats.update("ms", 4.0)]
        # An old stored period: the next update rotates it out (once).
        start_key = stats._keys("ms")[1]
        await client.set(start_key, "0")
        seen.append(await stats.update("ms", 10.0))
        seen += [await stats.get("ms"), await stats.previous("ms")]
        # What AccessTimer records on exit, with fixed durations (real ones differ per run).
        await AccessTimer(client, "/cart", keep=1, period=LONG)._record(0.25)
        await AccessTimer(client, "/home", keep=1, period=LONG)._record(0.5)
        seen.append([name for name, _ in await slowest(client)])
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[1].count == 2
    assert seen[2].count == 1
    assert seen[4].count == 2
    assert seen[4].sum == 6.0
    assert seen[5] == ["/home"]


@pytest.mark.retry_safe("log_recent", "log_common", "log_common_read")
async def test_logs_log_one_line_and_count_once(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        recent = RecentLog(client, "app", keep=3)
        for i in range(5):
            await recent.log(f"event {i}", severity="error")
        common = CommonLog(client, "app", keep=3, period=LONG)
        seen: list[Any] = [await common.log("boom"), await common.log("boom")]
        await client.set(common._keys("info")[1], "0")  # the stored period is over
        seen.append(await common.log("boom"))
        seen.append(await common.log("bang"))
        seen += [await common.current(), await common.previous()]
        seen += [await recent.recent(severity="error"), await common.recent()]
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:4] == [1, 2, 1, 1]
    assert seen[5].counts == [("boom", 2)]
    assert [e.message for e in seen[6]] == ["event 4", "event 3", "event 2"]
    assert [e.message for e in seen[7]] == ["bang", "boom", "boom"]


@pytest.mark.retry_safe("logfiles_advance")
async def test_log_processor_moves_its_progress_once(
    redis_client: Any, twice_client: Any, tmp_path: Path
) -> None:
    for name, count in (("a.log", 7), ("b.log", 3)):
        (tmp_path / name).write_bytes(b"".join(f"{name} {i}\n".encode() for i in range(count)))

    async def scenario(client: Any) -> Any:
        def callback(pipe: Any, line: bytes) -> None:
            pipe.incr(made.key("lines"))

        made = LogProcessor(client, "p", directory=tmp_path, callback=callback, batch=3)
        made.atomic = False  # the at-least-once mode, whose progress moves by script
        seen: list[Any] = [await made.process(), await made.process(), await made.progress()]
        seen.append(int(await client.get(made.key("lines"))))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:2] == [10, 0]
    assert seen[3] == 10


@pytest.mark.retry_safe("geoip_switch")
async def test_geoip_reimport_switches_once(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        index = IpLocations(client, "geo")
        seen: list[Any] = [await index.import_ranges([("10.0.0.0/8", 1), ("11.0.0.0/8", 2)])]
        seen.append(await index.import_cities([(1, "A", "a", "AA"), (2, "B", "b", "BB")]))
        seen.append(await index.find("10.1.2.3"))
        seen.append(await index.import_ranges([("10.0.0.0/8", 2)]))  # a re-import
        seen += [await index.find("10.1.2.3"), await index.find("11.1.2.3")]
        seen.append(await index.import_cities([]))  # an empty import clears
        seen.append(await index.find("10.1.2.3"))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[0] == 2
    assert seen[2].city == "A"
    assert seen[4].city == "B"
    assert seen[5] is None
    assert seen[7] is None


@pytest.mark.retry_safe("visitors_add", "visitors_estimate")
async def test_visitors_count_a_visitor_once(redis_client: Any, twice_client: Any) -> None:
    sessions = [uuid.UUID(int=(i + 1) << 68 | 7) for i in range(6)]

    async def scenario(client: Any) -> Any:
        exact = UniqueVisitors(client, "v", expected=1000)
        # Another process fixed the day's size: the first call is refused and chooses again.
        await client.set(exact.expected_key("2026-01-02"), "4096")
        seen: list[Any] = []
        for day in ("2026-01-01", "2026-01-02"):
            seen += [await exact.count_visit(s, day) for s in sessions + sessions[:2]]
            seen.append(await exact.count(day))
        approximate = UniqueVisitors(client, "h", mode="approximate")
        seen += [await approximate.count_visit(s, "2026-01-01") for s in sessions + sessions[:2]]
        seen.append(await approximate.count("2026-01-01"))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:9] == [True] * 6 + [False, False, 6]
    assert seen[9:18] == [True] * 6 + [False, False, 6]
    assert seen[18:24] == [True] * 6
    assert seen[-1] == 6


@pytest.mark.retry_safe("visitors_shard_add", "visitors_total")
async def test_visitors_on_servers_count_a_visitor_once(
    redis_client: Any, twice_client: Any
) -> None:
    """§10.3.2: the shard's SADD and the counter's size report, each sent twice."""
    sessions = [uuid.UUID(int=(i + 1) << 68 | 9) for i in range(8)]

    async def scenario(client: Any) -> Any:
        # The shard "servers" are this client twice: the scripts run as on two servers.
        visitors = UniqueVisitors(client, "sv", expected=64, shard_size=8, servers=[client] * 2)
        seen = [await visitors.count_visit(s, "2026-01-01") for s in sessions + sessions[:3]]
        return [*seen, await visitors.count("2026-01-01"), await visitors.sync("2026-01-01")]

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [True] * 8 + [False] * 3 + [8, 8]


@pytest.mark.parametrize("lost", [1, 2, 4])
async def test_log_processor_batch_whose_exec_reply_is_lost_counts_once(
    new_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lost: int
) -> None:
    """The atomic mode's MULTI/EXEC ran but its reply was lost: redis-py's ``Retry`` re-sends it.

    A plain transaction would then apply the batch twice; the processor must count each line
    once (exactly-once), on both topologies.
    """
    sent = itertools.count(1)

    def losing(original: Any) -> Any:
        async def parse(self: Any, connection: Any, command: Any, **options: Any) -> Any:
            reply = await original(self, connection, command, **options)
            # The EXEC's reply (a list) was read, so the server ran it; the caller never sees it.
            if command in ("_", "EXEC") and isinstance(reply, list) and next(sent) == lost:
                raise redis.exceptions.ConnectionError("the EXEC reply was lost")
            return reply

        return parse

    for owner in (redis.asyncio.client.Pipeline, redis.asyncio.cluster.ClusterNode):
        monkeypatch.setattr(owner, "parse_response", losing(owner.parse_response))
    (tmp_path / "a.log").write_bytes(b"".join(f"line {i}\n".encode() for i in range(10)))

    def callback(pipe: Any, line: bytes) -> None:
        pipe.hincrby(made.key("seen"), line, 1)

    # A client that retries, as redis-py's default one does.
    redis_client = await new_client(retry=Retry(NoBackoff(), 3))
    made = LogProcessor(redis_client, "lost", directory=tmp_path, callback=callback, batch=3)
    assert await made.process() == 10
    counts = await redis_client.hgetall(made.key("seen"))
    assert sorted(int(v) for v in counts.values()) == [1] * 10
    assert await made.process() == 0
