"""Test Locations: per-user packed location bytes and their aggregation.

Redis in Action §9.3, with the book's ``test_user_location`` (TestCh09) adapted: the book needs
a latin-1 connection; here the ``_text`` tests run with ``decode_responses`` on and off. Every
test runs on a standalone server and a 3-master cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from typing import Any

import pytest
from helpers import NO_REDIS, keys_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.memory.locations import (
    DEFAULT_COUNTRIES,
    DEFAULT_STATES,
    Location,
    LocationCounts,
    Locations,
)
from aiorpatterns.testing.server import free_port

Model = dict[int, Location | None]


def brute_force(model: Model) -> LocationCounts:
    """Counts computed the slow way from a dict of user -> place."""
    countries: Counter[str] = Counter()
    states: dict[str, Counter[str]] = {}
    for place in model.values():
        if place is None:
            continue
        countries[place.country] += 1
        if place.state is not None:
            states.setdefault(place.country, Counter())[place.state] += 1
    return LocationCounts(dict(countries), {c: dict(s) for c, s in states.items()})


async def test_book_user_location(redis_client_text: Any) -> None:
    locations = Locations(redis_client_text, "book")
    user = 0
    for country in DEFAULT_COUNTRIES:
        for state in DEFAULT_STATES.get(country, (None,)):
            await locations.set_location(user, country, state)
            user += 1
    everyone = await locations.aggregate()
    assert everyone == await locations.aggregate_users(range(user + 1))
    for country in DEFAULT_COUNTRIES:
        if country in DEFAULT_STATES:
            assert everyone.countries[country] == len(DEFAULT_STATES[country])
            assert everyone.states[country] == dict.fromkeys(DEFAULT_STATES[country], 1)
        else:
            assert everyone.countries[country] == 1
    assert set(everyone.states) == set(DEFAULT_STATES)
    assert await locations.get_location(0) == Location(DEFAULT_COUNTRIES[0])
    assert await locations.get_location(user - 1) == Location("ZAF")
    assert await locations.get_location(user) is None
    assert await locations.max_user() == user - 1


async def test_boundary_codes_round_trip(redis_client_text: Any) -> None:
    countries = [f"C{i:03}" for i in range(255)]
    states = {countries[0]: ["S1"], countries[-1]: [f"S{i:03}" for i in range(255)]}
    locations = Locations(redis_client_text, "edge", countries=countries, states=states)
    assert locations.code(countries[0]) == 0x0100
    assert locations.code(countries[-1], "S254") == 0xFFFF
    places = {
        0: Location(countries[0]),
        1: Location(countries[0], "S1"),
        2: Location(countries[-1]),
        3: Location(countries[-1], "S000"),
        4: Location(countries[-1], "S254"),
        5: Location(countries[127], None),
        6: Location(countries[128], None),
    }
    for user, place in places.items():
        await locations.set_location(user, place.country, place.state)
    for user, place in places.items():
        assert await locations.get_location(user) == place
    assert await locations.aggregate() == brute_force(dict(places))
    # The book's get_code raised IndexError for a code sorting past the table's end.
    with pytest.raises(ValueError, match="not in the table"):
        await locations.set_location(9, "ZZZZ")
    with pytest.raises(ValueError, match="not a state"):
        await locations.set_location(9, countries[-1], "ZZZZ")


async def test_bytes_are_the_books_layout(redis_client: Any) -> None:
    locations = Locations(redis_client, "layout", users_per_shard=4)
    await locations.set_location(5, "USA", "WY")
    raw = await redis_client.getrange(locations.shard_key(1), 0, 3)
    if isinstance(raw, bytes):
        country = DEFAULT_COUNTRIES.index("USA") + 1
        state = DEFAULT_STATES["USA"].index("WY") + 1
        assert raw == bytes([0, 0, country, state])
    await locations.set_location(5, None)
    assert await locations.get_location(5) is None
    assert await locations.aggregate() == LocationCounts()


async def test_aggregate_crosses_blocks_and_empty_shards(redis_client_text: Any) -> None:
    locations = Locations(redis_client_text, "blocks", users_per_shard=100_000)
    model: Model = {}
    rng = random.Random(7)
    users = [0, 1, 32767, 32768, 32769, 65535, 65536, 99_999, 350_001]
    users += rng.sample(range(100_000), 50)
    for user in users:
        country = rng.choice(["CAN", "USA", "FRA"])
        state = rng.choice([None, *DEFAULT_STATES.get(country, ())])
        await locations.set_location(user, country, state)
        model[user] = Location(country, state)
    assert await locations.aggregate() == brute_force(model)
    assert await locations.aggregate_users(model) == brute_force(model)
    assert await locations.max_user() == 350_001


_PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_PLACES = [
    None,
    Location("ARG"),
    Location("CAN"),
    Location("CAN", "AB"),
    Location("CAN", "YT"),
    Location("USA", "AK"),
    Location("USA", "WY"),
    Location("ZAF"),
]


@_PROPERTY
@given(
    writes=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(_PLACES)), max_size=40),
    users_per_shard=st.integers(1, 9),
)
async def test_locations_equal_a_dict_model(
    redis_client: Any, writes: list[tuple[int, Location | None]], users_per_shard: int
) -> None:
    locations = Locations(redis_client, uuid.uuid4().hex[:8], users_per_shard=users_per_shard)
    model: Model = {}
    for user, place in writes:
        if place is None:
            await locations.set_location(user, None)
        else:
            await locations.set_location(user, place.country, place.state)
        model[user] = place
    for user in range(42):
        assert await locations.get_location(user) == model.get(user)
    assert await locations.aggregate() == brute_force(model)
    assert await locations.aggregate_users(range(42)) == brute_force(model)
    assert await locations.max_user() == (max(model) if model else None)


async def test_concurrent_writers_lose_nothing_and_leave_no_temp_keys(redis_client: Any) -> None:
    locations = Locations(redis_client, "conc", users_per_shard=16)
    rng = random.Random(3)
    model: Model = {u: rng.choice(_PLACES[1:]) for u in rng.sample(range(500), 200)}
    in_flight = peak = 0

    async def write(items: list[tuple[int, Location | None]]) -> None:
        nonlocal in_flight, peak
        for user, place in items:
            assert place is not None
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await locations.set_location(user, place.country, place.state)
            finally:
                in_flight -= 1

    work = list(model.items())
    await asyncio.gather(*(write(work[k::20]) for k in range(20)))
    assert peak > 1, "the writers never overlapped"
    assert await locations.aggregate() == brute_force(model)
    assert await locations.max_user() == max(model)
    names = set(await keys_of(redis_client))
    shards = {locations.shard_key(u // 16) for u in model}
    assert names == shards | {locations.max_key}


async def test_cancelled_writes_are_all_or_nothing(redis_client: Any) -> None:
    locations = Locations(redis_client, "cancel", users_per_shard=8)
    await locations.set_location(3, "CAN", "ON")
    for steps in range(8):
        user = 3 if steps % 2 else 10 + steps
        before = await locations.get_location(user)
        task = asyncio.create_task(locations.set_location(user, "USA", "NY"))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)
        after = await locations.get_location(user)
        assert after in (before, Location("USA", "NY"))
        if after is not None:
            assert (await locations.max_user() or 0) >= user  # never a stored user past max
        await locations.set_location(3, "CAN", "ON")
    assert await locations.get_location(3) == Location("CAN", "ON")


async def test_keys_live_under_the_prefix(redis_client: Any) -> None:
    locations = Locations(redis_client, "users", keyspace=Keyspace("app"), users_per_shard=2)
    for user in range(5):
        await locations.set_location(user, "FRA")
    names = sorted(
        [k.decode() if isinstance(k, bytes) else k async for k in redis_client.scan_iter("app:*")]
    )
    assert names == [
        "app:location:{users:0}",
        "app:location:{users:1}",
        "app:location:{users:2}",
        "app:location:{users}:max",
    ]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda v: v.set_location(-1, "USA"), ValueError),
        (lambda v: v.set_location(True, "USA"), TypeError),
        (lambda v: v.set_location("1", "USA"), TypeError),
        (lambda v: v.set_location(1.0, "USA"), TypeError),
        (lambda v: v.set_location(1, "XXX"), ValueError),
        (lambda v: v.set_location(1, "usa"), ValueError),
        (lambda v: v.set_location(1, 840), TypeError),
        (lambda v: v.set_location(1, "FRA", "IDF"), ValueError),
        (lambda v: v.set_location(1, "USA", "ON"), ValueError),
        (lambda v: v.set_location(1, "USA", 6), TypeError),
        (lambda v: v.set_location(1, None, "CA"), ValueError),
        (lambda v: v.get_location(-5), ValueError),
        (lambda v: v.get_location(None), TypeError),
        (lambda v: v.aggregate_users([1, -1]), ValueError),
        (lambda v: v.aggregate_users("123"), TypeError),
        (lambda v: v.aggregate_users(5), TypeError),
    ],
)
async def test_bad_input_is_rejected_before_redis(call: Any, error: type[Exception]) -> None:
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(error):
            await call(Locations(client, "v"))
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"redis": None}, TypeError),
        ({"name": ""}, ValueError),
        ({"name": "a}b"}, ValueError),
        ({"users_per_shard": 0}, ValueError),
        ({"users_per_shard": 2**28 + 1}, ValueError),
        ({"users_per_shard": 2.0}, TypeError),
        ({"countries": "USA"}, TypeError),
        ({"countries": []}, ValueError),
        ({"countries": ["USA", "USA"]}, ValueError),
        ({"countries": [f"C{i}" for i in range(256)]}, ValueError),
        ({"countries": ["USA", 1]}, TypeError),
        ({"countries": ["USA", ""]}, ValueError),
        ({"states": {"XXX": ["A"]}}, ValueError),
        ({"states": {"USA": ["A", "A"]}}, ValueError),
        ({"states": {"USA": [f"S{i}" for i in range(256)]}}, ValueError),
        ({"states": [("USA", ["A"])]}, TypeError),
        ({"keyspace": "app"}, TypeError),
    ],
)
def test_bad_construction_is_rejected(kwargs: dict[str, Any], error: type[Exception]) -> None:
    options: dict[str, Any] = {"redis": NO_REDIS, "name": "v", **kwargs}
    with pytest.raises(error):
        Locations(options.pop("redis"), options.pop("name"), **options)


async def test_numbers_out_of_range_are_refused_before_redis() -> None:
    users = Locations(NO_REDIS)
    # The largest id is kept as a ZSET score (a double): past 2**53 it would be rounded.
    with pytest.raises(ValueError, match="user_id"):
        await users.set_location(2**53 + 1, "USA")
    with pytest.raises(ValueError, match="user_id"):
        await users.get_location(2**63)
    with pytest.raises(ValueError, match="user_id"):
        await users.aggregate_users([1, -1])
    with pytest.raises(ValueError, match="users_per_shard"):
        Locations(NO_REDIS, users_per_shard=2**28 + 1)
    with pytest.raises(ValueError, match="shard"):
        users.shard_key(2**63)
