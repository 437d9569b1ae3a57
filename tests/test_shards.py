"""Test client-side sharding (Redis in Action chapter 10): placement, scatter-gather, merged pages.

The shards are real servers: on the standalone topology the session server plus two extra
standalone servers this module starts (and stops); on the cluster, one index (or ZSET) per hash
tag of the session cluster. Merged results are compared with a brute-force Python model over
random corpora, page by page (no repeats, no gaps), and with one index holding every document.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import NO_REDIS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.core.errors import ShardsUnavailableError
from aiorpatterns.scaling.shards import (
    ShardedClients,
    sharded_zrangebyscore,
    syndicate,
    zrangebyscore_merged,
)
from aiorpatterns.scaling.shardsearch import (
    ShardedSearch,
    ShardedSearchResult,
    to_numeric_key,
    to_string_key,
)
from aiorpatterns.search.index import SearchIndex, parse_query, tokenize
from aiorpatterns.testing.server import RedisServer, free_port

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
WORDS = ["alpha", "beta", "gamma", "delta", "omega"]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def dead_client() -> Redis:
    """A client on a port nothing listens on: any Redis call raises ConnectionError at once."""
    return Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))


def make_search(clients: list[Any], **options: Any) -> ShardedSearch:
    """One index per shard, each under its own name (its own tag on a cluster)."""
    run = uuid.uuid4().hex[:8]
    return ShardedSearch([SearchIndex(c, f"s{n}-{run}", **options) for n, c in enumerate(clients)])


# -- the brute-force model --------------------------------------------------------------------

Doc = tuple[list[str], dict[str, Any]]


def model_matches(docs: dict[str, Doc], query: str) -> list[str]:
    parsed = parse_query(query)
    if not parsed.groups:
        return []
    found = []
    for docid, (words, _) in docs.items():
        have = tokenize(" ".join(words))
        if all(have & set(g) for g in parsed.groups) and not have & set(parsed.excluded):
            found.append(docid)
    return found


def model_sorted(docs: dict[str, Doc], query: str, sort: str) -> list[str]:
    desc = sort.startswith("-")
    field = sort.lstrip("-")
    numeric = field in ("updated", "votes")

    def key(docid: str) -> Any:
        value = docs[docid][1].get(field)
        raw = None if value is None else str(value)
        return (to_numeric_key(raw) if numeric else to_string_key(raw), docid)

    ordered = sorted(model_matches(docs, query), key=key)
    return ordered[::-1] if desc else ordered


def model_zsorted(
    docs: dict[str, Doc], query: str, weights: dict[str, float], desc: bool
) -> list[str]:
    def key(docid: str) -> tuple[float, str]:
        score = 0.0
        for name, weight in weights.items():
            value = docs[docid][1].get(name)
            if weight and value is not None:
                score += float(value) * weight
        return (score, docid)

    ordered = sorted(model_matches(docs, query), key=key)
    return ordered[::-1] if desc else ordered


def values_of(docs: dict[str, Doc], ids: list[str], field: str) -> list[Any]:
    return [to_string_key(None if (v := docs[i][1].get(field)) is None else v) for i in ids]


async def load(search: ShardedSearch, docs: dict[str, Doc]) -> None:
    for docid, (words, fields) in docs.items():
        await search.index_document(docid, " ".join(words), fields=fields)


async def all_pages(run: Any, num: int) -> tuple[list[str], int]:
    """Read every page of ``num`` with the returned result ids; return the ids and the total."""
    got: list[str] = []
    result_ids = None
    start = 0
    total = -1
    while True:
        page: ShardedSearchResult = await run(start=start, num=num, result_ids=result_ids)
        assert total in (-1, page.total)
        total = page.total
        assert page.missing == ()
        got += page.ids
        if len(page.ids) < num:
            return got, total
        result_ids = page.result_ids
        start += num


docs_strategy = st.dictionaries(
    st.from_regex(r"d[0-9]{1,2}", fullmatch=True),
    st.tuples(
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
        st.fixed_dictionaries(
            {},
            optional={
                "updated": st.integers(0, 4),
                "votes": st.sampled_from([0, 1, 2.5, -3]),
                "title": st.sampled_from(["", "a", "b", "ab", "é"]),
            },
        ),
    ),
    max_size=25,
)
query_strategy = st.builds(
    lambda a, syn, ex: " ".join([a, *([f"+{syn}"] if syn else []), *([f"-{ex}"] if ex else [])]),
    st.sampled_from(WORDS),
    st.none() | st.sampled_from(WORDS),
    st.none() | st.sampled_from(WORDS),
)


# -- placement --------------------------------------------------------------------------------


def test_placement_is_a_stable_crc32() -> None:
    clients = [Redis(host="127.0.0.1", port=free_port()) for _ in range(5)]
    shards = ShardedClients(clients)
    assert len(shards) == 5
    assert list(shards) == clients
    for key in ("user:1", "home:42", "é", 17):
        assert shards.shard_for(key) == zlib.crc32(str(key).encode()) % 5
        assert shards.client_for(key) is clients[shards.shard_for(key)]
    # a relation between two ids lands on one shard whatever the order (KeyDataShardedConnection)
    assert shards.shard_for_ids(42, 7) == shards.shard_for_ids(7, 42) == shards.shard_for("7:42")
    assert shards.shard_for_ids(10, 9) == shards.shard_for("9:10")  # numbers sort as numbers
    assert shards.client_for_ids("b", "a") is clients[shards.shard_for("a:b")]
    assert shards[4] is clients[4]
    with pytest.raises(IndexError):
        shards[5]


def test_book_merge_keys() -> None:
    assert to_numeric_key(None) == 0.0
    assert to_numeric_key(b"2.5") == 2.5
    assert to_numeric_key("junk") == 0.0
    assert to_numeric_key("nan") == 0.0
    assert to_string_key(None) < to_string_key("") < to_string_key("a") == to_string_key(b"a")


async def test_bad_input_is_refused_before_redis() -> None:
    dead = dead_client()
    shards = ShardedClients([dead, dead])
    search = ShardedSearch([SearchIndex(dead, "a"), SearchIndex(dead, "b")])
    bad: list[tuple[type[Exception], Any]] = [
        (TypeError, lambda: ShardedClients("abc")),
        (ValueError, lambda: ShardedClients([])),
        (TypeError, lambda: ShardedClients([None])),
        (ValueError, lambda: ShardedClients([dead], timeout=0)),
        (TypeError, lambda: ShardedClients([dead], timeout="1")),  # type: ignore[arg-type]
        (TypeError, lambda: shards.shard_for(1.5)),  # type: ignore[arg-type]
        (TypeError, lambda: shards.shard_for_ids(1, "a")),
        (ValueError, lambda: shards.shard_for_ids()),
        (TypeError, lambda: ShardedSearch([dead])),  # type: ignore[list-item]
        (ValueError, lambda: ShardedSearch([])),
        (TypeError, lambda: search.index_for(3)),  # type: ignore[arg-type]
    ]
    for error, make in bad:
        with pytest.raises(error):
            make()
    calls: list[tuple[type[Exception], Any]] = [
        (TypeError, search.search(3)),  # type: ignore[arg-type]
        (TypeError, search.search("alpha", sort=1)),  # type: ignore[arg-type]
        (ValueError, search.search("alpha", sort="-")),
        (ValueError, search.search("alpha", start=-1)),
        (TypeError, search.search("alpha", num=1.0)),  # type: ignore[arg-type]
        (ValueError, search.search("alpha", ttl=0)),
        (ValueError, search.search("alpha", result_ids=["x"])),
        (TypeError, search.search("alpha", result_ids="xy")),
        (ValueError, search.search("alpha", result_ids=["x", "}"])),
        (TypeError, search.search("alpha", partial=1)),  # type: ignore[arg-type]
        (ValueError, search.search_zsorted("alpha", weights={"nope": 1})),
        (TypeError, search.search_zsorted("alpha", weights=[1])),  # type: ignore[arg-type]
        (ValueError, search.search_zsorted("alpha", weights={"votes": math.inf})),
        (TypeError, search.search_zsorted("alpha", desc=None)),  # type: ignore[arg-type]
        (TypeError, shards.scatter(None)),  # type: ignore[arg-type]
        (TypeError, sharded_zrangebyscore([dead], "z")),  # type: ignore[arg-type]
        (ValueError, sharded_zrangebyscore(shards, "")),
        (ValueError, sharded_zrangebyscore(shards, "z", num=0)),
        (ValueError, sharded_zrangebyscore(shards, "z", min=math.nan)),
        (TypeError, sharded_zrangebyscore(shards, "z", after=(1.0, "a"))),  # type: ignore[arg-type]
        (TypeError, sharded_zrangebyscore(shards, "z", after="a")),  # type: ignore[arg-type]
        (ValueError, zrangebyscore_merged([])),
        (TypeError, zrangebyscore_merged([dead])),  # type: ignore[list-item]
        (ValueError, zrangebyscore_merged([(dead, "z")], timeout=-1)),
        (ValueError, syndicate(shards, "f", shards, "post", math.inf)),
        (ValueError, syndicate(shards, "f", shards, "post", 1.0, keep=0)),
        (TypeError, syndicate(shards, "f", [dead], "post", 1.0)),  # type: ignore[arg-type]
    ]
    for error, call in calls:
        with pytest.raises(error):
            await call
    await dead.aclose()


# -- scatter, and shards that do not answer ---------------------------------------------------


async def test_a_down_shard_is_an_error_or_reported(redis_client: Any) -> None:
    dead = dead_client()
    shards = ShardedClients([redis_client, dead, redis_client])
    with pytest.raises(ShardsUnavailableError) as caught:
        await shards.scatter(lambda c: c.ping())
    assert caught.value.missing == (1,)
    assert "shard 1" in str(caught.value)
    replies, missing = await shards.scatter(lambda c: c.ping(), partial=True)
    assert replies == [True, None, True]
    assert missing == (1,)
    # a wrong question is not a missing shard: it is raised as is
    with pytest.raises(TypeError):
        await ShardedClients([redis_client]).scatter(lambda c: c.get())

    search = ShardedSearch([SearchIndex(redis_client, "up"), SearchIndex(dead, "down")])
    await search.indexes[0].index_document("d1", "alpha beta", fields={"updated": 1})
    with pytest.raises(ShardsUnavailableError):
        await search.search("alpha")
    page = await search.search("alpha", partial=True)
    assert page == ShardedSearchResult(1, ["d1"], (page.result_ids[0], None), (1,))
    with pytest.raises(ShardsUnavailableError):
        await zrangebyscore_merged([(redis_client, "z"), (dead, "z")])
    await dead.aclose()


@contextlib.asynccontextmanager
async def hung_server(accepted: list[float]) -> AsyncIterator[int]:
    """A port that accepts connections and never answers (a stuck shard)."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(asyncio.get_running_loop().time())
        writers.append(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_stuck_shards_time_out_together(redis_client: Any) -> None:
    accepted: list[float] = []
    async with hung_server(accepted) as port1, hung_server(accepted) as port2:
        stuck = [
            Redis(host="127.0.0.1", port=p, retry=Retry(NoBackoff(), 0)) for p in (port1, port2)
        ]
        try:
            shards = ShardedClients([stuck[0], redis_client, stuck[1]], timeout=0.5)
            with pytest.raises(ShardsUnavailableError) as caught:
                await shards.scatter(lambda c: c.ping())
            assert caught.value.missing == (0, 2)
            assert all(isinstance(e, TimeoutError) for e in caught.value.errors.values())
            # the shards were asked at once: the second was connected to before the first
            # shard's timeout ran out (the book's loop would ask them one after the other)
            assert len(accepted) == 2
            assert accepted[1] - accepted[0] < 0.5

            search = ShardedSearch(
                [SearchIndex(redis_client, "ok"), SearchIndex(stuck[0], "stuck")], timeout=0.3
            )
            page = await search.search_zsorted("alpha", partial=True)
            assert page.missing == (1,)
            assert page.ids == []
        finally:
            for client in stuck:
                await client.aclose()


# -- scatter-gather search --------------------------------------------------------------------


async def test_book_scenario_equals_one_index(shard_clients: list[Any]) -> None:
    """Index documents over three shards; every sort equals one index holding them all."""
    search = make_search(shard_clients, server_sort=False)
    single = SearchIndex(shard_clients[0], f"all-{uuid.uuid4().hex[:8]}", server_sort=False)
    docs: dict[str, Doc] = {}
    for n in range(40):
        words = [WORDS[n % 5], WORDS[(n * 3) % 5], "content"]
        fields: dict[str, Any] = {"updated": n % 7, "votes": (n * 13) % 5, "title": f"t{n % 4}"}
        docs[f"doc{n}"] = (words, fields)
    await load(search, docs)
    for docid, (words, fields) in docs.items():
        await single.index_document(docid, " ".join(words), fields=fields)
    assert {len(await i.documents()) for i in search.indexes} != {0}  # spread over shards
    assert sum([len(await i.documents()) for i in search.indexes]) == 40
    for query in ("content", "alpha +beta", "content -gamma", "nothing"):
        for sort in ("-updated", "updated", "title", "-title", "votes"):
            want = await single.search(query, sort=sort, num=100)
            got = await search.search(query, sort=sort, num=100)
            assert (got.total, got.ids) == (want.total, want.ids), (query, sort)
            assert got.ids == model_sorted(docs, query, sort)
        for weights in ({"updated": 1, "votes": 2}, {"votes": -1.5}):
            for desc in (True, False):
                want = await single.search_zsorted(query, weights=weights, desc=desc, num=100)
                got = await search.search_zsorted(query, weights=weights, desc=desc, num=100)
                assert (got.total, got.ids) == (want.total, want.ids), (query, weights, desc)


@SETTINGS
@given(
    docs=docs_strategy,
    query=query_strategy,
    sort=st.sampled_from(["updated", "-updated", "votes", "-votes", "title", "-title"]),
    num=st.integers(1, 6),
    server_sort=st.sampled_from([None, False]),
)
async def test_sorted_pages_equal_a_brute_force_model(
    shard_clients: list[Any],
    docs: dict[str, Doc],
    query: str,
    sort: str,
    num: int,
    server_sort: bool | None,
) -> None:
    search = make_search(shard_clients, server_sort=server_sort)
    await load(search, docs)
    want = model_sorted(docs, query, sort)
    got, total = await all_pages(lambda **kw: search.search(query, sort=sort, **kw), num)
    assert total == len(want)
    if sort.lstrip("-") == "title" and server_sort is None:
        # SORT … ALPHA leaves ties in no defined order: same documents, same order of values
        assert sorted(got) == sorted(want)
        assert values_of(docs, got, "title") == values_of(docs, want, "title")
    else:
        assert got == want
    first = await search.search(query, sort=sort, start=0, num=num)
    assert len(first.ids) == min(num, len(want))


@SETTINGS
@given(
    docs=docs_strategy,
    query=query_strategy,
    weights=st.dictionaries(
        st.sampled_from(["updated", "votes"]), st.sampled_from([1, -1, 0.5, 2, 0]), min_size=1
    ),
    desc=st.booleans(),
    num=st.integers(1, 6),
)
async def test_zsorted_pages_equal_a_brute_force_model(
    shard_clients: list[Any],
    docs: dict[str, Doc],
    query: str,
    weights: dict[str, float],
    desc: bool,
    num: int,
) -> None:
    search = make_search(shard_clients)
    await load(search, docs)
    want = model_zsorted(docs, query, weights, desc)

    async def run(**kw: Any) -> ShardedSearchResult:
        return await search.search_zsorted(query, weights=weights, desc=desc, **kw)

    got, total = await all_pages(run, num)
    assert (got, total) == (want, len(want))
    deep = await run(start=num, num=num)
    assert deep.ids == want[num : 2 * num]


async def test_results_do_not_depend_on_decode_responses(
    request: pytest.FixtureRequest, redis_client_text: Any, extra_servers: list[RedisServer]
) -> None:
    topology, decode = request.node.callspec.params["redis_client_text"]
    extras: list[Any] = []
    if topology == "cluster":
        clients = [redis_client_text] * 2
    else:
        extras = [Redis.from_url(s.url, decode_responses=decode) for s in extra_servers]
        for extra in extras:
            await extra.flushall()
        clients = [redis_client_text, *extras]
    try:
        search = ShardedSearch([SearchIndex(c, f"t{n}") for n, c in enumerate(clients)])
        for n in range(12):
            await search.index_document(
                f"d{n}", "alpha beta", fields={"updated": n % 3, "title": f"é{n % 5}"}
            )
        page = await search.search("alpha", sort="-updated", num=5)
        assert all(isinstance(i, str) for i in page.ids)
        assert page.ids == ["d8", "d5", "d2", "d11", "d7"]
        zpage = await search.search_zsorted("alpha", desc=False, num=4)
        assert zpage.ids == ["d0", "d3", "d6", "d9"]
        assert await search.remove_document("d0")
        assert (await search.search("alpha", num=0)).total == 11
        for shard in clients:
            await shard.zadd("aiorp:plain:z", {"é": 1, "b": 2})
        merged = await zrangebyscore_merged([(c, "aiorp:plain:z") for c in clients[1:]], num=5)
        assert merged == [("é", 1.0), ("b", 2.0)]
        if topology == "cluster":
            await redis_client_text.delete("aiorp:plain:z")
    finally:
        for extra in extras:
            await extra.aclose()


async def test_cancelled_searches_leave_only_expiring_keys(shard_clients: list[Any]) -> None:
    search = make_search(shard_clients)
    for n in range(30):
        await search.index_document(f"d{n}", "alpha beta gamma", fields={"updated": n})
    for step in range(8):
        task = asyncio.ensure_future(search.search("alpha -delta", num=10))
        for _ in range(step):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for shard in {id(c): c for c in shard_clients}.values():
        async for key in shard.scan_iter(match="*:tmp:*"):
            assert await shard.pttl(key) > 0
        async for key in shard.scan_iter(match="*:result:*"):
            assert await shard.pttl(key) > 0
    page = await search.search("alpha -delta", num=3)
    assert page.ids == ["d29", "d28", "d27"]


# -- merged ZRANGEBYSCORE ---------------------------------------------------------------------


def zset_sources(clients: list[Any], run: str) -> list[tuple[Any, str]]:
    """The same logical ZSET: one key per server, or one per hash tag on the cluster."""
    if clients[0] is clients[1]:
        return [(c, f"aiorp:z:{{{run}-{n}}}") for n, c in enumerate(clients)]
    return [(c, f"aiorp:z:{{{run}}}") for c in clients]


@SETTINGS
@given(
    items=st.dictionaries(
        st.text("abcé", min_size=1, max_size=3),
        st.tuples(st.integers(0, 2), st.sampled_from([0.0, 1.0, 1.5, -2.0])),
        max_size=30,
    ),
    num=st.integers(1, 5),
    low=st.sampled_from([-math.inf, 0.0, 1.0]),
)
async def test_merged_zrangebyscore_pages_have_no_repeats_or_gaps(
    shard_clients: list[Any], items: dict[str, tuple[int, float]], num: int, low: float
) -> None:
    sources = zset_sources(shard_clients, uuid.uuid4().hex[:8])
    for member, (shard, score) in items.items():
        client, key = sources[shard]
        await client.zadd(key, {member: score})
    want = sorted((s, m) for m, (_, s) in items.items() if s >= low)
    got: list[tuple[str, float]] = []
    after = None
    while True:
        page = await zrangebyscore_merged(sources, min=low, num=num, after=after)
        assert len(page) <= num
        got += page
        if len(page) < num:
            break
        after = page[-1]
    assert got == [(m, s) for s, m in want]
    for client, key in sources:
        await client.delete(key)


async def test_sharded_zrangebyscore_ties_and_duplicates(shard_clients: list[Any]) -> None:
    shards = ShardedClients(shard_clients)
    key = f"aiorp:followers:{{{uuid.uuid4().hex[:8]}}}"
    if shard_clients[0] is shard_clients[1]:  # one cluster: the same key three times is one ZSET
        shards = ShardedClients(shard_clients[:1])
    members = {f"u{n:02}": 5.0 for n in range(25)}  # all on one score: the book repeats them
    for member in members:
        await shards.client_for(member).zadd(key, {member: 5.0})
    if len(shards) > 1:  # a member on two shards with the same score is returned once
        await shards[0].zadd(key, {"u03": 5.0})
        await shards[1].zadd(key, {"u03": 5.0})
    got: list[str] = []
    after = None
    for _ in range(10):
        page = await sharded_zrangebyscore(shards, key, min=5, max=5, num=4, after=after)
        got += [m for m, _ in page]
        if len(page) < 4:
            break
        after = page[-1]
    assert got == sorted(members)
    for client in shards:
        await client.delete(key)


# -- syndication ------------------------------------------------------------------------------


async def test_syndicate_reaches_every_follower_once(shard_clients: list[Any]) -> None:
    run = uuid.uuid4().hex[:8]
    cluster = shard_clients[0] is shard_clients[1]
    followers = ShardedClients(shard_clients[:1] if cluster else shard_clients)
    timelines = ShardedClients(shard_clients[:1] if cluster else shard_clients[::-1])
    key = f"aiorp:followers:{{{run}}}"
    users = [f"u{n}" for n in range(23)]
    for n, user in enumerate(users):
        # the follow relation lives on the shard of the pair (KeyDataShardedConnection)
        await followers.client_for_ids("author", user).zadd(key, {user: float(n % 3)})

    def home(user: str) -> str:
        return f"aiorp:home:{{{run}-{user}}}"

    await timelines.client_for(home("u0")).zadd(home("u0"), {"old1": 1.0, "old2": 2.0})
    delivered = await syndicate(
        followers, key, timelines, "post9", 9.0, timeline_key=home, batch=4, keep=2
    )
    assert delivered == len(users)
    for user in users:
        client = timelines.client_for(home(user))
        assert "post9" in [text(m) for m in await client.zrange(home(user), 0, -1)]
    assert [text(m) for m in await timelines.client_for(home("u0")).zrange(home("u0"), 0, -1)] == [
        "old2",
        "post9",
    ]
    # again: idempotent
    assert await syndicate(followers, key, timelines, "post9", 9.0, timeline_key=home) == 23
    for user in users:
        await timelines.client_for(home(user)).delete(home(user))
    for client in followers:
        await client.delete(key)


async def test_a_killed_shard_fails_fast_then_recovers(extra_servers: list[RedisServer]) -> None:
    clients = [Redis.from_url(s.url, retry=Retry(NoBackoff(), 0)) for s in extra_servers]
    try:
        for client in clients:
            await client.flushall()
        search = ShardedSearch([SearchIndex(c, "docs") for c in clients], timeout=10.0)
        for n in range(10):
            await search.index_document(f"d{n}", "alpha", fields={"updated": n})
        on_first = sorted((await search.indexes[0].documents()), reverse=True)
        extra_servers[1].kill()
        with pytest.raises(ShardsUnavailableError) as caught:
            await search.search("alpha", num=100)
        assert caught.value.missing == (1,)
        page = await search.search("alpha", num=100, partial=True)
        assert page.missing == (1,)
        assert page.ids == sorted(on_first, key=lambda d: -int(d[1:]))
        extra_servers[1].restart()  # empty again: no persistence
        page = await search.search("alpha", num=100)
        assert page.missing == ()
        assert page.total == len(on_first)
    finally:
        if extra_servers[1].process is None:
            extra_servers[1].restart()
        for client in clients:
            await client.aclose()


async def test_a_cancelled_syndication_is_finished_by_running_it_again(
    shard_clients: list[Any],
) -> None:
    run = uuid.uuid4().hex[:8]
    cluster = shard_clients[0] is shard_clients[1]
    shards = ShardedClients(shard_clients[:1] if cluster else shard_clients)
    key = f"aiorp:followers:{{{run}}}"
    users = [f"u{n}" for n in range(12)]
    for user in users:
        await shards.client_for_ids("author", user).zadd(key, {user: 1.0})

    def home(user: str) -> str:
        return f"aiorp:home:{{{run}-{user}}}"

    for step in range(0, 12, 2):
        task = asyncio.ensure_future(
            syndicate(shards, key, shards, f"p{step}", 1.0, timeline_key=home, batch=3)
        )
        for _ in range(step):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await syndicate(shards, key, shards, f"p{step}", 1.0, timeline_key=home) == 12
    for user in users:
        timeline = await shards.client_for(home(user)).zrange(home(user), 0, -1)
        assert sorted(text(m) for m in timeline) == sorted(f"p{s}" for s in range(0, 12, 2))


async def test_out_of_range_numbers_never_reach_redis() -> None:
    # The tripwire client: any Redis call would fail with AssertionError, not the error here.
    nothing = NO_REDIS
    shards = ShardedClients([nothing, nothing])
    search = ShardedSearch([SearchIndex(nothing, "a"), SearchIndex(nothing, "b")])
    huge = 2**63
    calls: list[tuple[type[Exception], Any]] = [
        (ValueError, search.search("alpha", start=2**62, num=2**62)),
        (ValueError, search.search("alpha", start=huge)),
        (ValueError, search.search_zsorted("alpha", num=huge)),
        (TypeError, search.search("alpha", partial="yes")),
        (ValueError, sharded_zrangebyscore(shards, "z", num=huge)),
        (ValueError, sharded_zrangebyscore(shards, "z", max=math.nan)),
        (ValueError, sharded_zrangebyscore(shards, "z", min=10**400)),
        (TypeError, sharded_zrangebyscore(shards, "z", min=True)),  # type: ignore[arg-type]
        (ValueError, sharded_zrangebyscore(shards, "z", after=("a", math.nan))),
        (ValueError, zrangebyscore_merged([(nothing, "z")], num=0)),
        (ValueError, zrangebyscore_merged([(nothing, "")], num=1)),
        (ValueError, syndicate(shards, "f", shards, "post", math.nan)),
        (ValueError, syndicate(shards, "f", shards, "post", -math.inf)),
        (ValueError, syndicate(shards, "f", shards, "post", 10**400)),
        (TypeError, syndicate(shards, "f", shards, "post", "1")),  # type: ignore[arg-type]
        (ValueError, syndicate(shards, "f", shards, "post", 1.0, batch=huge)),
        (ValueError, syndicate(shards, "f", shards, "post", 1.0, keep=huge)),
        (TypeError, syndicate(shards, "f", shards, "post", 1.0, keep=1.5)),  # type: ignore[arg-type]
        (TypeError, shards.scatter(lambda c: c.ping(), partial=1)),  # type: ignore[arg-type]
    ]
    for error, call in calls:
        with pytest.raises(error):
            await call
    with pytest.raises(ValueError, match="shard"):
        shards[-1]
