"""Test IpLocations: import IP ranges and cities, find the city of an address.

Redis in Action §5.3, with the book's scenario (TestCh05 ``test_ip_lookup``: import the
GeoLiteCity CSVs, then look addresses up) run on small generated files in both the book's format
and GeoLite2's, instead of silently passing when the real files are absent. Every test runs on a
standalone server and a cluster; the ``_text`` ones also with ``decode_responses`` on and off.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import NO_REDIS, keys_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.core.keys import Keyspace
from aiorpatterns.core.scripts import script
from aiorpatterns.memory.sharding import ShardedHash
from aiorpatterns.ops.geoip import City, IpLocations, check_ranges
from aiorpatterns.testing.server import free_port

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

BOOK_BLOCKS = """Copyright (c) 2011 MaxMind Inc.  All Rights Reserved.
startIpNum,endIpNum,locId
"16777216","16777471","17"
"16777472","16778239","49"
"16778240","16779263","14409"
"""

BOOK_LOCATIONS = """Copyright (c) 2012 MaxMind LLC.  All Rights Reserved.
locId,country,region,city,postalCode,latitude,longitude,metroCode,areaCode
17,"AU","","",,-27.0000,133.0000,,
49,"CN","","",,35.0000,105.0000,,
14409,"AU","02","Sydney","",-33.8615,151.2055,,
"""

GEOLITE2_BLOCKS = """network,geoname_id,registered_country_geoname_id,\
represented_country_geoname_id,is_anonymous_proxy,is_satellite_provider,postal_code,latitude,longitude,accuracy_radius
1.0.0.0/24,2077456,2077456,,0,0,,-33.4940,143.2104,1000
1.0.4.0/22,,2077456,,0,0,,,,1000
2001:db8::/32,5128581,6252001,,0,0,10001,40.7,-74.0,100
"""

GEOLITE2_LOCATIONS = """geoname_id,locale_code,continent_code,continent_name,country_iso_code,\
country_name,subdivision_1_iso_code,subdivision_1_name,subdivision_2_iso_code,subdivision_2_name,\
city_name,metro_code,time_zone,is_in_european_union
2077456,en,OC,Oceania,AU,Australia,,,,,,,Australia/Sydney,0
5128581,en,NA,"North America",US,"United States",NY,"New York",,,"New York City",501,\
America/New_York,0
6252001,en,NA,"North America",US,"United States",,,,,,,,0
"""


async def lasting_keys(redis: Any) -> list[str]:
    """Every key under the prefix but the switch's receipts, which must expire (in 2 minutes)."""
    kept = []
    for key in await keys_of(redis):
        if ":staging:" in key and key.endswith(":switched"):
            assert 0 < await redis.pttl(key) <= 120_000, key
        else:
            kept.append(key)
    return kept


def fresh(client: Any) -> IpLocations:
    """An index with a name no other example used (hypothesis reuses one client)."""
    return IpLocations(client, f"g{uuid.uuid4().hex[:8]}")


def dead_client() -> Redis:
    return Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))


# -- the book's scenario ------------------------------------------------------------------------


async def test_book_ip_lookup_with_geolitecity_files(
    redis_client_text: Any, tmp_path: Path
) -> None:
    blocks = tmp_path / "GeoLiteCity-Blocks.csv"
    locations = tmp_path / "GeoLiteCity-Location.csv"
    blocks.write_text(BOOK_BLOCKS)
    locations.write_bytes(BOOK_LOCATIONS.encode("latin-1"))
    index = IpLocations(redis_client_text)
    assert await index.import_ranges_csv(blocks) == 3
    assert await index.import_cities_csv(locations, encoding="latin-1") == 3
    assert await index.find("1.0.0.0") == City("17", "", "", "AU")
    assert await index.find("1.0.1.255") == City("49", "", "", "CN")
    assert await index.find("1.0.5.1") == City("14409", "Sydney", "02", "AU")
    assert await index.find(16779263) == City("14409", "Sydney", "02", "AU")
    # The book answers Sydney for every address above its last range start.
    assert await index.find("1.0.8.0") is None
    assert await index.find("0.255.255.255") is None
    assert await index.find_id("1.0.3.0") == "49"


async def test_geolite2_files_with_ipv6(redis_client_text: Any) -> None:
    index = IpLocations(redis_client_text, "lite2")
    assert await index.import_ranges_csv(GEOLITE2_BLOCKS) == 3
    assert await index.import_cities_csv(GEOLITE2_LOCATIONS) == 3
    assert await index.find("1.0.0.77") == City("2077456", "", "", "AU")
    # No geoname_id: the registered country stands in.
    assert await index.find("1.0.7.255") == City("2077456", "", "", "AU")
    assert await index.find("1.0.1.0") is None  # the gap between the two networks
    nyc = City("5128581", "New York City", "New York", "US")
    assert await index.find("2001:db8::1") == nyc
    assert await index.find(ipaddress.IPv6Address("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")) == nyc
    assert await index.find("2001:db9::") is None
    assert await index.find("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff") is None
    assert await index.find("::1") is None
    assert await index.find("1.0.4.0") is not None  # families do not mix


async def test_csv_from_a_text_file_object(redis_client: Any, tmp_path: Path) -> None:
    path = tmp_path / "blocks.csv"
    path.write_text("10.0.0.0/8,1\n")
    index = IpLocations(redis_client)
    with path.open(newline="") as handle:
        assert await index.import_ranges_csv(handle) == 1
    await index.import_cities([("1", "Springfield", "", "US")])
    assert await index.find("10.200.0.1") == City("1", "Springfield", "", "US")
    assert await index.find("11.0.0.0") is None


# -- exact lookups against a brute-force model --------------------------------------------------


@st.composite
def range_sets(draw: st.DrawFn, version: int) -> list[tuple[int, int, str]]:
    """Disjoint ranges over a small window of the address space, with gaps."""
    top = 2**32 if version == 4 else 2**128
    base = draw(st.integers(1, top - 1001))
    cuts = sorted(draw(st.sets(st.integers(0, 999), min_size=0, max_size=30)))
    ranges = []
    for first, last in zip(cuts[::2], cuts[1::2], strict=False):
        city = str(draw(st.integers(0, 5)))
        ranges.append((base + first, base + last, city))
    if draw(st.booleans()) and version == 4:
        ranges.append((0, 0, "zero"))  # the very first address
    if draw(st.booleans()):
        ranges.append((top - 1, top - 1, "last"))  # the very last address
    return ranges


def model(ranges: list[tuple[int, int, str]], address: int) -> str | None:
    for first, last, city in ranges:
        if first <= address <= last:
            return city
    return None


@SETTINGS
@given(data=st.data(), version=st.sampled_from([4, 6]))
async def test_find_matches_a_brute_force_model(
    redis_client: Any, data: st.DataObject, version: int
) -> None:
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    ranges = data.draw(range_sets(version))
    index = fresh(redis_client)
    rows = [(make(first), str(make(last)), city) for first, last, city in ranges]
    await index.import_ranges(rows, batch=7)
    await index.import_cities([(str(c), f"city{c}", "r", "X") for c in range(6)])
    probes = {p for first, last, _ in ranges for p in (first - 1, first, last, last + 1)}
    top = 2**32 if version == 4 else 2**128
    probes |= set(data.draw(st.lists(st.integers(0, top - 1), max_size=10)))
    for probe in sorted(p for p in probes if 0 <= p < top):
        expected = model(ranges, probe)
        assert await index.find_id(make(probe)) == expected, make(probe)
        city = await index.find(str(make(probe)))
        if expected is None or not expected.isdigit():
            assert city is None  # no range, or a city id without a city
        else:
            assert city == City(expected, f"city{expected}", "r", "X")


# -- re-import ----------------------------------------------------------------------------------


async def test_reimport_leaves_no_stale_ranges_or_cities(redis_client_text: Any) -> None:
    index = IpLocations(redis_client_text)
    await index.import_ranges([("10.0.0.0/8", 1), ("2001:db8::/32", 2), ("12.0.0.0/8", 3)])
    await index.import_cities([(1, "A", "", "X"), (2, "B", "", "X"), (3, "C", "", "X")])
    await index.import_ranges([("10.0.0.0/9", 1)])
    await index.import_cities([(1, "A2", "", "X")])
    assert await index.find("10.0.0.1") == City("1", "A2", "", "X")
    assert await index.find("10.128.0.0") is None
    assert await index.find("2001:db8::5") is None
    assert await index.find("12.0.0.1") is None
    assert await redis_client_text.hlen(index.cities_key) == 1
    assert await lasting_keys(redis_client_text) == sorted([index.cities_key, index.ranges_key])
    # An empty import empties the index.
    assert await index.import_ranges([]) == 0
    assert await index.find("10.0.0.1") is None
    await index.clear()
    assert await lasting_keys(redis_client_text) == []


async def test_readers_see_the_old_table_or_the_new_one_during_a_reimport(
    redis_client: Any, new_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = IpLocations(redis_client)
    old = [(f"10.{i // 256}.{i % 256}.0/24", "old") for i in range(3000)]
    new = [(f"10.{i // 256}.{i % 256}.0/24", "new") for i in range(3000)]
    await index.import_ranges(old)
    reader = IpLocations(await new_client())  # its own connections
    reads: list[str | None] = []
    make_pipeline = redis_client.pipeline

    def pipeline_read_before_each_batch(*args: Any, **kwargs: Any) -> Any:
        # A reader's lookup lands before every staged batch is sent: on a loaded machine the
        # import could otherwise finish between two reads, and the test would prove nothing.
        pipe = make_pipeline(*args, **kwargs)
        send = pipe.execute

        async def execute(*a: Any, **k: Any) -> Any:
            reads.append(await reader.find_id("10.11.183.9"))  # in the last batch
            return await send(*a, **k)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(redis_client, "pipeline", pipeline_read_before_each_batch)
    await index.import_ranges(new, batch=500)
    assert reads == ["old"] * 6  # one read per batch: never None, never a half-imported table
    assert await reader.find_id("10.11.183.9") == "new"


async def test_cancelled_import_leaves_one_whole_table_and_no_staging(redis_client: Any) -> None:
    index = IpLocations(redis_client)
    rows = [(f"11.{i // 256}.{i % 256}.0/24", "new") for i in range(4000)]
    pauses: list[float | None] = [None] * 6 + [0.001, 0.003, 0.01, 0.03, 0.1]
    cancelled = 0
    for step, pause in enumerate(pauses):
        await index.import_ranges([("10.0.0.0/8", "old")])
        task = asyncio.create_task(index.import_ranges(rows, batch=400))
        if pause is None:
            for _ in range(step + 1):
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(pause)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled += 1
        # Old or new, never a mix, and the staging key is gone either way.
        old, new = await index.find_id("10.1.1.1"), await index.find_id("11.0.0.1")
        assert (old, new) in {("old", None), (None, "new")}
        if new == "new":
            assert await redis_client.zcard(index.ranges_key) == 4000
        assert await lasting_keys(redis_client) == [index.ranges_key]
    assert cancelled > 0


async def test_switch_refuses_an_incomplete_staging_key(redis_client: Any) -> None:
    index = IpLocations(redis_client)
    await index.import_ranges([("10.0.0.0/8", "old")])
    staging = index.keyspace.key("geoip", index.name, "staging", "t", "ranges")
    # As if the staging key expired mid-import and later batches wrote it again.
    await redis_client.zadd(staging, {"4ffffffff:ffffffff:x": 0})
    assert await script("geoip_switch")(redis_client, [staging, index.ranges_key], [2]) == 0
    assert await index.find_id("10.0.0.1") == "old"
    assert await lasting_keys(redis_client) == [index.ranges_key]


async def test_indexes_are_separate_and_use_their_keyspace(redis_client: Any) -> None:
    one = IpLocations(redis_client, "one")
    two = IpLocations(redis_client, "two", keyspace=Keyspace("app"))
    await one.import_ranges([("10.0.0.0/8", 1)])
    await two.import_ranges([("10.0.0.0/8", 2)])
    assert await one.find_id("10.0.0.1") == "1"
    assert await two.find_id("10.0.0.1") == "2"
    assert two.ranges_key == "app:geoip:{two}:ranges"


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "error", "match"),
    [
        ([("10.0.0.0/8", 1), ("10.1.0.0/16", 2)], ValueError, "overlapping"),
        ([("1.0.0.0", "1.0.0.9", 1), ("1.0.0.9", "1.0.0.20", 2)], ValueError, "overlapping"),
        ([("10.0.0.0/8", 1), ("10.0.0.0/8", 1)], ValueError, "overlapping"),
        ([("10.0.0.1/8", 1)], ValueError, "CIDR"),
        ([("300.0.0.0", "300.0.0.1", 1)], ValueError, "not an IP address"),
        ([("1.0.0.9", "1.0.0.1", 1)], ValueError, "starts after"),
        ([("1.0.0.0", "::1", 1)], ValueError, "different IP versions"),
        ([(2**32, 2**32 + 1, 1)], ValueError, "IPv4 number"),
        ([("10.0.0.0/8", "")], ValueError, "empty"),
        ([("10.0.0.0/8", None)], TypeError, "city id"),
        ([("10.0.0.0/8",)], ValueError, "range row 1"),
        (["10.0.0.0/8"], TypeError, "tuple"),
        ("10.0.0.0/8,1", TypeError, "iterable"),
    ],
)
async def test_bad_ranges_are_refused_before_redis(rows: Any, error: type, match: str) -> None:
    client = dead_client()
    with pytest.raises(error, match=match):
        await IpLocations(client).import_ranges(rows)
    await client.aclose()


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("startIpNum,endIpNum,locId\n1,2,3\n2,5,4\n", "overlapping"),
        ("network,geoname_id\n1.2.3.4/8,5\n", "line 2"),
        ("1.0.0.0,1.0.0.x,5\n", "line 1"),
        ("GeoLite2-City-Blocks-IPv4.csv", "no IP ranges"),
        ("", "no IP ranges"),
        ('"10.0.0.0/8,1\n', "malformed CSV|no IP ranges"),
    ],
)
async def test_bad_range_csv_is_refused_before_redis(source: str, match: str) -> None:
    client = dead_client()
    with pytest.raises(ValueError, match=match):
        await IpLocations(client).import_ranges_csv(source)
    await client.aclose()


async def test_other_bad_input_is_refused_before_redis(tmp_path: Path) -> None:
    client = dead_client()
    index = IpLocations(client)
    bad: list[Any] = ["1.2.3", "::g", "", "1.2.3.4/32", -1, 2**32]
    for ip in bad:
        with pytest.raises(ValueError, match="ip"):
            await index.find(ip)
    wrong: list[Any] = [None, b"1.2.3.4", 1.5, True]
    for ip in wrong:
        with pytest.raises(TypeError, match="ip"):
            await index.find(ip)
    with pytest.raises(ValueError, match="appears twice"):
        await index.import_cities([(1, "a", "", "X"), ("1", "b", "", "X")])
    with pytest.raises(TypeError, match="city must be a str"):
        await index.import_cities([(1, None, "", "X")])
    with pytest.raises(ValueError, match="city row 1"):
        await index.import_cities([(1, "a", "X")])
    with pytest.raises(ValueError, match="line 2"):
        await index.import_cities_csv("locId,country,region,city\n5,US\n")
    path = tmp_path / "b.csv"
    path.write_text("10.0.0.0/8,1\n")
    with path.open("rb") as handle, pytest.raises(TypeError, match="text mode"):
        await index.import_ranges_csv(handle)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="source"):
        await index.import_ranges_csv(b"10.0.0.0/8,1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch"):
        await index.import_ranges([], batch=0)
    with pytest.raises(ValueError, match="encoding"):
        await index.import_cities_csv(path, encoding="no-such-codec")
    with pytest.raises(ValueError, match="name"):
        IpLocations(client, "")
    with pytest.raises(ValueError, match="name"):
        IpLocations(client, "a}b")
    with pytest.raises(TypeError, match="keyspace"):
        IpLocations(client, keyspace="aiorp")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="redis"):
        IpLocations(None)
    await client.aclose()


def test_check_ranges_sorts_and_reports_both_rows() -> None:
    ranges = check_ranges([("2001:db8::/32", 1), ("10.0.0.0/8", 2), (5, 9, 3)])
    assert [(r.version, r.city_id) for r in ranges] == [(4, "3"), (4, "2"), (6, "1")]
    with pytest.raises(ValueError, match=r"10\.0\.0\.0-10\.255\.255\.255 .*10\.1\.0\.0"):
        check_ranges([("10.0.0.0/8", 1), ("10.1.0.0/16", 2)])


async def test_a_batch_out_of_range_is_refused_before_redis() -> None:
    index = IpLocations(NO_REDIS)
    with pytest.raises(ValueError, match="batch"):
        await index.import_ranges([("10.0.0.0/8", 1)], batch=2**63)
    with pytest.raises(ValueError, match="batch"):
        await index.import_cities([(1, "A", "", "X")], batch=0)
    with pytest.raises(ValueError, match="IPv4 number"):
        await index.find(2**32)


# -- §9.2.1: the city table in sharded hashes ------------------------------------------------


async def test_sharded_city_table_of_the_book(redis_client_text: Any, tmp_path: Path) -> None:
    """§9.2.1's sketch: cities in small hashes (id // 1024), ranges as in §5.3."""
    run = uuid.uuid4().hex[:8]
    table = ShardedHash(
        redis_client_text, f"cities-{run}", total_elements=320_000, shard_size=1024,
        placement="book",
    )  # fmt: skip
    index = IpLocations(redis_client_text, f"g{run}", cities=table)
    blocks = tmp_path / "GeoLiteCity-Blocks.csv"
    locations = tmp_path / "GeoLiteCity-Location.csv"
    blocks.write_text(BOOK_BLOCKS)
    locations.write_bytes(BOOK_LOCATIONS.encode("latin-1"))
    assert await index.import_ranges_csv(blocks) == 3
    assert await index.import_cities_csv(locations, encoding="latin-1", batch=2) == 3
    assert await index.find("1.0.5.1") == City("14409", "Sydney", "02", "AU")
    assert await index.find("1.0.0.0") == City("17", "", "", "AU")
    assert await index.find("1.0.8.0") is None
    # Each city sits in the small hash of its id // 1024, none in the index's own HASH.
    assert not await redis_client_text.exists(index.cities_key)
    for city_id in ("17", "49", "14409"):
        shard = table.shard_key(city_id)
        assert shard.endswith(f"{{cities-{run}:{int(city_id) // 1024}}}")
        assert await redis_client_text.hexists(shard, city_id)
    # A city missing from the table is no city, as with the index's own HASH.
    await redis_client_text.hdel(table.shard_key("14409"), "14409")
    assert await index.find("1.0.5.1") is None
    with pytest.raises(TypeError, match="cities"):
        IpLocations(NO_REDIS, "x", cities={"17": "[]"})  # type: ignore[arg-type]
