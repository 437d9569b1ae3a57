"""Test Sessions: login tokens and recently viewed items, one atomic round trip per view.

Redis in Action §2.1 (``check_token``, ``update_token``) and §4.5 (the same five commands in one
round trip). Every test runs on a standalone server and a cluster; the ``_text`` ones also with
``decode_responses`` on and off, which must not change any result.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from helpers import NO_REDIS
from redis.crc import key_slot

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.webapp.sessions import HISTORY, Sessions


async def test_check_token_returns_the_user(redis_client_text: Any) -> None:
    sessions = Sessions(redis_client_text)
    assert await sessions.check_token("t1") is None
    await sessions.update_token("t1", "alice")
    await sessions.update_token("t2", "bob", "item:1")
    assert await sessions.check_token("t1") == "alice"
    assert await sessions.check_token("t2") == "bob"
    assert await sessions.check_token("t3") is None


async def test_history_keeps_the_newest_items(redis_client_text: Any) -> None:
    sessions = Sessions(redis_client_text)
    for i in range(HISTORY + 5):
        await sessions.update_token("t", "alice", f"item:{i}")
    viewed = await sessions.viewed("t")
    assert viewed == [f"item:{i}" for i in range(HISTORY + 4, 4, -1)]
    assert all(isinstance(item, str) for item in viewed)


async def test_viewing_an_item_again_moves_it_to_the_front(redis_client: Any) -> None:
    sessions = Sessions(redis_client, history=3)
    for item in ("a", "b", "c", "a"):
        await sessions.update_token("t", "alice", item)
    assert await sessions.viewed("t") == ["a", "c", "b"]
    await sessions.update_token("t", "alice", "d")
    assert await sessions.viewed("t") == ["d", "a", "c"]


async def test_views_are_counted_across_tokens(redis_client_text: Any) -> None:
    r = redis_client_text
    sessions = Sessions(r)
    await sessions.update_token("t1", "alice", "item:1")
    await sessions.update_token("t2", "bob", "item:1")
    await sessions.update_token("t2", "bob", "item:2")
    ranked = await r.zrange(sessions.viewed_key, 0, -1, withscores=True)
    as_text = [(m.decode() if isinstance(m, bytes) else m, s) for m, s in ranked]
    assert as_text == [("item:1", -2.0), ("item:2", -1.0)]


async def test_without_an_item_only_login_and_recent_change(redis_client: Any) -> None:
    sessions = Sessions(redis_client)
    await sessions.update_token("t", "alice")
    assert await sessions.check_token("t") == "alice"
    assert await sessions.last_seen("t") is not None
    assert not await redis_client.exists(sessions.history_key("t"))
    assert not await redis_client.exists(sessions.viewed_key)
    assert await sessions.viewed("t") == []


async def test_last_seen_is_server_time_and_moves_forward(redis_client: Any) -> None:
    sessions = Sessions(redis_client)
    assert await sessions.last_seen("t") is None
    await sessions.update_token("t", "alice")
    first = await sessions.last_seen("t")
    await asyncio.sleep(0.01)
    await sessions.update_token("t", "alice", "x")
    second = await sessions.last_seen("t")
    assert first is not None
    assert second is not None
    assert second > first
    assert abs(second - time.time()) < 60  # the server's clock, same machine
    assert second != int(second) or first != int(first)  # sub-second resolution


async def test_user_can_change_and_tokens_stay_apart(redis_client: Any) -> None:
    sessions = Sessions(redis_client)
    await sessions.update_token("t", "alice", "a")
    await sessions.update_token("t", "carol", "b")
    await sessions.update_token("u", "dave", "c")
    assert await sessions.check_token("t") == "carol"
    assert await sessions.viewed("t") == ["b", "a"]
    assert await sessions.viewed("u") == ["c"]
    assert await redis_client.zcard(sessions.recent_key) == 2


async def test_every_key_shares_one_slot_under_the_prefix(redis_client: Any) -> None:
    sessions = Sessions(redis_client, "shop", keyspace=Keyspace("app"))
    await sessions.update_token("t:1", "alice", "item")
    keys = [sessions.login_key, sessions.recent_key, sessions.viewed_key]
    keys.append(sessions.history_key("t:1"))
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"{shop}")}
    assert all(k.startswith("app:session:{shop}:") for k in keys)
    for key in keys:
        assert await redis_client.exists(key)


async def test_stores_are_independent(redis_client: Any) -> None:
    one, two = Sessions(redis_client, "one"), Sessions(redis_client, "two")
    await one.update_token("t", "alice", "x")
    assert await two.check_token("t") is None
    assert await two.viewed("t") == []


async def test_concurrent_updates_through_an_autopipeline(redis_client: Any) -> None:
    autopipeline = pytest.importorskip("aiorpatterns.core.autopipeline")
    auto = autopipeline.AutoPipeline(redis_client)
    try:
        sessions = Sessions(auto)
        await asyncio.gather(
            *(sessions.update_token(f"t{i % 5}", f"user{i % 5}", f"item:{i}") for i in range(200))
        )
        assert await sessions.check_token("t3") == "user3"
    finally:
        await auto.aclose()
    plain = Sessions(redis_client)
    assert len(await plain.viewed("t0")) == HISTORY
    assert await redis_client.zcard(plain.viewed_key) == 200
    assert await redis_client.zcard(plain.recent_key) == 5


async def test_a_cancelled_update_is_all_or_nothing(redis_client: Any) -> None:
    sessions = Sessions(redis_client)
    for delay in (0, 0.0001, 0.001):
        task = asyncio.create_task(sessions.update_token("t", "alice", f"item:{delay}"))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # it may have finished already
            await task
        await asyncio.sleep(0.05)
        viewed = await sessions.viewed("t")
        logged_in = await sessions.check_token("t") is not None
        assert logged_in == bool(viewed)  # the script ran whole, or not at all
        counted = await redis_client.zscore(sessions.viewed_key, f"item:{delay}")
        assert (counted is not None) == (f"item:{delay}" in viewed)


@pytest.mark.parametrize(
    ("token", "user", "item", "error"),
    [
        (1, "u", None, TypeError),
        ("", "u", None, ValueError),
        ("a}b", "u", None, ValueError),
        ("t", 1, None, TypeError),
        ("t", "", None, ValueError),
        ("t", "u", 5, TypeError),
        ("t", "u", "", ValueError),
    ],
)
async def test_bad_input_is_rejected_before_redis(
    token: Any, user: Any, item: Any, error: type[Exception]
) -> None:
    sessions = Sessions(NO_REDIS)  # any Redis call would fail with AttributeError
    with pytest.raises(error):
        await sessions.update_token(token, user, item)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"redis": None}, TypeError),
        ({"name": ""}, ValueError),
        ({"history": 0}, ValueError),
        ({"history": 2.5}, TypeError),
        ({"history": True}, TypeError),
        ({"keyspace": "app"}, TypeError),
    ],
)
def test_bad_construction_is_rejected(kwargs: dict[str, Any], error: type[Exception]) -> None:
    options: dict[str, Any] = {"redis": NO_REDIS, **kwargs}
    redis = options.pop("redis")
    with pytest.raises(error):
        Sessions(redis, **options)


async def test_check_token_validates_the_token() -> None:
    sessions = Sessions(NO_REDIS)
    with pytest.raises(TypeError):
        await sessions.check_token(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="token"):
        await sessions.check_token("")


async def test_book_login_cookies_clean_sessions(redis_client_text: Any) -> None:
    sessions = Sessions(redis_client_text)
    await sessions.update_token("t", "username", "itemX")
    assert await sessions.add_to_cart("t", "itemY", count=3)
    assert await sessions.check_token("t") == "username"
    assert await sessions.clean_sessions(limit=0) == 1
    assert await redis_client_text.hlen(sessions.login_key) == 0
    assert await sessions.cart("t") == {}  # clean_full_sessions: the cart goes too
    assert await sessions.viewed("t") == []


async def test_clean_sessions_keeps_the_newest_above_the_limit(redis_client: Any) -> None:
    sessions = Sessions(redis_client)
    for i in range(10):
        await sessions.update_token(f"t{i}", f"u{i}", "x")
    assert await sessions.clean_sessions(limit=4, batch=3) == 6
    assert await sessions.clean_sessions(limit=4) == 0
    assert [await sessions.check_token(f"t{i}") for i in range(10)] == [None] * 6 + [
        f"u{i}" for i in range(6, 10)
    ]


async def test_clean_sessions_racing_updates_stays_consistent(redis_client: Any) -> None:
    sessions = Sessions(redis_client)
    for i in range(200):
        await sessions.update_token(f"t{i}", f"u{i}")
    await sessions.add_to_cart("t0", "item", count=1)
    active = [f"t{i}" for i in range(0, 200, 10)]  # among the oldest, but refreshed meanwhile

    async def refresh() -> None:
        for _ in range(5):
            for token in active:
                await sessions.update_token(token, "active")

    await asyncio.gather(refresh(), sessions.clean_sessions(limit=0, batch=7))
    # Whatever interleaving happened, login and recent agree token by token, and no cart
    # outlives its session.
    logins = {
        k.decode() if isinstance(k, bytes) else k
        for k in await redis_client.hkeys(sessions.login_key)
    }
    recent = await redis_client.zrange(sessions.recent_key, 0, -1)
    assert logins == {k.decode() if isinstance(k, bytes) else k for k in recent}
    if await redis_client.exists(sessions.cart_key("t0")):
        assert "t0" in logins


async def test_an_active_token_read_as_old_survives(redis_client: Any) -> None:
    # The book's race, step by step: the oldest token is read, then refreshed, then cleaned.
    sessions = Sessions(redis_client)
    await sessions.update_token("old", "alice")
    await sessions.add_to_cart("old", "item", count=2)
    await sessions.update_token("new", "bob")
    seen = await sessions.last_seen("old")
    await sessions.update_token("old", "alice")  # refreshed after the cleaner read it
    from aiorpatterns.core.scripts import script

    keys = [sessions.login_key, sessions.recent_key]
    keys += [sessions.history_key("old"), sessions.cart_key("old")]
    args = ["c" * 32, 0, "old", repr(seen)]
    removed = await script("session_clean")(redis_client, keys, args)
    assert removed == 0
    assert await sessions.check_token("old") == "alice"
    assert await sessions.cart("old") == {"item": 2}


async def test_cart_sets_counts_and_removes_at_zero(redis_client_text: Any) -> None:
    sessions = Sessions(redis_client_text)
    assert not await sessions.add_to_cart("t", "x", count=1)  # no session: no orphan cart
    assert not await redis_client_text.exists(sessions.cart_key("t"))
    await sessions.update_token("t", "alice")
    assert await sessions.add_to_cart("t", "x", count=3)
    assert await sessions.add_to_cart("t", "y", count=1)
    assert await sessions.add_to_cart("t", "x", count=5)
    assert await sessions.cart("t") == {"x": 5, "y": 1}
    assert await sessions.add_to_cart("t", "y", count=0)  # the book's hrem: HDEL here
    assert await sessions.add_to_cart("t", "z", count=-1)
    assert await sessions.cart("t") == {"x": 5}


async def test_rank_and_rescale_viewed(redis_client_text: Any) -> None:
    sessions = Sessions(redis_client_text)
    for item, views in (("a", 4), ("b", 2), ("c", 1)):
        for _ in range(views):
            await sessions.update_token("t", "u", item)
    assert [await sessions.rank(i) for i in "abcd"] == [0, 1, 2, None]
    assert await sessions.rescale_viewed(keep=2) == 2
    scores = await redis_client_text.zrange(sessions.viewed_key, 0, -1, withscores=True)
    assert [s for _, s in scores] == [-2.0, -1.0]
    assert await sessions.rank("c") is None


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.clean_sessions(limit=-1), ValueError),
        (lambda s: s.clean_sessions(limit="1"), TypeError),
        (lambda s: s.clean_sessions(limit=1, batch=0), ValueError),
        (lambda s: s.add_to_cart("t", "x", count="1"), TypeError),
        (lambda s: s.add_to_cart("t", "", count=1), ValueError),
        (lambda s: s.add_to_cart("", "x", count=1), ValueError),
        (lambda s: s.cart(None), TypeError),
        (lambda s: s.rank(1), TypeError),
        (lambda s: s.rescale_viewed(keep=0), ValueError),
        (lambda s: s.rescale_viewed(factor=2), ValueError),
    ],
)
async def test_new_calls_reject_bad_input_before_redis(call: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        await call(Sessions(NO_REDIS))


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda s: s.add_to_cart("t", "x", count=2**63), ValueError, "count"),
        (lambda s: s.add_to_cart("t", "x", count=-(2**63) - 1), ValueError, "count"),
        (lambda s: s.add_to_cart("t", "x", count=True), TypeError, "count"),
        (lambda s: s.add_to_cart("t", "x", count=1.0), TypeError, "count"),
        (lambda s: s.rescale_viewed(factor=float("nan")), ValueError, "factor"),
        (lambda s: s.rescale_viewed(factor=float("inf")), ValueError, "factor"),
        (lambda s: s.rescale_viewed(factor=0), ValueError, "factor"),
        (lambda s: s.rescale_viewed(factor=-0.5), ValueError, "factor"),
        (lambda s: s.rescale_viewed(factor=True), TypeError, "factor"),
        (lambda s: s.rescale_viewed(keep=2**63), ValueError, "keep"),
        (lambda s: s.clean_sessions(limit=2**63), ValueError, "limit"),
    ],
)
async def test_numbers_are_range_checked_before_redis(
    call: Any, error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        await call(Sessions(NO_REDIS))


@pytest.mark.parametrize(
    ("history", "error"), [(0, ValueError), (2**63, ValueError), (True, TypeError)]
)
def test_history_is_range_checked(history: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="history"):
        Sessions(NO_REDIS, history=history)
