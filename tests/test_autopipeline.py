"""AutoPipeline: the same replies as the plain client, fewer round trips, faults kept local.

Everything runs against real servers, standalone and cluster. Redis in Action §4.5.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.lock import Lock as RedisPyLock
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ConnectionError,
    DataError,
    NoScriptError,
    RedisClusterException,
    RedisError,
)

from aiorpatterns import Lock
from aiorpatterns.core.autopipeline import AutoPipeline, AutoPipelineStats
from aiorpatterns.core.scripts import script
from aiorpatterns.testing.pytest_plugin import Endpoint

# -- helpers ----------------------------------------------------------------------------------

_T = TypeVar("_T")


def _decode(client: Any) -> bool:
    return bool(client.get_encoder().decode_responses)


async def _targets(client: Any) -> list[dict[str, Any]]:
    """One ``execute_command`` keyword set per server node (one empty set when standalone)."""
    if isinstance(client, RedisCluster):
        await client.initialize()  # a fresh cluster client knows no nodes yet
        return [{"target_nodes": node} for node in client.get_nodes()]
    return [{}]


async def _on_every_node(client: Any, *args: Any) -> None:
    for target in await _targets(client):
        await client.execute_command(*args, **target)


async def _postponed(client: Any) -> list[tuple[dict[str, Any], str]]:
    """The connections a ``CLIENT PAUSE WRITE`` is holding, as (node, client id).

    A BLPOP is blocked too (``b``), but by its own wait: an earlier test's wake-up channel may
    still be in one for up to a second after its last waiter left (core/wakeup.py).
    """
    found = []
    for target in await _targets(client):
        for entry in await client.client_list(**target):
            if "b" in entry["flags"] and entry.get("cmd") != "blpop":
                found.append((target, entry["id"]))
    return found


async def _until(probe: Callable[[], Awaitable[_T]]) -> _T:
    """Poll the server until ``probe()`` is truthy (bounded): nothing signals these states."""
    for _ in range(1000):
        if found := await probe():
            return found
        await asyncio.sleep(0.01)
    raise AssertionError("the server never reached the expected state")


async def _wait_postponed(client: Any) -> list[tuple[dict[str, Any], str]]:
    """Wait until a batch of writes is parked on the server by CLIENT PAUSE WRITE."""
    return await _until(lambda: _postponed(client))


async def _outcome(awaitable: Awaitable[Any]) -> tuple[Any, ...]:
    try:
        return ("ok", await awaitable)
    except (RedisError, RedisClusterException) as exc:
        return ("error", type(exc).__name__, str(exc))


def _no_retry_client(endpoint: Endpoint, topology: str) -> Any:
    if topology == "cluster":
        return RedisCluster.from_url(endpoint.url, retry=Retry(NoBackoff(), 0))
    return Redis.from_url(endpoint.url, retry=Retry(NoBackoff(), 0))


@pytest.fixture
async def ap(redis_client: Any) -> AsyncIterator[AutoPipeline]:
    async with AutoPipeline(redis_client) as wrapper:
        yield wrapper


# -- identical replies --------------------------------------------------------------------------


async def test_replies_are_parsed_like_the_plain_client(redis_client_text: Any) -> None:
    """Response callbacks apply per command: dicts, tuples, floats, sets, bools, decoding."""
    client = redis_client_text

    async def seed(ns: str) -> None:
        k = f"ap:{{{ns}}}"
        await client.set(f"{k}:s", "v")
        await client.set(f"{k}:e", "v")
        await client.set(f"{k}:abc", "abc")
        await client.hset(f"{k}:h", mapping={"a": 1, "b": "x"})
        await client.zadd(f"{k}:z", {"m": 1.5, "n": -2})
        await client.sadd(f"{k}:set", "p", "q")
        await client.rpush(f"{k}:l", "a", "b")

    def commands(c: Any, ns: str) -> list[Awaitable[Any]]:
        # Each command touches its own key (or only reads): concurrent callers have no order.
        k = f"ap:{{{ns}}}"
        return [
            c.set(f"{k}:new", "w", nx=True),
            c.set(f"{k}:s", "w", nx=True),
            c.get(f"{k}:s"),
            c.hset(f"{k}:h2", mapping={"a": 1, "b": "x"}),
            c.hgetall(f"{k}:h"),
            c.hgetall(f"{k}:nope"),
            c.zrange(f"{k}:z", 0, -1, withscores=True),
            c.zscore(f"{k}:z", "m"),
            c.smembers(f"{k}:set"),
            c.incrbyfloat(f"{k}:f", 0.25),
            c.expire(f"{k}:e", 1000),
            c.exists(f"{k}:s", f"{k}:nope"),
            c.type(f"{k}:h"),
            c.lrange(f"{k}:l", 0, -1),
            c.mget([f"{k}:s", f"{k}:nope"]),
            c.incr(f"{k}:abc"),
            c.ping(),
        ]

    await seed("p")
    await seed("a")
    plain = [await _outcome(cmd) for cmd in commands(client, "p")]
    async with AutoPipeline(client) as ap:
        batched = await asyncio.gather(*(_outcome(cmd) for cmd in commands(ap, "a")))
        assert ap.stats.batches <= 2  # a cluster pipeline is one batch however many nodes
    assert batched == plain
    text = _decode(client)
    assert plain[0] == ("ok", True)
    assert plain[1] == ("ok", None)
    assert plain[4] == ("ok", {"a": "1", "b": "x"} if text else {b"a": b"1", b"b": b"x"})
    assert plain[6] == ("ok", [("n", -2.0), ("m", 1.5)] if text else [(b"n", -2.0), (b"m", 1.5)])
    assert plain[8] == ("ok", {"p", "q"} if text else {b"p", b"q"})
    assert plain[9] == ("ok", 0.25)
    assert plain[15][:2] == ("error", "ResponseError")


class _Keys:
    """The keys of one task: three under one hash tag, two more under a second tag."""

    def __init__(self, ns: str, task: int) -> None:
        self.ns, self.task = ns, task

    def k(self, i: int) -> str:
        return f"ap:{{{self.ns}:{self.task}}}:{i}"

    def x(self, i: int) -> str:
        return f"ap:{{{self.ns}:{self.task}:x}}:{i}"


_V = st.sampled_from(["a", "bb", "1", "-7", "42", "3.5", "x y", "é"])
_N = st.integers(-5, 5)
_I = st.integers(0, 2)
_S = st.sampled_from([0, 1.5, -2, 3])

OpFn = Callable[..., Awaitable[Any]]
_OPS: dict[str, tuple[OpFn, tuple[st.SearchStrategy[Any], ...]]] = {
    # strings
    "set": (lambda c, k, i, v: c.set(k.k(i), v), (_I, _V)),
    "set_nx": (lambda c, k, i, v: c.set(k.k(i), v, nx=True), (_I, _V)),
    "set_none": (lambda c, k, i: c.set(k.k(i), None), (_I,)),  # DataError, client side
    "get": (lambda c, k, i: c.get(k.k(i)), (_I,)),
    "append": (lambda c, k, i, v: c.append(k.k(i), v), (_I, _V)),
    "strlen": (lambda c, k, i: c.strlen(k.k(i)), (_I,)),
    "incr": (lambda c, k, i: c.incr(k.k(i)), (_I,)),
    "incrby": (lambda c, k, i, n: c.incrby(k.k(i), n), (_I, _N)),
    "decr": (lambda c, k, i: c.decr(k.k(i)), (_I,)),
    "incrbyfloat": (lambda c, k, i: c.incrbyfloat(k.k(i), 0.5), (_I,)),
    "mset": (lambda c, k, i, j, v: c.mset({k.k(i): v, k.k(j): v}), (_I, _I, _V)),
    "mget": (lambda c, k, i, j: c.mget([k.k(i), k.k(j)]), (_I, _I)),
    # hashes
    "hset": (lambda c, k, i, f, v: c.hset(k.k(i), f, v), (_I, _V, _V)),
    "hget": (lambda c, k, i, f: c.hget(k.k(i), f), (_I, _V)),
    "hgetall": (lambda c, k, i: c.hgetall(k.k(i)), (_I,)),
    "hincrby": (lambda c, k, i, f, n: c.hincrby(k.k(i), f, n), (_I, _V, _N)),
    "hdel": (lambda c, k, i, f: c.hdel(k.k(i), f), (_I, _V)),
    "hlen": (lambda c, k, i: c.hlen(k.k(i)), (_I,)),
    # lists
    "lpush": (lambda c, k, i, v: c.lpush(k.k(i), v), (_I, _V)),
    "rpush": (lambda c, k, i, v: c.rpush(k.k(i), v, v), (_I, _V)),
    "lpop": (lambda c, k, i: c.lpop(k.k(i)), (_I,)),
    "rpop": (lambda c, k, i: c.rpop(k.k(i)), (_I,)),
    "lrange": (lambda c, k, i: c.lrange(k.k(i), 0, -1), (_I,)),
    "llen": (lambda c, k, i: c.llen(k.k(i)), (_I,)),
    "lmove": (lambda c, k, i, j: c.lmove(k.k(i), k.k(j)), (_I, _I)),
    # sets
    "sadd": (lambda c, k, i, v: c.sadd(k.k(i), v), (_I, _V)),
    "srem": (lambda c, k, i, v: c.srem(k.k(i), v), (_I, _V)),
    "smembers": (lambda c, k, i: c.smembers(k.k(i)), (_I,)),
    "sismember": (lambda c, k, i, v: c.sismember(k.k(i), v), (_I, _V)),
    "sinter": (lambda c, k, i, j: c.sinter(k.k(i), k.k(j)), (_I, _I)),
    # sorted sets
    "zadd": (lambda c, k, i, v, s: c.zadd(k.k(i), {v: s}), (_I, _V, _S)),
    "zincrby": (lambda c, k, i, v, s: c.zincrby(k.k(i), s, v), (_I, _V, _S)),
    "zrange": (lambda c, k, i: c.zrange(k.k(i), 0, -1, withscores=True), (_I,)),
    "zscore": (lambda c, k, i, v: c.zscore(k.k(i), v), (_I, _V)),
    "zrem": (lambda c, k, i, v: c.zrem(k.k(i), v), (_I, _V)),
    "zpopmin": (lambda c, k, i: c.zpopmin(k.k(i)), (_I,)),
    "zcard": (lambda c, k, i: c.zcard(k.k(i)), (_I,)),
    # keys (exists and delete span two hash tags: two slots on a cluster)
    "expire": (lambda c, k, i: c.expire(k.k(i), 1000), (_I,)),
    "ttl": (lambda c, k, i: c.ttl(k.k(i)), (_I,)),
    "persist": (lambda c, k, i: c.persist(k.k(i)), (_I,)),
    "type": (lambda c, k, i: c.type(k.k(i)), (_I,)),
    "set_x": (lambda c, k, i, v: c.set(k.x(i), v), (_I, _V)),
    "exists": (lambda c, k, i, j: c.exists(k.k(i), k.x(j)), (_I, _I)),
    "delete": (lambda c, k, i, j: c.delete(k.k(i), k.x(j)), (_I, _I)),
}

_OP = st.sampled_from(sorted(_OPS)).flatmap(
    lambda name: st.tuples(st.just(name), st.tuples(*_OPS[name][1]))
)
_PROGRAMS = st.lists(st.lists(_OP, max_size=10), min_size=1, max_size=12)


async def _run_program(client: Any, keys: _Keys, program: list[tuple[str, tuple[Any, ...]]]) -> Any:
    results = []
    for name, params in program:
        outcome = await _outcome(_OPS[name][0](client, keys, *params))
        if name == "ttl" and outcome[0] == "ok" and outcome[1] > 0:
            outcome = ("ok", "live")  # the exact second depends on when it ran
        results.append(outcome)
    return results


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(programs=_PROGRAMS)
async def test_concurrent_tasks_get_what_the_plain_client_gives_sequentially(
    redis_client_text: Any, programs: list[list[tuple[str, tuple[Any, ...]]]]
) -> None:
    """Random mixes (including WRONGTYPE, non-integer INCR, bad arguments) match, task by task.

    Each task owns its keys, so the sequential run on the plain client is the reference
    whatever order the batches interleave the tasks in.
    """
    client = redis_client_text
    run = uuid.uuid4().hex[:8]
    expected = [
        await _run_program(client, _Keys(f"p{run}", task), program)
        for task, program in enumerate(programs)
    ]
    async with AutoPipeline(client) as ap:
        got = await asyncio.gather(
            *(
                _run_program(ap, _Keys(f"a{run}", task), program)
                for task, program in enumerate(programs)
            )
        )
    assert got == expected


# -- errors, batching, cancellation ----------------------------------------------------------------


async def test_each_error_reaches_only_its_caller(redis_client: Any, ap: AutoPipeline) -> None:
    """WRONGTYPE, a non-integer INCR and a bad argument sit in one batch with good commands."""
    await redis_client.set("ap:{e}:str", "abc")
    await redis_client.rpush("ap:{e}:list", "x")
    before = ap.stats.batches
    outcomes = await asyncio.gather(
        _outcome(ap.lpush("ap:{e}:str", "v")),
        _outcome(ap.get("ap:{e}:str")),
        _outcome(ap.incr("ap:{e}:str")),
        _outcome(ap.lrange("ap:{e}:list", 0, -1)),
        _outcome(ap.set("ap:{e}:none", None)),  # type: ignore[arg-type]
        _outcome(ap.hset("ap:{e}:list", "f", "v")),
        _outcome(ap.set("ap:{e}:ok", "1")),
    )
    assert ap.stats.batches == before + 1
    assert outcomes[0][:2] == ("error", "ResponseError")
    assert "WRONGTYPE" in outcomes[0][2]
    assert outcomes[1] == ("ok", b"abc")
    assert outcomes[2][:2] == ("error", "ResponseError")
    assert "not an integer" in outcomes[2][2]
    assert outcomes[3] == ("ok", [b"x"])
    assert outcomes[4][:2] == ("error", "DataError")
    assert outcomes[5][:2] == ("error", "ResponseError")
    assert "WRONGTYPE" in outcomes[5][2]
    assert outcomes[6] == ("ok", True)
    assert await redis_client.get("ap:{e}:ok") == b"1"
    with pytest.raises(DataError):
        await ap.set("ap:{e}:none", {"a": 1})  # type: ignore[arg-type]


async def test_a_raising_response_callback_fails_only_its_caller(
    redis_client: Any, ap: AutoPipeline
) -> None:
    """A callback error (a bad score_cast_func) is that caller's; the replies after it are read."""
    await redis_client.zadd("ap:{cb}:z", {"m": 1.5})
    await redis_client.set("ap:{cb}:s", "v")

    def bad_cast(score: Any) -> float:
        raise ValueError(f"cannot cast {score!r}")

    with pytest.raises(ValueError, match="cannot cast"):
        await redis_client.zrange("ap:{cb}:z", 0, -1, withscores=True, score_cast_func=bad_cast)
    for _ in range(3):  # the connection stays in step: every later batch gets its own replies
        outcomes = await asyncio.gather(
            ap.get("ap:{cb}:s"),
            ap.zrange("ap:{cb}:z", 0, -1, withscores=True, score_cast_func=bad_cast),
            ap.zrange("ap:{cb}:z", 0, -1, withscores=True),
            ap.get("ap:{cb}:nope"),
            return_exceptions=True,
        )
        assert outcomes[0] == b"v"
        assert isinstance(outcomes[1], ValueError)
        assert [tuple(pair) for pair in outcomes[2]] == [(b"m", 1.5)]
        assert outcomes[3] is None


async def test_concurrent_commands_share_a_batch(redis_client: Any, ap: AutoPipeline) -> None:
    """100 concurrent GETs travel in one pipeline (per node on a cluster)."""
    await redis_client.mset({f"ap:{{b}}:{i}": i for i in range(100)})
    before = ap.stats.batches, ap.stats.commands
    values = await asyncio.gather(*(ap.get(f"ap:{{b}}:{i}") for i in range(100)))
    assert values == [str(i).encode() for i in range(100)]
    assert ap.stats.batches - before[0] <= 3
    assert ap.stats.commands - before[1] == 100
    # keys spread over every slot: still one cluster pipeline (it writes once per node)
    keys = [f"ap:spread:{i}" for i in range(60)]
    await asyncio.gather(*(ap.set(key, key) for key in keys))
    assert await asyncio.gather(*(ap.get(key) for key in keys)) == [k.encode() for k in keys]
    assert ap.stats.largest_batch >= 60


async def test_max_batch_splits_a_large_turn(redis_client: Any) -> None:
    async with AutoPipeline(redis_client, max_batch=10) as ap:
        results = await asyncio.gather(*(ap.incr(f"ap:{{m}}:{i % 7}") for i in range(35)))
        assert ap.stats == AutoPipelineStats(batches=4, commands=35, largest_batch=10)
    assert sorted(results) == sorted(n for i in range(7) for n in range(1, 6))


async def test_a_caller_cancelled_while_queued_is_never_sent(
    redis_client: Any, ap: AutoPipeline
) -> None:
    tasks = [asyncio.create_task(ap.incr(f"ap:{{c}}:{i}")) for i in range(10)]
    await asyncio.sleep(0)  # every task has queued its command; the flush has not run yet
    tasks[3].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError)
    assert [d for i, d in enumerate(done) if i != 3] == [1] * 9
    assert await redis_client.get("ap:{c}:3") is None
    assert ap.stats.commands == 9


async def test_a_caller_cancelled_in_flight_does_not_disturb_the_batch(
    redis_client: Any, ap: AutoPipeline
) -> None:
    """The batch is parked by CLIENT PAUSE WRITE while one of its callers is cancelled."""
    await ap.set("ap:{f}:warm", 1)
    await _on_every_node(redis_client, "CLIENT PAUSE", 10_000, "WRITE")
    try:
        tasks = [asyncio.create_task(ap.incr(f"ap:{{f}}:{i}")) for i in range(10)]
        await _wait_postponed(redis_client)
        tasks[4].cancel()
    finally:
        await _on_every_node(redis_client, "CLIENT UNPAUSE")
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[4], asyncio.CancelledError)
    assert [d for i, d in enumerate(done) if i != 4] == [1] * 9
    # it was sent before the cancel, so it ran, as on the plain client; the connection is in sync
    assert await ap.mget([f"ap:{{f}}:{i}" for i in range(10)]) == [b"1"] * 10
    assert await ap.incr("ap:{f}:4") == 2


# -- scripts and locks ---------------------------------------------------------------------------


async def test_registry_scripts_reload_after_script_flush(
    redis_client: Any, ap: AutoPipeline
) -> None:
    """EVALSHA through the batch; NOSCRIPT after SCRIPT FLUSH reloads and retries."""
    acquire = script("lock_acquire")

    def keys(name: str) -> list[str]:
        base = f"ap:lock:{{{name}}}"
        return [base, f"{base}:fence", f"{base}:queue", f"{base}:waiters"]

    grants = await asyncio.gather(
        *(acquire(ap, keys(f"s{i}"), [f"t{i}", 10_000, 0]) for i in range(10))
    )
    assert all(int(g) > 0 for g in grants)
    await redis_client.script_flush()
    with pytest.raises(NoScriptError):
        await ap.evalsha(acquire.sha, 4, *keys("probe"), "t", 10_000, 0)
    grants = await asyncio.gather(
        *(acquire(ap, keys(f"r{i}"), [f"t{i}", 10_000, 0]) for i in range(10))
    )
    assert all(int(g) > 0 for g in grants)


async def test_register_script_works_on_the_wrapper(redis_client_text: Any) -> None:
    async with AutoPipeline(redis_client_text) as ap:
        echo = ap.register_script("return {KEYS[1], ARGV[1]}")
        assert echo.registered_client is ap
        await redis_client_text.script_flush()
        replies = await asyncio.gather(*(echo(keys=[f"ap:{{r}}:{i}"], args=[i]) for i in range(5)))
    text = _decode(redis_client_text)
    assert replies[2] == (["ap:{r}:2", "2"] if text else [b"ap:{r}:2", b"2"])


async def test_lock_works_through_the_wrapper(ap: AutoPipeline) -> None:
    """aiorpatterns.Lock on an AutoPipeline: mutual exclusion; its BLPOP takes the direct path."""
    holders = 0
    most = 0

    async def worker() -> None:
        nonlocal holders, most
        async with Lock(ap, "ap-shared", timeout=10, acquire_timeout=30):
            holders += 1
            most = max(most, holders)
            await asyncio.sleep(0.005)
            holders -= 1

    await asyncio.gather(*(worker() for _ in range(12)))
    assert most == 1
    assert ap.stats.direct > 0  # waiters blocked in BLPOP on the wrapped client
    assert ap.stats.batches > 0
    lock = Lock(ap, "ap-other")
    assert await lock.acquire()
    assert await lock.owned()
    await lock.release()
    assert not await lock.locked()


# -- the dedicated path --------------------------------------------------------------------------


async def test_blocking_and_stateful_commands_bypass_the_batch(
    redis_client: Any, ap: AutoPipeline
) -> None:
    await redis_client.set("ap:{d}:k", "v")
    waiter = asyncio.create_task(ap.blpop(["ap:{d}:q"], timeout=10))
    await asyncio.sleep(0.05)
    # a BLPOP waiting on the server does not hold up the commands of other tasks
    assert await asyncio.gather(ap.set("ap:{d}:k2", "w"), ap.get("ap:{d}:k")) == [True, b"v"]
    await ap.rpush("ap:{d}:q", "job")
    assert list(await waiter) == [b"ap:{d}:q", b"job"]
    await ap.xadd("ap:{d}:s", {"f": "v"})
    assert len(await ap.xread({"ap:{d}:s": "0"}, block=100)) == 1
    assert ap.stats.direct == 2

    assert isinstance(ap.pipeline(), ClusterPipeline | Pipeline)
    assert isinstance(ap.lock("ap:{d}:rlock"), RedisPyLock)
    if isinstance(redis_client, Redis):

        async def bump(pipe: Pipeline) -> None:
            value = int(await pipe.get("ap:{d}:n") or 0)
            pipe.multi()
            pipe.set("ap:{d}:n", value + 1)

        await ap.transaction(bump, "ap:{d}:n")
        assert await ap.get("ap:{d}:n") == b"1"
    pubsub = ap.pubsub()
    await pubsub.aclose()


async def test_cluster_multi_slot_commands_match_the_cluster_client(
    redis_cluster_client: RedisCluster,
) -> None:
    """delete/exists split by slot, mget_nonatomic; a CROSSSLOT command fails only its caller."""
    client = redis_cluster_client
    keys = [f"ap:slots:{i}" for i in range(12)]
    async with AutoPipeline(client) as ap:
        assert await ap.mset_nonatomic({k: k for k in keys}) == await client.mset_nonatomic(
            {f"{k}:p": k for k in keys}
        )
        assert await ap.mget_nonatomic(keys) == [k.encode() for k in keys]
        assert await ap.exists(*keys) == 12
        outcomes = await asyncio.gather(
            _outcome(ap.execute_command("MGET", keys[0], keys[1])),
            _outcome(client.execute_command("MGET", keys[0], keys[1])),
            _outcome(ap.get(keys[2])),
            _outcome(ap.incr(keys[3])),
        )
        assert outcomes[0][0] == "error"
        assert outcomes[0] == outcomes[1]
        assert outcomes[2] == ("ok", keys[2].encode())
        assert outcomes[3][:2] == ("error", "ResponseError")
        assert ap.stats.fallbacks == 1
        assert await ap.delete(*keys) == 12
        # KEYS is routed by the cluster client's own node flag, unbatched, as it would be plain
        direct = ap.stats.direct
        assert sorted(await ap.keys("ap:slots:*")) == sorted(await client.keys("ap:slots:*"))
        assert ap.stats.direct == direct + 1


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
async def test_a_dropped_connection_fails_only_the_batch_in_flight(
    request: pytest.FixtureRequest, topology: str
) -> None:
    """Kill the connection a parked batch is on: its callers get ConnectionError, no one else."""
    endpoint = request.getfixturevalue(
        "redis_cluster_server" if topology == "cluster" else "redis_server"
    )
    client = _no_retry_client(endpoint, topology)  # with retries the batch would be re-sent
    control = _no_retry_client(endpoint, topology)
    try:
        async with AutoPipeline(client) as ap:
            await ap.set("ap:{x}:a", 5)
            await _on_every_node(control, "CLIENT PAUSE", 10_000, "WRITE")
            try:
                doomed = [asyncio.create_task(ap.incr(f"ap:{{x}}:c{i}")) for i in range(5)]
                [(node, victim)] = await _wait_postponed(control)
                # a later batch goes out on another connection while that one is parked
                assert await ap.get("ap:{x}:a") == b"5"
                await control.execute_command("CLIENT KILL", "ID", victim, **node)
            finally:
                await _on_every_node(control, "CLIENT UNPAUSE")
            outcomes = await asyncio.gather(*doomed, return_exceptions=True)
            assert all(isinstance(o, ConnectionError) for o in outcomes), outcomes
            assert len({id(o) for o in outcomes}) == 5  # each caller has its own exception
            if topology == "standalone":  # (a cluster pipeline stores the error per command)
                assert ap.stats.failed_batches == 1
            # the next batch reconnects; the parked INCRs were never applied
            assert await asyncio.gather(ap.incr("ap:{x}:c0"), ap.get("ap:{x}:a")) == [1, b"5"]
    finally:
        await client.aclose()
        await control.aclose()


async def test_a_server_restart_fails_the_batch_in_flight_then_reconnects(
    redis_server: Endpoint,
) -> None:
    server = redis_server.server
    if server is None:
        pytest.skip("REDIS_URL points at an external server this test cannot restart")
    client = Redis.from_url(redis_server.url, retry=Retry(NoBackoff(), 0))
    control = Redis.from_url(redis_server.url)
    try:
        async with AutoPipeline(client) as ap:
            await ap.set("ap:{r}:a", 1)
            await control.execute_command("CLIENT PAUSE", 10_000, "WRITE")
            doomed = [asyncio.create_task(ap.incr(f"ap:{{r}}:{i}")) for i in range(5)]
            await _wait_postponed(control)
            await asyncio.to_thread(server.kill)
            outcomes = await asyncio.gather(*doomed, return_exceptions=True)
            assert all(isinstance(o, ConnectionError) for o in outcomes), outcomes
            await asyncio.to_thread(server.restart)
            assert await asyncio.gather(ap.incr("ap:{r}:0"), ap.get("ap:{r}:a")) == [1, None]
    finally:
        if server.process is None:
            await asyncio.to_thread(server.restart)
        await client.aclose()
        await control.aclose()


async def test_cluster_batches_survive_killed_idle_connections(
    redis_cluster_client: RedisCluster, redis_cluster_server: Endpoint
) -> None:
    """With the client's default retries, stale pooled connections cost nothing, as unbatched.

    The cluster pipeline alone would give each command of the next batch a ConnectionError
    where ``RedisCluster.execute_command`` retries; the wrapper retries them the same way.
    """
    control = RedisCluster.from_url(redis_cluster_server.url)
    keys = [f"ap:idle:{i}" for i in range(30)]
    try:
        async with AutoPipeline(redis_cluster_client) as ap:
            await asyncio.gather(*(ap.set(k, k) for k in keys))
            await _on_every_node(control, "CLIENT KILL", "TYPE", "normal", "SKIPME", "yes")
            assert await asyncio.gather(*(ap.get(k) for k in keys)) == [k.encode() for k in keys]
    finally:
        await control.aclose()


# -- lifetime and arguments ----------------------------------------------------------------------


async def test_aclose_waits_for_batches_and_keeps_the_users_client(redis_client: Any) -> None:
    ap = AutoPipeline(redis_client)
    pending = [asyncio.create_task(ap.incr("ap:{l}:n")) for _ in range(20)]
    await asyncio.sleep(0)
    await ap.aclose()
    assert sorted(await asyncio.gather(*pending)) == list(range(1, 21))
    assert ap.closed
    with pytest.raises(RuntimeError, match="closed"):
        await ap.get("ap:{l}:n")
    assert await redis_client.get("ap:{l}:n") == b"20"  # the wrapped client still works


async def test_close_client_closes_the_wrapped_client(redis_server: Endpoint) -> None:
    name = f"ap-close-{uuid.uuid4().hex[:6]}"
    control = Redis.from_url(redis_server.url)
    client = Redis.from_url(redis_server.url, client_name=name)

    async def connected() -> int:
        return sum(entry["name"] == name for entry in await control.client_list())

    try:
        async with AutoPipeline(client, close_client=True) as ap:
            await asyncio.gather(*(ap.get(f"ap:{{cc}}:{i}") for i in range(5)))
            assert await connected() >= 1

        async def gone() -> bool:
            return not await connected()

        assert await _until(gone)
    finally:
        await client.aclose()
        await control.aclose()


async def test_arguments_are_checked() -> None:
    client = Redis()
    with pytest.raises(TypeError, match="client"):
        AutoPipeline(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="client"):
        AutoPipeline(client.pipeline())
    with pytest.raises(TypeError, match="max_batch"):
        AutoPipeline(client, max_batch=True)
    with pytest.raises(ValueError, match="max_batch"):
        AutoPipeline(client, max_batch=0)
    ap = AutoPipeline(client, max_batch=None)
    assert type(ap) is AutoPipeline
    assert ap.client is client
    cluster = RedisCluster(host="127.0.0.1", port=1)  # never connects: nothing is sent
    assert isinstance(AutoPipeline(cluster), AutoPipeline)
    await client.aclose()
    await cluster.aclose()
