"""Measure ``update_token``: a round trip per command, pipelined, and ours (table ``pipeline``).

Redis in Action §4.5 (inventory §2a) times ch04 ``update_token`` (five sequential commands)
against ``update_token_pipeline`` (the same five in one ``pipeline(False)``) with one client
calling in a loop with the same token, user and item, over a Unix socket and TCP localhost.
Rows:

- ``book-plain`` / ``book-pipeline``: the book's code as the book ran it, the reference of the
  ratios: the sync ports in :mod:`benchmarks.baselines.sync.ch04_sessions`, one OS process per
  client;
- ``book-plain-async`` / ``book-pipeline-async``: the same listings ported to ``redis.asyncio``
  (:mod:`benchmarks.baselines.ch04_sessions`), clients as coroutines;
- ``aiorpatterns``: :class:`aiorpatterns.webapp.sessions.Sessions` (one Lua script, one round trip);
- ``aiorpatterns-autopipeline``: the same through one ``AutoPipeline`` shared by 100 client
  coroutines per run (so many calls share each round trip);
- ``limit``: 100 calls per non-transactional pipeline on one connection, each call in its
  cheapest form (one EVALSHA of our script): the most calls this client and server can do;
- ``limit-commands``: the same with the book's five commands per call, 500 per pipeline.

Both limit rows run with one client: one connection that never waits is already the ceiling of
one client process.

Every client but the autopipelined ones has its own connection. ``ops`` = calls, ``tries`` =
calls, the book's rate is its calls/s (1 client). Ratios are to ``book-pipeline`` (sync, processes)
at the same client count (autopipeline: to 1 client), as the book's own table compares the two.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .baselines import ch04_sessions
from .baselines.sync import ch04_sessions as sync_ch04_sessions
from .runner import (
    BENCH_PREFIX,
    ClientPerCoroutine,
    ClientStats,
    Job,
    Op,
    SyncClientPerProcess,
    SyncOp,
    Table,
    Variant,
    connect,
)

__all__ = ["TABLE"]

TOKEN, USER, ITEM = "token", "user", "item"
#: Calls per pipeline in the ``limit`` row.
BATCH = 100
#: Client coroutines sharing one AutoPipeline.
AUTOPIPELINE_CLIENTS = 100


def _book_plain(job: Job) -> ClientPerCoroutine:
    def make(client: Any, st: ClientStats, _: int) -> Op:
        async def op(deadline: float) -> None:
            t = time.perf_counter()
            st.tries += 1
            await ch04_sessions.update_token(client, TOKEN, USER, ITEM, key_prefix=BENCH_PREFIX)
            st.success(t)

        return op

    return ClientPerCoroutine(job, make)


def _book_pipeline(job: Job) -> ClientPerCoroutine:
    def make(client: Any, st: ClientStats, _: int) -> Op:
        async def op(deadline: float) -> None:
            t = time.perf_counter()
            st.tries += 1
            await ch04_sessions.update_token_pipeline(
                client, TOKEN, USER, ITEM, key_prefix=BENCH_PREFIX
            )
            st.success(t)

        return op

    return ClientPerCoroutine(job, make)


def _book_sync(function: Any) -> Any:
    def factory(job: Job) -> SyncClientPerProcess:
        def make(client: Any, st: ClientStats, _: int) -> SyncOp:
            def op(deadline: float) -> None:
                t = time.perf_counter()
                st.tries += 1
                function(client, TOKEN, USER, ITEM, key_prefix=BENCH_PREFIX)
                st.success(t)

            return op

        return SyncClientPerProcess(job, make)

    return factory


def _sessions(client: Any) -> Any:
    from aiorpatterns.core.keys import Keyspace
    from aiorpatterns.webapp.sessions import Sessions

    return Sessions(client, "bench", keyspace=Keyspace(BENCH_PREFIX.rstrip(":")))


def _session_op(sessions: Any, st: ClientStats) -> Op:
    async def op(deadline: float) -> None:
        t = time.perf_counter()
        st.tries += 1
        await sessions.update_token(TOKEN, USER, ITEM)
        st.success(t)

    return op


def _ours(job: Job) -> ClientPerCoroutine:
    return ClientPerCoroutine(job, lambda client, st, _: _session_op(_sessions(client), st))


class _AutoPipelined:
    """All of a process' clients share one connection through one AutoPipeline."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.client: Any = None
        self.auto: Any = None

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        from aiorpatterns.core.autopipeline import AutoPipeline

        self.client = await connect(self.job.target)
        self.auto = AutoPipeline(self.client)
        sessions = _sessions(self.auto)
        return [_session_op(sessions, st) for st in stats]

    async def close(self) -> None:
        if self.auto is not None:
            await self.auto.aclose()
        if self.client is not None:
            await self.client.aclose()


def _limit(job: Job) -> ClientPerCoroutine:
    from aiorpatterns.core.scripts import script

    session_update = script("session_update")

    def make(client: Any, st: ClientStats, _: int) -> Op:
        sessions = _sessions(client)
        keys = [sessions.login_key, sessions.recent_key, sessions.viewed_key]
        keys.append(sessions.history_key(TOKEN))
        args = (TOKEN, USER, sessions.history, ITEM)

        async def op(deadline: float) -> None:
            pipe = client.pipeline(transaction=False)
            for _ in range(BATCH):
                session_update.queue(pipe, keys, args)
            await pipe.execute()
            st.tries += BATCH
            st.ops += BATCH

        return op

    return ClientPerCoroutine(job, make)


def _limit_commands(job: Job) -> ClientPerCoroutine:
    login, recent = BENCH_PREFIX + "login:", BENCH_PREFIX + "recent:"
    viewed, history = BENCH_PREFIX + "viewed:", BENCH_PREFIX + "viewed:" + TOKEN

    def make(client: Any, st: ClientStats, _: int) -> Op:
        async def op(deadline: float) -> None:
            now = time.time()
            pipe = client.pipeline(transaction=False)
            for _ in range(BATCH):
                pipe.hset(login, TOKEN, USER)
                pipe.zadd(recent, {TOKEN: now})
                pipe.zadd(history, {ITEM: now})
                pipe.zremrangebyrank(history, 0, -26)
                pipe.zincrby(viewed, -1, ITEM)
            await pipe.execute()
            st.tries += BATCH
            st.ops += BATCH

        return op

    return ClientPerCoroutine(job, make)


async def _prepare(client: Any) -> None:
    from aiorpatterns.core.scripts import script

    await script("session_update").load(client)


_BOOK_PLAIN = {("unix", 1): 3761.0, ("tcp", 1): 3257.0}
_BOOK_PIPELINE = {("unix", 1): 6394.0, ("tcp", 1): 5991.0}

TABLE = Table(
    name="pipeline",
    title="update_token: one round trip per command vs pipelined (Redis in Action §4.5)",
    unit="calls",
    variants=(
        Variant(
            "book-plain",
            _book_sync(sync_ch04_sessions.update_token),
            book=_BOOK_PLAIN,
            runs="sync",
        ),
        Variant(
            "book-pipeline",
            _book_sync(sync_ch04_sessions.update_token_pipeline),
            book=_BOOK_PIPELINE,
            runs="sync",
        ),
        Variant("book-plain-async", _book_plain),
        Variant("book-pipeline-async", _book_pipeline),
        Variant("aiorpatterns", _ours, requires="aiorpatterns.webapp.sessions:Sessions"),
        Variant(
            "aiorpatterns-autopipeline",
            _AutoPipelined,
            clients=(AUTOPIPELINE_CLIENTS,),
            requires="aiorpatterns.core.autopipeline:AutoPipeline",
        ),
        Variant("limit", _limit, clients=(1,), requires="aiorpatterns.webapp.sessions:Sessions"),
        Variant("limit-commands", _limit_commands, clients=(1,)),
    ),
    references=("book-pipeline",),
    transports=("tcp", "unix"),
    label_transport=True,
    prepare=_prepare,
    notes=(
        "book = the book's calls/s (Redis 2.6, Python 2, one client); "
        f"limit = {BATCH} calls per pipeline as one EVALSHA each; "
        "limit-commands = the same as the book's 5 commands each."
    ),
)
