"""ExpiringSessions (issue 16, §2.1 / ch02-03 exercise answers): logins that expire on their own.

Both topologies. The expiry test waits for the server to expire a session (no sweeper runs).
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import NO_REDIS, keys_of, until
from retrysafe import assert_retry_safe

from aiorpatterns import ExpiringSessions


async def test_a_visit_logs_in_and_keeps_the_newest_items_first(redis_client: Any) -> None:
    sessions = ExpiringSessions(redis_client, history=3)
    assert await sessions.check_token("t1") is None
    for item in ("a", "b", "c", "a", "d"):
        await sessions.update_token("t1", "ann", item=item)
    assert await sessions.check_token("t1") == "ann"
    assert await sessions.viewed("t1") == ["d", "a", "c"]  # "a" moved up, "b" fell off
    await sessions.update_token("t1", "ann")  # a visit without an item
    assert await sessions.viewed("t1") == ["d", "a", "c"]
    assert await sessions.viewed("nobody") == []


async def test_a_session_expires_on_its_own_with_its_history_and_cart(redis_client: Any) -> None:
    sessions = ExpiringSessions(redis_client, ttl=1)
    await sessions.update_token("t1", "ann", item="x")
    assert await sessions.add_to_cart("t1", "x", count=2)
    assert await sessions.cart("t1") == {"x": 2}

    async def gone() -> bool:
        return await sessions.check_token("t1") is None

    await until(gone, "the session to expire", limit=30)

    async def all_gone() -> bool:
        return await keys_of(redis_client) == []

    await until(all_gone, "its history and cart to expire", limit=30)
    assert await sessions.viewed("t1") == []
    assert await sessions.cart("t1") == {}


async def test_a_visit_renews_the_ttl_and_the_cart_follows(redis_client: Any) -> None:
    sessions = ExpiringSessions(redis_client, ttl=1000)
    await sessions.update_token("t1", "ann")
    assert 990 <= (await sessions.ttl_of("t1") or 0) <= 1000
    assert await sessions.add_to_cart("t1", "x", count=1)
    cart = sessions.keys("t1")[2]
    assert 990 <= await redis_client.ttl(cart) <= 1000
    assert await sessions.add_to_cart("t1", "x", count=0)
    assert await sessions.cart("t1") == {}
    assert await sessions.ttl_of("nobody") is None


async def test_no_cart_without_a_live_session(redis_client: Any) -> None:
    sessions = ExpiringSessions(redis_client)
    assert await sessions.add_to_cart("ghost", "x", count=1) is False
    assert await keys_of(redis_client) == []


async def test_logout_ends_the_session_at_once(redis_client: Any) -> None:
    sessions = ExpiringSessions(redis_client)
    await sessions.update_token("t1", "ann", item="x")
    await sessions.add_to_cart("t1", "x", count=1)
    assert await sessions.logout("t1") is True
    assert await sessions.check_token("t1") is None
    assert await keys_of(redis_client) == []
    assert await sessions.logout("t1") is False


async def test_each_token_has_its_own_hash_tag(redis_client: Any) -> None:
    sessions = ExpiringSessions(redis_client, "web")
    assert sessions.keys("t1") == [
        "aiorp:usession:{web:t1}:login",
        "aiorp:usession:{web:t1}:viewed",
        "aiorp:usession:{web:t1}:cart",
    ]


async def test_bad_input_is_refused_before_redis() -> None:
    sessions = ExpiringSessions(NO_REDIS)
    with pytest.raises(ValueError, match="ttl"):
        ExpiringSessions(NO_REDIS, ttl=0)
    with pytest.raises(ValueError, match="history"):
        ExpiringSessions(NO_REDIS, history=0)
    with pytest.raises(ValueError, match="token"):
        await sessions.update_token("", "ann")
    with pytest.raises(ValueError, match="token"):
        await sessions.update_token("a}b", "ann")
    with pytest.raises(TypeError, match="user"):
        await sessions.update_token("t", 7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="item"):
        await sessions.update_token("t", "ann", item="")
    with pytest.raises(TypeError, match="count"):
        await sessions.add_to_cart("t", "x", count="2")  # type: ignore[arg-type]


@pytest.mark.retry_safe("session_touch", "session_cart")
async def test_expiring_session_steps_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        sessions = ExpiringSessions(client, history=2)
        for item in ("a", "b", "a", "c"):
            await sessions.update_token("t", "ann", item=item)
        seen = [await sessions.viewed("t")]
        seen.append(await sessions.add_to_cart("t", "x", count=3))
        seen.append(await sessions.add_to_cart("t", "x", count=0))
        seen.append(await sessions.add_to_cart("t", "y", count=1))
        seen.append(await sessions.add_to_cart("ghost", "y", count=1))
        return [*seen, await sessions.cart("t")]

    await assert_retry_safe(redis_client, twice_client, scenario)
