"""The ``walrus`` row of the ``autocomplete`` table: ``walrus.Autocomplete``, sync.

walrus is sync only (its author refuses asyncio), so the row runs as the book's own code did:
one OS process per client, each with its own ``walrus.Database`` (a ``redis.Redis``) and an
``Autocomplete`` over the same index. walrus indexes differently from the book: ``store`` writes
one ZSET per prefix of every word (``<namespace>:s:<prefix>``) plus two hashes of titles and
data, so a search reads instead of writing: ``search(prefix, limit=10)`` is an HSCAN of its
boosts hash, a ZRANGE of that prefix's ZSET (up to ``chunk_size`` 1,000 ids, its default) and
an HMGET of their data, then it keeps the first 10; three round trips per call.

A call, a try and an autocomplete are counted as the table's other rows count theirs: a try is
a call that ended before the deadline, an autocomplete one that returned a non-empty page. Each
client walks the table's prefixes from its own offset (``index * 997``, as the other rows).

The index holds the table's guild names under ``bench:walrus`` (walrus' ``namespace``).
:func:`seed` writes exactly what ``Autocomplete.store(name)`` writes on an empty index, computed
with walrus' own tokenizer and scoring, in pipelines rather than 10,000 sequential commands; a
test checks it against ``store`` itself. A table calls it from its ``around_row`` so the seeding
is not in the row's writes; a workload that finds no index seeds it on open. walrus drops
stopwords when it indexes (a guild name that is an English stopword is not found), as its users
get it.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..runner import BENCH_PREFIX, ClientStats, Job, SyncClientPerProcess, SyncOp, Target

__all__ = ["NAMESPACE", "seed", "walrus_autocomplete"]

#: walrus' ``namespace``: every key of the index starts with it.
NAMESPACE = BENCH_PREFIX + "walrus"
#: The data hash walrus keeps (``<namespace>:d``): present once the index is seeded.
DATA_KEY = NAMESPACE + ":d"


def _autocomplete(database: Any) -> Any:
    from walrus import Autocomplete  # type: ignore[import-untyped]

    return Autocomplete(database, namespace=NAMESPACE)


def writes(names: Sequence[str]) -> list[tuple[str, str, str, str | float]]:
    """``(command, key, member, value)`` that ``Autocomplete.store(name)`` runs per name.

    On an empty index ``store(obj_id)`` sets the data (JSON of the title) and the title in two
    hashes, then ZADDs the object's id to the ZSET of every prefix of every word of the title
    (walrus 0.9.8's ``store``); the tokenizer, stopwords and scores are walrus' own.
    """
    from walrus import Database

    ac = _autocomplete(Database())  # never connects: only the pure helpers are used
    out: list[tuple[str, str, str, str | float]] = []
    for name in names:
        combined = ac.object_key(name, "")
        out.append(("hset", ac._data.key, combined, json.dumps(name)))
        out.append(("hset", ac._title_data.key, combined, name))
        words = ac.tokenize_title(name)
        title_score = ac.score_token(" ".join(words))
        for idx, word in enumerate(words):
            score = ac.score_token(word) + ac._offset * idx + title_score
            for prefix in ac.substrings(word):
                out.append(("zadd", ac.word_key(prefix), combined, score))
    return out


def _apply(pipe: Any, names: Sequence[str]) -> None:
    for command, key, member, value in writes(names):
        if command == "hset":
            pipe.hset(key, member, value)
        else:
            pipe.zadd(key, {member: value})


async def seed(conn: Any, names: Sequence[str]) -> None:
    """Write walrus' index of ``names``, if walrus is installed (its row skips otherwise).

    Standalone only: on a cluster it writes nothing (walrus has no cluster client, so its row
    does not run there).
    """
    from redis.asyncio.cluster import RedisCluster

    if isinstance(conn, RedisCluster) or importlib.util.find_spec("walrus") is None:
        return
    pipe = conn.pipeline(transaction=False)
    _apply(pipe, names)
    await pipe.execute()


def seed_sync(database: Any, names: Sequence[str]) -> None:
    """:func:`seed` with a sync client."""
    pipe = database.pipeline(transaction=False)
    _apply(pipe, names)
    pipe.execute()


def _walk(prefixes: Sequence[str], index: int) -> Iterator[str]:
    start = index * 997
    i = 0
    while True:
        yield prefixes[(start + i) % len(prefixes)]
        i += 1


class WalrusAutocomplete(SyncClientPerProcess):
    """One process' clients of the row: a ``walrus.Database`` and an ``Autocomplete`` each."""

    def __init__(self, job: Job, names: Sequence[str], prefixes: Sequence[str], page: int) -> None:
        super().__init__(job, self._make)
        self.names = names
        self.prefixes = prefixes
        self.page = page

    def open(self, stats: Sequence[ClientStats]) -> list[SyncOp]:
        from walrus import Database

        if self.job.target.topology == "cluster":
            raise RuntimeError("walrus' Database is a redis.Redis: it has no cluster client")
        ops = []
        for i, st in enumerate(stats):
            database = _database(Database, self.job.target)
            self.clients.append(database)
            if i == 0 and not database.exists(DATA_KEY):
                seed_sync(database, self.names)
            ops.append(self._make(database, st, i))
        return ops

    def _make(self, database: Any, st: ClientStats, index: int) -> SyncOp:
        ac = _autocomplete(database)
        prefixes = _walk(self.prefixes, index)
        page_size = self.page

        def op(deadline: float) -> None:
            if time.perf_counter() >= deadline:
                return
            prefix = next(prefixes)
            t = time.perf_counter()
            page = list(ac.search(prefix, limit=page_size))
            if time.perf_counter() < deadline:
                st.tries += 1
                if page:
                    st.success(t)

        return op


def _database(kind: type[Any], target: Target) -> Any:
    database = kind.from_url(target.url)
    database.ping()
    return database


def walrus_autocomplete(
    names: Sequence[str], prefixes: Sequence[str], page: int
) -> Callable[[Job], WalrusAutocomplete]:
    """The row's workload factory: an index of ``names``, searched for ``prefixes``."""

    def factory(job: Job) -> WalrusAutocomplete:
        return WalrusAutocomplete(job, names, prefixes, page)

    return factory
