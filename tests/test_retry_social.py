"""Run-twice tests of Social's scripts (issue 10, DESIGN "Retry safety").

Every script call is sent twice by ``twice_client`` (``retrysafe.py``), as redis-py's ``Retry``
or the cluster client does after a lost reply: the keyspace must be the state of one run and the
caller must see what a single run answers (the same user id, status id, True/False, list id).
Several receipts under one key mask to one name in ``snapshot``, so each scenario hands them in
with its result (a sorted multiset, compared like the rest) and drops them from the keyspace.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from helpers import text
from retrysafe import assert_retry_safe, plain

from aiorpatterns.scaling.shards import ShardedClients
from aiorpatterns.scaling.social import ShardedSocial
from aiorpatterns.social.network import Social

_RECEIPT = re.compile(r":[0-9a-f]{32}$")


def _with_receipts(scenario: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
    """The scenario's result, then every receipt it left (masked, sorted), which it deletes."""

    async def run(client: Any) -> Any:
        result = await scenario(client)
        kept = []
        async for raw in client.scan_iter(match="aiorp:*", count=1000):
            key = text(raw)
            if _RECEIPT.search(key):
                assert await client.pttl(key) > 0, f"receipt {key} never expires"
                kept.append(plain((key, text(await client.get(key)))))
                await client.delete(key)
        return result, sorted(kept)

    return run


async def check(redis_client: Any, twice_client: Any, scenario: Any) -> Any:
    """Run ``scenario`` once and doubled (``assert_retry_safe``); return the single run's result."""
    result, receipts = await assert_retry_safe(redis_client, twice_client, _with_receipts(scenario))
    assert receipts, "no receipt was kept"
    return result


async def _pair(social: Social) -> tuple[int, int]:
    return await social.create_user("Alice", "A"), await social.create_user("Bob", "B")


@pytest.mark.retry_safe("social_user_claim", "social_user_create")
async def test_create_user_twice_gives_one_id(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        social = Social(client)
        seen: list[Any] = [await social.create_user("Alice", "A")]
        try:
            await social.create_user("ALICE", "again")  # a refusal: the login is taken
        except ValueError as error:
            seen.append(str(error))
        seen.append(await social.create_user("Bob", "B"))
        seen.append(await social.get_uid("alice"))
        seen.append(await social.get_user(seen[-2]))
        return seen

    seen = await check(redis_client, twice_client, scenario)
    assert seen[:4] == [1, "login 'ALICE' is taken", 2, 1]


@pytest.mark.retry_safe("social_post", "social_page")
async def test_post_twice_gives_one_status(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        social = Social(client, home_size=3, fanout_batch=2)
        alice, bob = await _pair(social)
        carol = await social.create_user("Carol", "C")
        await social.follow_user(bob, alice)
        await social.follow_user(carol, alice)
        ids = [await social.post_status(alice, f"m{i}", n=i) for i in range(4)]
        ids.append(await social.create_status(bob, "own"))
        try:
            await social.create_status(99, "nobody")  # a refusal: no such user
        except LookupError as error:
            ids.append(str(error))
        homes = [
            [m.id for m in await social.get_status_messages(u, count=10)] for u in (bob, carol)
        ]
        return ids, homes, await social.get_user(alice)

    ids, homes, user = await check(redis_client, twice_client, scenario)
    assert ids == ["1:1", "1:2", "1:3", "1:4", "2:1", "no user 99"]
    assert homes == [["2:1", "1:4", "1:3"], ["1:4", "1:3", "1:2"]]
    assert user.posts == 4


def test_follow_times_are_masked_in_either_form() -> None:
    """A follow time read back with ZSCORE: Redis prints it plain, Valkey sometimes in exponent
    form (shortest round-trip doubles); both are the same masked number in two honest runs."""
    valkey, redis = '[0,2,"1.796456536398182e+9"]', '[0,2,"1796456536.3663969"]'
    assert plain(valkey) == plain(redis) == '[0,2,"<n>"]'
    assert plain("1.5e+3") == "1.5e+3"  # small numbers stay as they are


@pytest.mark.retry_safe("social_follow_out", "social_follow_in", "social_home_copy")
async def test_follow_and_unfollow_twice_count_once(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        social = Social(client, home_size=2)
        alice, bob = await _pair(social)
        for i in range(3):
            await social.create_status(bob, f"b{i}")
        seen: list[Any] = [await social.follow_user(alice, bob)]
        seen.append(await social.follow_user(alice, bob))  # already following
        seen.append([m.id for m in await social.get_status_messages(alice)])
        seen.append(await social.follow_user(bob, alice))
        seen.append(await social.unfollow_user(alice, bob))
        seen.append(await social.unfollow_user(alice, bob))  # not following any more
        seen.append([m.id for m in await social.get_status_messages(alice)])
        seen.append(await social.follow_user(alice, bob))  # again, after an unfollow
        seen.append([m.id for m in await social.get_status_messages(alice)])
        seen.append([await social.get_user(u) for u in (alice, bob)])
        return seen

    seen = await check(redis_client, twice_client, scenario)
    assert seen[:9] == [True, False, ["2:3", "2:2"], True, True, False, [], True, ["2:3", "2:2"]]
    alice, bob = seen[9]
    assert (alice.following, alice.followers, bob.following, bob.followers) == (1, 1, 1, 1)


@pytest.mark.retry_safe("social_delete")
async def test_delete_twice_counts_once(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        social = Social(client)
        alice, bob = await _pair(social)
        await social.follow_user(bob, alice)
        first = await social.post_status(alice, "one")
        second = await social.post_status(alice, "two")
        seen: list[Any] = [await social.delete_status(alice, first)]
        seen.append(await social.delete_status(alice, first))  # gone already
        seen.append(await social.delete_status(alice, "1:99"))  # never was
        seen.append([m.id for m in await social.get_status_messages(bob)])
        seen.append(await social.delete_status(alice, second))
        seen.append(await social.get_user(alice))
        return seen

    seen = await check(redis_client, twice_client, scenario)
    assert seen[:5] == [True, False, False, ["1:2"], True]
    assert seen[5].posts == 0


@pytest.mark.retry_safe(
    "social_list_create", "social_follow_out", "social_follow_in", "social_home_copy"
)
async def test_lists_twice_are_created_and_followed_once(
    redis_client: Any, twice_client: Any
) -> None:
    async def scenario(client: Any) -> Any:
        social = Social(client)
        alice, bob = await _pair(social)
        await social.create_status(bob, "before")
        # Bounded: a list step that is not retry-safe made create_list loop for ever.
        seen: list[Any] = [await asyncio.wait_for(social.create_list(alice, "friends"), 60)]
        seen.append(await social.create_list(alice, "others"))
        try:
            await social.create_list(99, "x")  # a refusal: no such owner
        except LookupError as error:
            seen.append(str(error))
        seen.append(await social.follow_user_list("1/1", bob))
        seen.append(await social.follow_user_list("1/1", bob))
        await social.post_status(bob, "after")
        seen.append([m.id for m in await social.get_list_messages("1/1")])
        seen.append(await social.unfollow_user_list("1/1", bob))
        seen.append(await social.get_lists(alice))
        seen.append([await social.get_list(i) for i in ("1/1", "1/2")])
        seen.append(text(await client.hget(social.user_key(bob), "listed")))
        return seen

    seen = await check(redis_client, twice_client, scenario)
    assert seen[:8] == [
        "1/1",
        "1/2",
        "no user 99",
        True,
        False,
        ["2:2", "2:1"],
        True,
        ["1/1", "1/2"],
    ]
    assert [x.following for x in seen[8]] == [0, 0]
    assert seen[9] == "0"


@pytest.mark.retry_safe("social_home_copy", "social_page")
async def test_refill_twice_copies_and_trims_once(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        social = Social(client, home_size=4)
        alice, bob = await _pair(social)
        carol = await social.create_user("Carol", "C")
        for author in (bob, carol, bob, carol, bob, carol):
            await social.create_status(author, "m")
        await social.follow_user(alice, bob)
        await social.follow_user(alice, carol)
        await client.delete(social.timeline_key(alice))  # a home timeline lost
        await social.refill_timeline_all(alice)
        return [m.id for m in await social.get_status_messages(alice)]

    home = await check(redis_client, twice_client, scenario)
    assert home == ["3:3", "2:3", "3:2", "2:2"]


@pytest.mark.retry_safe(
    "social_shard_edge", "social_shard_unhome", "social_shard_post", "social_shard_delete"
)
async def test_sharded_social_steps_twice(redis_client: Any, twice_client: Any) -> None:
    """§10.3.3: the edge step on the pair's server and the home clean-up, each sent twice."""

    async def scenario(client: Any) -> Any:
        shards = ShardedClients([client] * 3)
        social = ShardedSocial(client, "sh", timelines=shards, followers=shards, home_size=5)
        alice, bob = await _pair(social)  # type: ignore[arg-type]
        posted = [await social.post_status(alice, f"m{i}") for i in range(2)]
        seen: list[Any] = [await social.follow_user(bob, alice)]
        seen.append(await social.follow_user(bob, alice))  # already: False
        seen.append(len(await social.get_status_messages(bob)))
        seen.append(await social.delete_status(alice, posted[0]))
        seen.append(await social.unfollow_user(bob, alice))
        seen.append(await social.unfollow_user(bob, alice))  # not following: False
        seen.append(await social.get_user(bob))
        return seen

    seen = await check(redis_client, twice_client, scenario)
    assert seen[:6] == [True, False, 2, True, True, False]
    assert (seen[6].following, seen[6].followers) == (0, 0)
