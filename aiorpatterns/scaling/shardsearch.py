"""Search an index cut into shards: ask every shard at once, merge the sorted pages.

Redis in Action §10.3.2 (``search_shards``, ``search_shards_zset``) runs the same query on every
shard and merges the sorted results. :class:`ShardedSearch` does that over several
:class:`~aiorpatterns.search.index.SearchIndex` objects: one per server (client-side sharding), or
one per hash tag of one Redis Cluster (each index is one tag, so one node, and the tags spread
over the nodes). For data that fits one node, one index on one tag is simpler; shards are for
an index too big for one node. Fixed here:

- **Concurrently, and nothing dropped.** The shards are asked together (``asyncio.gather``) with
  a per-shard timeout; a shard that is down or late raises
  :class:`~aiorpatterns.scaling.shards.ShardsUnavailableError`, or, with ``partial=True``, is
  listed in the result's ``missing``. The book's threaded variant returns without the late
  shards and says nothing.
- **The merge is exact.** Each shard's page keeps its own order, and the pages are merged by the
  order the shards sort by (value, then id, as the index does), so the merged page is the page
  one index holding every document would give (for text values sorted by ``SORT``, ties are in
  no defined order on the server, so tied documents may come in another order). The book sorts
  by the value alone, and its zset variant calls ``sort(reversed=...)`` (a TypeError) after
  reading the cached scores from ``id`` instead of ``idx:<id>`` (always empty).
- **Pagination.** Page ``[start, start + num)`` of the merged order may come entirely from any one
  shard, so every shard is asked for its first ``start + num`` (the book does the same). Pass
  the returned ``result_ids`` back for the next page: each shard then reads its cached, already
  sorted result instead of searching again, and the pages are cut from the same orders, without
  repeats or gaps. Deep pages cost ``shards * (start + num)`` ids.

Documents go to the shard of their id (:meth:`ShardedSearch.index_for`): one id must live on one
shard only, or it would be counted and returned once per shard. Nothing here writes but each
shard's :class:`~aiorpatterns.search.index.SearchIndex` (whose steps are retry-safe), and a
cancelled search leaves only its shards' expiring temporary keys and cached results.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ..core.checks import INT64_MAX, check_flag, check_int
from ..core.keys import check_name
from ..memory.sharding import shard_of
from ..search.index import SearchIndex, check_number, check_ttl
from .shards import DEFAULT_SHARD_TIMEOUT, check_timeout, scatter_calls

__all__ = ["ShardedSearch", "ShardedSearchResult", "to_numeric_key", "to_string_key"]

#: One shard's answer: its total, its (merge key, id) entries in its order, its result id.
_Answer = tuple[int, list[tuple[Any, str]], str | None]


class ShardedSearchResult(NamedTuple):
    """One merged page: matches over the answering shards, the page's ids, per-shard result ids.

    ``result_ids`` has one entry per shard (None where nothing was cached or the shard is
    missing); pass it back to read the next page from the cached results. ``missing`` lists
    the shards that did not answer (only with ``partial=True``; otherwise they raise).
    """

    total: int
    ids: list[str]
    result_ids: tuple[str | None, ...]
    missing: tuple[int, ...]


def to_numeric_key(value: str | bytes | None) -> float:
    """Return the number a document's field sorts by: missing or unreadable values count 0.

    Redis in Action §10.3.2 (``to_numeric_key``, on the value rather than the ``(id, value)``
    pair). A float, as ``SORT`` and the Lua sort compare doubles (the book's ``Decimal`` could
    order two values that ``SORT`` sees as equal).
    """
    if value is None:
        return 0.0
    try:
        number = float(value)
    except ValueError:
        return 0.0
    return 0.0 if math.isnan(number) else number


def to_string_key(value: str | bytes | None) -> tuple[int, bytes]:
    """Return what a document's text field sorts by: missing first, then by UTF-8 bytes.

    Redis in Action §10.3.2 (``to_string_key``), which maps a missing value to ``''`` and so
    ties it with an empty one; ``SORT … ALPHA`` puts missing values first.
    """
    if value is None:
        return (0, b"")
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
    return (1, data)


class ShardedSearch:
    """Scatter-gather search over several :class:`~aiorpatterns.search.index.SearchIndex` shards.

    Redis in Action §10.3.2. ``indexes`` are the shards, in a fixed order (a document's shard is
    the CRC-32 of its id modulo their number); ``timeout`` bounds each shard's answer (None: no
    bound of our own). The indexes' clients are the caller's and never closed here.
    """

    def __init__(
        self,
        indexes: Iterable[SearchIndex],
        *,
        timeout: float | None = DEFAULT_SHARD_TIMEOUT,
    ) -> None:
        if isinstance(indexes, str | bytes) or not isinstance(indexes, Iterable):
            raise TypeError("indexes must be a sequence of SearchIndex")
        listed = list(indexes)
        if not listed:
            raise ValueError("indexes must hold at least one SearchIndex")
        for index in listed:
            if not isinstance(index, SearchIndex):
                raise TypeError(f"indexes must be SearchIndex, not {type(index).__name__}")
        self.indexes: tuple[SearchIndex, ...] = tuple(listed)
        self.timeout = check_timeout(timeout)

    def __len__(self) -> int:
        return len(self.indexes)

    # -- documents --

    def index_for(self, docid: str) -> SearchIndex:
        """Return the shard document ``docid`` belongs to."""
        check_name(docid, "docid")
        return self.indexes[shard_of(docid, shards=len(self.indexes))]

    async def index_document(
        self, docid: str, content: str, *, fields: Mapping[str, str | int | float] | None = None
    ) -> int:
        """Index a document on its shard (see :meth:`SearchIndex.index_document`)."""
        return await self.index_for(docid).index_document(docid, content, fields=fields)

    async def remove_document(self, docid: str) -> bool:
        """Remove a document from its shard (see :meth:`SearchIndex.remove_document`)."""
        return await self.index_for(docid).remove_document(docid)

    async def set_fields(self, docid: str, fields: Mapping[str, str | int | float]) -> None:
        """Set fields of a document on its shard (see :meth:`SearchIndex.set_fields`)."""
        await self.index_for(docid).set_fields(docid, fields)

    # -- searching --

    def _common(
        self,
        query: str,
        start: int,
        num: int,
        ttl: float,
        result_ids: Sequence[str | None] | None,
        partial: bool,
    ) -> tuple[int, int, list[str | None]]:
        for index in self.indexes:  # each may have its own stop words
            index.parse(query)
        start = check_int(start, "start", minimum=0)
        # Every shard is asked for its first start + num ids: that sum must be a Redis integer.
        num = check_int(num, "num", minimum=0, maximum=INT64_MAX - start)
        check_ttl(ttl)
        check_flag(partial, "partial")
        if result_ids is None:
            return start, num, [None] * len(self.indexes)
        if isinstance(result_ids, str | bytes) or not isinstance(result_ids, Sequence):
            raise TypeError("result_ids must be None or the result_ids of an earlier page")
        if len(result_ids) != len(self.indexes):
            raise ValueError(
                f"result_ids must hold one entry per shard ({len(self.indexes)}), "
                f"got {len(result_ids)}"
            )
        return start, num, [None if r is None else check_name(r, "result_id") for r in result_ids]

    async def search(
        self,
        query: str,
        *,
        sort: str = "-updated",
        start: int = 0,
        num: int = 20,
        result_ids: Sequence[str | None] | None = None,
        ttl: float = 300.0,
        partial: bool = False,
    ) -> ShardedSearchResult:
        """Return one page of the documents matching ``query`` on every shard, sorted by a field.

        Same ``sort`` as :meth:`SearchIndex.search` (a field name, ``-`` for descending; numeric
        fields as numbers, missing = 0; others by bytes, missing first). Redis in Action §10.3.2
        (``search_shards``). See the module docstring for timeouts, ``partial`` and pages.
        """
        if not isinstance(sort, str):
            raise TypeError(f"sort must be a str, not {type(sort).__name__}")
        desc = sort.startswith("-")
        field = check_name(sort[1:] if desc else sort, "sort field")
        start, num, previous = self._common(query, start, num, ttl, result_ids, partial)

        def shard(number: int, index: SearchIndex) -> Callable[[], Awaitable[_Answer]]:
            async def run() -> _Answer:
                found = await index.search(
                    query, sort=sort, start=0, num=start + num, result_id=previous[number], ttl=ttl
                )
                values = await _hget_all(index, found.ids, field)
                if field in index.numeric_fields:
                    keys: list[Any] = [to_numeric_key(v) for v in values]
                else:
                    keys = [to_string_key(v) for v in values]
                entries = [((k, i), i) for k, i in zip(keys, found.ids, strict=True)]
                return found.total, entries, found.result_id

            return run

        return await self._gather(shard, start, num, desc, partial)

    async def search_zsorted(
        self,
        query: str,
        *,
        weights: Mapping[str, float] | None = None,
        desc: bool = True,
        start: int = 0,
        num: int = 20,
        result_ids: Sequence[str | None] | None = None,
        ttl: float = 300.0,
        partial: bool = False,
    ) -> ShardedSearchResult:
        """Return one page of the documents matching ``query`` on every shard, by weighted fields.

        Same ``weights`` and ``desc`` as :meth:`SearchIndex.search_zsorted`; ties go by id.
        Redis in Action §10.3.2 (``search_shards_zset``). Each shard's scores are computed again
        here from its field ZSETs, in the index's order of operations, so they are the doubles
        the shard sorted by.
        """
        if weights is None:
            weights = {"updated": 1.0}
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a mapping, not {type(weights).__name__}")
        weighted: list[tuple[str, float]] = []
        for name, weight in weights.items():
            for index in self.indexes:
                if name not in index.numeric_fields:
                    raise ValueError(f"weights: {name!r} is not one of numeric_fields")
            value = float(check_number(weight, f"weight of {name!r}"))
            if value != 0:
                weighted.append((name, value))
        if not isinstance(desc, bool):
            raise TypeError("desc must be a bool")
        start, num, previous = self._common(query, start, num, ttl, result_ids, partial)

        def shard(number: int, index: SearchIndex) -> Callable[[], Awaitable[_Answer]]:
            async def run() -> _Answer:
                found = await index.search_zsorted(
                    query,
                    weights=weights,
                    desc=desc,
                    start=0,
                    num=start + num,
                    result_id=previous[number],
                    ttl=ttl,
                )
                scores = await _scores(index, found.ids, weighted)
                entries = [((s, i), i) for s, i in zip(scores, found.ids, strict=True)]
                return found.total, entries, found.result_id

            return run

        return await self._gather(shard, start, num, desc, partial)

    async def _gather(
        self,
        shard: Callable[[int, SearchIndex], Callable[[], Awaitable[_Answer]]],
        start: int,
        num: int,
        desc: bool,
        partial: bool,
    ) -> ShardedSearchResult:
        calls = [shard(n, index) for n, index in enumerate(self.indexes)]
        answers = await scatter_calls(calls, timeout=self.timeout, partial=partial)
        total = sum(a[0] for a in answers.replies if a is not None)
        # Each shard's entries are in its own order; heapq.merge keeps it and interleaves the
        # shards by the same key, so the result is the merged order of the full results.
        lists = [a[1] for a in answers.replies if a is not None]
        merged = heapq.merge(*lists, key=lambda entry: entry[0], reverse=desc)
        page = [docid for _, docid in list(merged)[start : start + num]]
        ids = tuple(None if a is None else a[2] for a in answers.replies)
        return ShardedSearchResult(total, page, ids, answers.missing)

    def __repr__(self) -> str:
        return f"<ShardedSearch shards={len(self.indexes)}>"


async def _hget_all(index: SearchIndex, ids: list[str], field: str) -> list[Any]:
    """The value of ``field`` for each document (None where it has none), in one round trip."""
    if not ids:
        return []
    async with index.redis.pipeline(transaction=False) as pipe:
        for docid in ids:
            pipe.hget(index.doc_key(docid), field)
        return list(await pipe.execute())


async def _scores(
    index: SearchIndex, ids: list[str], weighted: list[tuple[str, float]]
) -> list[float]:
    """Each document's weighted score, summed as the index's script does (field by field)."""
    if not ids or not weighted:
        return [0.0] * len(ids)
    async with index.redis.pipeline(transaction=False) as pipe:
        for name, _ in weighted:
            pipe.zmscore(index.field_key(name), ids)
        columns = await pipe.execute()
    scores = [0.0] * len(ids)
    for (_, weight), column in zip(weighted, columns, strict=True):
        for n, value in enumerate(column):
            if value is not None:
                scores[n] = scores[n] + (0.0 + float(value) * weight)
    return scores
