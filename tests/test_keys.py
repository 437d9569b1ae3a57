"""Keyspace: one hash slot per object, no collisions, everything under the prefix, bad input.

Properties are checked with Hypothesis against redis-py's own cluster slot function
(``redis.crc.key_slot``); the glob pattern is checked against a real server's matcher.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from aiorpatterns import Keyspace
from aiorpatterns.core.keys import DEFAULT_KEYSPACE

# Any text a caller might use (no lone surrogates: they cannot be sent to Redis at all).
_chars = st.characters(blacklist_categories=("Cs",))
names = st.text(_chars, min_size=1, max_size=20).filter(lambda s: "}" not in s)
parts = names
kinds = st.text(_chars, min_size=1, max_size=10).filter(lambda s: not set(s) & set("{}:"))
prefixes = st.text(_chars, min_size=1, max_size=12).filter(
    lambda s: not set(s) & set("{}") and not s.endswith(":")
)
keyspaces = st.builds(Keyspace, prefixes)
plain_parts = st.lists(parts.filter(lambda s: ":" not in s), max_size=3).map(tuple)


def slot(key: str) -> int:
    return key_slot(key.encode())


@given(keyspaces, kinds, names, st.lists(st.lists(parts, max_size=3), max_size=5))
def test_all_keys_of_one_object_share_its_slot(
    ks: Keyspace, kind: str, name: str, part_lists: list[list[str]]
) -> None:
    """Every key of an object (and a wake list under one of its keys) hashes to one slot."""
    keys = [ks.key(kind, name, *p) for p in part_lists] + [ks.key(kind, name)]
    keys.append(ks.key(kind, name, "queue") + ":0123456789abcdef")  # a waiter's wake list
    assert {slot(k) for k in keys} == {slot("{" + name + "}")}


@given(keyspaces, kinds, names, st.lists(parts, max_size=3))
def test_every_key_lives_under_the_prefix(
    ks: Keyspace, kind: str, name: str, extra: list[str]
) -> None:
    """Every key starts with ``<prefix>:`` and matches the keyspace's glob pattern's stem."""
    key = ks.key(kind, name, *extra)
    assert key.startswith(ks.prefix + ":")
    assert key.startswith(ks.tag(kind, name))
    assert ks.tag(kind, name) == f"{ks.prefix}:{kind}:{{{name}}}"


@given(
    st.tuples(keyspaces, kinds, names, plain_parts),
    st.tuples(keyspaces, kinds, names, plain_parts),
)
def test_distinct_objects_and_parts_give_distinct_keys(
    a: tuple[Keyspace, str, str, tuple[str, ...]], b: tuple[Keyspace, str, str, tuple[str, ...]]
) -> None:
    """Different (prefix, kind, object, parts) never collide (parts are ':'-free segments)."""
    key_a = a[0].key(a[1], a[2], *a[3])
    key_b = b[0].key(b[1], b[2], *b[3])
    same = (a[0].prefix, a[1], a[2], a[3]) == (b[0].prefix, b[1], b[2], b[3])
    assert (key_a == key_b) == same


@given(keyspaces, kinds, names, names, st.lists(parts, max_size=2), st.lists(parts, max_size=2))
def test_different_objects_never_collide_whatever_the_parts(
    ks: Keyspace, kind: str, one: str, other: str, p1: list[str], p2: list[str]
) -> None:
    """Two different objects of one kind never share a key, even with ':' inside parts."""
    if one != other:
        assert ks.key(kind, one, *p1) != ks.key(kind, other, *p2)


def test_parts_are_path_segments() -> None:
    """A part containing ':' names the same key as the segments it spells (by design)."""
    ks = Keyspace("app")
    assert ks.key("lock", "x", "a:b") == ks.key("lock", "x", "a", "b") == "app:lock:{x}:a:b"


def test_documented_examples() -> None:
    """The docstring's layout, and the default prefix."""
    ks = Keyspace("app")
    assert ks.key("lock", "cart:42") == "app:lock:{cart:42}"
    assert ks.key("lock", "cart:42", "fence") == "app:lock:{cart:42}:fence"
    assert DEFAULT_KEYSPACE.prefix == "aiorp"
    assert DEFAULT_KEYSPACE.pattern == "aiorp:*"
    assert Keyspace() == DEFAULT_KEYSPACE


@pytest.mark.parametrize(
    ("prefix", "error"),
    [("", ValueError), ("a{b", ValueError), ("a}b", ValueError), ("app:", ValueError),
     (":", ValueError), (None, TypeError), (b"app", TypeError), (1, TypeError)],
)  # fmt: skip
def test_bad_prefixes_are_rejected(prefix: Any, error: type[Exception]) -> None:
    """Empty, brace-carrying, ':'-terminated and non-str prefixes raise naming the prefix."""
    with pytest.raises(error, match="prefix"):
        Keyspace(prefix)


@pytest.mark.parametrize(
    ("kind", "name", "extra", "error", "match"),
    [
        ("", "x", (), ValueError, "kind"),
        ("a:b", "x", (), ValueError, "kind"),
        ("a{", "x", (), ValueError, "kind"),
        ("a}", "x", (), ValueError, "kind"),
        (None, "x", (), TypeError, "kind"),
        ("lock", "", (), ValueError, "name"),
        ("lock", "a}b", (), ValueError, "name"),
        ("lock", 7, (), TypeError, "name"),
        ("lock", b"x", (), TypeError, "name"),
        ("lock", "x", ("",), ValueError, "part"),
        ("lock", "x", ("a}",), ValueError, "part"),
        ("lock", "x", (3,), TypeError, "part"),
    ],
)
def test_bad_kinds_names_and_parts_are_rejected(
    kind: Any, name: Any, extra: tuple[Any, ...], error: type[Exception], match: str
) -> None:
    """Bad kinds, object names and parts raise ValueError/TypeError naming the argument."""
    with pytest.raises(error, match=match):
        Keyspace("app").key(kind, name, *extra)


@given(prefixes)
def test_pattern_escapes_glob_characters(prefix: str) -> None:
    """The pattern is the prefix with glob characters escaped, then ':*'."""
    pattern = Keyspace(prefix).pattern
    assert pattern.endswith(":*")
    unescaped, i, body = [], 0, pattern[:-2]
    while i < len(body):
        if body[i] == "\\":
            assert body[i + 1] in "\\*?[]"
            i += 1
        else:
            assert body[i] not in "*?[]"
        unescaped.append(body[i])
        i += 1
    assert "".join(unescaped) == prefix


@pytest.mark.parametrize("prefix", ["app", "app*", "a?p", "a[p]p", "a\\p", "a p"])
async def test_pattern_matches_exactly_its_keys_on_a_real_server(
    redis_client: Any, prefix: str
) -> None:
    """On a real server the pattern finds the keyspace's keys and not a look-alike prefix's."""
    ks = Keyspace(prefix)
    others = ("app", "apple", "app2", "axp", "apxp", "app_", "ap")
    lookalikes = [Keyspace(p) for p in others if p != prefix]
    for space in [ks, *lookalikes]:
        await redis_client.set(space.key("lock", "x"), "1")
    if isinstance(redis_client, RedisCluster):
        found = await redis_client.keys(ks.pattern, target_nodes=RedisCluster.PRIMARIES)
    else:
        found = await redis_client.keys(ks.pattern)
    assert [k.decode() for k in found] == [ks.key("lock", "x")]
