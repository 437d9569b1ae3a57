"""Cache and @cached (issue 15): reads and writes, one flight per key, soft TTLs, tags, errors.

Every test runs on both topologies (``redis_client``). The flight tests count origin calls in
the origin itself; the cross-process tests run their callers in child processes against the
same server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import NO_REDIS, keys_of, until
from redis.asyncio.cluster import RedisCluster
from retrysafe import assert_retry_safe

from aiorpatterns import Cache, CachedError, JsonSerializer, MsgspecJSON
from aiorpatterns.cache.entries import VALUE, encode
from aiorpatterns.cache.flight import Flight, flight_keys

ROOT = str(Path(__file__).resolve().parents[1])


def url_of(redis: Any) -> tuple[str, str]:
    if isinstance(redis, RedisCluster):
        node = redis.get_default_node()
        return f"redis://{node.host}:{node.port}", "cluster"
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}", "standalone"


class Origin:
    """An origin that counts its calls, optionally slow, optionally failing."""

    def __init__(self, value: Any = "v", delay: float = 0.0) -> None:
        self.value, self.delay, self.calls = value, delay, 0

    async def __call__(self) -> Any:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


async def test_get_set_delete_and_many(redis_client: Any) -> None:
    cache = Cache(redis_client, "c", ttl=60, jitter=0)
    assert await cache.get("a") is None
    assert await cache.get("a", default=0) == 0
    await cache.set("a", {"x": [1, 2]})
    assert await cache.get("a") == {"x": [1, 2]}
    assert 59_000 < await redis_client.pttl(cache.key("a")) <= 60_000
    await cache.set_many({f"k{i}": i for i in range(20)}, ttl=30)
    assert await cache.get_many(["k0", "k7", "nope", "a"]) == {"k0": 0, "k7": 7, "a": {"x": [1, 2]}}
    assert await cache.delete("a") is True
    assert await cache.delete("a") is False
    assert await cache.get("a") is None
    assert cache.stats.hits >= 4
    assert cache.stats.misses >= 3


async def test_ttl_jitter_spreads_expiries(redis_client: Any) -> None:
    cache = Cache(redis_client, "c", ttl=100, jitter=0.5)
    await cache.set_many({f"k{i}": i for i in range(30)})
    ttls = [await redis_client.pttl(cache.key(f"k{i}")) for i in range(30)]
    assert all(50_000 - 1_000 < t <= 100_000 for t in ttls)
    assert max(ttls) - min(ttls) > 5_000  # 30 draws over half the TTL never bunch this close


async def test_decorator_caches_by_key_template_and_invalidates(redis_client: Any) -> None:
    cache = Cache(redis_client, "users")
    calls: list[int] = []

    @cache.cached(key="user:{user_id}", ttl=30)
    async def load(user_id: int, verbose: bool = False) -> dict[str, Any]:
        calls.append(user_id)
        return {"id": user_id}

    assert await load(1) == {"id": 1}
    assert await load(1, verbose=True) == {"id": 1}  # the key names user_id only
    assert await load(user_id=2) == {"id": 2}
    assert calls == [1, 2]
    assert load.key_for(1) == "user:1"  # type: ignore[attr-defined]
    assert await redis_client.exists(cache.key("user:1"))
    assert await load.invalidate(1) is True  # type: ignore[attr-defined]
    assert await load(1) == {"id": 1}
    assert calls == [1, 2, 1]


async def test_default_keys_digest_the_arguments_and_skip_self(redis_client: Any) -> None:
    cache = Cache(redis_client, "m")

    class Repo:
        def __init__(self) -> None:
            self.calls = 0

        @cache.cached()
        async def find(self, name: str, limit: int = 10) -> list[str]:
            self.calls += 1
            return [name] * 2

    a, b = Repo(), Repo()
    assert await a.find("x") == ["x", "x"]
    assert await b.find("x", limit=10) == ["x", "x"]  # same arguments: same entry
    assert await a.find("y") == ["y", "y"]
    assert (a.calls, b.calls) == (2, 0)
    key = Repo.find.key_for(a, "x")  # type: ignore[attr-defined]
    assert key.startswith(f"{__name__}.")
    assert "find:" in key


async def test_one_flight_in_a_process(redis_client: Any) -> None:
    cache = Cache(redis_client, "f")
    origin = Origin("value", delay=0.05)
    # 300 callers on a client whose pool holds 100 connections: one flight, one connection.
    results = await asyncio.gather(*(cache.get_or_compute("k", origin) for _ in range(300)))
    assert results == ["value"] * 300
    assert origin.calls == 1
    assert cache.stats.computes == 1
    assert cache.stats.waits == 299


_CALLERS = """
import asyncio, json, sys
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from aiorpatterns import Cache

async def main():
    url, topology, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    redis = RedisCluster.from_url(url) if topology == "cluster" else Redis.from_url(url)
    cache = Cache(redis, "procs", lease=float(sys.argv[5]))

    async def origin():
        await redis.incr("aiorp:test:origin-calls")
        print("computing", flush=True)
        await asyncio.sleep(float(sys.argv[4]))
        return "computed"

    print("ready", flush=True)
    await redis.blpop(["aiorp:test:go"], 60)
    results = await asyncio.gather(*(cache.get_or_compute("cold", origin) for _ in range(n)))
    print(json.dumps(results), flush=True)
    await redis.aclose()

asyncio.run(main())
"""


async def _child(
    url: str, topology: str, n: int, delay: float, lease: float = 10.0
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", _CALLERS, url, topology, str(n), str(delay), str(lease)),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


async def _line(child: asyncio.subprocess.Process) -> str:
    assert child.stdout is not None
    return (await asyncio.wait_for(child.stdout.readline(), 60)).decode().strip()


async def test_one_flight_across_processes(redis_client: Any) -> None:
    """100 callers in 4 processes on one cold key whose origin takes 50 ms: 1 origin call."""
    url, topology = url_of(redis_client)
    children = [await _child(url, topology, 25, 0.05) for _ in range(4)]
    try:
        assert [await _line(c) for c in children] == ["ready"] * 4
        await redis_client.rpush("aiorp:test:go", *["go"] * 4)
        outputs = []
        for child in children:
            line = await _line(child)
            if line == "computing":
                line = await _line(child)
            outputs.append(json.loads(line))
        assert outputs == [["computed"] * 25] * 4
        assert int(await redis_client.get("aiorp:test:origin-calls")) == 1
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
            await child.wait()


async def test_a_computer_killed_mid_compute_costs_its_lease_only(redis_client: Any) -> None:
    url, topology = url_of(redis_client)
    child = await _child(url, topology, 1, 3600, lease=2.0)
    try:
        assert await _line(child) == "ready"
        await redis_client.rpush("aiorp:test:go", "go")
        assert await _line(child) == "computing"  # it holds the claim, for its 2 s lease
        child.send_signal(signal.SIGKILL)
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert await _claimed(redis_client, Cache(redis_client, "procs"), "cold")
    cache = Cache(redis_client, "procs")
    origin = Origin("mine")
    # Waits at most what is left of the dead computer's 2 s lease, then computes itself.
    assert await asyncio.wait_for(cache.get_or_compute("cold", origin), 30) == "mine"
    assert origin.calls == 1
    assert cache.stats.waits == 1


async def test_a_cancelled_computer_hands_on_at_once(redis_client: Any) -> None:
    cache = Cache(redis_client, "f", lease=60)
    slow = Origin("never", delay=3600)
    computer = asyncio.create_task(cache.get_or_compute("k", slow))
    await until(lambda: _claimed(redis_client, cache, "k"), "the first caller's claim")
    fast = Origin("value")
    other = Cache(redis_client, "f", lease=60)  # another process's cache, say
    waiters = [asyncio.create_task(other.get_or_compute("k", fast)) for _ in range(10)]

    async def waiting() -> bool:
        return other.stats.waits == 1  # its first caller waits on Redis, nine follow it

    await until(waiting, "the waiters")
    computer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await computer
    # Far within the 60 s lease: the cancelled computer released its claim.
    assert await asyncio.wait_for(asyncio.gather(*waiters), 10) == ["value"] * 10
    assert fast.calls == 1
    assert other.stats.waits == 10


async def test_a_computer_cancelled_while_it_fills_still_stores(redis_client: Any) -> None:
    """The fill runs shielded: its caller is cancelled at once, the value is stored and the
    claim settled all the same, so the waiters need not sit out the lease."""
    cache = Cache(redis_client, "f", lease=60)
    flight = Flight(redis_client, flight_keys(cache.key("k")), lease_ms=60_000)
    assert (await flight.claim())[0] == "claimed"
    filling = asyncio.create_task(flight.fill(encode(VALUE, '"kept"', {}), 60_000))
    await asyncio.sleep(0)  # the fill is on its way: its caller waits on the shielded step
    filling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await filling

    async def stored() -> bool:
        return await cache.get("k") == "kept"

    await until(stored, "the cancelled caller's value")
    assert not await _claimed(redis_client, cache, "k")


async def _claimed(redis: Any, cache: Cache, key: str) -> bool:
    return bool(await redis.exists(cache.key(key) + ":claim"))


async def test_a_failing_computer_hands_on_and_its_error_is_not_cached(redis_client: Any) -> None:
    cache = Cache(redis_client, "f")
    with pytest.raises(RuntimeError, match="down"):
        await cache.get_or_compute("k", Origin(RuntimeError("down")))
    assert not await _claimed(redis_client, cache, "k")
    assert await cache.get_or_compute("k", Origin("up")) == "up"


async def test_named_errors_are_cached_for_error_ttl(redis_client: Any) -> None:
    cache = Cache(redis_client, "e")

    @cache.cached(key="item:{item}", cache_errors=(LookupError,), error_ttl=30)
    async def find(item: str) -> str:
        find.calls += 1  # type: ignore[attr-defined]
        raise LookupError(f"no item {item}")

    find.calls = 0  # type: ignore[attr-defined]
    for _ in range(3):
        with pytest.raises(LookupError, match="no item 7"):
            await find("7")
    assert find.calls == 1  # type: ignore[attr-defined]
    assert 0 < await redis_client.pttl(cache.key("item:7")) <= 30_000
    with pytest.raises(CachedError, match="LookupError: no item 7"):
        await cache.get("item:7")  # a plain read names no classes: the generic error


async def test_none_is_cached_only_when_asked(redis_client: Any) -> None:
    cache = Cache(redis_client, "n")
    nothing = Origin(None)
    assert await cache.get_or_compute("k", nothing) is None
    assert await cache.get_or_compute("k", nothing) is None
    assert nothing.calls == 2
    keeps = Cache(redis_client, "n2", cache_none=True)
    assert await keeps.get_or_compute("k", nothing) is None
    assert await keeps.get_or_compute("k", nothing) is None
    assert nothing.calls == 3


async def test_soft_ttl_serves_stale_while_one_caller_refreshes(redis_client: Any) -> None:
    cache = Cache(redis_client, "s", ttl=60, soft_ttl=0.2)
    assert await cache.get_or_compute("k", Origin("v1")) == "v1"

    async def stale() -> bool:
        return not await redis_client.exists(cache.key("k") + ":fresh")

    await until(stale, "the soft TTL to pass")
    gate = asyncio.Event()
    calls: list[str] = []

    async def refresh() -> str:
        calls.append("v2")
        await gate.wait()
        return "v2"

    first = asyncio.create_task(cache.get_or_compute("k", refresh))
    await until(lambda: _claimed(redis_client, cache, "k"), "the refresh claim")
    others = await asyncio.gather(*(cache.get_or_compute("k", refresh) for _ in range(20)))
    assert others == ["v1"] * 20  # served stale while the refresh is still running
    assert not first.done()
    gate.set()
    assert await first == "v2"
    assert calls == ["v2"]
    assert cache.stats.stale == 20
    assert await cache.get_or_compute("k", refresh) == "v2"  # fresh again
    assert calls == ["v2"]


async def test_a_failed_refresh_serves_the_stale_value(redis_client: Any) -> None:
    cache = Cache(redis_client, "s", ttl=60, soft_ttl=0.1)
    await cache.get_or_compute("k", Origin("old"))

    async def stale() -> bool:
        return not await redis_client.exists(cache.key("k") + ":fresh")

    await until(stale, "the soft TTL to pass")
    assert await cache.get_or_compute("k", Origin(RuntimeError("down"))) == "old"
    assert not await _claimed(redis_client, cache, "k")


async def test_tags_invalidate_every_entry_computed_under_them(redis_client: Any) -> None:
    cache = Cache(redis_client, "t")
    calls: list[str] = []

    @cache.cached(key="post:{post}", tags=("user:{user}", "posts"))
    async def render(user: int, post: int) -> str:
        calls.append(f"{user}/{post}")
        return f"post {post} by {user}"

    for user, post in [(1, 1), (1, 2), (2, 3)]:
        await render(user, post)
    await cache.set("plain", 1, tags=["user:1"])
    await cache.invalidate("user:1")
    assert await cache.get("plain") is None
    assert await cache.get_many(["post:1", "post:3"]) == {"post:3": "post 3 by 2"}
    for user, post in [(1, 1), (1, 2), (2, 3)]:
        await render(user, post)
    assert calls == ["1/1", "1/2", "2/3", "1/1", "1/2"]
    await cache.invalidate("posts")
    await render(2, 3)
    assert calls[-1] == "2/3"


async def test_an_invalidation_during_a_computation_invalidates_its_value(
    redis_client: Any,
) -> None:
    cache = Cache(redis_client, "t")
    gate = asyncio.Event()

    async def origin() -> str:
        await gate.wait()
        return "computed before the invalidation"

    computing = asyncio.create_task(cache.get_or_compute("k", origin, tags=["a"]))
    await until(lambda: _claimed(redis_client, cache, "k"), "the claim")
    await cache.invalidate("a")
    gate.set()
    assert await computing == "computed before the invalidation"
    assert await cache.get("k") is None  # stored under the old generation: invalid


async def test_a_delete_during_a_computation_stores_nothing(redis_client: Any) -> None:
    cache = Cache(redis_client, "d")
    gate = asyncio.Event()

    async def origin() -> str:
        await gate.wait()
        return "stale"

    computing = asyncio.create_task(cache.get_or_compute("k", origin))
    await until(lambda: _claimed(redis_client, cache, "k"), "the claim")
    await cache.delete("k")
    gate.set()
    assert await computing == "stale"
    assert not await redis_client.exists(cache.key("k"))


@pytest.mark.parametrize("serializer", [JsonSerializer(), "msgspec"])
async def test_serializers(redis_client: Any, serializer: Any) -> None:
    if serializer == "msgspec":
        pytest.importorskip("msgspec")
        serializer = MsgspecJSON()
    cache = Cache(redis_client, "z", serializer=serializer)
    value = {"a": [1, 2.5, None, "é"], "b": True}
    await cache.set("k", value)
    assert await cache.get("k") == value
    assert await cache.get_or_compute("k2", Origin(value)) == value
    assert await cache.get_or_compute("k2", Origin("other")) == value


async def test_a_value_that_is_not_an_entry_is_ignored(redis_client: Any) -> None:
    cache = Cache(redis_client, "x")
    await redis_client.set(cache.key("k"), "written by someone else")
    assert await cache.get("k") is None
    assert await cache.get_or_compute("k", Origin("mine")) is not None


async def test_bad_input_is_refused_before_redis() -> None:
    cache = Cache(NO_REDIS, "bad")
    with pytest.raises(ValueError, match="soft_ttl"):
        Cache(NO_REDIS, ttl=10, soft_ttl=10)
    with pytest.raises(ValueError, match="ttl must be a positive"):
        Cache(NO_REDIS, ttl=0)
    with pytest.raises(ValueError, match="jitter must be at most"):
        Cache(NO_REDIS, jitter=1.5)
    with pytest.raises(ValueError, match=":"):
        Cache(NO_REDIS, "a:b")
    with pytest.raises(TypeError):
        Cache(NO_REDIS, serializer=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="}"):
        await cache.get("a}b")
    with pytest.raises(TypeError):
        await cache.set("k", {1, 2})  # not JSON
    with pytest.raises(ValueError, match="not valid JSON"):
        await cache.set("k", float("nan"))
    with pytest.raises(TypeError):
        await cache.set_many({"ok": 1, "bad": object()})  # nothing written for either
    with pytest.raises(ValueError, match="must not contain"):
        await cache.set("k", 1, tags=["a,b"])
    with pytest.raises(TypeError, match="single str"):
        await cache.set("k", 1, tags="ab")
    with pytest.raises(ValueError, match="ttl must be a positive"):
        await cache.set("k", 1, ttl=-1)
    with pytest.raises(TypeError):
        await cache.get_or_compute("k", "not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async functions"):
        cache.cached()(lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nope"):

        @cache.cached(key="x:{nope}")
        async def f(a: int) -> int:
            return a

    with pytest.raises(TypeError, match="Exception classes"):
        cache.cached(cache_errors=(int,))  # type: ignore[arg-type]

    @cache.cached()
    async def g(a: object) -> int:
        return 1

    with pytest.raises(TypeError, match="key= template"):
        await g(object())


async def test_an_unserialisable_result_releases_the_claim(redis_client: Any) -> None:
    cache = Cache(redis_client, "u")
    with pytest.raises(TypeError):
        await cache.get_or_compute("k", Origin({1, 2}))
    assert not await _claimed(redis_client, cache, "k")
    assert await keys_of(redis_client) == [cache.key("k") + ":ready"]


@pytest.mark.retry_safe("cache_claim", "cache_store")
async def test_cache_steps_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        cache = Cache(client, "r", ttl=60, soft_ttl=30)
        seen = [await cache.get_or_compute("k", Origin("v"))]  # claim, fill
        seen.append(await cache.get_or_compute("k", Origin("other")))  # a hit
        await cache.set("s", [1], tags=["t"])  # a set keeps its receipt
        seen.append(await cache.get("s"))
        with pytest.raises(RuntimeError):
            await cache.get_or_compute("f", Origin(RuntimeError("x")))  # claim, release
        seen.append(await cache.delete("k"))  # drop
        seen.append(await cache.get_or_compute("k", Origin("again")))
        seen.append(cache.stats)
        return seen

    await assert_retry_safe(redis_client, twice_client, scenario)


# -- the near cache ------------------------------------------------------------------------


async def _live(cache: Cache) -> None:
    assert cache.near is not None
    cache.near.mark()  # tracking starts with the first read

    async def live() -> bool:
        return cache.near is not None and cache.near.live

    await until(live, "the near cache's tracking", limit=30)


async def test_near_hits_skip_the_round_trip_until_the_server_invalidates(
    redis_client: Any,
) -> None:
    async with Cache(redis_client, "near", near=100) as cache:
        await cache.set("k", "v1")
        await _live(cache)
        assert await cache.get("k") == "v1"  # read from Redis, kept near
        assert await cache.get("k") == "v1"
        assert cache.stats.near_hits == 1
        await Cache(redis_client, "near").set("k", "v2")  # another writer

        async def dropped() -> bool:
            return cache.near is not None and cache.near.lookup(cache.key("k")) is None

        await until(dropped, "the invalidation")
        assert await cache.get("k") == "v2"
        await redis_client.delete(cache.key("k"))  # a plain DEL by anyone drops it too
        await until(dropped, "the invalidation of the DEL")
        assert await cache.get("k") is None


async def test_near_entries_under_an_invalidated_tag_are_dropped(redis_client: Any) -> None:
    async with Cache(redis_client, "near", near=100) as cache:
        await _live(cache)
        calls: list[int] = []

        @cache.cached(key="u:{u}", tags=("user:{u}",))
        async def load(u: int) -> int:
            calls.append(u)
            return u * 10

        assert [await load(1) for _ in range(3)] == [10, 10, 10]
        assert cache.stats.near_hits >= 1
        await Cache(redis_client, "near").invalidate("user:1")  # another process's bump

        async def dropped() -> bool:
            return cache.near is not None and len(cache.near) == 0

        await until(dropped, "the tag's invalidation")
        assert await load(1) == 10
        assert calls == [1, 1]


async def test_near_cache_is_bounded(redis_client: Any) -> None:
    async with Cache(redis_client, "near", near=5) as cache:
        await _live(cache)
        await cache.set_many({f"k{i}": i for i in range(20)})
        for i in range(20):
            assert await cache.get(f"k{i}") == i
        assert cache.near is not None
        assert len(cache.near) == 5


async def test_near_cache_flushes_when_tracking_drops_and_comes_back(redis_client: Any) -> None:
    async with Cache(redis_client, "near", near=100) as cache:
        assert cache.near is not None
        await cache.set("k", "old")
        await _live(cache)
        assert await cache.get("k") == "old"
        assert len(cache.near) == 1
        # Drop every tracking connection; write while they are down.
        await _kill_pubsub(redis_client)
        await Cache(redis_client, "near").set("k", "new")

        async def flushed() -> bool:
            return cache.near is not None and cache.near.flushes >= 1

        await until(flushed, "the flush")
        assert await cache.get("k") == "new"  # nothing served locally while tracking is down
        await _live(cache)
        assert await cache.get("k") == "new"


async def _kill_pubsub(redis: Any) -> None:
    if isinstance(redis, RedisCluster):
        await redis.execute_command(
            "CLIENT", "KILL", "TYPE", "pubsub", target_nodes=RedisCluster.PRIMARIES
        )
    else:
        await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")


_WRITER = """
import asyncio, sys
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from aiorpatterns import Cache

async def main():
    url, topology = sys.argv[1], sys.argv[2]
    redis = RedisCluster.from_url(url) if topology == "cluster" else Redis.from_url(url)
    cache = Cache(redis, "near")
    for i in range(1, 21):
        await cache.set("k", i)
        print(i, flush=True)
        await redis.blpop(["aiorp:test:ack"], 60)
    await redis.aclose()

asyncio.run(main())
"""


async def test_no_stale_near_read_once_the_invalidation_arrived(redis_client: Any) -> None:
    """A second process writes while this one reads through its near cache."""
    url, topology = url_of(redis_client)
    async with Cache(redis_client, "near", near=100) as cache:
        await _live(cache)
        child = await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", _WRITER, url, topology),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": ROOT},
        )
        try:
            seen = 0
            for i in range(1, 21):
                assert int(await _line(child)) == i  # written and acknowledged by the server
                while (value := await cache.get("k")) != i:
                    assert value is None or value >= seen  # never older than what was read
                    await asyncio.sleep(0.001)
                seen = i
                for _ in range(5):
                    assert await cache.get("k") == i  # once it arrived, never the old value
                await redis_client.rpush("aiorp:test:ack", "ok")
            assert await child.wait() == 0
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        assert cache.stats.near_hits > 0
