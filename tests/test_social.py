"""Test Social: users, statuses, follow/unfollow, fan-out with an exclusive cursor, deletes.

Redis in Action chapter 8 (``create_user``, ``create_status``, ``get_status_messages``,
``follow_user``, ``unfollow_user``, ``post_status``, ``syndicate_status``, ``delete_status``,
``clean_timelines``, ``refill_timeline``) and the book's ``TestCh08`` scenarios, shrunk. Every
test runs on a standalone server and a cluster; the ``_text`` ones also with
``decode_responses`` on and off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

import pytest
from helpers import NO_REDIS, outcome, text, until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.social.network import Social, SocialUser, UserList
from aiorpatterns.social.timelines import StatusMessage
from aiorpatterns.testing.server import free_port

DELAYS = (0, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01)


async def _users(social: Social, count: int, start: int = 1) -> list[int]:
    return [await social.create_user(f"User{i}", f"User {i}") for i in range(start, start + count)]


async def _mismatch(social: Social, uids: list[int]) -> str | None:
    """Why the follow state is inconsistent, or None if every invariant holds.

    Counters equal their ZSETs, and following/followers are mirror images.
    """
    redis = social.redis
    edges_out: set[tuple[int, int]] = set()
    edges_in: set[tuple[int, int]] = set()
    for uid in uids:
        user = await social.get_user(uid)
        assert user is not None
        following = {int(text(m)) for m in await redis.zrange(social.following_key(uid), 0, -1)}
        followers = {int(text(m)) for m in await redis.zrange(social.followers_key(uid), 0, -1)}
        if user.following != len(following) or user.followers != len(followers):
            return f"user {uid}: counters {user} against {following} / {followers}"
        edges_out |= {(uid, other) for other in following}
        edges_in |= {(other, uid) for other in followers}
    if edges_out != edges_in:
        return f"following {sorted(edges_out)} is not followers {sorted(edges_in)}"
    return None


async def _agree(social: Social, uids: list[int]) -> None:
    problem = await _mismatch(social, uids)
    assert problem is None, problem


async def test_book_create_user_and_status(redis_client_text: Any) -> None:
    social = Social(redis_client_text)
    assert await social.create_user("TestUser", "Test User") == 1
    with pytest.raises(ValueError, match="taken"):
        await social.create_user("testUSER", "Test User2")
    assert await social.create_user("TestUser2", "Test User2") == 2  # no id consumed above
    status = await social.create_status(1, "This is a new status message")
    assert status == "1:1"
    user = await social.get_user(1)
    assert isinstance(user, SocialUser)
    assert (user.id, user.login, user.name, user.posts) == (1, "TestUser", "Test User", 1)
    assert (user.followers, user.following) == (0, 0)
    assert await social.get_uid("testuser") == 1
    assert await social.get_uid("nobody") is None
    assert await social.get_user(3) is None
    [got] = await social.get_status_messages(1, "profile")
    assert isinstance(got, StatusMessage)
    assert (got.id, got.uid, got.login, got.message, got.data) == (
        "1:1",
        1,
        "TestUser",
        "This is a new status message",
        {},
    )
    assert got.posted >= user.signup
    with pytest.raises(LookupError):
        await social.create_status(99, "nobody home")


async def test_extra_status_data_round_trips(redis_client_text: Any) -> None:
    social = Social(redis_client_text)
    uid = await social.create_user("ünï/cøde", "Ü")
    await social.post_status(uid, 'héllo "/\\ 🙂', lat=1.5, tags=["a", "b"], nested={"x": None})
    [got] = await social.get_status_messages(uid)
    assert got.login == "ünï/cøde"
    assert got.message == 'héllo "/\\ 🙂'
    assert got.data == {"lat": 1.5, "tags": ["a", "b"], "nested": {"x": None}}


async def test_book_follow_unfollow_user(redis_client: Any) -> None:
    social = Social(redis_client)
    a, b = await _users(social, 2)
    assert await social.follow_user(a, b)
    assert not await social.follow_user(a, b)  # already following
    assert await redis_client.zcard(social.followers_key(b)) == 1
    assert await redis_client.zcard(social.followers_key(a)) == 0
    assert await redis_client.zcard(social.following_key(a)) == 1
    assert await redis_client.zcard(social.following_key(b)) == 0
    ua, ub = await social.get_user(a), await social.get_user(b)
    assert ua is not None
    assert ub is not None
    assert (ua.following, ua.followers, ub.following, ub.followers) == (1, 0, 0, 1)
    assert not await social.unfollow_user(b, a)
    assert await social.unfollow_user(a, b)
    assert not await social.unfollow_user(a, b)
    await _agree(social, [a, b])
    ua, ub = await social.get_user(a), await social.get_user(b)
    assert ua is not None
    assert ub is not None
    assert (ua.following, ua.followers, ub.following, ub.followers) == (0, 0, 0, 0)


async def test_book_syndicate_status(redis_client_text: Any) -> None:
    social = Social(redis_client_text, fanout_batch=5)
    one, two = await _users(social, 2)
    assert await social.follow_user(one, two)
    first = await social.post_status(two, "this is some message content")
    assert [s.id for s in await social.get_status_messages(one)] == [first]
    others = await _users(social, 8, start=3)
    for uid in others:
        assert await social.follow_user(uid, two)
    second = await social.post_status(two, "this is some other message content")
    for uid in [one, *others]:
        assert [s.id for s in await social.get_status_messages(uid)] == [second, first]
    # The author's own home timeline has its statuses too.
    assert len(await social.get_status_messages(two)) == 2
    assert await social.unfollow_user(one, two)
    assert await social.get_status_messages(one) == []


async def test_book_delete_status_and_refill(redis_client_text: Any) -> None:
    social = Social(redis_client_text, home_size=5)
    one, two, three = await _users(social, 3)
    assert await social.follow_user(one, two)
    assert await social.follow_user(one, three)
    for _ in range(10):
        await social.post_status(two, "message")
        await social.post_status(three, "message")
    assert len(await social.get_status_messages(one)) == 5
    assert await redis_client_text.zcard(social.timeline_key(one)) == 5  # capped
    assert await social.unfollow_user(one, two)
    assert len(await social.get_status_messages(one)) < 5
    await social.refill_timeline_all(one)
    messages = await social.get_status_messages(one)
    assert len(messages) == 5
    assert {m.uid for m in messages} == {three}
    last = messages[-1].id
    assert not await social.delete_status(one, last)  # only the author
    assert await social.delete_status(three, last)
    assert not await social.delete_status(three, last)
    user = await social.get_user(three)
    assert user is not None
    assert user.posts == 9
    assert await redis_client_text.zcard(social.timeline_key(one)) == 5  # not cleaned yet
    await social.clean_timelines_all(last)
    assert await redis_client_text.zcard(social.timeline_key(one)) == 4
    assert last not in {m.id for m in await social.get_status_messages(three, "profile")}


async def test_fan_out_with_equal_follow_times_ends_and_writes_each_once(
    redis_client: Any,
) -> None:
    social = Social(redis_client, fanout_batch=4)
    author, *followers = await _users(social, 15)
    for uid in followers:
        assert await social.follow_user(uid, author)
    # Every follow at one instant: the book's inclusive cursor never gets past the first batch.
    await redis_client.zadd(social.followers_key(author), dict.fromkeys(map(str, followers), 7))
    status = await social.create_status(author, "hello")
    cursor, batches = None, 0
    while True:
        cursor = await social.fan_out(status, cursor=cursor)
        batches += 1
        assert batches <= 5
        if cursor is None:
            break
    assert batches == 4  # 14 followers, 4 a batch
    for uid in followers:
        assert [text(m) for m in await redis_client.zrange(social.timeline_key(uid), 0, -1)] == [
            status
        ]


async def test_fan_out_cursor_survives_the_boundary_follower_leaving(redis_client: Any) -> None:
    social = Social(redis_client, fanout_batch=3)
    author, *followers = await _users(social, 10)
    for uid in followers:
        await social.follow_user(uid, author)
    await redis_client.zadd(social.followers_key(author), dict.fromkeys(map(str, followers), 7))
    status = await social.create_status(author, "hello")
    cursor = await social.fan_out(status)
    assert cursor is not None
    boundary = int(cursor.split()[1])
    order = sorted(map(str, followers))  # equal scores: byte order of the ids
    assert str(boundary) == order[2]
    # The boundary follower and the next one leave; the rest still get the status once.
    await redis_client.zrem(social.followers_key(author), str(boundary), order[3])
    while cursor is not None:
        cursor = await social.fan_out(status, cursor=cursor)
    reached = {uid for uid in followers if await redis_client.zcard(social.timeline_key(uid))}
    assert reached == {int(x) for x in order[:3] + order[4:]}


_NETWORKS = iter(range(10**9))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    followers=st.dictionaries(
        st.integers(1, 300).map(str), st.sampled_from([1.0, 2.0, 2.5, 1e9]), max_size=30
    ),
    batch=st.integers(1, 7),
    drops=st.lists(st.integers(0, 40), max_size=12),
)
async def test_exclusive_cursor_matches_a_sorted_walk(
    redis_client: Any, followers: dict[str, float], batch: int, drops: list[int]
) -> None:
    """Each batch is exactly the next members after the cursor in (score, id bytes) order.

    Members leave between batches (the cursor's own member too), as unfollows would.
    """
    social = Social(redis_client, f"walk{next(_NETWORKS)}", fanout_batch=batch)
    author = await social.create_user("author", "A")
    status = await social.create_status(author, "s")
    key = social.followers_key(author)
    if followers:
        await redis_client.zadd(key, followers)
    current = dict(followers)
    cursor: str | None = None
    seen: list[str] = []
    for step in range(100):
        after = (-float("inf"), "") if cursor is None else _position(cursor)
        order = sorted(current, key=lambda m: (current[m], m.encode()))
        expected = [m for m in order if (current[m], m.encode()) > (after[0], after[1].encode())]
        page = await social._page(author, status, cursor, present=True, lists=False)
        assert [m for m, _ in page] == expected[:batch]
        assert [float(score) for _, score in page] == [current[m] for m in expected[:batch]]
        seen += [m for m, _ in page]
        cursor = social._next(page)
        if cursor is None:
            assert len(expected) <= batch
            break
        if step < len(drops) and current:
            gone = sorted(current)[drops[step] % len(current)]
            if step % 2:  # the cursor's own member
                gone = cursor.split()[1]
            await redis_client.zrem(key, gone)
            current.pop(gone, None)
    assert len(seen) == len(set(seen))


def _position(cursor: str) -> tuple[float, str]:
    score, member = cursor.split()
    return float(score), member


async def test_fan_out_stops_when_the_status_is_deleted(redis_client: Any) -> None:
    social = Social(redis_client, fanout_batch=2)
    author, *followers = await _users(social, 6)
    for uid in followers:
        await social.follow_user(uid, author)
    status = await social.create_status(author, "oops")
    cursor = await social.fan_out(status)
    assert cursor is not None
    assert await social.delete_status(author, status)
    assert await social.fan_out(status, cursor=cursor) is None
    # The first batch got it; reads skip it and clean it up.
    for uid in followers:
        assert await social.get_status_messages(uid) == []
        assert await redis_client.zcard(social.timeline_key(uid)) == 0
    # clean_timelines refuses while a status exists.
    kept = await social.post_status(author, "kept")
    assert await social.clean_timelines(kept) is None
    assert [s.id for s in await social.get_status_messages(followers[0])] == [kept]


async def test_pages_skip_deleted_statuses_and_stay_full(redis_client_text: Any) -> None:
    social = Social(redis_client_text)
    reader, author = await _users(social, 2)
    await social.follow_user(reader, author)
    ids = [await social.post_status(author, f"m{i}") for i in range(9)]
    newest_first = ids[::-1]
    for gone in (newest_first[1], newest_first[2], newest_first[4]):
        assert await social.delete_status(author, gone)
    kept = [i for i in newest_first if i not in {newest_first[1], newest_first[2], newest_first[4]}]
    page1 = await social.get_status_messages(reader, page=1, count=3)
    assert [s.id for s in page1] == kept[:3]
    page2 = await social.get_status_messages(reader, page=2, count=3)
    assert [s.id for s in page2] == kept[3:6]
    assert await social.get_status_messages(reader, page=3, count=3) == []
    profile = await social.get_status_messages(author, "profile", count=100)
    assert [s.id for s in profile] == kept
    assert [s.message for s in profile] == [f"m{ids.index(i)}" for i in kept]


async def test_follow_copies_and_unfollow_removes_every_status(redis_client: Any) -> None:
    social = Social(redis_client, home_size=4)
    reader, author, other = await _users(social, 3)
    mine = await social.create_status(other, "o")
    for i in range(6):
        await social.create_status(author, f"a{i}")
    await social.follow_user(reader, other)
    await social.follow_user(reader, author)
    home = [s.id for s in await social.get_status_messages(reader, count=10)]
    assert len(home) == 4  # capped: the author's latest 4 are newer than other's status
    assert all(s.startswith(f"{author}:") for s in home)
    await social.unfollow_user(reader, author)
    assert await social.get_status_messages(reader) == []  # other's status fell off the cap
    await social.refill_timeline_all(reader)
    assert [s.id for s in await social.get_status_messages(reader)] == [mine]


async def test_user_lists_follow_fan_out_and_clean(redis_client_text: Any) -> None:
    social = Social(redis_client_text, fanout_batch=2)
    owner, a, b, c = await _users(social, 4)
    early = await social.create_status(a, "before the list")
    first = await social.create_list(owner, "friends")
    second = await social.create_list(owner, "others")
    assert (first, second) == (f"{owner}/1", f"{owner}/2")
    assert await social.get_lists(owner) == [first, second]
    for uid in (a, b, c):
        assert await social.follow_user_list(first, uid)
    assert not await social.follow_user_list(first, a)
    assert await social.follow_user_list(second, a)
    got = await social.get_list(first)
    assert isinstance(got, UserList)
    assert (got.id, got.uid, got.name, got.following) == (first, owner, "friends", 3)
    assert [s.id for s in await social.get_list_messages(first)] == [early]  # copied
    posted = {uid: await social.post_status(uid, f"from {uid}") for uid in (a, b, c)}
    assert [s.id for s in await social.get_list_messages(first)] == [
        posted[c],
        posted[b],
        posted[a],
        early,
    ]
    assert [s.id for s in await social.get_list_messages(second)] == [posted[a], early]
    assert await social.get_status_messages(owner) == []  # lists are not the home timeline
    listed = await redis_client_text.hget(social.user_key(a), "listed")
    assert int(listed) == 2
    # Unfollowing drops every status of the user from the list's timeline.
    assert await social.unfollow_user_list(first, a)
    assert not await social.unfollow_user_list(first, a)
    assert [s.id for s in await social.get_list_messages(first)] == [posted[c], posted[b]]
    got = await social.get_list(first)
    assert got is not None
    assert got.following == 2
    assert int(await redis_client_text.hget(social.user_key(a), "listed")) == 1
    # A deleted status leaves the list timelines with clean_timelines.
    assert await social.delete_status(a, posted[a])
    timeline = social._list_key(second, "statuses")
    assert await redis_client_text.zcard(timeline) == 2
    await social.clean_timelines_all(posted[a])
    assert await redis_client_text.zcard(timeline) == 1
    assert await social.get_list(f"{owner}/9") is None
    with pytest.raises(LookupError):
        await social.follow_user_list(f"{owner}/9", a)
    with pytest.raises(LookupError):
        await social.create_list(99, "x")


async def test_concurrent_list_follow_and_unfollow_agree(redis_client: Any) -> None:
    social = Social(redis_client)
    owner, a = await _users(social, 2)
    await social.create_status(a, "s")
    list_id = await social.create_list(owner, "l")
    calls = [
        social.follow_user_list(list_id, a) if i % 2 else social.unfollow_user_list(list_id, a)
        for i in range(30)
    ]
    await asyncio.gather(*calls)
    members = await redis_client.zrange(social._list_key(list_id, "in"), 0, -1)
    listed = await redis_client.zrange(social._key(a, "listed"), 0, -1)
    got = await social.get_list(list_id)
    assert got is not None
    assert got.following == len(members)
    assert int(await redis_client.hget(social.user_key(a), "listed") or 0) == len(listed)
    assert ([text(m) for m in members] == [str(a)]) == ([text(m) for m in listed] == [list_id])
    assert len(await social.get_list_messages(list_id)) == len(members)


async def test_create_user_login_is_claimed_once(redis_client: Any) -> None:
    social = Social(redis_client)
    results = await asyncio.gather(
        *(social.create_user(login, "n") for login in ("Bob", "bob", "BOB", "bOb") * 5),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    assert all(isinstance(r, ValueError) for r in results if not isinstance(r, int))
    assert await social.get_uid("BoB") == winners[0]
    assert int(await redis_client.get(social.seq_key)) == 1


async def test_concurrent_follow_and_unfollow_of_one_pair_agree(redis_client: Any) -> None:
    social = Social(redis_client)
    uids = await _users(social, 4)
    for i in range(5):
        await social.create_status(uids[1], f"s{i}")
    in_flight = peak = 0

    async def tracked(step: Awaitable[bool]) -> bool:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await step
        finally:
            in_flight -= 1

    for round_ in range(6):
        calls = []
        for j in range(24):
            a, b = (uids[0], uids[1]) if j % 3 else (uids[(j + round_) % 4], uids[1 + j % 3])
            if a == b:
                continue
            step = social.follow_user(a, b) if (j + round_) % 2 else social.unfollow_user(a, b)
            calls.append(tracked(step))
        await asyncio.gather(*calls)
        await _agree(social, uids)
        # A home timeline holds the statuses of uids[1] exactly when following it.
        follows = await redis_client.zscore(social.following_key(uids[0]), str(uids[1]))
        home = [s.uid for s in await social.get_status_messages(uids[0])]
        assert (uids[1] in home) == (follows is not None)
    assert peak > 1, "the calls never overlapped"


async def test_cancelled_follow_and_unfollow_complete_or_leave_agreement(
    redis_client: Any,
) -> None:
    social = Social(redis_client)
    a, b = await _users(social, 2)
    await social.create_status(b, "s")
    for i, delay in enumerate(DELAYS * 2):
        call = social.follow_user(a, b) if i % 2 == 0 else social.unfollow_user(a, b)
        task = asyncio.create_task(call)
        await asyncio.sleep(delay)
        task.cancel()
        await outcome(task)
        want = i % 2 == 0

        async def settled(want: bool = want) -> bool:
            # Shielded: the steps finish although the caller was cancelled.
            following = await redis_client.zscore(social.following_key(a), str(b))
            if (following is not None) != want or await _mismatch(social, [a, b]) is not None:
                return False
            return len(await social.get_status_messages(a)) == int(want)  # the home copy

        await until(settled, "the cancelled call to finish its steps")


async def test_cancelled_create_user_and_post_are_all_or_nothing(redis_client: Any) -> None:
    social = Social(redis_client)
    author = await social.create_user("author", "A")
    follower = await social.create_user("follower", "F")
    await social.follow_user(follower, author)
    for i, delay in enumerate(DELAYS):
        task = asyncio.create_task(social.create_user(f"login{i}", "n"))
        await asyncio.sleep(delay)
        task.cancel()
        await outcome(task)
        post = asyncio.create_task(social.post_status(author, f"m{i}"))
        await asyncio.sleep(delay)
        post.cancel()
        await outcome(post)
    # Every claimed login gets its user record (create_user is shielded).
    logins = {text(k): int(v) for k, v in (await redis_client.hgetall(social.logins_key)).items()}

    async def created() -> bool:
        users = [await social.get_user(uid) for uid in logins.values()]
        return all(
            u is not None and u.login.casefold() == k for k, u in zip(logins, users, strict=True)
        )

    await until(created, "every claimed login to have its user")
    # Every status counted is in the profile, and the other way round.
    user = await social.get_user(author)
    assert user is not None
    profile = await redis_client.zrange(social.timeline_key(author, "profile"), 0, -1)
    assert user.posts == len(profile) == await redis_client.hlen(social.statuses_key(author))
    # A follower's home holds nothing but posted statuses.
    home = {text(s) for s in await redis_client.zrange(social.timeline_key(follower), 0, -1)}
    assert home <= {text(s) for s in profile}


async def test_concurrent_deletes_count_once(redis_client: Any) -> None:
    social = Social(redis_client)
    uid = await social.create_user("u", "U")
    ids = [await social.create_status(uid, f"m{i}") for i in range(5)]
    results = await asyncio.gather(*(social.delete_status(uid, s) for s in ids * 4))
    assert sum(results) == 5
    user = await social.get_user(uid)
    assert user is not None
    assert user.posts == 0


async def test_a_user_and_its_statuses_share_one_slot(redis_client: Any) -> None:
    social = Social(redis_client, "net", keyspace=Keyspace("app"))
    a, b = await social.create_user("a", "A"), await social.create_user("b", "B")
    await social.follow_user(a, b)
    await social.post_status(b, "hi")
    names = {text(k) async for k in redis_client.scan_iter(match="*")}
    assert all(k.startswith("app:social:{net") for k in names)
    for uid in (a, b):
        mine = {k for k in names if k.startswith(f"app:social:{{net:{uid}}}")}
        assert len(mine) >= 4
        assert {key_slot(k.encode()) for k in mine} == {key_slot(f"{{net:{uid}}}".encode())}
    assert social.logins_key in names
    assert social.seq_key in names


async def test_networks_are_independent(redis_client: Any) -> None:
    one, two = Social(redis_client, "one"), Social(redis_client, "two")
    assert await one.create_user("x", "X") == 1
    assert await two.create_user("x", "X") == 1
    await one.create_status(1, "only in one")
    assert await two.get_status_messages(1, "profile") == []


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.create_user("", "n"), ValueError),
        (lambda s: s.create_user("a}b", "n"), ValueError),
        (lambda s: s.create_user("a", None), TypeError),
        (lambda s: s.get_uid(1), TypeError),
        (lambda s: s.get_user(0), ValueError),
        (lambda s: s.get_user("1"), TypeError),
        (lambda s: s.create_status(1, None), TypeError),
        (lambda s: s.create_status(True, "m"), TypeError),
        (lambda s: s.post_status(1, "m", x=object()), TypeError),
        (lambda s: s.post_status(1, "m", x=float("nan")), ValueError),
        (lambda s: s.fan_out("1"), ValueError),
        (lambda s: s.fan_out(1), TypeError),
        (lambda s: s.fan_out("1:1", cursor="x"), ValueError),
        (lambda s: s.fan_out("1:1", cursor="nan1 2"), ValueError),
        (lambda s: s.fan_out("1:1", cursor=5), TypeError),
        (lambda s: s.clean_timelines("0:1"), ValueError),
        (lambda s: s.delete_status(1, "1:x"), ValueError),
        (lambda s: s.get_status_messages(1, "list"), ValueError),
        (lambda s: s.get_status_messages(1, page=0), ValueError),
        (lambda s: s.get_status_messages(1, count=0), ValueError),
        (lambda s: s.follow_user(1, 1), ValueError),
        (lambda s: s.unfollow_user(1, -2), ValueError),
        (lambda s: s.refill_timeline(1, cursor="1.5"), ValueError),
        (lambda s: s.fan_out("1:1", lists=1), TypeError),
        (lambda s: s.create_list(1, None), TypeError),
        (lambda s: s.create_list(0, "l"), ValueError),
        (lambda s: s.get_list("1:1"), ValueError),
        (lambda s: s.get_list(1), TypeError),
        (lambda s: s.follow_user_list("1/0", 2), ValueError),
        (lambda s: s.unfollow_user_list("1/1", "2"), TypeError),
        (lambda s: s.get_list_messages("1/1", page=0), ValueError),
    ],
)
async def test_bad_input_is_rejected_before_redis(call: Any, error: type[Exception]) -> None:
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(error):
            await call(Social(client))
    finally:
        await client.aclose()


async def test_delete_by_someone_else_is_refused_without_redis() -> None:
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    try:
        assert not await Social(client).delete_status(2, "1:1")
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"redis": None}, TypeError),
        ({"name": ""}, ValueError),
        ({"home_size": 0}, ValueError),
        ({"fanout_batch": 1.5}, TypeError),
        ({"keyspace": "app"}, TypeError),
    ],
)
def test_bad_construction_is_rejected(kwargs: dict[str, Any], error: type[Exception]) -> None:
    options: dict[str, Any] = {"redis": NO_REDIS, **kwargs}
    with pytest.raises(error):
        Social(**options)


async def test_unknown_users_raise_lookup_error(redis_client: Any) -> None:
    social = Social(redis_client)
    uid = await social.create_user("only", "O")
    with pytest.raises(LookupError):
        await social.follow_user(uid, 42)
    with pytest.raises(LookupError):
        await social.follow_user(42, uid)
    await _agree(social, [uid])
    with contextlib.suppress(LookupError):
        await social.unfollow_user(42, uid)
    assert await redis_client.zcard(social.followers_key(uid)) == 0


HUGE = 2**63  # one past a Redis integer


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.get_status_messages(1, page=2**62, count=4), ValueError),
        (lambda s: s.get_status_messages(1, count=HUGE), ValueError),
        (lambda s: s.get_status_messages(HUGE), ValueError),
        (lambda s: s.get_list_messages("1/1", page=HUGE), ValueError),
        (lambda s: s.fan_out(f"{HUGE}:1"), ValueError),
        (lambda s: s.fan_out(f"1:{HUGE}"), ValueError),
        (lambda s: s.fan_out("1:1", cursor="inf 2"), ValueError),
        (lambda s: s.fan_out("1:1", cursor="1e999 2"), ValueError),
        (lambda s: s.clean_timelines("1:1", cursor="-inf 2"), ValueError),
        (lambda s: s.refill_timeline(1, cursor="nan 2"), ValueError),
        (lambda s: s.delete_status(HUGE, f"{HUGE}:1"), ValueError),
        (lambda s: s.create_status(HUGE, "m"), ValueError),
        (lambda s: s.post_status(-1, "m"), ValueError),
        (lambda s: s.follow_user(1, HUGE), ValueError),
        (lambda s: s.create_list(HUGE, "l"), ValueError),
        (lambda s: s.get_list(f"{HUGE}/1"), ValueError),
        (lambda s: s.follow_user_list(f"1/{HUGE}", 2), ValueError),
        (lambda s: s.get_user(HUGE), ValueError),
    ],
)
async def test_out_of_range_numbers_never_reach_redis(call: Any, error: type[Exception]) -> None:
    # The tripwire client: any Redis call would fail with AssertionError, not the error here.
    with pytest.raises(error):
        await call(Social(NO_REDIS))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"home_size": 2**53 + 1}, ValueError),  # Lua's numbers are exact up to 2**53
        ({"fanout_batch": HUGE}, ValueError),
        ({"home_size": True}, TypeError),
        ({"fanout_batch": -1}, ValueError),
    ],
)
def test_out_of_range_construction_is_rejected(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        Social(NO_REDIS, **kwargs)


async def test_the_largest_home_size_works(redis_client: Any) -> None:
    social = Social(redis_client, home_size=2**53, fanout_batch=2**53)
    a, b = await social.create_user("a", "A"), await social.create_user("b", "B")
    await social.follow_user(a, b)
    status = await social.post_status(b, "m")
    assert [m.id for m in await social.get_status_messages(a)] == [status]
    assert [m.id for m in await social.get_status_messages(a, page=2**62, count=2)] == []
