"""Lua registry: headers, includes, EVALSHA with NOSCRIPT reload, pipelines, key-count checks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns import Keyspace
from aiorpatterns.core.scripts import Script, script, scripts_by_name
from aiorpatterns.testing.server import free_port

KS = Keyspace()


def lock_keys(name: str) -> list[str]:
    return [KS.key("lock", name), *(KS.key("lock", name, p) for p in ("fence", "queue", "waiters"))]


def script_names() -> list[str]:
    return sorted(name for name in scripts_by_name() if not name.startswith("_"))


@pytest.fixture
async def unreachable() -> AsyncIterator[Redis]:
    """A client for a port nobody listens on: any Redis call would raise ConnectionError."""
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


def test_lock_scripts_declare_their_key_counts() -> None:
    """The registry reads each script's KEYS count from its header."""
    assert script("lock_acquire").nkeys == 4
    assert script("lock_release").nkeys == 4
    assert script("lock_extend").nkeys == 1


@pytest.mark.parametrize("name", script_names())
def test_every_script_header_matches_its_body(name: str) -> None:
    """Headers number KEYS 1..n, the body uses no undeclared KEYS, includes are inlined."""
    raw = scripts_by_name()[name].read_text()
    declared: list[int] = []
    for first, last in re.findall(r"^-- KEYS\[(\d+)(?:\.\.(\d+))?\]", raw, re.MULTILINE):
        declared += range(int(first), int(last or first) + 1)
    s = script(name)
    assert declared == list(range(1, len(declared) + 1))
    assert s.nkeys == len(declared)
    assert s.variadic == bool(re.search(r"^-- KEYS\[[^\]]*\.\.(?!\d+\])", raw, re.MULTILINE))
    body = "\n".join(line for line in s.source.splitlines() if not line.startswith("--"))
    used = {int(n) for n in re.findall(r"KEYS\[(\d+)\]", body)}
    assert s.variadic or used <= set(declared)
    assert not re.search(r"^-- @include \w+\s*$", s.source, re.MULTILINE)
    assert re.search(r"^-- ARGV\[1\]|^-- returns", raw, re.MULTILINE)
    assert s.sha == hashlib.sha1(s.source.encode()).hexdigest()
    assert script(name) is s  # loaded once per process


def test_include_inlines_the_shared_wait_queue() -> None:
    """``-- @include waitqueue`` pastes coordination/lua/_waitqueue.lua into the script."""
    shared = scripts_by_name()["_waitqueue"].read_text()
    first, _, rest = shared.partition("-- @include clock\n")
    for name in ("lock_acquire", "lock_release"):
        source = script(name).source
        assert first in source, name
        assert rest in source, name
    assert rest not in script("lock_extend").source


def test_includes_inside_includes_are_inlined() -> None:
    """The wait queue includes the clock (``_clock.lua``): both land in the script."""
    clock = scripts_by_name()["_clock"].read_text()
    source = script("lock_acquire").source
    assert clock in source
    assert "\n-- @include" not in source


def test_unknown_script_is_an_error() -> None:
    """Asking for a script that does not exist fails loudly."""
    with pytest.raises(FileNotFoundError):
        script("no_such_script")


async def test_wrong_key_count_is_a_type_error_before_redis(unreachable: Redis) -> None:
    """Too few or too many keys raise TypeError, before anything is sent."""
    extend = script("lock_extend")
    with pytest.raises(TypeError, match="lock_extend takes 1 keys, got 2"):
        await extend(unreachable, ["a", "b"], ["t", 1, 0])
    with pytest.raises(TypeError, match="takes 4 keys, got 0"):
        await script("lock_acquire")(unreachable, [], [])
    pipe = unreachable.pipeline()
    with pytest.raises(TypeError, match="takes 1 keys"):
        extend.queue(pipe, [], [])
    assert len(pipe) == 0


async def test_evalsha_reloads_after_script_flush(redis_client_text: Any) -> None:
    """EVALSHA works, and after SCRIPT FLUSH the script is loaded again by itself."""
    r = redis_client_text
    extend = script("lock_extend")
    key = KS.key("lock", "scripted")
    await r.script_flush()
    assert await r.script_exists(extend.sha) == [False]
    assert int(await extend(r, [key], ["tok", 1000, 0, ""])) == 0  # NOSCRIPT -> LOAD -> EVALSHA
    assert await r.script_exists(extend.sha) == [True]  # on a cluster: on every primary
    await r.set(key, "tok", px=1000)
    assert int(await extend(r, [key], ["tok", 5000, 1, ""])) == 5000  # plain EVALSHA hit
    await r.script_flush()
    assert int(await extend(r, [key], ["tok", 6000, 1, ""])) == 6000
    assert extend.sha == hashlib.sha1(extend.source.encode()).hexdigest()  # a str, still


@pytest.mark.parametrize("transaction", [False, True], ids=["pipeline", "multi"])
async def test_scripts_queued_in_a_standalone_pipeline(
    redis_standalone_client: Redis, transaction: bool
) -> None:
    """Scripts queued on a standalone pipeline run, loading themselves first if needed."""
    r = redis_standalone_client
    acquire, extend = script("lock_acquire"), script("lock_extend")
    keys = lock_keys("piped")
    await r.script_flush()
    async with r.pipeline(transaction=transaction) as pipe:
        acquire.queue(pipe, keys, ["a", 10_000, 0])
        acquire.queue(pipe, keys, ["b", 10_000, 0])
        extend.queue(pipe, keys[:1], ["a", 20_000, 1])
        pipe.get(keys[0])
        first, second, extended, holder = await pipe.execute()
    assert int(first) == 1
    assert int(second) < 0
    assert int(extended) == 20_000
    assert holder == b"a"


async def test_scripts_queued_in_a_cluster_pipeline_after_load(
    redis_cluster_client: RedisCluster,
) -> None:
    """On a cluster pipeline, scripts run once load() has put them on every primary."""
    r = redis_cluster_client
    acquire, extend = script("lock_acquire"), script("lock_extend")
    await r.script_flush()
    await acquire.load(r)
    await extend.load(r)
    assert await r.script_exists(acquire.sha, extend.sha) == [True, True]
    names = ("p1", "p2", "p3", "p4", "p5")
    assert len({r.keyslot(lock_keys(n)[0]) * 3 // 16384 for n in names}) > 1  # several nodes
    async with r.pipeline() as pipe:
        for name in names:
            acquire.queue(pipe, lock_keys(name), ["a", 10_000, 0])
        replies = await pipe.execute()
    assert [int(x) for x in replies] == [1] * len(names)
    async with r.pipeline(transaction=True) as multi:  # one slot: a MULTI works too
        acquire.queue(multi, lock_keys("p1"), ["b", 10_000, 0])
        extend.queue(multi, lock_keys("p1")[:1], ["a", 20_000, 1])
        busy, extended = await multi.execute()
    assert int(busy) < 0
    assert int(extended) == 20_000


async def test_script_objects_are_independent_of_clients(redis_client: Any) -> None:
    """One Script serves any client; it has no client of its own."""
    s = script("lock_extend")
    assert isinstance(s, Script)
    assert "client" not in repr(s)
    assert int(await s(redis_client, [KS.key("lock", "free")], ["t", 100, 0, ""])) == 0
