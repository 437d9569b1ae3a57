"""Search documents with an inverted index: boolean queries, sorted and cached, paged by id.

Redis in Action chapter 7 indexes each document under its words (one SET of document ids per word,
§7.1.1), answers queries with SET algebra (§7.1.2: ``+`` adds a synonym to the previous word,
``-`` excludes a word), sorts the matches by a field of each document's HASH with ``SORT … BY``
(§7.2.1) or by weighted numeric scores with ``ZINTERSTORE``/``ZUNIONSTORE`` (§7.2.2), and caches
the sorted result under an id so the next page is cheap. :class:`SearchIndex` does all of that,
with the book's gaps closed:

- **Re-indexing and removal** (the book only adds): each document keeps the SET of its words, and
  one script swaps old postings for new ones atomically, so no stale posting survives.
- **The cache hits.** The book refreshes ``id`` instead of ``idx:<id>``, so every page
  re-runs the search. Here a page request with the returned ``result_id`` reads the cached,
  already sorted result and refreshes its TTL; the cache key also carries a digest of the query
  and the order, so an id never answers a different question.
- **Redis Cluster.** One index lives under one hash tag, temporary keys included, so every step runs
  on one node. Redis refuses ``SORT`` with a ``BY`` pattern on a cluster (and to an ACL user
  without ``@dangerous`` or access to every key); Valkey 8 takes a same-slot pattern, but
  redis-py cannot queue ``SORT … STORE`` in a cluster MULTI, which keeping the stored result's
  TTL atomic needs. So on a cluster a Lua script reads the documents' fields (declared keys, all
  in the tag) and sorts them exactly as ``SORT`` would (see :meth:`SearchIndex.search`).
- **Words beyond** ``[a-z']``: see :func:`tokenize`.
- :func:`string_to_score` packs the first 6 UTF-8 bytes, so it handles any text.
- **Retry-safe steps**: writes of the same words and fields, and
  queries into keys named before the call, are idempotent; an increment and a removal keep their
  reply as a receipt under a token made per call, so a re-sent script adds or answers once.

Keys (``name`` is the index's name): ``<prefix>:search:{<name>}:word:<word>`` (SET of ids),
``…:terms:<id>`` (SET of the document's words), ``…:doc:<id>`` (HASH of its fields),
``…:field:<field>`` (ZSET id -> value, one per numeric field), ``…:docs`` (SET of ids),
``…:result:<result_id>:<digest>`` (cached result: LIST or ZSET, expires), ``…:tmp:<uuid>``
(scratch keys: deleted by the script that makes them, or expiring) and ``…:docs:<token>``
(receipts of increments and removals, expiring).
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, Final, NamedTuple

from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from ..core.checks import (
    AsyncRedis,
    check_client,
    check_count,
    check_float,
    check_int,
    check_keyspace,
    check_seconds,
    text,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script

__all__ = [
    "ParsedQuery",
    "SearchIndex",
    "SearchResult",
    "parse_query",
    "string_to_score",
    "string_to_score_generic",
    "tokenize",
    "zadd_string",
]

#: Common English function words, left out of the index and of queries (Redis in Action §7.1.1).
STOP_WORDS: Final = frozenset(
    """
    about above across after again against all almost also am among an and any are as at be
    because been before being below between both but by can cannot could did do does doing down
    during each either else ever every few for from further get got had has have having he her
    here hers herself him himself his how however if in into is it its itself just least let
    like likely may me might more most must my myself neither no nor not of off often on once only
    or other our ours ourselves out over own rather said say says she should since so some such
    than that the their theirs them themselves then there these they this those through tis to
    too twas under until up us very wants was we were what when where which while who whom why
    will with would yet you your yours yourself yourselves
    """.split()  # noqa: SIM905 - a word list reads better as text
)

#: Words shorter than this many characters are not indexed (the book's ``{2,}``).
MIN_WORD_LENGTH: Final = 2
#: Most distinct words one query may use: each is a key of one script call.
MAX_QUERY_WORDS: Final = 1000
#: The largest page ``start`` and ``num``: the scripts add them as Lua numbers (doubles), exact
#: up to 2**53, and a list or ZSET never holds that many ids anyway.
MAX_PAGE_INDEX: Final = 2**53
#: Default limit on a document's length, in characters (``max_document_chars``).
MAX_DOCUMENT_CHARS: Final = 1_000_000
#: Numeric fields by default: the book sorts ``updated``, ``id`` and ``created`` as numbers and
#: weights ``update`` times and ``votes`` (§7.2).
NUMERIC_FIELDS: Final = ("updated", "id", "created", "votes")

_RETRIES: Final = 100
_NOT_A_NUMBER = "One or more scores can't be converted into double"


# -- text -------------------------------------------------------------------------------------


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Return the word pattern and the query-term pattern (built once, on first use)."""
    # Combining marks (category M) belong to the word they follow: without them Devanagari or
    # decomposed accents would split words apart. They all sit in planes 0-1 and in the
    # variation selectors supplement, so only those are scanned.
    ranges: list[tuple[int, int]] = []
    for cp in (*range(0x20000), *range(0xE0100, 0xE01F0)):
        if unicodedata.category(chr(cp))[0] == "M":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    marks = "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges)
    char = rf"(?:[^\W_]|[{marks}])"
    word = rf"{char}+(?:'{char}+)*"
    # An operator counts only at the start of the query or after whitespace: "e-mail" is "e"
    # and "mail", not "e" and "-mail" as the book's regular expression reads it.
    return re.compile(word), re.compile(rf"(?:(?<!\S)([+-]))?'*({word})")


_APOSTROPHES: Final = str.maketrans({"\u2019": "'", "\u02bc": "'"})


def _normalize(text: str) -> str:
    # NFKC folds compatibility forms (ligatures, full-width letters, composed accents); casefold
    # is the Unicode case-insensitive form, and may decompose again, hence the second NFKC.
    folded = unicodedata.normalize("NFKC", text).casefold()
    return unicodedata.normalize("NFKC", folded).translate(_APOSTROPHES)


def _check_stop_words(stop_words: Iterable[str]) -> frozenset[str]:
    if isinstance(stop_words, str):
        raise TypeError("stop_words must be a collection of words, not a str")
    words = frozenset(stop_words)
    for word in words:
        if not isinstance(word, str):
            raise TypeError(f"stop words must be str, not {type(word).__name__}")
    return _Normalized(_normalize(w) for w in words)


def _stop_set(stop_words: Iterable[str]) -> frozenset[str]:
    # The default list is already normalized; a SearchIndex passes its own, normalized once.
    if stop_words is STOP_WORDS or isinstance(stop_words, _Normalized):
        return stop_words
    return _check_stop_words(stop_words)


class _Normalized(frozenset[str]):
    """Stop words already normalized (what :class:`SearchIndex` keeps)."""


def _keep(word: str, stop_words: frozenset[str]) -> bool:
    return len(word) >= MIN_WORD_LENGTH and word not in stop_words


def tokenize(content: str, stop_words: Iterable[str] = STOP_WORDS) -> set[str]:
    """Return the set of words of ``content`` that an index stores.

    Redis in Action §7.1.1 (``tokenize``) keeps runs of ``[a-z']``, so digits and every non-ASCII
    letter split words. Here the text is NFKC-normalized and case-folded, and a word is a run of
    Unicode letters, digits and combining marks (the underscore separates), with single
    apostrophes (``'`` or U+2019, stored as ``'``) kept inside it: ``"Don't"`` gives ``don't``,
    ``"Straße 42"`` gives ``strasse`` and ``42``. Words shorter than 2 characters and stop words
    are dropped.
    """
    if not isinstance(content, str):
        raise TypeError(f"content must be a str, not {type(content).__name__}")
    stop = _stop_set(stop_words)
    words, _ = _patterns()
    return {w for w in words.findall(_normalize(content)) if _keep(w, stop)}


class ParsedQuery(NamedTuple):
    """A query: every group must match (any word of a group will do); no excluded word may."""

    groups: list[list[str]]
    excluded: list[str]


def parse_query(query: str, stop_words: Iterable[str] = STOP_WORDS) -> ParsedQuery:
    """Split a query into synonym groups to intersect and words to exclude.

    Redis in Action §7.1.2 (``parse``): a word prefixed with ``+`` joins the previous word's group
    (its synonyms), a word prefixed with ``-`` is excluded, any other word starts a new group.
    Words are normalized as :func:`tokenize` does, and stop words and short words are skipped
    (with their prefix). A prefix counts only at the start of the query or after whitespace.
    Groups and excluded words keep their first-seen order, without repeats.
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, not {type(query).__name__}")
    stop = _stop_set(stop_words)
    _, terms = _patterns()
    groups: list[list[str]] = []
    excluded: list[str] = []
    for match in terms.finditer(_normalize(query)):
        prefix, word = match.group(1), match.group(2)
        if not _keep(word, stop):
            continue
        if prefix == "-":
            if word not in excluded:
                excluded.append(word)
        elif prefix == "+" and groups:
            if word not in groups[-1]:
                groups[-1].append(word)
        else:
            groups.append([word])
    return ParsedQuery(groups, excluded)


# -- string scores ----------------------------------------------------------------------------

#: Alphabets for :func:`string_to_score_generic`, in code point (and byte) order.
LOWER: Final = "abcdefghijklmnopqrstuvwxyz"
ALPHA: Final = "".join(sorted("ABCDEFGHIJKLMNOPQRSTUVWXYZ" + LOWER))
LOWER_NUMERIC: Final = "".join(sorted("0123456789" + LOWER))
ALPHA_NUMERIC: Final = "".join(sorted("0123456789" + ALPHA))


def string_to_score(value: str | bytes, *, ignore_case: bool = False) -> int:
    """Return a score whose order is the byte order of ``value``'s first 6 bytes.

    Redis in Action §7.2.2 (``string_to_score``) packs the first 6 *characters* base 257, which
    breaks for code points above 255. This packs the first 6 bytes of the UTF-8 encoding (str) or
    of the bytes themselves, so for any two values ``a < b`` (byte order, which for str is also
    code point order) implies ``score(a) <= score(b)``, equal only when both share their first 6
    bytes and are both longer than 6. The score is below 2**53, exact as a ZSET score.
    ``ignore_case`` lower-cases first (``str.lower``, or ASCII-only for bytes).
    """
    if isinstance(value, str):
        data = (value.lower() if ignore_case else value).encode("utf-8", "surrogatepass")
    elif isinstance(value, bytes | bytearray):
        data = bytes(value).lower() if ignore_case else bytes(value)
    else:
        raise TypeError(f"value must be a str or bytes, not {type(value).__name__}")
    score = 0
    for i in range(6):
        # 0 pads a shorter value, so "ab" sorts before "ab\x00"; each byte b counts b + 1.
        score = score * 257 + (data[i] + 1 if i < len(data) else 0)
    return score * 2 + (len(data) > 6)


def string_to_score_generic(value: str, alphabet: str) -> int:
    """Return a score ordering strings over ``alphabet`` by their first characters.

    Redis in Action §7.2.2 (``string_to_score_generic``): with ``k`` symbols (plus one for
    "no more characters"), the first ``floor(52 / log2(k + 1))`` characters fit in a score
    exactly (e.g. 10 with :data:`LOWER`: ``52 / log2(27)`` is 10.9). ``alphabet`` lists the
    allowed characters; its order is the order the scores follow. A character outside it raises
    ``ValueError`` (the book raises ``KeyError``).
    """
    if not isinstance(value, str):
        raise TypeError(f"value must be a str, not {type(value).__name__}")
    if not isinstance(alphabet, str):
        raise TypeError(f"alphabet must be a str, not {type(alphabet).__name__}")
    if len(set(alphabet)) != len(alphabet) or not alphabet:
        raise ValueError("alphabet must be non-empty and must not repeat characters")
    rank = {c: i for i, c in enumerate(alphabet)}
    base = len(alphabet) + 1
    length = int(52 / math.log2(base))
    score = 0
    for i in range(length):
        if i < len(value):
            try:
                digit = rank[value[i]] + 1
            except KeyError:
                raise ValueError(f"character {value[i]!r} is not in the alphabet") from None
        else:
            digit = 0
        score = score * base + digit
    return score * 2 + (len(value) > length)


async def zadd_string(
    redis: AsyncRedis, key: str, mapping: Mapping[str, str], *, ignore_case: bool = False
) -> int:
    """ZADD each member of ``mapping`` scored by :func:`string_to_score` of its string.

    Redis in Action §7.2.2 (``zadd_string``). Returns the number of members added.
    """
    check_client(redis)
    if not isinstance(key, str) or not key:
        raise TypeError("key must be a non-empty str")
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a mapping, not {type(mapping).__name__}")
    scores = {m: string_to_score(v, ignore_case=ignore_case) for m, v in mapping.items()}
    if not scores:
        return 0
    added: Any = await redis.zadd(key, scores)
    return int(added)


# -- helpers ----------------------------------------------------------------------------------


def check_ttl(ttl: object, what: str = "ttl") -> int:
    """Return a TTL in seconds as milliseconds (checked by ``check_seconds``).

    At least 1 ms, so a tiny TTL still makes the key expire rather than live for ever.
    """
    return max(1, round(check_seconds(ttl, what) * 1000))


def check_number(
    value: object, what: str, *, minimum: float | None = None, maximum: float | None = None
) -> str:
    """Return an int or float as the text Redis parses back to the same double, or raise.

    The value must be finite (:func:`~aiorpatterns.core.checks.check_float`, with its bounds) and 0
    or a normal double: Redis parses numbers with ``strtod``, and ``SORT`` refuses a whole sort
    when one value is out of range for it (``ERANGE``: a subnormal such as ``5e-324``, or an int
    beyond ``1.8e308``), where the Lua sort would go on.
    """
    number = check_float(value, what, minimum=minimum, maximum=maximum)
    if number and abs(number) < sys.float_info.min:
        raise ValueError(
            f"{what} must be 0 or at least {sys.float_info.min!r} in magnitude "
            f"(a subnormal double), got {value!r}"
        )
    # An int is sent as its digits (Redis reads them as the nearest double), a float as the
    # shortest text that reads back the same.
    return repr(value) if isinstance(value, float) else str(int(value))  # type: ignore[call-overload]


def _check_page(start: object, num: object) -> tuple[int, int]:
    """Return a page's ``start`` and ``num``, each at most :data:`MAX_PAGE_INDEX`."""
    return (
        check_int(start, "start", minimum=0, maximum=MAX_PAGE_INDEX),
        check_int(num, "num", minimum=0, maximum=MAX_PAGE_INDEX),
    )


def _check_words(words: object, what: str) -> list[str]:
    if isinstance(words, str | bytes) or not isinstance(words, Iterable):
        raise TypeError(f"{what} must be a collection of str")
    checked = [check_name(w, "word") for w in words]
    if not checked:
        raise ValueError(f"{what} must not be empty")
    if len(checked) > MAX_QUERY_WORDS:
        raise ValueError(f"{what} may hold at most {MAX_QUERY_WORDS} words")
    return checked


class SearchResult(NamedTuple):
    """One page of a search: the number of matches, the page's ids, the id of the cached result.

    ``result_id`` is None when nothing was cached (no match).
    """

    total: int
    ids: list[str]
    result_id: str | None


class SearchIndex:
    """A document index named ``name``, on one hash tag (Redis in Action §7.1-§7.2).

    ``numeric_fields`` are the fields that sort as numbers and can weight a
    :meth:`search_zsorted`; their values must be ints or floats. Other fields sort as text
    (``SORT … ALPHA``). ``stop_words`` are left out of documents and queries.
    ``max_document_chars`` bounds what one :meth:`index_document` call accepts. ``server_sort``
    chooses how :meth:`search` sorts: None (default) uses ``SORT … BY`` where the server and the
    client allow it and the Lua sort elsewhere, False always the Lua sort, True always ``SORT``.
    Results are plain ``str`` whether the client decodes responses or not; the client is the
    caller's (a ``Redis``, a ``RedisCluster`` or an ``AutoPipeline``) and is never closed here.
    """

    kind = "search"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "docs",
        *,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
        numeric_fields: Iterable[str] = NUMERIC_FIELDS,
        stop_words: Iterable[str] = STOP_WORDS,
        max_document_chars: int = MAX_DOCUMENT_CHARS,
        server_sort: bool | None = None,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        check_keyspace(keyspace)
        if isinstance(numeric_fields, str):
            raise TypeError("numeric_fields must be a collection of field names, not a str")
        if server_sort is not None and not isinstance(server_sort, bool):
            raise TypeError("server_sort must be None, True or False")
        self.name = name
        self.keyspace = keyspace
        self.numeric_fields: tuple[str, ...] = tuple(
            dict.fromkeys(check_name(f, "numeric field") for f in numeric_fields)
        )
        self.stop_words = _check_stop_words(stop_words)
        self.max_document_chars = check_count(max_document_chars, "max_document_chars")
        self.docs_key = keyspace.key(self.kind, name, "docs")
        self._server_sort = server_sort
        # SORT substitutes the first '*' of the pattern: one in the prefix or the name would be
        # replaced instead of the document id's place.
        self._doc_pattern = keyspace.key(self.kind, name, "doc", "*")
        if self._doc_pattern.count("*") != 1:
            self._server_sort = False

    # -- keys --

    def word_key(self, word: str) -> str:
        """The posting SET of ``word`` (document ids)."""
        return self.keyspace.key(self.kind, self.name, "word", check_name(word, "word"))

    def doc_key(self, docid: str) -> str:
        """The HASH of the fields of document ``docid`` (what :meth:`search` sorts by)."""
        return self.keyspace.key(self.kind, self.name, "doc", check_name(docid, "docid"))

    def terms_key(self, docid: str) -> str:
        """The SET of the words document ``docid`` is indexed under."""
        return self.keyspace.key(self.kind, self.name, "terms", check_name(docid, "docid"))

    def field_key(self, field: str) -> str:
        """The ZSET of numeric ``field`` (document id -> value), for weighted sorts."""
        return self.keyspace.key(self.kind, self.name, "field", check_name(field, "field"))

    def _temp_key(self) -> str:
        return self.keyspace.key(self.kind, self.name, "tmp", uuid.uuid4().hex)

    def _result_key(self, result_id: str, digest: str) -> str:
        return self.keyspace.key(
            self.kind, self.name, "result", check_name(result_id, "result_id"), digest
        )

    # -- text --

    def tokenize(self, content: str) -> set[str]:
        """Return the words of ``content`` this index stores (see :func:`tokenize`)."""
        return tokenize(content, self.stop_words)

    def parse(self, query: str) -> ParsedQuery:
        """Parse ``query`` with this index's stop words (see :func:`parse_query`)."""
        parsed = parse_query(query, self.stop_words)
        if sum(map(len, parsed.groups)) + len(parsed.excluded) > MAX_QUERY_WORDS:
            raise ValueError(f"query may use at most {MAX_QUERY_WORDS} words")
        return parsed

    # -- documents --

    def _check_fields(self, fields: object) -> list[object]:
        """Validate fields; return (name, value, index of its field ZSET or 0) triples."""
        if not isinstance(fields, Mapping):
            raise TypeError(f"fields must be a mapping, not {type(fields).__name__}")
        triples: list[object] = []
        for name, value in fields.items():
            check_name(name, "field name")
            if name in self.numeric_fields:
                number = check_number(value, f"numeric field {name!r}")
                triples += [name, number, self.numeric_fields.index(name) + 1]
            elif isinstance(value, str):
                triples += [name, value, 0]
            elif isinstance(value, int | float) and not isinstance(value, bool):
                triples += [name, check_number(value, f"field {name!r}"), 0]
            else:
                raise TypeError(f"field {name!r} must be a str, int or float")
        return triples

    async def index_document(
        self, docid: str, content: str, *, fields: Mapping[str, str | int | float] | None = None
    ) -> int:
        """Index ``content`` as document ``docid``, replacing what it was indexed under before.

        Returns the number of distinct words indexed. ``fields`` (if given) replaces the
        document's fields; None keeps them. Redis in Action §7.1.1 (``index_document``), made
        re-indexable: the words the document no longer has stop pointing at it, atomically.
        """
        check_name(docid, "docid")
        if not isinstance(content, str):
            raise TypeError(f"content must be a str, not {type(content).__name__}")
        if len(content) > self.max_document_chars:
            raise ValueError(
                f"content has {len(content)} characters, more than max_document_chars "
                f"({self.max_document_chars})"
            )
        triples = None if fields is None else self._check_fields(fields)
        words = sorted(self.tokenize(content))
        return await self._replace(docid, words, "index", triples)

    async def remove_document(self, docid: str) -> bool:
        """Remove document ``docid``: its postings, its words and its fields.

        Returns whether it was indexed. (The book has no removal, §7.1.1.)
        """
        check_name(docid, "docid")
        return bool(await self._replace(docid, [], "remove", None))

    async def _replace(
        self, docid: str, words: list[str], mode: str, triples: list[object] | None
    ) -> int:
        fixed = [self.terms_key(docid), self.doc_key(docid), self.docs_key]
        fixed += [self.field_key(f) for f in self.numeric_fields]
        new_keys = [self.word_key(w) for w in words]
        old: list[str] = []  # a first guess; the script answers with the real words if wrong
        fields = [] if triples is None else triples
        token = uuid.uuid4().hex  # one per call: a retried removal finds its receipt
        for _ in range(_RETRIES):
            keys = [*fixed, *new_keys, *(self.word_key(w) for w in old)]
            args: list[object] = [docid, len(self.numeric_fields), len(words), len(old), mode]
            args += ["0" if triples is None else "1", len(fields) // 3, token]
            args += [*words, *old, *fields]
            reply = await script("search_index")(self.redis, keys, args)
            if not isinstance(reply, list):
                return int(reply)
            old = [text(w) for w in reply]
        raise RuntimeError(f"document {docid!r} kept changing while it was being re-indexed")

    async def words(self, docid: str) -> set[str]:
        """Return the words document ``docid`` is indexed under."""
        return {text(w) for w in await self.redis.smembers(self.terms_key(docid))}

    async def documents(self) -> set[str]:
        """Return the ids of every indexed document."""
        return {text(d) for d in await self.redis.smembers(self.docs_key)}

    async def set_fields(self, docid: str, fields: Mapping[str, str | int | float]) -> None:
        """Set fields of document ``docid`` (others are kept): what :meth:`search` sorts by.

        Numeric fields also go to their ZSET for :meth:`search_zsorted`, in the same step. The
        book writes ``kb:doc:<id>`` with HMSET itself (§7.2.1).
        """
        check_name(docid, "docid")
        triples = self._check_fields(fields)
        if not triples:
            return
        zsets = [self.field_key(f) for f in self.numeric_fields]
        keys = [self.doc_key(docid), self.docs_key, *zsets]
        await script("search_fields")(self.redis, keys, [docid, "set", "", *triples])

    async def incr_field(self, docid: str, field: str, amount: int | float = 1) -> float:
        """Add ``amount`` to numeric ``field`` of document ``docid`` (e.g. votes); return it."""
        check_name(docid, "docid")
        if field not in self.numeric_fields:
            raise ValueError(f"field {field!r} is not one of numeric_fields")
        number = check_number(amount, "amount")
        keys = [self.doc_key(docid), self.docs_key, self.field_key(field)]
        token = uuid.uuid4().hex  # a retried increment finds its receipt and adds nothing
        try:
            reply = await script("search_fields")(
                self.redis, keys, [docid, "incr", token, field, number, 1]
            )
        except ResponseError as exc:
            if str(exc).startswith("RANGE"):
                raise ValueError(
                    f"adding {number} to {field!r} leaves the range of a double"
                ) from exc
            raise
        return float(text(reply))

    async def fields(self, docid: str) -> dict[str, str]:
        """Return the fields of document ``docid``, as text."""
        raw = await self.redis.hgetall(self.doc_key(docid))
        return {text(k): text(v) for k, v in raw.items()}

    # -- the book's SET helpers --

    async def _setop(self, op: str, words: object, ttl: float) -> str:
        ttl_ms = check_ttl(ttl)
        keys = [self._temp_key(), *(self.word_key(w) for w in _check_words(words, "words"))]
        await script("search_setop")(self.redis, keys, [op, ttl_ms])
        return keys[0]

    async def intersect(self, words: Iterable[str], *, ttl: float = 30.0) -> str:
        """Store the ids of documents having every word in a temporary SET; return its key.

        The SET expires after ``ttl`` seconds. Redis in Action §7.1.2 (``intersect``).
        """
        return await self._setop("SINTERSTORE", words, ttl)

    async def union(self, words: Iterable[str], *, ttl: float = 30.0) -> str:
        """Store the ids of documents having any of the words in a temporary SET; return its key.

        Redis in Action §7.1.2 (``union``).
        """
        return await self._setop("SUNIONSTORE", words, ttl)

    async def difference(self, words: Iterable[str], *, ttl: float = 30.0) -> str:
        """Store the ids having the first word but none of the others; return the SET's key.

        Redis in Action §7.1.2 (``difference``).
        """
        return await self._setop("SDIFFSTORE", words, ttl)

    # -- queries --

    def _plan(self, parsed: ParsedQuery) -> tuple[list[str], list[object]]:
        """The keys and arguments of a parsed query (see lua/_search_plan.lua)."""
        keys = [self._temp_key()]
        args: list[object] = [len(parsed.groups), *map(len, parsed.groups), len(parsed.excluded)]
        for group in parsed.groups:
            if len(group) > 1:
                keys.append(self._temp_key())
            keys += [self.word_key(w) for w in group]
        keys += [self.word_key(w) for w in parsed.excluded]
        return keys, args

    async def match(self, query: str) -> set[str]:
        """Return the ids of every document matching ``query``, unsorted.

        Redis in Action §7.1.2 (``parse_and_search``), in one atomic script. A query without a
        word to look for (empty, stop words only, exclusions only) matches nothing.
        """
        parsed = self.parse(query)
        if not parsed.groups:
            return set()
        keys, args = self._plan(parsed)
        ids = await script("search_members")(self.redis, keys, args)
        return {text(i) for i in ids}

    async def search(
        self,
        query: str,
        *,
        sort: str = "-updated",
        start: int = 0,
        num: int = 20,
        result_id: str | None = None,
        ttl: float = 300.0,
    ) -> SearchResult:
        """Return one page of the documents matching ``query``, sorted by a field.

        ``sort`` names a field of the documents (see :meth:`set_fields`), prefixed with ``-`` for
        descending order; numeric fields sort as numbers (a missing value counts 0, ties go by
        id), others by the bytes of their text (missing values first). Pass the ``result_id`` of
        an earlier page (same query, same sort) to read the cached result instead of searching
        again; its TTL restarts at ``ttl`` seconds.

        Redis in Action §7.2.1 (``search_and_sort``). Where the server takes it, ``SORT … BY
        …->field … STORE`` sorts (in one MULTI with the query, its PEXPIRE and the first page).
        Redis Cluster refuses ``SORT`` with a ``BY`` pattern, as does an ACL user without
        ``@dangerous``; there one Lua script runs the query, reads the field of each match (the
        documents' HASHes are declared keys, all in the index's tag), sorts the same way and
        caches the result, atomically. SORT leaves text ties in no particular order; the script
        orders them by id.
        """
        parsed = self.parse(query)
        if not isinstance(sort, str):
            raise TypeError(f"sort must be a str, not {type(sort).__name__}")
        desc = sort.startswith("-")
        field = check_name(sort[1:] if desc else sort, "sort field")
        alpha = field not in self.numeric_fields
        start, num = _check_page(start, num)
        ttl_ms = check_ttl(ttl)
        if result_id is not None:
            check_name(result_id, "result_id")
        if not parsed.groups:
            return SearchResult(0, [], None)
        digest = _digest("sort", parsed, sort if desc else f"+{field}")
        if result_id is not None:
            page = await self._page(self._result_key(result_id, digest), ttl_ms, start, num, desc)
            if page is not None:
                return SearchResult(page[0], page[1], result_id)
        new_id = uuid.uuid4().hex
        cache_key = self._result_key(new_id, digest)
        sorter = self._server_sorted if await self._use_server_sort() else self._script_sorted
        total, ids = await sorter(parsed, cache_key, field, alpha, desc, ttl_ms, start, num)
        return SearchResult(total, ids, new_id if total else None)

    async def _page(
        self, cache_key: str, ttl_ms: int, start: int, num: int, desc: bool
    ) -> tuple[int, list[str]] | None:
        reply = await script("search_page")(
            self.redis, [cache_key], [ttl_ms, start, num, int(desc)]
        )
        if reply is None:
            return None
        return int(reply[0]), [text(i) for i in reply[1]]

    async def _use_server_sort(self) -> bool:
        if self._server_sort is None:
            self._server_sort = await self._probe_server_sort()
        return self._server_sort

    async def _probe_server_sort(self) -> bool:
        # redis-py runs MULTI only on a standalone connection (its cluster pipeline cannot queue
        # multi-key commands such as SORT … STORE), and SORT … STORE needs one to stay atomic
        # with the PEXPIRE of its result.
        if not isinstance(self.redis.pipeline(transaction=True), Pipeline):
            return False
        probe = self.keyspace.key(self.kind, self.name, "probe")
        try:
            pattern = f"{self._doc_pattern}->updated"
            await self.redis.execute_command("SORT", probe, "BY", pattern, "LIMIT", 0, 0)
        except ResponseError:  # a cluster, or an ACL user without @dangerous / all keys
            return False
        return True

    async def _server_sorted(
        self,
        parsed: ParsedQuery,
        cache_key: str,
        field: str,
        alpha: bool,
        desc: bool,
        ttl_ms: int,
        start: int,
        num: int,
    ) -> tuple[int, list[str]]:
        """SORT … BY in one MULTI: query, sort, store, expire, read the first page."""
        plan_keys, plan_args = self._plan(parsed)
        single = len(parsed.groups) == 1 and len(parsed.groups[0]) == 1 and not parsed.excluded
        source = plan_keys[1] if single else plan_keys[0]
        command: list[Any] = ["SORT", source, "BY", f"{self._doc_pattern}->{field}"]
        command += ["ALPHA"] if alpha else []
        command += ["DESC"] if desc else []
        async with self.redis.pipeline(transaction=True) as pipe:
            if not single:
                store = script("search_store")
                store.queue(pipe, plan_keys, [ttl_ms, *plan_args])
            pipe.execute_command(*command, "STORE", cache_key)
            pipe.execute_command("PEXPIRE", cache_key, ttl_ms)
            if not single:
                pipe.execute_command("DEL", source)
            if num:
                pipe.execute_command("LRANGE", cache_key, start, start + num - 1)
            try:
                replies = await pipe.execute()
            except ResponseError as exc:
                if _NOT_A_NUMBER in str(exc):
                    raise ValueError(f"a value of numeric field {field!r} is not a number") from exc
                raise
        total = int(replies[0 if single else 1])  # SORT … STORE answers the length stored
        return total, [text(i) for i in replies[-1]] if num else []

    async def _script_sorted(
        self,
        parsed: ParsedQuery,
        cache_key: str,
        field: str,
        alpha: bool,
        desc: bool,
        ttl_ms: int,
        start: int,
        num: int,
    ) -> tuple[int, list[str]]:
        """The Lua sort: query, sort and cache in one script, which must be told the matches.

        Each document's HASH is a declared key, and the matches are known only once the query
        has run: the script sorts only if the matches are those declared, else it answers with
        them and the next call declares those (the first call declares none).
        """
        plan_keys, plan_args = self._plan(parsed)
        head: list[object] = [ttl_ms, start, num, field, int(alpha), int(desc), len(plan_keys)]
        ids: list[str] = []
        for _ in range(_RETRIES):
            keys = [cache_key, *plan_keys, *(self.doc_key(i) for i in ids)]
            try:
                total, page = await script("search_sort")(
                    self.redis, keys, [*head, *plan_args, *ids]
                )
            except ResponseError as exc:
                if "NOTNUMBER" in str(exc):
                    raise ValueError(f"a value of numeric field {field!r} is not a number") from exc
                raise
            if int(total) >= 0:
                return int(total), [text(i) for i in page]
            ids = [text(i) for i in page]
        raise RuntimeError(f"the matches of {parsed} kept changing while they were being sorted")

    async def search_zsorted(
        self,
        query: str,
        *,
        weights: Mapping[str, float] | None = None,
        desc: bool = True,
        start: int = 0,
        num: int = 20,
        result_id: str | None = None,
        ttl: float = 300.0,
    ) -> SearchResult:
        """Return one page of the documents matching ``query``, by weighted numeric fields.

        A document scores the sum of ``weight * value`` over ``weights`` (numeric fields; default
        ``{"updated": 1.0}``, the book's ``update=1, vote=0``), added in the order given; a field
        the document has no value for adds nothing (the book's ``ZINTERSTORE`` drops such
        documents). Highest first when ``desc``; ties go by id. Pages and ``result_id`` work as
        in :meth:`search` (the cache holds the scores, so either direction reads it).

        Redis in Action §7.2.2 (``search_and_zsort``), in one script on both topologies.
        """
        parsed = self.parse(query)
        if weights is None:
            weights = {"updated": 1.0}
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a mapping, not {type(weights).__name__}")
        weighted: list[tuple[str, str]] = []
        for name, weight in weights.items():
            if name not in self.numeric_fields:
                raise ValueError(f"weights: {name!r} is not one of numeric_fields")
            number = check_number(weight, f"weight of {name!r}")
            if float(number) != 0:  # a zero weight adds nothing: skip its ZINTERSTORE
                weighted.append((name, number))
        if not isinstance(desc, bool):
            raise TypeError("desc must be a bool")
        start, num = _check_page(start, num)
        ttl_ms = check_ttl(ttl)
        if result_id is not None:
            check_name(result_id, "result_id")
        if not parsed.groups:
            return SearchResult(0, [], None)
        digest = _digest("zsort", parsed, repr(weighted))
        if result_id is not None:
            page = await self._page(self._result_key(result_id, digest), ttl_ms, start, num, desc)
            if page is not None:
                return SearchResult(page[0], page[1], result_id)
        new_id = uuid.uuid4().hex
        plan_keys, plan_args = self._plan(parsed)
        keys = [self._result_key(new_id, digest), self._temp_key()]
        keys += [self.field_key(name) for name, _ in weighted]
        keys += plan_keys
        args: list[object] = [ttl_ms, start, num, int(desc), len(weighted)]
        args += [weight for _, weight in weighted]
        args += plan_args
        reply = await script("search_zsort")(self.redis, keys, args)
        total = int(reply[0])
        return SearchResult(total, [text(i) for i in reply[1]], new_id if total else None)

    def __repr__(self) -> str:
        return f"<SearchIndex {self.keyspace.tag(self.kind, self.name)!r}>"


def _digest(kind: str, parsed: ParsedQuery, order: str) -> str:
    """A short digest of what a cached result answers: the query (canonical form) and order."""
    canonical = (sorted(sorted(g) for g in parsed.groups), sorted(parsed.excluded), kind, order)
    data = repr(canonical).encode("utf-8", "surrogatepass")
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()[:16]
