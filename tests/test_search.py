"""Test SearchIndex: tokenizing, parsing, indexing, boolean queries, sorting, cached pages.

Redis in Action §7.1-§7.2. Query results are compared with a brute-force evaluation in Python
over the same random corpus, for every operator, both hash-field orders (numeric and text, by
``SORT … BY`` where the server takes it and by the Lua sort everywhere) and weighted scores.
Every test runs on a standalone server and a cluster; the ``_text`` ones also with
``decode_responses`` on and off, which must not change any result.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from typing import Any

import pytest
from helpers import NO_REDIS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from aiorpatterns.core.autopipeline import AutoPipeline
from aiorpatterns.core.keys import Keyspace
from aiorpatterns.core.scripts import script
from aiorpatterns.search.index import (
    LOWER,
    MAX_QUERY_WORDS,
    STOP_WORDS,
    ParsedQuery,
    SearchIndex,
    SearchResult,
    parse_query,
    string_to_score,
    string_to_score_generic,
    tokenize,
    zadd_string,
)
from aiorpatterns.testing.pytest_plugin import Endpoint

CONTENT = "this is some random content, look at how it is indexed."
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def keys_matching(client: Any, pattern: str) -> list[str]:
    return [text(k) async for k in client.scan_iter(match=pattern, count=1000)]


def fresh(client: Any, **options: Any) -> SearchIndex:
    """An index with a name no other example used (hypothesis reuses one client)."""
    return SearchIndex(client, f"i{uuid.uuid4().hex[:8]}", **options)


# -- tokenizing and parsing (no server) --------------------------------------------------------


def test_tokenize_keeps_letters_digits_and_inner_apostrophes() -> None:
    words = tokenize("Don't STOP: Straße 42, naïve café; e-mail x_y \u2018quoted\u2019 हिन्दी a 7")
    assert words == {"don't", "stop", "strasse", "42", "naïve", "café", "mail", "quoted", "हिन्दी"}


def test_tokenize_normalizes_forms_and_apostrophes() -> None:
    decomposed = "cafe\u0301 rock\u2019n\u2019roll \ufb01ne \uff26\uff35\uff2c\uff2c"
    assert tokenize(decomposed) == {"café", "rock'n'roll", "fine", "full"}


def test_tokenize_drops_stop_words_and_short_words() -> None:
    assert tokenize(CONTENT) == {"random", "content", "look", "indexed"}
    assert tokenize("the a I of to") == set()
    assert tokenize("the cat", stop_words=[]) == {"the", "cat"}
    assert tokenize("The Cat", stop_words=frozenset({"CAT"})) == {"the"}  # normalized too
    assert tokenize("'tis ''") == set()


@given(st.text(max_size=60))
def test_tokens_are_normalized_words_of_the_text(content: str) -> None:
    for word in tokenize(content):
        assert len(word) >= 2
        assert word not in STOP_WORDS
        assert not word.startswith("'")
        assert not word.endswith("'")
        assert "''" not in word
        assert "_" not in word
        assert tokenize(word) == {word}  # idempotent: a token is its own tokenization


def test_parse_query_book_example() -> None:
    """Book ch07 test_parse_query."""
    groups, excluded = parse_query("test query without stopwords")
    assert groups == [["test"], ["query"], ["without"], ["stopwords"]]
    assert excluded == []
    groups, excluded = parse_query("test +query without -stopwords")
    assert [set(g) for g in groups] == [{"test", "query"}, {"without"}]
    assert excluded == ["stopwords"]


def test_parse_query_edge_cases() -> None:
    assert parse_query("") == ParsedQuery([], [])
    assert parse_query("the of and") == ParsedQuery([], [])
    assert parse_query("-redis -memcached") == ParsedQuery([], ["redis", "memcached"])
    assert parse_query("+first") == ParsedQuery([["first"]], [])  # nothing before it to join
    assert parse_query("e-mail x+y") == ParsedQuery([["mail"]], [])  # mid-word signs are text
    assert parse_query("Redis REDIS +redis") == ParsedQuery([["redis"], ["redis"]], [])
    assert parse_query("+the cat -the") == ParsedQuery([["cat"]], [])


_VOCAB = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]


@given(st.lists(st.tuples(st.sampled_from(["", "+", "-"]), st.sampled_from(_VOCAB)), max_size=8))
def test_parse_query_matches_the_grammar(terms: list[tuple[str, str]]) -> None:
    groups: list[list[str]] = []
    excluded: list[str] = []
    for op, word in terms:
        if op == "-":
            excluded += [] if word in excluded else [word]
        elif op == "+" and groups:
            groups[-1] += [] if word in groups[-1] else [word]
        else:
            groups.append([word])
    query = "  ".join(op + word.upper() for op, word in terms)
    assert parse_query(query) == ParsedQuery(groups, excluded)


def test_bad_text_arguments() -> None:
    with pytest.raises(TypeError):
        tokenize(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse_query(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tokenize("x", stop_words="the")


# -- string scores (no server) -----------------------------------------------------------------


def test_string_to_score_book_example() -> None:
    """Book ch07 test_string_to_score (the Redis part is test_zadd_string below)."""
    words = ["these", "are", "some", "words", "that", "will", "be", "sorted"]
    assert sorted(words) == sorted(words, key=string_to_score)
    assert sorted(words) == sorted(words, key=lambda w: string_to_score_generic(w, LOWER))


@given(st.text(max_size=9), st.text(max_size=9))
def test_string_to_score_follows_byte_order(a: str, b: str) -> None:
    ba, bb = a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    sa, sb = string_to_score(a), string_to_score(b)
    assert sa < 2**53
    assert sb < 2**53
    assert string_to_score(ba) == sa
    if ba < bb:
        assert sa <= sb
        assert sa < sb or (ba[:6] == bb[:6] and len(ba) > 6 and len(bb) > 6)


#: Characters of LOWER that fit in a score: floor(52 / log2(26 + 1)), as the book computes it.
_LOWER_FITS = int(52 / math.log2(len(LOWER) + 1))


@given(st.text(alphabet=LOWER, max_size=14), st.text(alphabet=LOWER, max_size=14))
@example("a" * 11, "a" * 10 + "b")  # differ past the 10th character: one score
@example("a" * 10, "a" * 9 + "b")  # differ at the 10th: still ordered
def test_string_to_score_generic_follows_alphabet_order(a: str, b: str) -> None:
    sa, sb = string_to_score_generic(a, LOWER), string_to_score_generic(b, LOWER)
    n = _LOWER_FITS
    assert n == 10
    assert sa < 2**53
    if a < b:
        assert sa <= sb
        assert sa < sb or (a[:n] == b[:n] and len(a) > n and len(b) > n)


def test_string_to_score_arguments() -> None:
    assert string_to_score("ABC", ignore_case=True) == string_to_score("abc")
    assert string_to_score(b"ABC", ignore_case=True) == string_to_score(b"abc")
    assert string_to_score("é") > string_to_score("z")  # U+00E9 is 0xC3 0xA9 in UTF-8
    with pytest.raises(ValueError, match="not in the alphabet"):
        string_to_score_generic("ABC", LOWER)
    with pytest.raises(TypeError):
        string_to_score(12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat"):
        string_to_score_generic("a", "aa")
    # 52 / log2(27) = 10.9: ten letters fit, an eleventh is not seen.
    assert string_to_score_generic("a" * 11, LOWER) == string_to_score_generic(
        "a" * 10 + "b", LOWER
    )
    assert string_to_score_generic("a" * 10, LOWER) < string_to_score_generic("a" * 9 + "b", LOWER)


async def test_zadd_string(redis_client_text: Any) -> None:
    """Book ch07 test_string_to_score, its zadd_string part."""
    key = Keyspace().key("test", "zadd")
    assert await zadd_string(redis_client_text, key, {"test": "value", "test2": "other"}) == 2
    assert await redis_client_text.zscore(key, "test") == string_to_score("value")
    assert await redis_client_text.zscore(key, "test2") == string_to_score("other")
    assert await zadd_string(redis_client_text, key, {}) == 0


# -- the book's tests ---------------------------------------------------------------------------


async def test_index_document(redis_client_text: Any) -> None:
    """Book ch07 test_index_document."""
    index = SearchIndex(redis_client_text)
    tokens = index.tokenize(CONTENT)
    assert tokens
    assert await index.index_document("test", CONTENT) == len(tokens)
    for token in tokens:
        assert {text(m) for m in await redis_client_text.smembers(index.word_key(token))} == {
            "test"
        }
    assert await index.words("test") == tokens
    assert await index.documents() == {"test"}


async def test_set_operations(redis_client_text: Any) -> None:
    """Book ch07 test_set_operations: temporary results that expire."""
    r = redis_client_text
    index = SearchIndex(r)
    await index.index_document("test", CONTENT)

    async def members(key: str) -> set[str]:
        ttl = await r.pttl(key)
        assert ttl == -2 or 0 < ttl <= 30_000  # an empty result is no key at all
        return {text(m) for m in await r.smembers(key)}

    assert await members(await index.intersect(["content", "indexed"])) == {"test"}
    assert await members(await index.intersect(["content", "ignored"])) == set()
    assert await members(await index.union(["content", "ignored"])) == {"test"}
    assert await members(await index.difference(["content", "ignored"])) == {"test"}
    assert await members(await index.difference(["content", "indexed"])) == set()
    key = await index.union(["content"], ttl=0.5)
    assert 0 < await r.pttl(key) <= 500


async def test_parse_and_search(redis_client_text: Any) -> None:
    """Book ch07 test_parse_and_search."""
    index = SearchIndex(redis_client_text)
    await index.index_document("test", CONTENT)
    for query in (
        "content",
        "content indexed random",
        "content +indexed random",
        "content indexed +random",
    ):
        assert await index.match(query) == {"test"}
    assert await index.match("content indexed -random") == set()


async def test_search_with_sort(redis_client_text: Any) -> None:
    """Book ch07 test_search_with_sort (SORT BY on a field of each document's HASH)."""
    index = SearchIndex(redis_client_text)
    await index.index_document("test", CONTENT)
    await index.index_document("test2", CONTENT)
    await index.set_fields("test", {"updated": 12345, "id": 10})
    await index.set_fields("test2", {"updated": 54321, "id": 1})
    result = await index.search("content")
    assert result.total == 2
    assert result.ids == ["test2", "test"]
    assert (await index.search("content", sort="-id")).ids == ["test", "test2"]
    assert (await index.search("content", sort="id")).ids == ["test2", "test"]


async def test_search_with_zsort(redis_client_text: Any) -> None:
    """Book ch07 test_search_with_zsort (ZINTERSTORE weights over update time and votes)."""
    index = SearchIndex(redis_client_text)
    await index.index_document("test", CONTENT, fields={"updated": 12345, "votes": 10})
    await index.index_document("test2", CONTENT, fields={"updated": 54321, "votes": 1})
    result = await index.search_zsorted("content", desc=False)
    assert result.ids == ["test", "test2"]
    result = await index.search_zsorted("content", weights={"updated": 0, "votes": 1}, desc=False)
    assert result.ids == ["test2", "test"]


# -- brute force ----------------------------------------------------------------------------------

_WORDS = ["apple", "berry", "cherry", "date", "elder", "fig", "grape"]
#: Words for the brute force: ASCII, and what tokenize() folds, keeps or splits: case and
#: compatibility forms, combining marks, CJK, apostrophes, digits, a letter of plane 3, and a
#: private-use character near U+10FFFD (not a letter: it splits the word).
_POOL = [
    *_WORDS,
    "Straße",
    "STRASSE",
    "café",
    "cafe\u0301",
    "名前",
    "don't",
    "Don\u2019t",
    "2024",
    "x2",
    "\U0003134a\U0003134a",
    "ab\U0010fffdcd",
]
_TITLES = ["", "a", "b", "ab", "B", "é", "zz", "b\u00e9"]


@st.composite
def corpora(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """Documents: words, an ``updated`` number (sometimes missing), a ``title`` (ditto)."""
    docs: dict[str, dict[str, Any]] = {}
    for i in range(draw(st.integers(0, 9))):
        doc: dict[str, Any] = {"words": draw(st.lists(st.sampled_from(_POOL), max_size=5))}
        if draw(st.booleans()):
            doc["updated"] = draw(st.integers(-3, 3) | st.sampled_from([0.5, -1.25, 10**17]))
        if draw(st.booleans()):
            doc["votes"] = draw(st.integers(0, 4))
        if draw(st.booleans()):
            doc["title"] = draw(st.sampled_from(_TITLES))
        docs[draw(st.sampled_from(["d", "D", "é", "d:1", "10", "9"])) + str(i)] = doc
    return docs


queries = st.lists(
    st.tuples(st.sampled_from(["", "", "+", "-"]), st.sampled_from(_POOL)), min_size=1, max_size=5
).map(lambda terms: " ".join(op + w for op, w in terms))


def brute_match(docs: dict[str, dict[str, Any]], query: str) -> set[str]:
    """Evaluate the query over each document's words, as :func:`tokenize` reads its text."""
    groups, excluded = parse_query(query)
    if not groups:
        return set()
    words = {docid: tokenize(" ".join(doc["words"])) for docid, doc in docs.items()}
    return {
        docid
        for docid in docs
        if all(set(g) & words[docid] for g in groups) and not set(excluded) & words[docid]
    }


async def load(index: SearchIndex, docs: dict[str, dict[str, Any]]) -> None:
    for docid, doc in docs.items():
        fields = {k: v for k, v in doc.items() if k != "words"}
        await index.index_document(docid, " ".join(doc["words"]), fields=fields)


def brute_numeric(docs: dict[str, dict[str, Any]], ids: set[str], desc: bool) -> list[str]:
    # SORT: a missing value counts 0, ties go by id bytes, DESC reverses the whole order.
    order = sorted(ids, key=lambda d: (float(docs[d].get("updated", 0)), d.encode()))
    return order[::-1] if desc else order


def brute_alpha_keys(docs: dict[str, dict[str, Any]], ids: list[str]) -> list[tuple[int, bytes]]:
    return [(0, b"") if "title" not in docs[d] else (1, docs[d]["title"].encode()) for d in ids]


def brute_zsort(
    docs: dict[str, dict[str, Any]], ids: set[str], weights: dict[str, float], desc: bool
) -> list[str]:
    def score(docid: str) -> float:
        total = 0.0
        for field, weight in weights.items():
            if weight and field in docs[docid]:
                total = total + float(docs[docid][field]) * weight
        return total

    order = sorted(ids, key=lambda d: (score(d), d.encode()))
    return order[::-1] if desc else order


async def all_pages(index: SearchIndex, query: str, num: int, **options: Any) -> list[str]:
    """Read every page of a search through its result id; check each page agrees."""
    search = index.search_zsorted if "weights" in options else index.search
    first = await search(query, num=num, **options)
    ids = list(first.ids)
    while len(ids) < first.total:
        page = await search(query, start=len(ids), num=num, result_id=first.result_id, **options)
        assert page.result_id == first.result_id  # served from the cache
        assert page.total == first.total
        assert page.ids
        ids += page.ids
    assert len(ids) == first.total
    assert all(type(i) is str for i in ids)
    return ids


@SETTINGS
@given(docs=corpora(), query=queries, server_sort=st.sampled_from([None, False]))
async def test_match_and_sorts_equal_brute_force(
    redis_client_text: Any, docs: dict[str, dict[str, Any]], query: str, server_sort: bool | None
) -> None:
    index = fresh(redis_client_text, server_sort=server_sort)
    await load(index, docs)
    expected = brute_match(docs, query)
    matched = await index.match(query)
    assert matched == expected
    assert all(type(i) is str for i in matched)
    for desc in (False, True):
        sort = "-updated" if desc else "updated"
        got = await all_pages(index, query, 3, sort=sort)
        assert got == brute_numeric(docs, expected, desc)

        sort = "-title" if desc else "title"
        got = await all_pages(index, query, 2, sort=sort)
        assert set(got) == expected
        # SORT … ALPHA leaves ties in no particular order: compare the sequence of values.
        assert brute_alpha_keys(docs, got) == sorted(brute_alpha_keys(docs, got), reverse=desc)


@SETTINGS
@given(
    docs=corpora(),
    query=queries,
    weights=st.dictionaries(
        st.sampled_from(["updated", "votes"]), st.sampled_from([0, 1, -1, 0.5, 2, 1000]), max_size=2
    ),
)
async def test_zsorted_equals_brute_force(
    redis_client_text: Any,
    docs: dict[str, dict[str, Any]],
    query: str,
    weights: dict[str, float],
) -> None:
    index = fresh(redis_client_text)
    await load(index, docs)
    expected = brute_match(docs, query)
    for desc in (False, True):
        got = await all_pages(index, query, 4, weights=weights, desc=desc)
        assert got == brute_zsort(docs, expected, weights, desc)


async def test_sort_paths_agree_on_the_same_data(redis_standalone_client: Redis) -> None:
    """SORT … BY (standalone) and the Lua sort give the same order, ties included for numbers."""
    docs = {f"d{i}": {"words": ["xx"], "updated": i % 3, "title": "t" * (i % 4)} for i in range(20)}
    docs["nofields"] = {"words": ["xx"]}
    by_server = SearchIndex(redis_standalone_client, "same", server_sort=True)
    await load(by_server, docs)
    by_script = SearchIndex(redis_standalone_client, "same", server_sort=False)
    for sort in ("updated", "-updated"):
        a = await by_server.search("xx", sort=sort, num=100)
        b = await by_script.search("xx", sort=sort, num=100)
        assert a.ids == b.ids
        assert a.total == b.total == 21
    for sort in ("title", "-title"):
        a = await by_server.search("xx", sort=sort, num=100)
        b = await by_script.search("xx", sort=sort, num=100)
        assert brute_alpha_keys(docs, a.ids) == brute_alpha_keys(docs, b.ids)


class _BeforeTheSort:
    """A client that runs ``interleave`` once, just before the Lua sort that declares documents.

    That is the moment between finding the matches and sorting them, where a sort in two steps
    would read the fields of documents that no longer match.
    """

    def __init__(self, client: Any, interleave: Any) -> None:
        self._client = client
        self._interleave = interleave

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        # The script registry sends EVALSHA through execute_command (core/scripts.py).
        if args[0] == "EVALSHA" and args[1] == script("search_sort").sha and self._interleave:
            keys = [text(k) for k in args[3 : 3 + int(args[2])]]
            if any(":doc:" in k for k in keys):
                interleave, self._interleave = self._interleave, None
                await interleave()
        return await self._client.execute_command(*args, **options)


async def test_the_lua_sort_sees_the_matches_of_its_own_moment(redis_client_text: Any) -> None:
    """Documents removed, re-indexed or added between the query and the sort."""
    r = redis_client_text
    index = SearchIndex(r, server_sort=False)
    for i, updated in enumerate([3, 1, 2, 5]):
        await index.index_document(f"d{i}", "redis search", fields={"updated": updated})

    async def change() -> None:
        await index.remove_document("d0")
        await index.index_document("d1", "memcached", fields={"updated": 1})
        await index.index_document("d9", "redis", fields={"updated": 4})

    raced = SearchIndex(_BeforeTheSort(r, change), index.name, server_sort=False)
    result = await raced.search("redis", sort="updated", num=2)
    assert result.total == 3
    assert result.ids == ["d2", "d9"]
    rest = await index.search("redis", sort="updated", start=2, result_id=result.result_id)
    assert rest == SearchResult(3, ["d3"], result.result_id)  # the cache holds the same snapshot


async def test_server_sort_is_used_where_the_server_takes_it(redis_client: Any) -> None:
    index = SearchIndex(redis_client)
    await index.index_document("a", "word")
    await index.search("word")
    standalone = isinstance(redis_client, Redis)
    assert index._server_sort is standalone


async def test_acl_user_without_dangerous_commands_falls_back_to_lua(
    redis_standalone_client: Redis, redis_server: Endpoint
) -> None:
    """SORT is @dangerous: a user limited to the keyspace (as in test_acl) gets the Lua sort."""
    admin = redis_standalone_client
    user, password = "aiorp-search-acl", "search-secret"
    rules = ["reset", "on", f">{password}", f"~{Keyspace().pattern}", "+@all", "-@dangerous"]
    rules.append("+@scripting")  # as test_acl grants
    await admin.execute_command("ACL", "SETUSER", user, *rules)
    client = Redis.from_url(redis_server.url, username=user, password=password)
    try:
        index = SearchIndex(client)
        await index.index_document("a", "redis", fields={"updated": 2})
        await index.index_document("b", "redis", fields={"updated": 1})
        assert (await index.search("redis")).ids == ["a", "b"]
        assert index._server_sort is False
    finally:
        await client.aclose()
        await admin.acl_deluser(user)


# -- the result cache ------------------------------------------------------------------------


async def test_cached_pages_are_reused_until_they_expire(redis_client_text: Any) -> None:
    r = redis_client_text
    index = SearchIndex(r)
    for i in range(5):
        await index.index_document(f"d{i}", "redis search", fields={"updated": i})
    first = await index.search("redis", num=2, ttl=30)
    assert first == SearchResult(5, ["d4", "d3"], first.result_id)
    assert first.result_id is not None
    [cache_key] = await keys_matching(r, f"*:result:{first.result_id}:*")

    # The index changes under the cached result: the next pages still read the snapshot.
    await index.index_document("d9", "redis", fields={"updated": 99})
    await index.remove_document("d0")
    await index.set_fields("d1", {"updated": 100})
    await r.pexpire(cache_key, 5_000)
    second = await index.search("redis", start=2, num=2, result_id=first.result_id, ttl=30)
    assert second == SearchResult(5, ["d2", "d1"], first.result_id)
    assert await r.pttl(cache_key) > 5_000  # the hit restarted the TTL
    third = await index.search("redis", start=4, num=2, result_id=first.result_id, ttl=0.2)
    assert third == SearchResult(5, ["d0"], first.result_id)
    assert 0 < await r.pttl(cache_key) <= 200

    async with asyncio.timeout(10):
        while await r.exists(cache_key):  # noqa: ASYNC110 - nothing signals a Redis expiry
            await asyncio.sleep(0.05)
    fresh_result = await index.search("redis", num=10, result_id=first.result_id)
    assert fresh_result.result_id not in (None, first.result_id)
    assert fresh_result.ids == ["d1", "d9", "d4", "d3", "d2"]


async def test_a_result_id_only_answers_its_own_query_and_order(redis_client: Any) -> None:
    index = SearchIndex(redis_client)
    await index.index_document("a", "redis", fields={"updated": 1, "title": "b"})
    await index.index_document("b", "redis valkey", fields={"updated": 2, "title": "a"})
    first = await index.search("redis")
    assert first.ids == ["b", "a"]
    other_query = await index.search("valkey", result_id=first.result_id)
    assert other_query.ids == ["b"]
    assert other_query.result_id != first.result_id
    other_order = await index.search("redis", sort="title", result_id=first.result_id)
    assert other_order.ids == ["b", "a"]
    assert other_order.result_id != first.result_id
    same = await index.search("  REDIS ", result_id=first.result_id)  # same query, other text
    assert same.result_id == first.result_id

    zfirst = await index.search_zsorted("redis")
    assert zfirst.ids == ["b", "a"]
    flipped = await index.search_zsorted("redis", desc=False, result_id=zfirst.result_id)
    assert flipped == SearchResult(2, ["a", "b"], zfirst.result_id)  # one cache, both ways
    reweighted = await index.search_zsorted(
        "redis", weights={"updated": -1}, result_id=zfirst.result_id
    )
    assert reweighted.ids == ["a", "b"]
    assert reweighted.result_id != zfirst.result_id


async def test_pages_past_the_end_and_count_only(redis_client: Any) -> None:
    index = SearchIndex(redis_client)
    for i in range(3):
        await index.index_document(f"d{i}", "word", fields={"updated": i})
    counted = await index.search("word", num=0)
    assert counted.total == 3
    assert counted.ids == []
    assert counted.result_id
    assert (await index.search("word", start=1, num=0, result_id=counted.result_id)).ids == []
    past = await index.search("word", start=10, num=5, result_id=counted.result_id)
    assert past == SearchResult(3, [], counted.result_id)
    zpast = await index.search_zsorted("word", start=10)
    assert zpast.total == 3
    assert zpast.ids == []


async def test_temporary_keys_always_expire(redis_client: Any) -> None:
    index = SearchIndex(redis_client)
    for i, content in enumerate(["red", "red green", "red green blue", "green blue yellow"]):
        await index.index_document(f"d{i}", content, fields={"updated": i})
    for query in ("red", "red +green", "red green -blue", "red +green +blue -yellow", "-red"):
        await index.match(query)
        await index.search(query)
        await index.search(query, sort="title")
        await index.search_zsorted(query, weights={"updated": 1, "votes": 2})
        await SearchIndex(redis_client, server_sort=False).search(query)
    setop = await index.intersect(["red", "green"])
    keys = await keys_matching(redis_client, f"{index.keyspace.tag('search', 'docs')}:*")
    assert [k for k in keys if ":tmp:" in k] == [setop]  # the scripts' scratch keys are gone
    cached = [k for k in keys if ":result:" in k]
    assert len(cached) >= 12
    for key in [*cached, setop]:
        assert await redis_client.pttl(key) > 0, key


# -- re-indexing and removal -------------------------------------------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["index", "index", "remove"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.lists(st.sampled_from(_WORDS), max_size=4),
        st.none() | st.integers(0, 5),
    ),
    max_size=12,
)


async def assert_index_state(index: SearchIndex, docs: dict[str, dict[str, Any]]) -> None:
    """The postings, word sets, fields and document set are exactly those of ``docs``."""
    r = index.redis
    postings: dict[str, set[str]] = {}
    for docid, doc in docs.items():
        for word in doc["words"]:
            postings.setdefault(word, set()).add(docid)
    keys = await keys_matching(r, f"{index.keyspace.tag(index.kind, index.name)}:*")
    word_keys = {k for k in keys if ":word:" in k}
    assert word_keys == {index.word_key(w) for w in postings}
    for word, ids in postings.items():
        assert {text(m) for m in await r.smembers(index.word_key(word))} == ids
    for docid, doc in docs.items():
        assert await index.words(docid) == set(doc["words"])
    assert await index.documents() == set(docs)
    assert {k for k in keys if ":terms:" in k} == {
        index.terms_key(d) for d, doc in docs.items() if doc["words"]
    }
    for docid, doc in docs.items():
        expected = {} if doc["updated"] is None else {"updated": str(doc["updated"])}
        assert await index.fields(docid) == expected
        score = await r.zscore(index.field_key("updated"), docid)
        assert score == doc["updated"]
    assert {k for k in keys if ":doc:" in k} == {
        index.doc_key(d) for d, doc in docs.items() if doc["updated"] is not None
    }
    assert not [k for k in keys if ":tmp:" in k]


@SETTINGS
@given(ops=_OPS)
async def test_reindex_and_remove_leave_no_stale_postings(
    redis_client: Any, ops: list[tuple[str, str, list[str], int | None]]
) -> None:
    index = fresh(redis_client)
    docs: dict[str, dict[str, Any]] = {}
    for op, docid, words, updated in ops:
        if op == "remove":
            assert await index.remove_document(docid) == (docid in docs)
            docs.pop(docid, None)
        else:
            fields = None if updated is None else {"updated": updated}
            assert await index.index_document(docid, " ".join(words), fields=fields) == len(
                set(words)
            )
            kept = docs.get(docid, {}).get("updated") if fields is None else updated
            docs[docid] = {"words": set(words), "updated": kept}
    await assert_index_state(index, docs)


async def test_concurrent_reindexing_of_one_document_stays_consistent(redis_client: Any) -> None:
    index = SearchIndex(redis_client)
    contents = [" ".join(_WORDS[i : i + 3]) for i in range(5)]

    async def writer(k: int) -> None:
        for j in range(15):
            await index.index_document("doc", contents[(k + j) % len(contents)])

    await asyncio.gather(*(writer(k) for k in range(8)))
    words = await index.words("doc")
    assert " ".join(sorted(words)) in {" ".join(sorted(c.split())) for c in contents}
    await assert_index_state(index, {"doc": {"words": words, "updated": None}})


async def test_cancelled_calls_leave_no_stale_or_immortal_keys(redis_client: Any) -> None:
    """Cancel index, search and removal calls at every await point, one after another."""
    index = SearchIndex(redis_client)
    await index.index_document("keep", "red green", fields={"updated": 1})
    for steps in range(12):
        for make in (
            lambda: index.index_document("x", "red blue", fields={"updated": 3}),
            lambda: index.index_document("x", "green yellow"),
            lambda: index.search("red +green -blue"),
            lambda: SearchIndex(redis_client, server_sort=False).search("red green"),
            lambda: index.search_zsorted("red +blue"),
            lambda: index.remove_document("x"),
        ):
            task = asyncio.ensure_future(make())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await asyncio.sleep(0.05)  # let a cancelled script that was already sent finish
    words = await index.words("x")
    docs = {"keep": {"words": {"red", "green"}, "updated": 1}}
    if await redis_client.sismember(index.docs_key, "x"):
        fields = await index.fields("x")
        docs["x"] = {"words": words, "updated": int(fields["updated"]) if fields else None}
    await assert_index_state(index, docs)
    keys = await keys_matching(redis_client, f"{index.keyspace.tag('search', 'docs')}:*")
    for key in keys:
        if ":result:" in key:
            assert await redis_client.pttl(key) > 0


# -- fields ----------------------------------------------------------------------------------


async def test_fields_are_replaced_merged_and_incremented(redis_client_text: Any) -> None:
    r = redis_client_text
    index = SearchIndex(r)
    await index.index_document("a", "one", fields={"updated": 5, "title": "T", "votes": 1})
    await index.set_fields("a", {"votes": 2.5, "author": "me", "id": 10**20})
    assert await index.fields("a") == {
        "updated": "5",
        "title": "T",
        "votes": "2.5",
        "author": "me",
        "id": "100000000000000000000",
    }
    assert await index.incr_field("a", "votes", 2) == 4.5
    assert await r.zscore(index.field_key("votes"), "a") == 4.5
    await index.index_document("a", "two", fields={"title": "U"})  # replaces every field
    assert await index.fields("a") == {"title": "U"}
    assert await r.zscore(index.field_key("votes"), "a") is None
    await index.index_document("a", "three")  # fields=None keeps them
    assert await index.fields("a") == {"title": "U"}
    assert await index.incr_field("b", "votes") == 1.0  # a document not indexed yet


async def test_non_numeric_values_of_numeric_fields_are_rejected(redis_client: Any) -> None:
    for server_sort in (None, False):
        index = fresh(redis_client, server_sort=server_sort)
        await index.index_document("a", "word", fields={"updated": 1})
        await index.index_document("b", "word")
        await redis_client.hset(index.doc_key("b"), "updated", "soon")  # behind the index's back
        with pytest.raises(ValueError, match="not a number"):
            await index.search("word")
        await redis_client.hset(index.doc_key("b"), "updated", "")  # SORT reads '' as 0
        assert (await index.search("word")).ids == ["a", "b"]


#: Numbers written behind an index's back, with where they sort among 1 and 2 (None: refused).
#: SORT parses with strtod and refuses ERANGE (subnormal, overflow, underflow to 0). Redis 7.0
#: does not clear errno first, so after a refusal even a good value fails until some system
#: call resets it (a new connection does): the refused values come last.
_STRTOD = {
    "2.2250738585072014e-308": 0,
    "0e-400": 0,
    " 1.5": 1,
    "inf": 2,
    "-inf": 0,
    "1.7976931348623157e308": 2,
    "1 ": None,
    "nan": None,
    "5e-324": None,
    "-1e-310": None,
    "1e400": None,
    "1e-400": None,
}


async def test_values_out_of_a_doubles_range_are_refused_by_both_sorts(redis_client: Any) -> None:
    """SORT … BY (standalone) and the Lua sort (cluster, or server_sort=False) agree."""
    for server_sort in (None, False):
        index = fresh(redis_client, server_sort=server_sort)
        await index.index_document("a", "word", fields={"updated": 1})
        await index.index_document("c", "word", fields={"updated": 2})
        await index.index_document("b", "word")
        for value, place in _STRTOD.items():
            await redis_client.hset(index.doc_key("b"), "updated", value)
            if place is None:
                with pytest.raises(ValueError, match="not a number"):
                    await index.search("word", sort="updated")
            else:
                order = ["a", "c"]
                order.insert(place, "b")
                assert (await index.search("word", sort="updated")).ids == order, value


async def test_numbers_a_sort_would_refuse_are_refused_when_written(redis_client: Any) -> None:
    """A subnormal or a too-large number never gets into an index, on either topology."""
    index = fresh(redis_client)
    for value in (5e-324, -1e-310, 10**400, -(2**1024)):
        with pytest.raises(ValueError, match=r"subnormal|range|finite"):
            await index.index_document("a", "word", fields={"updated": value})
        with pytest.raises(ValueError, match=r"subnormal|range|finite"):
            await index.set_fields("a", {"votes": value})
        with pytest.raises(ValueError, match=r"subnormal|range|finite"):
            await index.incr_field("a", "votes", value)
    assert not await keys_matching(redis_client, f"{index.keyspace.tag('search', index.name)}:*")
    await index.index_document("a", "word", fields={"updated": 2.2250738585072014e-308})
    await index.set_fields("a", {"votes": 1.7e308})
    with pytest.raises(ValueError, match="range"):  # HINCRBYFLOAT would store 3.4e308
        await index.incr_field("a", "votes", 1.7e308)
    assert await index.fields("a") == {"updated": "2.2250738585072014e-308", "votes": "1.7e+308"}
    assert await redis_client.zscore(index.field_key("votes"), "a") == 1.7e308
    for server_sort in (None, False):
        sorted_index = SearchIndex(redis_client, index.name, server_sort=server_sort)
        assert (await sorted_index.search("word")).ids == ["a"]


async def test_numeric_fields_are_configurable(redis_client: Any) -> None:
    index = SearchIndex(redis_client, numeric_fields=["rank"])
    await index.index_document("a", "ww", fields={"rank": 10, "updated": "z"})
    await index.index_document("b", "ww", fields={"rank": 9, "updated": "y"})
    assert (await index.search("ww", sort="rank")).ids == ["b", "a"]
    assert (await index.search("ww", sort="-updated")).ids == ["a", "b"]  # text now
    assert (await index.search_zsorted("ww", weights={"rank": 1})).ids == ["a", "b"]
    with pytest.raises(ValueError, match="numeric_fields"):
        await index.search_zsorted("ww", weights={"updated": 1})


# -- bad input -------------------------------------------------------------------------------


async def test_queries_without_a_wanted_word_match_nothing(redis_client_text: Any) -> None:
    index = SearchIndex(redis_client_text)
    await index.index_document("a", "redis search")
    for query in ("", "   ", "the of and", "-redis", "-redis -search", "+", "- +", "a b c"):
        assert await index.match(query) == set()
        assert await index.search(query) == SearchResult(0, [], None)
        assert await index.search_zsorted(query) == SearchResult(0, [], None)
    assert await index.search("nothing") == SearchResult(0, [], None)


async def test_numbers_are_range_checked_before_redis() -> None:
    """Every number reaching Redis is checked first; nothing reaches the tripwire client."""
    index = SearchIndex(NO_REDIS)
    bad_calls: list[tuple[type[Exception], str, Any]] = [
        (ValueError, "start", lambda: index.search("redis", start=2**53 + 1)),
        (ValueError, "num", lambda: index.search("redis", num=2**63)),
        (ValueError, "start", lambda: index.search_zsorted("redis", start=2**62)),
        (ValueError, "num", lambda: index.search_zsorted("redis", num=2**64)),
        (TypeError, "start", lambda: index.search("redis", start=True)),
        (ValueError, "ttl", lambda: index.search("redis", ttl=1e10)),
        (ValueError, "ttl", lambda: index.search("redis", ttl=float("inf"))),
        (ValueError, "ttl", lambda: index.search_zsorted("redis", ttl=-1)),
        (ValueError, "ttl", lambda: index.intersect(["redis"], ttl=2e9)),
        (ValueError, "amount", lambda: index.incr_field("a", "votes", float("inf"))),
        (ValueError, "amount", lambda: index.incr_field("a", "votes", 10**400)),
        (TypeError, "amount", lambda: index.incr_field("a", "votes", True)),
        (ValueError, "votes", lambda: index.set_fields("a", {"votes": float("nan")})),
        (ValueError, "votes", lambda: index.set_fields("a", {"votes": 5e-324})),
        (ValueError, "votes", lambda: index.search_zsorted("redis", weights={"votes": 10**400})),
        (ValueError, "votes", lambda: index.search_zsorted("redis", weights={"votes": -1e-310})),
    ]
    for error, named, call in bad_calls:
        with pytest.raises(error, match=named):
            await call()
    with pytest.raises(ValueError, match="max_document_chars"):
        SearchIndex(NO_REDIS, max_document_chars=2**63)


async def test_bad_arguments_raise_before_touching_redis() -> None:
    index = SearchIndex(NO_REDIS)  # any Redis call would fail with AttributeError
    bad_calls: list[tuple[type[Exception], Any]] = [
        (TypeError, lambda: index.index_document(1, "x")),
        (ValueError, lambda: index.index_document("", "x")),
        (ValueError, lambda: index.index_document("a}b", "x")),
        (TypeError, lambda: index.index_document("a", b"x")),
        (TypeError, lambda: index.index_document("a", None)),
        (TypeError, lambda: index.index_document("a", "x", fields=[("updated", 1)])),
        (TypeError, lambda: index.index_document("a", "x", fields={"updated": "soon"})),
        (TypeError, lambda: index.index_document("a", "x", fields={"updated": True})),
        (ValueError, lambda: index.index_document("a", "x", fields={"updated": float("nan")})),
        (ValueError, lambda: index.index_document("a", "x", fields={"updated": float("inf")})),
        (TypeError, lambda: index.index_document("a", "x", fields={"title": None})),
        (ValueError, lambda: index.index_document("a", "x", fields={"": "v"})),
        (TypeError, lambda: index.set_fields("a", {"title": b"bytes"})),
        (ValueError, lambda: index.incr_field("a", "title")),
        (TypeError, lambda: index.incr_field("a", "votes", "1")),
        (TypeError, lambda: index.remove_document(None)),
        (TypeError, lambda: index.search(None)),
        (TypeError, lambda: index.search(b"redis")),
        (TypeError, lambda: index.search("x", sort=None)),
        (ValueError, lambda: index.search("x", sort="-")),
        (ValueError, lambda: index.search("x", start=-1)),
        (TypeError, lambda: index.search("x", num=2.0)),
        (ValueError, lambda: index.search("x", num=-1)),
        (ValueError, lambda: index.search("x", ttl=0)),
        (TypeError, lambda: index.search("x", ttl="1")),
        (ValueError, lambda: index.search("x", result_id="")),
        (TypeError, lambda: index.search("x", result_id=5)),
        (ValueError, lambda: index.search_zsorted("x", weights={"title": 1})),
        (ValueError, lambda: index.search_zsorted("x", weights={"votes": float("nan")})),
        (TypeError, lambda: index.search_zsorted("x", weights=[("votes", 1)])),
        (TypeError, lambda: index.search_zsorted("x", desc="yes")),
        (TypeError, lambda: index.match(["redis"])),
        (TypeError, lambda: index.intersect("content")),
        (ValueError, lambda: index.intersect([])),
        (ValueError, lambda: index.union(["a"], ttl=-1)),
        (ValueError, lambda: index.search(" ".join(f"w{i}" for i in range(MAX_QUERY_WORDS + 1)))),
    ]
    for error, call in bad_calls:
        with pytest.raises(error):
            await call()

    with pytest.raises(TypeError):
        SearchIndex(None)
    with pytest.raises(ValueError, match="empty"):
        SearchIndex(NO_REDIS, "")
    with pytest.raises(TypeError):
        SearchIndex(NO_REDIS, numeric_fields="updated")
    with pytest.raises(TypeError):
        SearchIndex(NO_REDIS, keyspace="app")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_document_chars"):
        SearchIndex(NO_REDIS, max_document_chars=0)


async def test_huge_documents_are_refused_and_large_ones_work(redis_client: Any) -> None:
    index = SearchIndex(redis_client, max_document_chars=100_000)
    with pytest.raises(ValueError, match="max_document_chars"):
        await index.index_document("big", "x" * 100_001)
    content = " ".join(f"w{i}" for i in range(12_000))  # more words than one unpack() takes
    assert await index.index_document("big", content[:100_000]) > 8_000
    assert await index.match("w11") == {"big"}
    await index.index_document("big", "small")
    assert await index.match("w11") == set()
    await assert_index_state(index, {"big": {"words": {"small"}, "updated": None}})


async def test_many_results_sort_in_both_paths(redis_client: Any) -> None:
    docs = {f"d{i:04}": i % 7 for i in range(2500)}  # more ids than one RPUSH chunk
    for server_sort in (None, False):
        index = fresh(redis_client, server_sort=server_sort)
        items = list(docs.items())
        for i in range(0, len(items), 100):
            await asyncio.gather(
                *(
                    index.index_document(d, "common", fields={"updated": u})
                    for d, u in items[i : i + 100]
                )
            )
        result = await index.search("common", sort="updated", start=2490, num=20)
        assert result.total == 2500
        expected = sorted(docs, key=lambda d: (docs[d], d))
        assert result.ids == expected[2490:]


async def test_one_index_per_tag_keeps_every_key_in_its_slot(redis_client: Any) -> None:
    from redis.crc import key_slot

    index = SearchIndex(redis_client, "slotted", keyspace=Keyspace("app"))
    await index.index_document("a:1", "alpha beta", fields={"updated": 1, "title": "x"})
    await index.search("alpha +beta -gamma")
    await index.search_zsorted("alpha", weights={"updated": 1})
    keys = await keys_matching(redis_client, "app:*")
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert all(k.startswith("app:search:{slotted}:") for k in keys)


async def test_works_through_autopipeline_and_after_a_script_flush(redis_client: Any) -> None:
    """Concurrent callers through an AutoPipeline; scripts reload after SCRIPT FLUSH."""
    async with AutoPipeline(redis_client) as ap:
        index = SearchIndex(ap)
        await asyncio.gather(
            *(
                index.index_document(f"d{i}", "shared words", fields={"updated": i})
                for i in range(20)
            )
        )
        pages = await asyncio.gather(*(index.search("shared", start=s, num=5) for s in range(4)))
        assert [p.total for p in pages] == [20] * 4
        assert pages[0].ids == ["d19", "d18", "d17", "d16", "d15"]
        await redis_client.script_flush()
        assert (await index.search("shared +words -nothing", sort="updated", num=2)).ids == [
            "d0",
            "d1",
        ]
        assert (await index.search_zsorted("words", num=1)).ids == ["d19"]
        assert await index.match("words -shared") == set()


async def test_indexes_do_not_share_anything(redis_client: Any) -> None:
    one, two = SearchIndex(redis_client, "one"), SearchIndex(redis_client, "two")
    await one.index_document("a", "shared word")
    await two.index_document("b", "shared word")
    assert await one.match("shared") == {"a"}
    assert await two.match("shared") == {"b"}
    assert repr(one) == "<SearchIndex 'aiorp:search:{one}'>"
