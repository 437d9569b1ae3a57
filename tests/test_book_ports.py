"""Count the commands one call of each port of the book's code sends, sync and asyncio alike.

The ``book-*`` rows of the benchmark tables are only as honest as their ports (Redis in Action
§4.4-§4.5, §6.1-§6.3, §11.2-§11.3; inventory §2). Each case runs one call between
``CONFIG RESETSTAT`` and ``INFO commandstats`` on a real server and compares the commands the
server ran with the book's listing, for the sync port (:mod:`benchmarks.baselines.sync`) and its
asyncio twin (:mod:`benchmarks.baselines`). A Lua call counts as its EVALSHA plus the commands
its script runs. Where the book retries, the retry is provoked: a lock held by someone else
costs one attempt's commands per try and one 1 ms sleep after each failed try; a write from
outside between WATCH and EXEC costs one aborted pass (its queued commands never run) and an
immediate second pass. A port that sends one command more or less, or sleeps otherwise, fails.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from aiorpatterns.testing.pytest_plugin import Endpoint
from benchmarks.baselines import (
    ch04_market,
    ch04_sessions,
    ch06_autocomplete,
    ch06_locks,
    ch06_market,
    ch06_queues,
    ch06_semaphores,
    ch11_autocomplete,
    ch11_locks,
    ch11_market,
)

P = "bench:"
#: Commands a client sends on its own (connection set-up) or the test sends around the call.
NOT_THE_PORTS = {"hello", "client|setinfo", "config|resetstat", "info"}
#: Each port: (sync module, asyncio module). ``acquire_lock`` (§6.2.3) lives in the asyncio
#: ch06_locks module and in its own sync module.
PORTS = {
    name: (importlib.import_module(f"benchmarks.baselines.sync.{name}"), module)
    for name, module in {
        "ch04_sessions": ch04_sessions,
        "ch04_market": ch04_market,
        "ch06_autocomplete": ch06_autocomplete,
        "ch06_locks": ch06_locks,
        "ch06_market": ch06_market,
        "ch06_queues": ch06_queues,
        "ch06_semaphores": ch06_semaphores,
        "ch11_autocomplete": ch11_autocomplete,
        "ch11_locks": ch11_locks,
        "ch11_market": ch11_market,
    }.items()
}
PORTS["acquire_lock"] = (
    importlib.import_module("benchmarks.baselines.sync.ch06_acquire_lock"),
    ch06_locks,
)
SCRIPTS = (
    ch11_locks.ACQUIRE_LUA,
    ch11_locks.RELEASE_LUA,
    ch11_autocomplete.AUTOCOMPLETE_LUA,
    ch11_market.LIST_LUA,
    ch11_market.PURCHASE_LUA,
)
MS = 0.001

Call = Callable[[Any, Any, Callable[[], None]], Awaitable[Any]]


async def _v(value: Any) -> Any:
    """The value of a port's call, sync or asyncio."""
    return await value if inspect.isawaitable(value) else value


@dataclass(frozen=True)
class Case:
    """One call of a port, and what the server must see."""

    id: str
    port: str
    call: Call
    #: The commands of the call, in the book's order (order is not checked, counts are).
    commands: str
    ok: bool
    #: Passes the port's ``on_try`` hook counts (0: the call passes none; None: one per failed
    #: try of a retrying case).
    tries: int | None = 0
    #: Seconds of each sleep, in order.
    sleeps: tuple[float, ...] = ()
    #: A retrying case: ``commands`` once, plus these for each failed try, each followed by a
    #: 1 ms sleep; the timeout leaves room for at least ``least`` tries.
    per_try: str = ""
    least: int = 2
    setup: Callable[[redis.Redis], object] = lambda admin: None
    #: Let an outside write in, once, right after the call's first pipeline ``meddle[0]``:
    #: ``meddle[1]`` does the write (so a WATCH fails once).
    meddle: tuple[str, Callable[[redis.Redis], object]] | None = None


# -- calls (each works on a sync or an asyncio module: _v awaits what must be awaited) ------------


async def _lock_and_release(m: Any, c: Any, on_try: Callable[[], None]) -> Any:
    ident = await _v(m.acquire_lock_with_timeout(c, "x", key_prefix=P, on_try=on_try))
    return await _v(m.release_lock(c, "x", ident, key_prefix=P))


async def _lock_held(m: Any, c: Any, on_try: Callable[[], None]) -> Any:
    return await _v(m.acquire_lock_with_timeout(c, "x", 0.05, key_prefix=P, on_try=on_try))


async def _complete(m: Any, c: Any, on_try: Callable[[], None]) -> Any:
    return await _v(m.autocomplete_on_prefix(c, "g", "al", key_prefix=P, on_try=on_try))


async def _sem(m: Any, c: Any, acquire: str, release: str | None, limit: int, **kw: Any) -> Any:
    ident = await _v(getattr(m, acquire)(c, P + "sem", limit, **kw))
    if release is None or not ident:
        return ident
    return await _v(getattr(m, release)(c, P + "sem", ident))


def _guild(admin: redis.Redis) -> None:
    admin.zadd(P + "members:g", {"alpha": 0, "alpine": 0, "beta": 0})


def _seller(admin: redis.Redis) -> None:
    admin.sadd(P + "inventory:s", "i")


def _listed(admin: redis.Redis) -> None:
    admin.zadd(P + "market:", {"i.s": 10})
    admin.hset(P + "users:b", "funds", 100)


def _held(lockname: str, ttl: int | None = 60) -> Callable[[redis.Redis], object]:
    return lambda admin: admin.set(P + "lock:" + lockname, "someone else", ex=ttl)


#: ch06 acquire_fair_semaphore; its ``incr`` is INCRBY on the wire (redis-py's, then and now).
FAIR = "multi zremrangebyscore zinterstore incrby exec multi zadd zadd zrank exec"
RELEASE = "watch get multi del exec"  # ch06 release_lock, the lock still ours


async def _queue_one(m: Any, c: Any, _: Callable[[], None]) -> Any:
    await _v(m.execute_later(c, "q", "f", [1], key_prefix=P))
    return await _v(m.work_one(c, P + "queue:q", {"f": lambda *args: None}))


CASES = [
    Case("queue-execute-and-work", "ch06_queues", _queue_one, "rpush blpop", ok=True),
    Case(
        "update_token",
        "ch04_sessions",
        lambda m, c, _: _v(m.update_token(c, "t", "u", "i", key_prefix=P)),
        "hset zadd zadd zremrangebyrank zincrby",
        ok=False,
    ),
    Case(
        "update_token_pipeline",
        "ch04_sessions",
        lambda m, c, _: _v(m.update_token_pipeline(c, "t", "u", "i", key_prefix=P)),
        "hset zadd zadd zremrangebyrank zincrby",
        ok=False,
    ),
    Case("lock-original", "ch06_locks", _lock_and_release, "setnx expire " + RELEASE, True, 1),
    Case(
        "lock-original-held",
        "ch06_locks",
        _lock_held,
        "",
        ok=False,
        tries=None,
        per_try="setnx ttl",
        setup=_held("x"),
    ),
    Case(
        "lock-original-held-no-ttl",  # the first failed try gives the lock a TTL (errata fix)
        "ch06_locks",
        _lock_held,
        "expire",
        ok=False,
        tries=None,
        per_try="setnx ttl",
        setup=_held("x", ttl=None),
    ),
    Case(
        "lock-lua",
        "ch11_locks",
        _lock_and_release,
        "evalsha exists setex evalsha get del",
        ok=True,
        tries=1,
        sleeps=(0.0,),  # time.sleep(.001 * (not acquired))
    ),
    Case(
        "lock-lua-held",
        "ch11_locks",
        _lock_held,
        "",
        ok=False,
        tries=None,
        per_try="evalsha exists",
        setup=_held("x"),
    ),
    Case(
        "acquire_lock",
        "acquire_lock",
        lambda m, c, on_try: _v(m.acquire_lock(c, "x", key_prefix=P, on_try=on_try)),
        "setnx",
        ok=True,
        tries=1,
    ),
    Case(
        "acquire_lock-held",
        "acquire_lock",
        lambda m, c, on_try: _v(m.acquire_lock(c, "x", 0.05, key_prefix=P, on_try=on_try)),
        "",
        ok=False,
        tries=None,
        per_try="setnx",
        setup=_held("x", ttl=None),
    ),
    Case(
        "autocomplete-watch",
        "ch06_autocomplete",
        _complete,
        "zadd watch zrank zrank multi zrem zrange exec",
        ok=True,
        tries=1,
        setup=_guild,
    ),
    Case(
        "autocomplete-watch-retried",
        "ch06_autocomplete",
        _complete,
        "zadd watch zrank zrank multi exec"  # aborted: the queued ZREM and ZRANGE never run
        " zadd"  # the outside write
        " watch zrank zrank multi zrem zrange exec",
        ok=True,
        tries=2,
        setup=_guild,
        meddle=("zrank", lambda admin: admin.zadd(P + "members:g", {"gamma": 0})),
    ),
    Case(
        "autocomplete-lua",
        "ch11_autocomplete",
        _complete,
        "evalsha zadd zrank zrank zrem zrange",
        ok=True,
        tries=1,
        setup=_guild,
    ),
    Case(
        "list_item-watch",
        "ch04_market",
        lambda m, c, _: _v(m.list_item(c, "i", "s", 10, key_prefix=P)),
        "watch sismember multi zadd srem exec",
        ok=True,
        setup=_seller,
    ),
    Case(
        "purchase_item-watch",
        "ch04_market",
        lambda m, c, on_try: _v(m.purchase_item(c, "b", "i", "s", 10, key_prefix=P, on_try=on_try)),
        "watch zscore hget multi hincrby hincrby sadd zrem exec",
        ok=True,
        tries=1,
        setup=_listed,
    ),
    Case(
        "purchase_item-watch-retried",
        "ch04_market",
        lambda m, c, on_try: _v(m.purchase_item(c, "b", "i", "s", 10, key_prefix=P, on_try=on_try)),
        "watch zscore hget multi exec"  # aborted
        " zadd"  # the outside write: another listing
        " watch zscore hget multi hincrby hincrby sadd zrem exec",
        ok=True,
        tries=2,
        setup=_listed,
        meddle=("zscore", lambda admin: admin.zadd(P + "market:", {"j.t": 5})),
    ),
    Case(
        "list_item-lock",
        "ch06_market",
        lambda m, c, _: _v(m.list_item_with_lock(c, "i", "s", 10, key_prefix=P)),
        "setnx sismember multi zadd srem exec " + RELEASE,
        ok=True,
        setup=_seller,
    ),
    Case(
        "purchase_item-lock",
        "ch06_market",
        lambda m, c, _: _v(m.purchase_item_with_lock(c, "b", "i", "s", key_prefix=P)),
        "setnx multi zscore hget exec multi hincrby hincrby sadd zrem exec " + RELEASE,
        ok=True,
        setup=_listed,
    ),
    Case(
        "list_item-lua",
        "ch11_market",
        lambda m, c, _: _v(m.list_item(c, "i", "s", 10, key_prefix=P)),
        "evalsha sismember zadd srem",
        ok=True,
        setup=_seller,
    ),
    Case(
        "purchase_item-lua",
        "ch11_market",
        lambda m, c, _: _v(m.purchase_item(c, "b", "i", "s", key_prefix=P)),
        "evalsha zscore hget hincrby hincrby sadd zrem",
        ok=True,
        setup=_listed,
    ),
    Case(
        "semaphore",
        "ch06_semaphores",
        lambda m, c, _: _sem(m, c, "acquire_semaphore", "release_semaphore", 5),
        "multi zremrangebyscore zadd zrank exec zrem",
        ok=True,
    ),
    Case(
        "semaphore-full",  # the loser removes itself in a round trip of its own
        "ch06_semaphores",
        lambda m, c, _: _sem(m, c, "acquire_semaphore", None, 0),
        "multi zremrangebyscore zadd zrank exec zrem",
        ok=False,
    ),
    Case(
        "fair-semaphore",
        "ch06_semaphores",
        lambda m, c, _: _sem(m, c, "acquire_fair_semaphore", "release_fair_semaphore", 5),
        FAIR + " multi zrem zrem exec",
        ok=True,
    ),
    Case(
        "fair-semaphore-full",
        "ch06_semaphores",
        lambda m, c, _: _sem(m, c, "acquire_fair_semaphore", None, 0),
        FAIR + " multi zrem zrem exec",
        ok=False,
    ),
    Case(
        "fair-semaphore-lock",
        "ch06_semaphores",
        lambda m, c, _: _sem(m, c, "acquire_semaphore_with_lock", None, 5, key_prefix=P),
        "setnx " + FAIR + " " + RELEASE,
        ok=True,
    ),
    Case(
        "fair-semaphore-lock-held",  # 10 ms to get the lock (the book's), then None
        "ch06_semaphores",
        lambda m, c, _: _sem(m, c, "acquire_semaphore_with_lock", None, 5, key_prefix=P),
        "",
        ok=False,
        per_try="setnx",
        least=1,
        setup=_held("bench:sem", ttl=None),
    ),
]


class _Clock:
    """``time`` for the port modules, noting each sleep (and still sleeping)."""

    def __init__(self, sleeps: list[float]) -> None:
        self.sleeps = sleeps

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)


class _Loop:
    """``asyncio`` for the asyncio port modules, noting each sleep (and still sleeping)."""

    def __init__(self, sleeps: list[float]) -> None:
        self.sleeps = sleeps

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(seconds)


class _Meddler:
    """A client whose pipelines let an outside write in once, right after a call of ``method``."""

    def __init__(self, client: Any, method: str, write: Callable[[], object]) -> None:
        self._client, self._method, self._write = client, method, write
        self.done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        return _MeddledPipeline(self._client.pipeline(*args, **kwargs), self)


class _MeddledPipeline:
    def __init__(self, pipe: Any, owner: _Meddler) -> None:
        self._pipe, self._owner = pipe, owner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._pipe, name)
        if name != self._owner._method or self._owner.done:
            return attr

        def meddled(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)  # asyncio: not sent yet, but WATCH was
            self._owner.done = True
            self._owner._write()
            return result

        return meddled

    async def __aenter__(self) -> _MeddledPipeline:
        await self._pipe.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._pipe.__aexit__(*exc)


@pytest.fixture
def admin(redis_server: Endpoint) -> Iterator[redis.Redis]:
    """A sync client on the session's standalone server, emptied, with the book's scripts."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    for text in SCRIPTS:
        client.script_load(text)
    yield client
    client.close()


def _commands(admin: redis.Redis) -> Counter[str]:
    stats = admin.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}
    return Counter({name: n for name, n in calls.items() if name not in NOT_THE_PORTS})


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_one_call_sends_the_books_commands(
    case: Case,
    mode: str,
    admin: redis.Redis,
    redis_server: Endpoint,
    redis_standalone_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sync_module, async_module = PORTS[case.port]
    module = sync_module if mode == "sync" else async_module
    conn: Any = redis_standalone_client
    if mode == "sync":
        conn = redis.Redis.from_url(redis_server.url)
    sleeps: list[float] = []
    for ported in {m for pair in PORTS.values() for m in pair}:
        if hasattr(ported, "time"):
            monkeypatch.setattr(ported, "time", _Clock(sleeps))
        if hasattr(ported, "asyncio"):
            monkeypatch.setattr(ported, "asyncio", _Loop(sleeps))
    case.setup(admin)
    if case.meddle is not None:
        method, write = case.meddle
        conn = _Meddler(conn, method, lambda: write(admin))
    tries: list[None] = []
    admin.config_resetstat()
    try:
        result = await case.call(module, conn, lambda: tries.append(None))
    finally:
        if mode == "sync":
            conn.close()
    sent = _commands(admin)

    assert bool(result) is case.ok, result
    expected = Counter(case.commands.split())
    if case.per_try:
        failed = len(sleeps)
        assert failed >= case.least, "the book retries until its timeout"
        assert sleeps == [MS] * failed, "one 1 ms sleep after each failed try"
        for _ in range(failed):
            expected.update(case.per_try.split())
        assert len(tries) == (failed if case.tries is None else case.tries)
    else:
        assert sleeps == list(case.sleeps)
        assert len(tries) == case.tries
    assert sent == expected
