"""Rotate one long LIST with LMOVE: the book's long-ziplist micro-benchmark (table ``ziplist``).

Redis in Action §9.1.2 (``long_ziplist_performance``, inventory §2e) RPUSHes ``length`` items
onto one LIST, then times RPOPLPUSH key→key in non-transactional pipelines of 100, with the
list kept as one ziplist however long, to show that a long ziplist gets slow (every push
rewrites it). Rows, one client each, ops = elements moved:

- ``lmove-<length>`` for lengths 1, 100, 1,000, 5,000, 10,000, 50,000 and 100,000:
  ``LMOVE key key RIGHT LEFT`` (RPOPLPUSH's modern form, Redis 6.2) in pipelines of
  :data:`PIPELINE`;
- ``book-rpoplpush-100000``: the book's own command, ``RPOPLPUSH``, at the length where its
  numbers collapsed (it is the same operation as ``LMOVE ... RIGHT LEFT``);
- ``lindex-<length>`` for lengths 1,000, 10,000 and 100,000: the book's
  ``long_ziplist_index``, ``LINDEX key <length/2>`` (the middle item) in the same pipelines:
  reading the middle of a long list;
- ``intset-sadd``: the book's ``long_intset_performance``, ``SADD`` of 1,000 new integers per
  call to one SET (ops = members added), the set emptied every 1,000 calls (the book's 1,000
  passes): it starts as an intset and turns into a hashtable past ``set-max-intset-entries``;
- ``limit``: ``LLEN`` of the 1-item list in the same pipelines, list commands that move
  nothing: the ceiling of one client's pipelines of :data:`PIPELINE` here.

The list is filled before the timer starts (not counted). Every reply is checked (an empty
list would make LMOVE answer nil and fail the row). After each row the table records the list's
``OBJECT ENCODING`` (JSON ``encoding``), a ``listpack`` column (1 when that encoding is
``listpack``), its ``length`` and its ``memory_bytes`` (``MEMORY USAGE ... SAMPLES 0``).

At the server's default ``list-max-listpack-size`` (-2: 8 KB nodes) a long LIST is a quicklist
of small listpacks, so every row should run at about the rate of ``lmove-1``, where the book's
single ziplist fell to 553 ops/s at 100,000; a node can no longer be made that large (a count
limit is capped at 8 KB a node). Latency is per pipeline. Ratios are to ``lmove-1``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .runner import BENCH_PREFIX, ClientStats, Job, Op, Table, Variant, connect

__all__ = ["BOOK", "LENGTHS", "PIPELINE", "TABLE", "list_key"]

#: The book's list lengths, and its RPOPLPUSH rates at each (ops/s, Redis 2.6, seed L141-156).
BOOK = {
    1: 52_093.6,
    100: 51_501.2,
    1_000: 49_732.5,
    5_000: 43_424.1,
    10_000: 36_727.1,
    50_000: 16_695.1,
    100_000: 553.1,
}
LENGTHS = tuple(BOOK)
#: Moves per pipeline: the book's ``psize`` in the runs it printed.
PIPELINE = 100
#: Items per RPUSH while filling a list.
_FILL = 10_000
#: The row the book's own command runs at.
_BOOK_LENGTH = 100_000
#: The lengths of the LINDEX rows (``long_ziplist_index``).
INDEX_LENGTHS = (1_000, 10_000, 100_000)
#: Integers per SADD, and calls before the set is emptied (``long_intset_performance``).
_INTSET_BATCH = 1_000
_INTSET_PASSES = 1_000


def list_key(length: int) -> str:
    """The LIST a row of ``length`` items rotates (one hash tag: one slot on a cluster)."""
    return f"{BENCH_PREFIX}ziplist:{{{length}}}"


class RotateWorkload:
    """One client: fill ``list_key(length)`` with ``length`` items, then rotate it."""

    def __init__(self, job: Job, length: int, command: str) -> None:
        self.job = job
        self.length = length
        self.command = command
        self.clients: list[Any] = []

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        key = list_key(self.length)
        client = await connect(self.job.target)
        self.clients.append(client)
        await client.delete(key)
        for start in range(0, self.length, _FILL):
            await client.rpush(key, *range(start, min(start + _FILL, self.length)))
        return [self._op(client, key, st) for st in stats]

    def _op(self, client: Any, key: str, st: ClientStats) -> Op:
        # execute_command: redis-py's cluster pipeline refuses its rpoplpush() method (two keys),
        # though both are one key here.
        command = {
            "lmove": ("LMOVE", key, key, "RIGHT", "LEFT"),
            "rpoplpush": ("RPOPLPUSH", key, key),
            "lindex": ("LINDEX", key, self.length // 2),
            "limit": ("LLEN", key),
        }[self.command]

        async def op(deadline: float) -> None:
            pipe = client.pipeline(transaction=False)
            for _ in range(PIPELINE):
                pipe.execute_command(*command)
            t = time.perf_counter()
            st.tries += PIPELINE
            replies = await pipe.execute()
            if any(reply is None or reply == 0 for reply in replies):
                raise RuntimeError(f"{key} was empty: nothing to move")
            st.ops += PIPELINE
            st.latencies.append(time.perf_counter() - t)

        return op

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self.clients.clear()


def _variant(length: int, command: str = "lmove") -> Variant:
    def workload(job: Job) -> RotateWorkload:
        return RotateWorkload(job, length, command)

    if command == "limit":
        return Variant("limit", workload, clients=(1,))
    if command == "lindex":
        return Variant(f"lindex-{length}", workload, clients=(1,))
    name = f"{'book-rpoplpush' if command == 'rpoplpush' else 'lmove'}-{length}"
    return Variant(name, workload, book={("*", 1): BOOK[length]}, clients=(1,))


class IntsetWorkload:
    """One client: SADD batches of new integers to one SET, emptied every 1,000 calls."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.clients: list[Any] = []

    async def open(self, stats: Sequence[ClientStats]) -> list[Op]:
        key = f"{BENCH_PREFIX}ziplist:{{intset}}"
        client = await connect(self.job.target)
        self.clients.append(client)
        await client.delete(key)
        calls = 0

        async def op(deadline: float) -> None:
            nonlocal calls
            first = (calls % _INTSET_PASSES) * _INTSET_BATCH
            if first == 0 and calls:
                await client.delete(key)  # the book's run ends here; the next one starts
            calls += 1
            t = time.perf_counter()
            added = await client.sadd(key, *range(first, first + _INTSET_BATCH))
            stats[0].tries += _INTSET_BATCH
            stats[0].ops += int(added)
            stats[0].latencies.append(time.perf_counter() - t)

        return [op]

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self.clients.clear()


@contextlib.asynccontextmanager
async def _around_row(conn: Any) -> AsyncIterator[dict[str, Any]]:
    """After the row: the encoding, length and memory of the list it used (the intset row's
    SET: its cardinality as its length)."""
    extra: dict[str, Any] = {}
    yield extra
    keys = [key async for key in conn.scan_iter(match=f"{BENCH_PREFIX}ziplist:*")]
    if len(keys) != 1:
        return
    key = keys[0]
    raw = await conn.execute_command("OBJECT", "ENCODING", key)
    name = raw.decode() if isinstance(raw, bytes) else raw
    extra["encoding"] = name
    extra["listpack"] = 1 if name == "listpack" else 0
    kind = await conn.type(key)
    is_set = (kind.decode() if isinstance(kind, bytes) else kind) == "set"
    extra["length"] = await (conn.scard(key) if is_set else conn.llen(key))
    extra["memory_bytes"] = await conn.execute_command("MEMORY", "USAGE", key, "SAMPLES", 0)


TABLE = Table(
    name="ziplist",
    title="Rotate a long LIST: the long-ziplist benchmark (Redis in Action §9.1.2)",
    unit="moves",
    variants=(
        *(_variant(n) for n in LENGTHS),
        _variant(_BOOK_LENGTH, "rpoplpush"),
        *(_variant(n, "lindex") for n in INDEX_LENGTHS),
        Variant("intset-sadd", IntsetWorkload, clients=(1,)),
        _variant(1, "limit"),
    ),
    references=("lmove-1",),
    notes=(
        "book = long_ziplist_performance (Redis 2.6, one ziplist however long, RPOPLPUSH in "
        f"pipelines of {PIPELINE}); here the server's own list-max-listpack-size, so long lists "
        f"are quicklists. One client; moves = LMOVE key key RIGHT LEFT (book-rpoplpush: "
        f"RPOPLPUSH) in non-transactional pipelines of {PIPELINE}; latency per pipeline. "
        "listpack = 1 when OBJECT ENCODING is listpack (the JSON has the name under "
        "'encoding'); length and memory bytes (MEMORY USAGE SAMPLES 0) after the row. "
        "lindex-N = LINDEX of the middle item (long_ziplist_index); intset-sadd = SADD of "
        f"{_INTSET_BATCH:,} new integers per call (long_intset_performance; ops = members "
        "added; the encoding is the set's). "
        f"limit = LLEN of the 1-item list, {PIPELINE} per pipeline."
    ),
    params={
        "lengths": list(LENGTHS),
        "index_lengths": list(INDEX_LENGTHS),
        "pipeline": PIPELINE,
        "fill_batch": _FILL,
    },
    around_row=_around_row,
    columns=("listpack", "length", "memory_bytes"),
)
