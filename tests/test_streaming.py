"""Test StatusStream and the streaming filters (Redis in Action §8.5).

The book's streaming API publishes created and deleted statuses on a pub/sub channel and filters
them per client (sample, track, follow, location); it has no test of its own. Here: every filter
against a brute-force Python model over random statuses (hypothesis), the same filters end to end
through a Redis Stream, a reader that disconnects and resumes misses nothing, deletes arrive as
delete events to exactly the readers that saw the status, cancellation at successive await
points, and bad input refused before Redis. Redis tests run on a standalone server and a cluster,
the ``_text`` ones also with ``decode_responses`` on and off.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any

import pytest
from helpers import outcome, text, until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.social.network import Social
from aiorpatterns.social.streaming import (
    AllOfFilter,
    AnyOfFilter,
    FollowFilter,
    LocationFilter,
    NotFilter,
    SampleFilter,
    StatusEvent,
    StatusFilter,
    StatusStream,
    TrackFilter,
)
from aiorpatterns.social.timelines import StatusMessage
from aiorpatterns.testing.server import free_port

DELAYS = (0, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01)
_NETWORKS = itertools.count()

# -- brute-force models ---------------------------------------------------------------------


def model_words(message: str) -> set[str]:
    """Words by a character scan (the alphabet below has no character where this and \\w differ)."""
    out: set[str] = set()
    word = ""
    for ch in message.casefold() + " ":
        if ch.isalnum() or ch == "_":
            word += ch
        elif word:
            out.add(word)
            word = ""
    return out


def model_track(phrases: list[str], status: StatusMessage) -> bool:
    found = model_words(status.message)
    return any(all(w in found for w in model_words(p)) for p in phrases)


def model_follow(users: list[int | str], status: StatusMessage) -> bool:
    uids = {u for u in users if isinstance(u, int)}
    logins = {u.lstrip("@").casefold() for u in users if isinstance(u, str)}
    mentioned: set[str] = set()
    message, i = status.message, 0
    while i < len(message):
        if message[i] == "@":
            j = i + 1
            while j < len(message) and (message[j].isalnum() or message[j] == "_"):
                j += 1
            if j > i + 1:
                mentioned.add(message[i + 1 : j].casefold())
            i = j
        else:
            i += 1
    return status.uid in uids or status.login.casefold() in logins or bool(mentioned & logins)


def model_location(boxes: list[tuple[float, float, float, float]], status: StatusMessage) -> bool:
    lat, lon = status.data.get("lat"), status.data.get("lon")
    for value, limit in ((lat, 90), (lon, 180)):
        if type(value) not in (int, float) or not math.isfinite(value) or abs(value) > limit:
            return False
    for west, south, east, north in boxes:
        if not south <= lat <= north:  # type: ignore[operator]
            continue
        if west <= east and west <= lon <= east:  # type: ignore[operator]
            return True
        if west > east and (lon >= west or lon <= east):  # type: ignore[operator]
            return True
    return False


ALPHABET = "abcdeABCDE xyz@#.,!_-é1"
logins = st.sampled_from(["alice", "Bob", "carol", "dave"])
lats = st.one_of(st.none(), st.floats(-100, 100), st.integers(-90, 90), st.just("12"))
lons = st.one_of(st.none(), st.floats(-200, 200), st.integers(-180, 180), st.just(True))


@st.composite
def statuses(draw: Any) -> StatusMessage:
    uid = draw(st.integers(1, 6))
    data: dict[str, Any] = {}
    lat, lon = draw(lats), draw(lons)
    if lat is not None:
        data["lat"] = lat
    if lon is not None:
        data["lon"] = lon
    return StatusMessage(
        id=f"{uid}:{draw(st.integers(1, 10**6))}",
        uid=uid,
        login=draw(logins),
        message=draw(st.text(ALPHABET, max_size=30)),
        posted=1.0,
        data=data,
    )


phrases = st.text("abcdeABCDE xyz_é1 ,", min_size=1, max_size=8).filter(lambda p: model_words(p))
boxes = st.tuples(
    st.floats(-180, 180), st.floats(-90, 90), st.floats(-180, 180), st.floats(-90, 90)
).map(lambda b: (b[0], min(b[1], b[3]), b[2], max(b[1], b[3])))
users = st.one_of(st.integers(1, 6), st.sampled_from(["ALICE", "@bob", "carol", "zed"]))


# -- filters against the models (no Redis) --------------------------------------------------


@given(st.lists(phrases, min_size=1, max_size=4), st.lists(statuses(), max_size=20))
def test_track_matches_the_model(words: list[str], batch: list[StatusMessage]) -> None:
    track = TrackFilter(*words)
    assert [track(s) for s in batch] == [model_track(words, s) for s in batch]


@given(st.lists(users, min_size=1, max_size=4), st.lists(statuses(), max_size=20))
def test_follow_matches_the_model(who: list[int | str], batch: list[StatusMessage]) -> None:
    follow = FollowFilter(*who)
    assert [follow(s) for s in batch] == [model_follow(who, s) for s in batch]


@given(st.lists(boxes, min_size=1, max_size=3), st.lists(statuses(), max_size=20))
def test_location_matches_the_model(
    where: list[tuple[float, float, float, float]], batch: list[StatusMessage]
) -> None:
    location = LocationFilter(*where)
    assert [location(s) for s in batch] == [model_location(where, s) for s in batch]


@given(
    st.floats(0, 1),
    st.floats(0, 1),
    st.text(max_size=5),
    st.lists(statuses(), max_size=30),
)
def test_sample_is_deterministic_and_nested(
    a: float, b: float, seed: str, batch: list[StatusMessage]
) -> None:
    small, large = SampleFilter(min(a, b), seed=seed), SampleFilter(max(a, b), seed=seed)
    again = SampleFilter(max(a, b), seed=seed)
    for status in batch:
        assert large(status) == again(status)
        assert not small(status) or large(status)
    assert not any(SampleFilter(0)(s) for s in batch)
    assert all(SampleFilter(1)(s) for s in batch)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.9])
def test_sample_passes_about_its_fraction(fraction: float) -> None:
    ids = [
        StatusMessage(f"{u}:{n}", u, "x", "", 0.0, {}) for u in range(1, 11) for n in range(1, 2001)
    ]
    for seed in ("", "reader-2"):
        kept = sum(SampleFilter(fraction, seed=seed)(s) for s in ids)
        assert abs(kept / len(ids) - fraction) < 0.02
    one, two = SampleFilter(0.5, seed="a"), SampleFilter(0.5, seed="b")
    assert [one(s) for s in ids] != [two(s) for s in ids]  # seeds choose different samples


@given(st.lists(phrases, min_size=1, max_size=2), st.lists(users, min_size=1, max_size=2))
@settings(max_examples=50)
def test_combinations_match_boolean_logic(words: list[str], who: list[int | str]) -> None:
    track, follow = TrackFilter(*words), FollowFilter(*who)
    batch = [
        StatusMessage(f"{u}:1", u, login, message, 0.0, {})
        for u in (1, 2, 3)
        for login in ("alice", "bob")
        for message in ("", " ".join(words), "@carol hi")
    ]
    for s in batch:
        assert (track & follow)(s) == AllOfFilter(track, follow)(s) == (track(s) and follow(s))
        assert (track | follow)(s) == AnyOfFilter(track, follow)(s) == (track(s) or follow(s))
        assert (~track)(s) == NotFilter(track)(s) == (not track(s))
        assert (track & (lambda st_: st_.uid == 1))(s) == (track(s) and s.uid == 1)
    assert AllOfFilter()(batch[0])
    assert not AnyOfFilter()(batch[0])


def test_filters_follow_the_book_examples() -> None:
    def status(message: str, login: str = "someone", **data: Any) -> StatusMessage:
        return StatusMessage("7:1", 7, login, message, 0.0, data)

    assert TrackFilter("redis")(status("I like Redis, a lot"))
    assert TrackFilter("redis streams")(status("streams in redis!"))
    assert not TrackFilter("redis streams")(status("streams only"))
    assert TrackFilter("strasse")(status("STRASSE"))
    assert TrackFilter("Straße")(status("strasse"))  # casefold
    assert FollowFilter("@Alice")(status("hello", login="alice"))
    assert FollowFilter("alice")(status("cc @ALICE, see this"))
    assert not FollowFilter("alice")(status("alice without the at"))
    assert FollowFilter(7)(status("x"))
    assert not FollowFilter(8)(status("x"))
    box = (-123.0, 37.0, -122.0, 38.0)  # San Francisco, (west, south, east, north)
    assert LocationFilter(box)(status("x", lat=37.77, lon=-122.42))
    assert not LocationFilter(box)(status("x", lat=37.77))
    assert not LocationFilter(box)(status("x", lat="37.77", lon="-122.42"))
    assert LocationFilter((170, -50, -170, -30))(status("x", lat=-40, lon=179.5))  # antimeridian
    assert not LocationFilter((170, -50, -170, -30))(status("x", lat=-40, lon=0))
    assert isinstance(TrackFilter("a") & FollowFilter(1), StatusFilter)


# -- through Redis --------------------------------------------------------------------------


async def _network(redis: Any, **kwargs: Any) -> tuple[Social, StatusStream, list[int]]:
    name = f"net{next(_NETWORKS)}"
    stream = StatusStream(redis, name, **kwargs)
    social = Social(redis, name, events=stream)
    uids = [await social.create_user(login, login.title()) for login in ("alice", "bob", "carol")]
    return social, stream, uids


async def _drain(
    stream: StatusStream, match: Any = None, last_id: str = "0", idle: float = 0
) -> list[StatusEvent]:
    return [e async for e in stream.events(match, last_id=last_id, timeout=idle)]


async def test_book_scenario_created_and_deleted_statuses_reach_filtered_readers(
    redis_client_text: Any,
) -> None:
    social, stream, (alice, bob, carol) = await _network(redis_client_text)
    start = await stream.last_id()
    first = await social.post_status(alice, "Hello Redis streams", lat=51.5, lon=-0.12)
    second = await social.post_status(bob, "hi @alice")
    third = await social.create_status(carol, "nothing here")
    assert await social.delete_status(alice, first)
    assert not await social.delete_status(alice, first)  # no second delete event
    events = await _drain(stream, last_id=start)
    assert [(e.kind, e.status.id) for e in events] == [
        ("created", first),
        ("created", second),
        ("created", third),
        ("deleted", first),
    ]
    created = events[0].status
    assert (created.uid, created.login, created.message) == (alice, "alice", "Hello Redis streams")
    assert created.data == {"lat": 51.5, "lon": -0.12}
    [stored] = await social.get_status_messages(bob, "profile")
    assert events[1].status == stored  # the event carries the stored record
    assert events[3].deleted
    assert events[3].status == created
    assert all(isinstance(e.id, str) and isinstance(e.status.login, str) for e in events)
    track = await _drain(stream, TrackFilter("redis"), last_id=start)
    assert [(e.kind, e.status.id) for e in track] == [("created", first), ("deleted", first)]
    follow = await _drain(stream, FollowFilter("alice"), last_id=start)
    assert [e.status.id for e in follow] == [first, second, first]
    london = await _drain(stream, LocationFilter((-1, 51, 1, 52)), last_id=start)
    assert [e.kind for e in london] == ["created", "deleted"]
    assert await _drain(stream, FollowFilter(carol) & TrackFilter("redis"), last_id=start) == []


_STATUS = st.tuples(
    st.integers(0, 2),
    st.text("ab cd,AB", max_size=12),
    st.one_of(st.none(), st.tuples(st.integers(-90, 90), st.integers(-180, 180))),
    st.booleans(),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(_STATUS, max_size=12), fraction=st.floats(0, 1))
async def test_readers_get_what_the_models_pass(
    redis_client: Any, batch: list[Any], fraction: float
) -> None:
    social, stream, uids = await _network(redis_client)
    expected: list[tuple[str, StatusMessage]] = []
    for who, message, where, delete in batch:
        data = {} if where is None else {"lat": where[0], "lon": where[1]}
        status_id = await social.create_status(uids[who], message, **data)
        [status] = [
            s for s in await social.get_status_messages(uids[who], "profile") if s.id == status_id
        ]
        expected.append(("created", status))
        if delete:
            assert await social.delete_status(uids[who], status_id)
            expected.append(("deleted", status))
    readers: list[tuple[Any, Any]] = [
        (None, lambda s: True),
        (TrackFilter("ab", "cd AB"), lambda s: model_track(["ab", "cd AB"], s)),
        (FollowFilter(uids[0], "bob"), lambda s: model_follow([uids[0], "bob"], s)),
        (LocationFilter((-10, -10, 100, 45)), lambda s: model_location([(-10, -10, 100, 45)], s)),
        (SampleFilter(fraction, seed="r"), SampleFilter(fraction, seed="r")),
    ]
    for match, model in readers:
        got = [(e.kind, e.status) for e in await _drain(stream, match)]
        assert got == [(k, s) for k, s in expected if model(s)]


async def test_reader_that_disconnects_and_resumes_misses_nothing(
    redis_client: Any, redis_server: Any
) -> None:
    social, stream, (alice, bob, _) = await _network(redis_client)
    posted = [await social.create_status(alice, f"early {i}") for i in range(3)]
    seen: list[StatusEvent] = []
    async for event in stream.events(last_id="0"):
        seen.append(event)
        if len(seen) == 2:
            break  # disconnect mid-batch: the third was fetched but not handed out
    posted += [await social.create_status(bob, f"late {i}") for i in range(4)]
    await social.delete_status(alice, posted[0])
    # A new connection (standalone) or the same cluster client resumes from the last id seen.
    other = stream
    fresh = None
    if isinstance(redis_client, Redis):
        fresh = Redis.from_url(redis_server.url)
        other = StatusStream(fresh, stream.name)
    try:
        seen += await _drain(other, last_id=seen[-1].id)
    finally:
        if fresh is not None:
            await fresh.aclose()
    assert [(e.kind, e.status.id) for e in seen] == [
        *(("created", s) for s in posted),
        ("deleted", posted[0]),
    ]
    assert len({e.id for e in seen}) == len(seen)
    assert not await stream.missed(seen[0].id)


async def test_concurrent_posters_and_live_readers_see_every_event_once(
    redis_client: Any,
) -> None:
    social, stream, uids = await _network(redis_client)
    overlap = {"now": 0, "peak": 0}
    ready = asyncio.Event()

    async def post(uid: int) -> list[str]:
        overlap["now"] += 1
        overlap["peak"] = max(overlap["peak"], overlap["now"])
        try:
            await ready.wait()
            return [await social.create_status(uid, f"{uid} {i}") for i in range(20)]
        finally:
            overlap["now"] -= 1

    async def read(match: Any, expect: int) -> list[StatusEvent]:
        got: list[StatusEvent] = []
        async for event in stream.events(match, last_id=start, timeout=10):
            got.append(event)
            if len(got) == expect:
                break
        return got

    start = await stream.last_id()
    readers = [
        asyncio.create_task(read(None, 60)),
        asyncio.create_task(read(FollowFilter(uids[2]), 20)),
    ]
    posters = [asyncio.create_task(post(uid)) for uid in uids]
    await asyncio.sleep(0.01)
    ready.set()
    posted = await asyncio.gather(*posters)
    everything, followed = await asyncio.gather(*readers)
    assert overlap["peak"] == 3
    ids = [e.status.id for e in everything]
    assert sorted(ids) == sorted(i for mine in posted for i in mine)
    for mine in posted:  # one author's statuses keep their order
        assert [i for i in ids if i in mine] == mine
    assert [e.status.id for e in followed] == posted[2]


async def test_live_reader_from_now_gets_later_events_in_order(redis_client: Any) -> None:
    social, stream, (alice, bob, _) = await _network(redis_client)
    await social.create_status(alice, "before the reader")
    got: list[str] = []
    started = asyncio.Event()

    async def read() -> None:
        iterator = stream.events(FollowFilter(bob), timeout=5).__aiter__()
        started.set()
        async for event in iterator:
            got.append(event.status.message)
            if len(got) == 5:
                return

    reader = asyncio.create_task(read())
    await started.wait()
    await asyncio.sleep(0.05)  # the reader is blocked in XREAD (or pinned "$") by now
    for i in range(5):
        await social.create_status(alice, f"not followed {i}")
        await social.create_status(bob, f"b{i}")
        await asyncio.sleep(0.01 * i)  # gaps longer than nothing: wake-ups, not one batch
    await asyncio.wait_for(reader, 10)
    assert got == [f"b{i}" for i in range(5)]


async def test_start_from_now_is_pinned_before_the_first_wait(redis_client: Any) -> None:
    """ "$" is resolved once: events between two XREAD slices are never skipped."""
    social, stream, (alice, _, _) = await _network(redis_client)
    iterator = stream.events(last_id="$", timeout=0.3).__aiter__()
    first = asyncio.create_task(iterator.__anext__())
    await asyncio.sleep(0.05)
    ids = [await social.create_status(alice, f"m{i}") for i in range(3)]
    event = await first
    rest = [e async for e in iterator]
    assert [event.status.id, *(e.status.id for e in rest)] == ids


async def test_waits_are_sliced_below_the_socket_timeout(redis_server: Any) -> None:
    redis = Redis.from_url(redis_server.url, socket_timeout=0.2)
    try:
        stream = StatusStream(redis, f"net{next(_NETWORKS)}")
        assert await _drain(stream, last_id="$", idle=0.6) == []
    finally:
        await redis.aclose()


async def test_deletes_reach_exactly_the_readers_that_saw_the_status(redis_client: Any) -> None:
    social, stream, uids = await _network(redis_client)
    ids = [await social.create_status(uids[i % 3], f"m{i} ab" * (i % 2)) for i in range(30)]
    for status_id in ids[::2]:
        assert await social.delete_status(int(status_id.split(":")[0]), status_id)
    for match in (SampleFilter(0.4, seed="x"), TrackFilter("ab"), FollowFilter(uids[1])):
        events = await _drain(stream, match)
        created = {e.status.id for e in events if e.kind == "created"}
        deleted = {e.status.id for e in events if e.deleted}
        assert deleted == created & set(ids[::2])


async def test_cancelled_posts_and_deletes_still_announce(redis_client: Any) -> None:
    social, stream, (alice, _, _) = await _network(redis_client)
    for delay in DELAYS:
        task = asyncio.create_task(social.create_status(alice, f"m{delay}"))
        await asyncio.sleep(delay)
        task.cancel()
        await outcome(task)
    user_posts = lambda: social.get_user(alice)  # noqa: E731

    async def settled() -> bool:
        user = await user_posts()
        assert user is not None
        return user.posts == len(await _drain(stream))

    await until(settled, "every posted status to have its event")
    statuses = [s.id for s in await social.get_status_messages(alice, "profile", count=100)]
    for delay, status_id in zip(DELAYS, statuses, strict=False):
        task = asyncio.create_task(social.delete_status(alice, status_id))
        await asyncio.sleep(delay)
        task.cancel()
        await outcome(task)

    async def deletes_announced() -> bool:
        user = await user_posts()
        assert user is not None
        deleted = [e for e in await _drain(stream) if e.deleted]
        return user.posts + len(deleted) == len(statuses)

    await until(deletes_announced, "every delete to have its event")
    events = await _drain(stream)
    assert sorted(e.status.id for e in events if e.deleted) == sorted(
        set(statuses) - {s.id for s in await social.get_status_messages(alice, "profile")}
    )


async def test_cancelled_reader_leaves_the_client_working(redis_client: Any) -> None:
    social, stream, (alice, _, _) = await _network(redis_client)
    for delay in (*DELAYS, 0.05, 0.2):
        reader = asyncio.create_task(_drain(stream, last_id="$", idle=10))
        await asyncio.sleep(delay)
        reader.cancel()
        assert await outcome(reader) is None
        await social.create_status(alice, f"after {delay}")
    assert len(await _drain(stream)) == len(DELAYS) + 2
    assert await redis_client.ping()


async def test_trimmed_stream_reports_what_a_reader_missed(redis_client: Any) -> None:
    social, stream, (alice, _, _) = await _network(redis_client, maxlen=5)
    first = await _drain(stream, last_id="$")
    assert first == []
    assert not await stream.missed("0")  # no stream yet
    ids = [await social.create_status(alice, f"m{i}") for i in range(250)]
    events = await _drain(stream)
    assert 5 <= len(events) < 250 == len(ids)  # MAXLEN ~: whole nodes are dropped
    assert [e.status.id for e in events] == ids[-len(events) :]
    assert await stream.missed("0")
    assert not await stream.missed(events[0].id)
    assert not await stream.missed(await stream.last_id())
    assert await stream.length() == len(events)


async def test_a_create_event_after_its_delete_event_is_dropped(redis_client_text: Any) -> None:
    _, stream, _ = await _network(redis_client_text)
    late = StatusMessage("1:9", 1, "alice", "raced", 5.0, {})
    other = StatusMessage("1:10", 1, "alice", "fine", 6.0, {})
    await stream.publish("deleted", late)
    await stream.publish("created", other)
    await stream.publish("created", late)  # the post's event, appended after the delete's
    events = await _drain(stream)
    assert [(e.kind, e.status) for e in events] == [("deleted", late), ("created", other)]


async def test_foreign_entries_are_skipped(redis_client_text: Any) -> None:
    social, stream, (alice, _, _) = await _network(redis_client_text)
    await redis_client_text.xadd(stream.key, {"junk": "1"})
    await redis_client_text.xadd(stream.key, {"kind": "created", "status": "1:1", "record": "{"})
    await redis_client_text.xadd(stream.key, {"kind": "edited", "status": "1:1", "record": "{}"})
    status_id = await social.create_status(alice, "real")
    assert [e.status.id for e in await _drain(stream)] == [status_id]
    assert stream.skipped == 3


async def test_social_without_events_is_unchanged(redis_client: Any) -> None:
    name = f"net{next(_NETWORKS)}"
    social = Social(redis_client, name)
    stream = StatusStream(redis_client, name)
    uid = await social.create_user("alice", "A")
    status_id = await social.post_status(uid, "quiet")
    assert await social.delete_status(uid, status_id)
    assert await stream.length() == 0


def test_stream_key_has_its_own_tag() -> None:
    stream = StatusStream(Redis(), "net")
    assert stream.key == "aiorp:streaming:{net}"
    assert repr(stream) == "<StatusStream 'aiorp:streaming:{net}'>"


# -- bad input ------------------------------------------------------------------------------


def _offline() -> Redis:
    return Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda r: StatusStream(None), TypeError),
        (lambda r: StatusStream(r, ""), ValueError),
        (lambda r: StatusStream(r, "a}b"), ValueError),
        (lambda r: StatusStream(r, maxlen=0), ValueError),
        (lambda r: StatusStream(r, maxlen=1.5), TypeError),
        (lambda r: StatusStream(r, keyspace="x"), TypeError),
        (lambda r: Social(r, events="stream"), TypeError),
        (lambda r: SampleFilter(1.5), ValueError),
        (lambda r: SampleFilter(-0.1), ValueError),
        (lambda r: SampleFilter(float("nan")), ValueError),
        (lambda r: SampleFilter(True), TypeError),
        (lambda r: SampleFilter("0.5"), TypeError),
        (lambda r: SampleFilter(0.5, seed=1), TypeError),
        (lambda r: TrackFilter(), ValueError),
        (lambda r: TrackFilter("..."), ValueError),
        (lambda r: TrackFilter(b"redis"), TypeError),
        (lambda r: TrackFilter(["redis"]), TypeError),
        (lambda r: FollowFilter(), ValueError),
        (lambda r: FollowFilter(0), ValueError),
        (lambda r: FollowFilter(True), TypeError),
        (lambda r: FollowFilter("@"), ValueError),
        (lambda r: FollowFilter("a b"), ValueError),
        (lambda r: FollowFilter(1.0), TypeError),
        (lambda r: LocationFilter(), ValueError),
        (lambda r: LocationFilter((0, 0, 1)), ValueError),
        (lambda r: LocationFilter("0,0,1,1"), TypeError),
        (lambda r: LocationFilter((0, 1, 1, 0)), ValueError),
        (lambda r: LocationFilter((0, 0, 181, 1)), ValueError),
        (lambda r: LocationFilter((0, 0, 1, float("inf"))), ValueError),
        (lambda r: LocationFilter((0, 0, "1", 1)), TypeError),
        (lambda r: AllOfFilter(1), TypeError),
        (lambda r: AnyOfFilter(TrackFilter("a"), "b"), TypeError),
        (lambda r: NotFilter(None), TypeError),
        (lambda r: StatusStream(r).events(filter="track"), TypeError),
        (lambda r: StatusStream(r).events(last_id=0), TypeError),
        (lambda r: StatusStream(r).events(last_id="latest"), ValueError),
        (lambda r: StatusStream(r).events(last_id="1-2-3"), ValueError),
        (lambda r: StatusStream(r).events(last_id=str(2**64)), ValueError),
        (lambda r: StatusStream(r).events(timeout=-1), ValueError),
        (lambda r: StatusStream(r).events(timeout=float("inf")), ValueError),
        (lambda r: StatusStream(r).events(timeout="1"), TypeError),
        (lambda r: StatusStream(r).events(count=0), ValueError),
    ],
)
def test_bad_arguments_are_refused(make: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        make(_offline())


_STATUS_OK = StatusMessage("1:1", 1, "a", "m", 0.0, {})


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.publish("edited", _STATUS_OK), ValueError),
        (lambda s: s.publish("created", {"id": "1:1"}), TypeError),
        (lambda s: s.publish("created", StatusMessage("x", 1, "a", "m", 0.0, {})), ValueError),
        (
            lambda s: s.publish("created", StatusMessage("1:1", 1, "a", "m", 0.0, {"x": {1, 2}})),
            TypeError,
        ),
        (lambda s: s.missed(5), TypeError),
        (lambda s: s.missed("x"), ValueError),
    ],
)
async def test_bad_calls_are_refused_before_redis(call: Any, error: type[Exception]) -> None:
    stream = StatusStream(_offline())
    with pytest.raises(error):
        await call(stream)


async def test_bad_social_calls_with_events_are_refused_before_redis() -> None:
    redis = _offline()
    social = Social(redis, events=StatusStream(redis))
    with pytest.raises(TypeError):
        await social.create_status(1, b"bytes")
    with pytest.raises(TypeError):
        await social.create_status(1, "m", where={1, 2})
    with pytest.raises(ValueError, match="status_id"):
        await social.delete_status(1, "nope")
    assert await social.delete_status(2, "1:1") is False  # not the author: no Redis call
    assert await stream_offline_missed_dollar(redis) is False


async def stream_offline_missed_dollar(redis: Redis) -> bool:
    return await StatusStream(redis).missed("$")  # "$" is now: nothing missed, no Redis call


def test_words_tokenise_case_insensitively() -> None:
    from aiorpatterns.social.streaming import words

    assert words("Hello, WORLD! hello_there x-y") == {"hello", "world", "hello_there", "x", "y"}
    assert text(b"a") == "a"
