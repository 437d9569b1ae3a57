"""Test ShardedSocial: the chapter 8 network with timelines and follows on shard servers (§10.3.3).

On the standalone topology the shards are three real servers (the session server and the two
extra servers of ``shard_clients``); on the cluster, the session cluster under one hash tag per
shard. The book's TestCh10 ``test_sharded_follow_user`` and ``…_and_syndicate_status`` are
ported first, then the invariants: both sides of every edge and the counts agree under
concurrent follows and unfollows, pages have no repeats, unfollow cleans the home timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from typing import Any

import pytest
from helpers import NO_REDIS, keys_of, until

from aiorpatterns.scaling.shards import ShardedClients
from aiorpatterns.scaling.social import ShardedSocial


def network(shard_clients: list[Any], **options: Any) -> ShardedSocial:
    """The book's layout: 8 timeline shards and 4 follower shards over the servers."""
    servers = shard_clients
    timelines = ShardedClients([servers[i % len(servers)] for i in range(8)])
    followers = ShardedClients([servers[i % len(servers)] for i in range(4)])
    name = f"s{uuid.uuid4().hex[:8]}"
    return ShardedSocial(servers[0], name, timelines=timelines, followers=followers, **options)


async def users(social: ShardedSocial, count: int) -> list[int]:
    return [await social.create_user(f"user{i}", f"User {i}") for i in range(1, count + 1)]


async def everyone(page: Any, uid: int) -> list[int]:
    """Every member of a paged list, two at a time (the cursor is exercised)."""
    found: list[int] = []
    after = None
    while batch := await page(uid, count=2, after=after):
        found += [member for member, _ in batch]
        after = batch[-1]
    assert len(found) == len(set(found)), "a page repeated a member"
    return found


async def test_book_sharded_follow_user(shard_clients: list[Any]) -> None:
    """TestCh10 test_sharded_follow_user: user 1 and users 2..10 follow each other."""
    social = network(shard_clients)
    one, *others = await users(social, 10)
    await social.create_status(one, "hello from 1")
    for other in others:
        await social.create_status(other, f"hello from {other}")
        assert await social.follow_user(one, other)
        assert await social.follow_user(other, one)
    user = await social.get_user(one)
    assert user is not None
    assert (user.followers, user.following) == (9, 9)
    assert sorted(await everyone(social.get_followers, one)) == others
    assert sorted(await everyone(social.get_following, one)) == others
    home = await social.get_status_messages(one, count=50)
    assert sorted(s.uid for s in home) == [one, *others]  # its own status and one of each
    for other in others:
        record = await social.get_user(other)
        assert record is not None
        assert (record.followers, record.following) == (1, 1)
        assert [s.uid for s in await social.get_status_messages(other)] == [other, one]
    if len(set(map(id, shard_clients))) == 3:  # three real servers: every one holds keys
        for client in shard_clients:
            assert await keys_of(client)


async def test_book_sharded_follow_and_syndicate_status(shard_clients: list[Any]) -> None:
    """TestCh10 test_sharded_follow_user_and_syndicate_status: a post reaches all 9 homes."""
    social = network(shard_clients, fanout_batch=4)  # several pages of followers
    one, *others = await users(social, 10)
    for other in others:
        await social.follow_user(other, one)
    assert len(await social.get_followers(one, count=100)) == 9
    status = await social.post_status(one, "to everyone", tag=1)
    for other in others:
        home = await social.get_status_messages(other)
        assert [(s.id, s.message, s.data) for s in home] == [(status, "to everyone", {"tag": 1})]
    assert await social.syndicate_status(status) == 9  # running it again changes nothing
    assert len(await social.get_status_messages(others[0])) == 1
    profile = await social.get_status_messages(one, "profile")
    assert [s.id for s in profile] == [status]


async def test_edges_and_counts_agree_under_concurrent_follows(shard_clients: list[Any]) -> None:
    social = network(shard_clients, home_size=5)
    ids = await users(social, 8)
    for uid in ids:
        await social.create_status(uid, f"status of {uid}")
    rng = random.Random(3)
    pairs = [tuple(rng.sample(ids, 2)) for _ in range(150)]

    async def churn(seed: int) -> None:
        local = random.Random(seed)
        for uid, other in local.sample(pairs, 40):
            if local.random() < 0.6:
                await social.follow_user(uid, other)
            else:
                await social.unfollow_user(uid, other)

    await asyncio.gather(*(churn(seed) for seed in range(10)))
    following = {uid: set(await everyone(social.get_following, uid)) for uid in ids}
    followers = {uid: set(await everyone(social.get_followers, uid)) for uid in ids}
    for uid in ids:
        assert followers[uid] == {f for f in ids if uid in following[f]}
        user = await social.get_user(uid)
        assert user is not None
        assert (user.following, user.followers) == (len(following[uid]), len(followers[uid]))


async def test_unfollow_takes_the_statuses_out_of_the_home(shard_clients: list[Any]) -> None:
    social = network(shard_clients, home_size=50)
    alice, bob, carol = await users(social, 3)
    for i in range(3):
        await social.create_status(bob, f"bob {i}")
        await social.create_status(carol, f"carol {i}")
    await social.follow_user(alice, bob)
    await social.follow_user(alice, carol)
    home = await social.get_status_messages(alice, count=50)
    assert sorted(s.uid for s in home) == [bob] * 3 + [carol] * 3
    assert await social.unfollow_user(alice, bob)
    assert not await social.unfollow_user(alice, bob)
    home = await social.get_status_messages(alice, count=50)
    assert [s.uid for s in home] == [carol] * 3
    user = await social.get_user(alice)
    assert user is not None
    assert user.following == 1


async def test_deleted_statuses_leave_the_timelines(shard_clients: list[Any]) -> None:
    social = network(shard_clients)
    alice, bob = await users(social, 2)
    await social.follow_user(bob, alice)
    kept = await social.post_status(alice, "kept")
    gone = await social.post_status(alice, "gone")
    assert not await social.delete_status(bob, gone)  # only the author deletes
    assert await social.delete_status(alice, gone)
    assert not await social.delete_status(alice, gone)
    assert await social.get_status(gone) is None
    assert await social.syndicate_status(gone) == 0
    assert [s.id for s in await social.get_status_messages(alice, "profile")] == [kept]
    assert [s.id for s in await social.get_status_messages(bob)] == [kept]
    user = await social.get_user(alice)
    assert user is not None
    assert user.posts == 1


async def test_cancelled_follows_leave_both_sides_agreeing(shard_clients: list[Any]) -> None:
    """A follow cancelled before its step never happens; after, it completes (shielded)."""
    social = network(shard_clients)
    ids = await users(social, 6)
    for other in ids[1:]:
        await social.create_status(other, f"status of {other}")
    rng = random.Random(9)
    before = asyncio.all_tasks()
    for other in ids[1:]:
        task = asyncio.create_task(social.follow_user(ids[0], other))
        for _ in range(rng.randrange(12)):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await until(lambda: settled(before), "the shielded steps to finish")
    following = await everyone(social.get_following, ids[0])
    user = await social.get_user(ids[0])
    assert user is not None
    assert user.following == len(following)
    for other in ids[1:]:
        assert (ids[0] in await everyone(social.get_followers, other)) == (other in following)
    home = await social.get_status_messages(ids[0], count=50)
    assert {s.uid for s in home} == set(following)


async def settled(before: set[asyncio.Task[Any]]) -> bool:
    """True once no task started since ``before`` is left (shielded steps run on their own)."""
    return not asyncio.all_tasks() - before


async def test_unknown_users_and_bad_input(shard_clients: list[Any]) -> None:
    social = network(shard_clients)
    (alice,) = await users(social, 1)
    with pytest.raises(LookupError, match="no user 99"):
        await social.follow_user(alice, 99)
    with pytest.raises(LookupError, match="no user 98"):
        await social.create_status(98, "x")
    assert await social.get_user(97) is None
    shards = ShardedClients([NO_REDIS])
    idle = ShardedSocial(NO_REDIS, "x", timelines=shards, followers=shards)
    with pytest.raises(ValueError, match="itself"):
        await idle.follow_user(3, 3)
    for bad in (0, -1, "1", 1.5, True):
        with pytest.raises((TypeError, ValueError)):
            await idle.follow_user(bad, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status_id"):
        await idle.delete_status(1, "1/2")
    with pytest.raises(TypeError, match="message"):
        await idle.create_status(1, b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="after"):
        await idle.get_followers(1, after=[1, 2.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timelines"):
        ShardedSocial(NO_REDIS, "x", timelines=[NO_REDIS], followers=shards)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="side"):
        idle.list_key("friends", 1, 0)  # type: ignore[arg-type]
