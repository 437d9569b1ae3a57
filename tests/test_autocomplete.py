"""Test autocomplete: recent contacts and read-only prefix completion over any Unicode name.

Redis in Action §6.1.1 (``add_update_contact``, ``fetch_autocomplete_list``), §6.1.2
(``autocomplete_on_prefix`` over a guild) and §11.3.1 (its Lua version). The book's own test
scenarios (inventory §3) run against the library API; property tests compare every completion
with a brute-force Python filter of the same names, including prefixes that end in the highest
code points. Every test runs on a standalone server and a cluster; the ``_text`` ones also with
``decode_responses`` on and off, which must not change any result.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import pytest
from helpers import NO_REDIS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ReadOnlyError

from aiorpatterns.core.autopipeline import AutoPipeline
from aiorpatterns.core.keys import Keyspace
from aiorpatterns.search.autocomplete import (
    CONTACTS,
    PAGE,
    Autocomplete,
    RecentContacts,
    prefix_range,
)
from aiorpatterns.testing.server import RedisServer

#: The ch11 test's sentence: 'these are some words that we will be autocompleting on'.
WORDS = ["these", "are", "some", "words", "that", "we", "will", "be", "autocompleting", "on"]

#: Characters where byte-range arithmetic and case folding go wrong first.
EDGE = [
    "\U0010ffff",  # the highest code point: F4 8F BF BF
    "\uffff",  # the highest BMP code point: EF BF BF
    "\U00010000",
    "\ud7ff",
    "\ue000",
    "\x7f",
    "\x80",
    "\x00",
    "a",
    "A",
    "z",
    "{",
    "`",
    "ß",  # folds to "ss"
    "ẞ",
    "İ",  # folds to two code points
    "ǅ",
    "ﬀ",  # folds to "ff"
    "Σ",
    "ς",
    "é",
    "\u0301",  # a combining accent
]
_chars = st.one_of(st.sampled_from(EDGE), st.characters(codec="utf-8"))  # no lone surrogates
_names = st.text(_chars, min_size=1, max_size=6)
_PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _expected(names: set[str], prefix: str, limit: int, casefold: bool) -> list[str]:
    """The brute-force answer: filter, sort by code points (folded first), cut."""
    if casefold:
        ordered = sorted(names, key=lambda n: (n.casefold(), n))
        return [n for n in ordered if n.casefold().startswith(prefix.casefold())][:limit]
    return sorted(n for n in names if n.startswith(prefix))[:limit]


async def _wipe(redis: Any, *keys: str) -> None:
    for key in keys:  # one DEL per key: a cluster refuses keys of several slots
        await redis.delete(key)


# -- the book's scenarios (inventory §3) ---------------------------------------------------------


async def test_book_autocomplete_on_prefix(redis_client_text: Any) -> None:
    """ch11 ``test_autocomplet_on_prefix``: 'th', 'w' and a whole word."""
    guild = Autocomplete(redis_client_text, "test")
    assert await guild.join(*WORDS) == len(WORDS)
    assert await guild.complete("th") == ["that", "these"]
    assert await guild.complete("w") == ["we", "will", "words"]
    assert await guild.complete("autocompleting") == ["autocompleting"]


async def test_book_address_book_autocomplete(redis_client_text: Any) -> None:
    """ch06 ``test_address_book_autocomplete``: 'je' finds 3, then 2 after jeff leaves."""
    guild = Autocomplete(redis_client_text, "test")
    for name in ("jeff", "jenny", "jack", "jennifer"):
        await guild.join(name)
    assert len(await guild.complete("je")) == 3
    assert await guild.leave("jeff") == 1
    assert await guild.complete("je") == ["jennifer", "jenny"]


async def test_book_add_update_contact(redis_client_text: Any) -> None:
    """ch06 ``test_add_update_contact``: order, move to front, remove, prefix filter."""
    contacts = RecentContacts(redis_client_text)
    for i in range(10):
        await contacts.add("user", f"contact-{i // 3}-{i}")
    everyone = await contacts.contacts("user")
    assert len(everyone) >= 10
    assert everyone == [f"contact-{i // 3}-{i}" for i in range(9, -1, -1)]
    assert not await contacts.add("user", "contact-1-4")  # already there: moved
    everyone = await contacts.contacts("user")
    assert everyone[0] == "contact-1-4"
    assert await contacts.remove("user", "contact-2-6")
    everyone = await contacts.contacts("user")
    assert len(everyone) >= 9
    assert "contact-2-6" not in everyone
    assert await contacts.complete("user", "c") == everyone
    assert await contacts.complete("user", "contact-2-") == [
        c for c in everyone if c.startswith("contact-2-")
    ]


# -- prefix completion = brute force ---------------------------------------------------------


@pytest.mark.parametrize("casefold", [False, True], ids=["exact", "casefold"])
@_PROPERTY
@given(data=st.data(), names=st.lists(_names, max_size=30))
async def test_complete_equals_brute_force(
    redis_client_text: Any, casefold: bool, data: st.DataObject, names: list[str]
) -> None:
    if casefold:
        names = [n for n in names if "\0" not in n]
    # Names that are prefixes of one another, and names one edge character longer.
    names += [n[: len(n) // 2] for n in names if len(n) > 1]
    names += [n + data.draw(st.sampled_from(EDGE)) for n in names[:3]]
    if casefold:
        names = [n for n in names if "\0" not in n]
    pool = set(names)
    guild = Autocomplete(redis_client_text, "prop", casefold=casefold)
    await _wipe(redis_client_text, guild.key)
    if pool:
        assert await guild.join(*names) == len(pool)
    heads = [n[:k] for n in pool for k in range(1, len(n) + 1)]
    prefixes = st.one_of(
        st.just(""),
        st.text(_chars, max_size=3),
        st.sampled_from(EDGE),
        st.builds(lambda c, e: c + e, st.text(_chars, max_size=2), st.sampled_from(EDGE[:3])),
        *([st.sampled_from(heads)] if heads else []),
    )
    for _ in range(5):
        prefix = data.draw(prefixes)
        limit = data.draw(st.integers(1, 12))
        assert await guild.complete(prefix, limit=limit) == _expected(pool, prefix, limit, casefold)
        if casefold:
            matching = sum(n.casefold().startswith(prefix.casefold()) for n in pool)
        else:
            matching = sum(n.startswith(prefix) for n in pool)
        assert await guild.count(prefix) == matching


async def test_prefixes_ending_in_the_highest_code_points(redis_client_text: Any) -> None:
    top, bmp = "\U0010ffff", "\uffff"
    names = [top, top * 2, top + "a", "a" + top, bmp, bmp + "z", bmp + top, "\U00010000", "z"]
    guild = Autocomplete(redis_client_text, "edges")
    await guild.join(*names)
    assert await guild.complete(top) == [top, top + "a", top * 2]  # "a" sorts before F4
    assert await guild.complete(bmp) == [bmp, bmp + "z", bmp + top]
    assert await guild.complete("a" + top) == ["a" + top]
    assert await guild.complete(top * 3) == []
    assert await guild.complete("") == sorted(names)
    assert await guild.count("") == len(names)


async def test_names_the_books_alphabet_gets_wrong(redis_client_text: Any) -> None:
    names = ["{curly}", "`tick", "Zed", "zed", "42", "名前", "Ärger", "ärger", "a{b", "a`b", "ab"]
    guild = Autocomplete(redis_client_text, "odd")
    await guild.join(*names)
    for prefix in ("{", "`", "Z", "z", "4", "名", "Ä", "a", "a{", "a`", ""):
        assert await guild.complete(prefix) == _expected(set(names), prefix, PAGE, False)


async def test_casefold_keeps_each_spelling(redis_client_text: Any) -> None:
    guild = Autocomplete(redis_client_text, "folk", casefold=True)
    assert await guild.join("Straße", "STRASSE", "strasbourg", "Ann", "ann", "ANN") == 6
    assert await guild.complete("strass") == ["STRASSE", "Straße"]
    assert await guild.complete("STRAß") == ["STRASSE", "Straße"]
    assert await guild.complete("an") == ["ANN", "Ann", "ann"]
    assert await guild.count("ANN") == 3
    assert await guild.leave("Ann") == 1  # the exact spelling only
    assert await guild.complete("an") == ["ANN", "ann"]
    assert await guild.complete("a\0") == []  # no name can hold a NUL here


async def test_join_and_leave_count_changes(redis_client_text: Any) -> None:
    guild = Autocomplete(redis_client_text, "g")
    assert await guild.join() == 0
    assert await guild.join("a", "b", "a") == 2
    assert await guild.join("b", "c") == 1
    assert await guild.leave("a", "x") == 1
    assert await guild.leave() == 0
    assert await guild.complete("") == ["b", "c"]


async def test_empty_prefix_pages_from_the_first_name(redis_client: Any) -> None:
    guild = Autocomplete(redis_client, "many")
    names = [f"n{i:03d}" for i in range(50)]
    random.Random(1).shuffle(names)
    await guild.join(*names)
    assert await guild.complete("") == sorted(names)[:PAGE]
    assert await guild.complete("", limit=100) == sorted(names)
    assert await guild.complete("n04", limit=3) == ["n040", "n041", "n042"]


async def test_complete_issues_no_writes(redis_client: Any) -> None:
    guild = Autocomplete(redis_client, "ro")
    folded = Autocomplete(redis_client, "ro-fold", casefold=True)
    await guild.join(*WORDS)
    await folded.join(*WORDS)
    dirty, calls = await _dirty(redis_client), await _command_calls(redis_client)
    for prefix in ("", "t", "th", "w", "zzz", "\U0010ffff"):
        await guild.complete(prefix)
        await folded.complete(prefix.upper())
        await guild.count(prefix)
    assert await _dirty(redis_client) == dirty
    after = await _command_calls(redis_client)
    changed = {name for name, n in after.items() if n != calls.get(name, 0)}
    assert changed - {"info"} == {"zrange", "zlexcount"}


async def test_complete_runs_on_a_read_only_replica() -> None:
    with RedisServer() as primary, RedisServer() as replica:
        p = Redis.from_url(primary.url)
        r = Redis.from_url(replica.url)
        try:
            await Autocomplete(p, "guild").join(*WORDS)
            await r.replicaof(primary.host, primary.port)
            for _ in range(200):
                if (await r.info("replication")).get("master_link_status") == "up":
                    break
                await asyncio.sleep(0.05)
            await p.wait(1, 5000)
            on_replica = Autocomplete(r, "guild")
            assert await on_replica.complete("th") == ["that", "these"]
            assert await on_replica.count("w") == 3
            with pytest.raises(ReadOnlyError):
                await on_replica.join("thorn")  # it is a replica: writes are refused
        finally:
            await p.aclose()
            await r.aclose()


async def test_concurrent_completions_through_an_autopipeline(redis_client_text: Any) -> None:
    names = [f"{w}{i}" for w in WORDS for i in range(5)]
    plain = Autocomplete(redis_client_text, "auto")
    await plain.join(*names)
    prefixes = ["", "t", "th", "w", "wi", "a", "au", "s", "x", "words3"] * 10
    auto = AutoPipeline(redis_client_text)
    try:
        batched = Autocomplete(auto, "auto")
        got = await asyncio.gather(*(batched.complete(p, limit=7) for p in prefixes))
    finally:
        await auto.aclose()
    assert got == [_expected(set(names), p, 7, False) for p in prefixes]
    assert auto.stats.batches < len(prefixes)


async def test_guild_key_lives_under_the_prefix_in_one_slot(redis_client: Any) -> None:
    guild = Autocomplete(redis_client, "shop", keyspace=Keyspace("app"))
    await guild.join("x")
    assert guild.key == "app:autocomplete:{shop}"
    assert await redis_client.exists(guild.key)
    assert "casefold" in repr(Autocomplete(redis_client, "x", casefold=True))


def test_prefix_range_is_the_byte_successor() -> None:
    assert prefix_range(b"") == (b"-", b"+")
    assert prefix_range(b"ab") == (b"[ab", b"(ac")
    assert prefix_range(b"a\xff") == (b"[a\xff", b"(b")
    assert prefix_range(b"\xff\xff") == (b"[\xff\xff", b"+")
    top = "\U0010ffff".encode()
    assert prefix_range(top) == (b"[" + top, b"(\xf4\x8f\xbf\xc0")
    with pytest.raises(TypeError):
        prefix_range("ab")  # type: ignore[arg-type]


@given(st.binary(max_size=4), st.binary(max_size=6))
def test_prefix_range_holds_exactly_the_extensions(prefix: bytes, other: bytes) -> None:
    low, high = prefix_range(prefix)
    above = low == b"-" or other >= low[1:]
    below = high == b"+" or other < high[1:]
    assert (above and below) == other.startswith(prefix)


# -- recent contacts ---------------------------------------------------------------------------


@pytest.mark.parametrize("casefold", [False, True], ids=["exact", "casefold"])
@_PROPERTY
@given(
    steps=st.lists(
        st.tuples(st.booleans(), st.sampled_from(["ann", "Ann", "bob", "Bo", "b", "ß", "SS", "z"])),
        max_size=25,
    ),
    prefix=st.sampled_from(["", "a", "A", "b", "bo", "s", "ss", "ß", "x"]),
    limit=st.one_of(st.none(), st.integers(1, 4)),
)
async def test_contacts_follow_a_capped_most_recent_first_list(
    redis_client_text: Any,
    casefold: bool,
    steps: list[tuple[bool, str]],
    prefix: str,
    limit: int | None,
) -> None:
    contacts = RecentContacts(redis_client_text, size=5, casefold=casefold)
    await _wipe(redis_client_text, contacts.list_key("u"))
    model: list[str] = []
    for add, contact in steps:
        if add:
            assert await contacts.add("u", contact) == (contact not in model)
            model = [contact, *(c for c in model if c != contact)][:5]
        else:
            assert await contacts.remove("u", contact) == (contact in model)
            model = [c for c in model if c != contact]
    assert await contacts.contacts("u") == model
    if casefold:
        expected = [c for c in model if c.casefold().startswith(prefix.casefold())]
    else:
        expected = [c for c in model if c.startswith(prefix)]
    assert await contacts.complete("u", prefix, limit=limit) == expected[:limit]


async def test_contacts_keep_the_newest_size(redis_client: Any) -> None:
    contacts = RecentContacts(redis_client)
    for i in range(CONTACTS + 20):
        await contacts.add("u", f"c{i}")
    kept = await contacts.contacts("u")
    assert kept == [f"c{i}" for i in range(CONTACTS + 19, 19, -1)]


async def test_contacts_casefold_and_unicode(redis_client_text: Any) -> None:
    contacts = RecentContacts(redis_client_text, casefold=True)
    for name in ("Émile", "emma", "Straße", "名前", "\U0010ffff"):
        await contacts.add("u", name)
    assert await contacts.complete("u", "É") == ["Émile"]
    assert await contacts.complete("u", "STRASS") == ["Straße"]
    assert await contacts.complete("u", "名") == ["名前"]
    assert await contacts.complete("u", "\U0010ffff") == ["\U0010ffff"]
    exact = RecentContacts(redis_client_text)
    assert await exact.complete("u", "straß") == []


async def test_users_are_independent_and_spread_over_slots(redis_client: Any) -> None:
    contacts = RecentContacts(redis_client, "chat", keyspace=Keyspace("app"))
    await contacts.add("alice", "bob")
    await contacts.add("carol", "dave")
    assert await contacts.contacts("alice") == ["bob"]
    assert await contacts.contacts("nobody") == []
    assert contacts.list_key("alice") == "app:contacts:{alice}:chat"
    assert key_slot(contacts.list_key("alice").encode()) == key_slot(b"alice")
    assert (
        await RecentContacts(redis_client, "other", keyspace=Keyspace("app")).contacts("alice")
        == []
    )


async def test_concurrent_adds_never_duplicate(redis_client: Any) -> None:
    contacts = RecentContacts(redis_client, size=10)
    auto = AutoPipeline(redis_client)
    try:
        batched = RecentContacts(auto, size=10)
        await asyncio.gather(*(batched.add("u", f"c{i % 13}") for i in range(300)))
    finally:
        await auto.aclose()
    kept = await contacts.contacts("u")
    assert len(kept) == 10
    assert len(set(kept)) == 10


async def test_a_cancelled_add_is_all_or_nothing(redis_client: Any) -> None:
    contacts = RecentContacts(redis_client, size=3)
    for c in ("a", "b", "c"):
        await contacts.add("u", c)
    for delay in (0, 0.0001, 0.001):
        before = await contacts.contacts("u")
        task = asyncio.create_task(contacts.add("u", "a" if before[0] != "a" else "b"))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # it may have finished already
            await task
        await asyncio.sleep(0.05)
        after = await contacts.contacts("u")
        assert sorted(after) == ["a", "b", "c"]  # moved or untouched, never lost or doubled
        assert after == before or after[0] != before[0]


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda g: g.complete(1), TypeError),
        (lambda g: g.complete(None), TypeError),
        (lambda g: g.complete(b"ab"), TypeError),
        (lambda g: g.complete("a\ud800"), ValueError),
        (lambda g: g.complete("a", limit=0), ValueError),
        (lambda g: g.complete("a", limit=-1), ValueError),
        (lambda g: g.complete("a", limit=1.5), TypeError),
        (lambda g: g.complete("a", limit=True), TypeError),
        (lambda g: g.complete("a", limit="3"), TypeError),
        (lambda g: g.count(3), TypeError),
        (lambda g: g.join(""), ValueError),
        (lambda g: g.join("a", 1), TypeError),
        (lambda g: g.join(["a", "b"]), TypeError),
        (lambda g: g.join("\udfff"), ValueError),
        (lambda g: g.leave(None), TypeError),
    ],
)
async def test_bad_autocomplete_input_is_rejected_before_redis(call: Any, error: type) -> None:
    guild = Autocomplete(NO_REDIS)  # any Redis call would fail with AttributeError
    with pytest.raises(error):
        await call(guild)


async def test_casefold_names_must_not_hold_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        await Autocomplete(NO_REDIS, casefold=True).join("a\0b")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.add("u", ""), ValueError),
        (lambda c: c.add("u", 5), TypeError),
        (lambda c: c.add("u", "x\ud800"), ValueError),
        (lambda c: c.add("", "x"), ValueError),
        (lambda c: c.add("a}b", "x"), ValueError),
        (lambda c: c.add(7, "x"), TypeError),
        (lambda c: c.remove("u", None), TypeError),
        (lambda c: c.remove("u", ""), ValueError),
        (lambda c: c.contacts(None), TypeError),
        (lambda c: c.complete("u", 5), TypeError),
        (lambda c: c.complete("u", "a", limit=0), ValueError),
        (lambda c: c.complete("u", "a", limit=2.0), TypeError),
    ],
)
async def test_bad_contacts_input_is_rejected_before_redis(call: Any, error: type) -> None:
    contacts = RecentContacts(NO_REDIS)
    with pytest.raises(error):
        await call(contacts)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Autocomplete(None), TypeError),
        (lambda: Autocomplete(NO_REDIS, ""), ValueError),
        (lambda: Autocomplete(NO_REDIS, "a}b"), ValueError),
        (lambda: Autocomplete(NO_REDIS, casefold="yes"), TypeError),  # type: ignore[arg-type]
        (lambda: Autocomplete(NO_REDIS, keyspace="app"), TypeError),  # type: ignore[arg-type]
        (lambda: RecentContacts(None), TypeError),
        (lambda: RecentContacts(NO_REDIS, size=0), ValueError),
        (lambda: RecentContacts(NO_REDIS, size=True), TypeError),
        (lambda: RecentContacts(NO_REDIS, size=2.5), TypeError),  # type: ignore[arg-type]
        (lambda: RecentContacts(NO_REDIS, casefold=1), TypeError),  # type: ignore[arg-type]
        (lambda: RecentContacts(NO_REDIS, keyspace=None), TypeError),  # type: ignore[arg-type]
    ],
)
def test_bad_construction_is_rejected(make: Any, error: type) -> None:
    with pytest.raises(error):
        make()


# -- helpers -------------------------------------------------------------------------------------


async def _per_primary(redis: Any, section: str) -> list[dict[str, Any]]:
    if isinstance(redis, RedisCluster):
        infos = await redis.info(section, target_nodes=RedisCluster.PRIMARIES)
        return list(infos.values())
    return [await redis.info(section)]


async def _dirty(redis: Any) -> int:
    """Writes since the last save (the server's dirty counter), summed over primaries."""
    return sum(
        int(i["rdb_changes_since_last_save"]) for i in await _per_primary(redis, "persistence")
    )


async def _command_calls(redis: Any) -> dict[str, int]:
    """Calls per command, summed over primaries (INFO commandstats)."""
    calls: dict[str, int] = {}
    for info in await _per_primary(redis, "commandstats"):
        for name, stats in info.items():
            command = name.removeprefix("cmdstat_")
            calls[command] = calls.get(command, 0) + int(stats["calls"])
    return calls


async def test_a_limit_beyond_a_redis_integer_is_refused_before_redis() -> None:
    with pytest.raises(ValueError, match="limit"):
        await Autocomplete(NO_REDIS).complete("a", limit=2**63)
    with pytest.raises(ValueError, match="limit"):
        await RecentContacts(NO_REDIS).complete("u", "a", limit=2**63)
