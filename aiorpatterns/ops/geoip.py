"""Look up the city of an IP address (IPv4 and IPv6) in ranges imported from a GeoIP database.

Redis in Action §5.3 stores the start of each IPv4 range as a ZSET score (``ip2cityid:``) and
finds a city with ``ZREVRANGEBYSCORE ip 0 LIMIT 0 1``, then reads the city's JSON from a HASH
(``cityid2city:``). That design has four faults, fixed here:

- **Range ends.** Only starts are stored, so an address past the end of a range, or in a gap
  between ranges, gets the city of the range before it. Here every range keeps its end and an
  address outside every range has no city.
- **IPv6.** A ZSET score is a double (53 bits of mantissa): exact for IPv4, not for 128-bit
  IPv6. Here a range is a ZSET member ``<family><end>:<start>:<city id>`` whose addresses are
  fixed-width lowercase hex (8 digits for IPv4, family ``4``; 32 for IPv6, family ``6``), every
  score 0, so members sort by address exactly and ``ZRANGE [<family><address> (<family+1>
  BYLEX LIMIT 0 1`` returns the first range ending at or after the address; it holds the
  address if it also starts at or before it. No precision is lost for either family; the one
  limit is that IPv4-mapped IPv6 addresses (``::ffff:1.2.3.4``) are looked up as IPv6, as
  written, so import them in IPv6 form if your data has them.
- **Stale rows.** Re-importing writes over the live keys row by row: readers see a half-loaded
  table, and ranges or cities absent from the new data stay for ever. Here an import fills an
  expiring staging key under the same hash tag and one script renames it over the live key
  (``geoip_switch``), so readers see the old table or the new one, never a mix.
- **Python 3.** The book opens CSV files in binary mode and mixes bytes and str; here CSV is
  read as text through :mod:`csv`, and results are ``str`` whatever ``decode_responses``.

Input is validated in full before anything is written: malformed addresses or networks, a range
whose start is after its end, and overlapping ranges raise ``ValueError`` naming the rows.

Retry safety: the switch of an import keeps its reply under the import's own staging key name
(``…:staging:<token>:<part>:switched``, two minutes), so a re-sent switch answers as the first
did instead of reporting a lost staging key, and never deletes a table switched in since.

Keys: ``<prefix>:geoip:{<name>}:ranges`` (ZSET), ``…:cities`` (HASH city id -> JSON
``[city, region, country]``), and while importing ``…:staging:<token>:ranges|cities``
(expiring) and the switch's receipt ``…:staging:<token>:ranges|cities:switched`` (expiring).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import ipaddress
import itertools
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol, runtime_checkable

from ..core.cancellation import best_effort, cancelling, honour_cancel
from ..core.checks import AsyncRedis, check_count, check_object, encode_json, text
from ..core.keys import DEFAULT_KEYSPACE, Keyspace
from ..core.scripts import script

__all__ = ["City", "CityTable", "IpLocations", "IpRange"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Rows written per round trip while importing.
BATCH = 2000
#: TTL of a staging key, refreshed with every batch: an import that dies leaves nothing behind.
STAGING_MS = 600_000

_WIDTH = {4: 8, 6: 32}


@dataclass(frozen=True, slots=True)
class City:
    """A city: its id in the imported data, its name, region and country (as imported)."""

    id: str
    city: str
    region: str
    country: str


@dataclass(frozen=True, slots=True, order=True)
class IpRange:
    """An inclusive range of addresses of one family (4 or 6) and the id of its city."""

    version: int
    start: int
    end: int
    city_id: str

    def member(self) -> str:
        width = _WIDTH[self.version]
        return f"{self.version}{self.end:0{width}x}:{self.start:0{width}x}:{self.city_id}"


def parse_address(value: object, what: str = "ip") -> Address:
    """Return ``value`` as an IPv4/IPv6 address; an int (or digit string) is an IPv4 number."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(
            f"{what} must be a str, int or ipaddress address, not {type(value).__name__}"
        )
    if isinstance(value, str):
        value = value.strip()
        if value.isdigit():
            value = int(value)
    if isinstance(value, int) and not 0 <= value < 2**32:
        raise ValueError(
            f"{what} as an integer is an IPv4 number (0 to 2**32 - 1), got {value}; "
            "pass an ipaddress.IPv6Address for IPv6"
        )
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{what} is not an IP address: {value!r}") from None


def _network(value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise TypeError(f"network must be a str or ipaddress network, not {type(value).__name__}")
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"network is not a valid CIDR network: {value!r} ({exc})") from None


def _city_id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"city id must be a str or int, not {type(value).__name__}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"city id must not be negative, got {value}")
        return str(value)
    if not value.strip():
        raise ValueError("city id must not be empty")
    return value.strip()


def _range(row: object) -> IpRange:
    """One row ``(network, city_id)`` or ``(start, end, city_id)`` as an :class:`IpRange`."""
    if isinstance(row, IpRange):
        return row
    if isinstance(row, str | bytes) or not isinstance(row, Sequence):
        raise TypeError(f"a range row must be a tuple, not {type(row).__name__}")
    if len(row) == 2:
        network = _network(row[0])
        first, last = network.network_address, network.broadcast_address
    elif len(row) == 3:
        first, last = parse_address(row[0], "start"), parse_address(row[1], "end")
        if first.version != last.version:
            raise ValueError(f"start and end are of different IP versions: {row!r}")
    else:
        raise ValueError(f"a range row is (network, city_id) or (start, end, city_id): {row!r}")
    start, end = int(first), int(last)
    if start > end:
        raise ValueError(f"range starts after it ends: {first} > {last}")
    return IpRange(first.version, start, end, _city_id(row[-1]))


def _show(value: IpRange) -> str:
    make = ipaddress.IPv4Address if value.version == 4 else ipaddress.IPv6Address
    return f"{make(value.start)}-{make(value.end)} (city {value.city_id})"


def check_ranges(rows: Iterable[object]) -> list[IpRange]:
    """Validate range rows; return them sorted, or raise naming the first bad or overlapping row."""
    if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
        raise TypeError(f"rows must be an iterable of tuples, not {type(rows).__name__}")
    ranges = []
    for number, row in enumerate(rows, 1):
        try:
            ranges.append(_range(row))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"range row {number}: {exc}") from None
    ranges.sort()
    for before, after in itertools.pairwise(ranges):
        if before.version == after.version and after.start <= before.end:
            raise ValueError(f"overlapping ranges: {_show(before)} and {_show(after)}")
    return ranges


def _city(row: object) -> City:
    if isinstance(row, City):
        row = (row.id, row.city, row.region, row.country)
    if isinstance(row, str | bytes) or not isinstance(row, Sequence):
        raise TypeError(f"a city row must be a tuple or City, not {type(row).__name__}")
    if len(row) != 4:
        raise ValueError(f"a city row is (city_id, city, region, country): {row!r}")
    city_id = _city_id(row[0])
    names = []
    for what, value in zip(("city", "region", "country"), row[1:], strict=True):
        if not isinstance(value, str):
            raise TypeError(f"{what} must be a str, not {type(value).__name__}")
        names.append(value)
    return City(city_id, *names)


def check_cities(rows: Iterable[object]) -> dict[str, City]:
    """Validate city rows; return them by id, or raise naming the first bad or repeated row."""
    if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
        raise TypeError(f"rows must be an iterable of tuples, not {type(rows).__name__}")
    cities: dict[str, City] = {}
    for number, row in enumerate(rows, 1):
        try:
            city = _city(row)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"city row {number}: {exc}") from None
        if city.id in cities:
            raise ValueError(f"city row {number}: city id {city.id!r} appears twice")
        cities[city.id] = city
    return cities


# -- CSV ------------------------------------------------------------------------------------------


def _lines(source: object) -> Iterator[str]:
    """The text lines of CSV ``source``: CSV text (str), a path (os.PathLike) or a text file."""
    if isinstance(source, str):
        yield from io.StringIO(source, newline="")
    elif isinstance(source, bytes | bytearray) or not hasattr(source, "read"):
        raise TypeError(
            "source must be CSV text (str), a path (os.PathLike) or a file opened in text mode, "
            f"not {type(source).__name__}"
        )
    else:
        for line in source:  # type: ignore[attr-defined]
            if not isinstance(line, str):
                raise TypeError("source file must be opened in text mode, not binary")
            yield line


def _csv_rows(source: object, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, stripped cells) of the non-blank rows of ``source``."""
    handle: IO[str] | None = None
    if isinstance(source, os.PathLike):
        handle = open(source, encoding=encoding, newline="")  # noqa: SIM115
        source = handle
    try:
        reader = csv.reader(_lines(source))
        for row in reader:
            cells = [cell.strip() for cell in row]
            if any(cells):
                yield reader.line_num, cells
    except csv.Error as exc:
        raise ValueError(f"malformed CSV: {exc}") from None
    finally:
        if handle is not None:
            handle.close()


def _column(header: list[str], name: str) -> int | None:
    lowered = [cell.lower() for cell in header]
    return lowered.index(name) if name in lowered else None


def _ranges_from_csv(source: object, encoding: str) -> list[IpRange]:
    """Parse GeoLite2 blocks (``network,geoname_id,…``) or GeoLiteCity (``startIpNum,…``)."""
    rows: list[IpRange] = []
    layout: tuple[str, list[int | None]] | None = None
    for line, cells in _csv_rows(source, encoding):
        if layout is None:
            network = _column(cells, "network")
            start = _column(cells, "startipnum")
            if network is not None:
                geoname = _column(cells, "geoname_id")
                country = _column(cells, "registered_country_geoname_id")
                layout = (
                    "network",
                    [network, geoname if geoname is not None else country, country],
                )
                continue
            if start is not None:
                layout = ("start", [start, _column(cells, "endipnum"), _column(cells, "locid")])
                if None in layout[1]:
                    raise ValueError(f"line {line}: header needs startIpNum, endIpNum and locId")
                continue
            if len(cells) == 1:
                continue  # a preamble line, such as GeoLiteCity's copyright notice
            layout = ("network", [0, 1, None]) if "/" in cells[0] else ("start", [0, 1, 2])
        kind, columns = layout
        picked = [cells[i] if i is not None and i < len(cells) else "" for i in columns]
        if kind == "network":
            city = picked[1] or picked[2]
            if not city:
                continue  # GeoLite2: a network with neither a city nor a registered country
            row: tuple[Any, ...] = (picked[0], city)
        else:
            row = tuple(picked)
        try:
            rows.append(_range(row))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"line {line}: {exc}") from None
    if not rows:
        raise ValueError("no IP ranges found in the CSV source (pass a pathlib.Path for a file)")
    return check_ranges(rows)


def _cities_from_csv(source: object, encoding: str) -> dict[str, City]:
    """Parse GeoLite2 locations (``geoname_id,…``) or GeoLiteCity (``locId,country,…``)."""
    rows: list[City] = []
    columns: list[int] | None = None
    for line, cells in _csv_rows(source, encoding):
        if columns is None:
            geoname = _column(cells, "geoname_id")
            loc = _column(cells, "locid")
            if geoname is not None:
                names = ("city_name", "subdivision_1_name", "country_iso_code")
                found = [_column(cells, name) for name in names]
                if None in found:
                    raise ValueError(f"line {line}: header needs geoname_id and {names}")
                columns = [geoname, *(i for i in found if i is not None)]
                continue
            if loc is not None:
                found = [_column(cells, name) for name in ("city", "region", "country")]
                if None in found:
                    raise ValueError(f"line {line}: header needs locId, country, region, city")
                columns = [loc, *(i for i in found if i is not None)]
                continue
            if len(cells) == 1:
                continue  # a preamble line, such as GeoLiteCity's copyright notice
            columns = [0, 3, 2, 1]  # headerless GeoLiteCity: locId, country, region, city
        if len(cells) <= max(columns):
            raise ValueError(f"line {line}: expected at least {max(columns) + 1} columns")
        try:
            rows.append(_city(tuple(cells[i] for i in columns)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"line {line}: {exc}") from None
    if not rows:
        raise ValueError("no cities found in the CSV source (pass a pathlib.Path for a file)")
    return check_cities(rows)


def _check_encoding(encoding: object) -> str:
    if not isinstance(encoding, str):
        raise TypeError(f"encoding must be a str, not {type(encoding).__name__}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"encoding is not a known codec: {encoding!r}") from None
    return encoding


def _check_source(source: object) -> None:
    if isinstance(source, str | os.PathLike):
        return
    if isinstance(source, bytes | bytearray) or not hasattr(source, "read"):
        raise TypeError(
            "source must be CSV text (str), a path (os.PathLike) or a file opened in text mode, "
            f"not {type(source).__name__}"
        )


# -- the index ------------------------------------------------------------------------------------


@runtime_checkable
class CityTable(Protocol):
    """Where :class:`IpLocations` keeps its cities instead of its own HASH (``cities=``).

    :class:`aiorpatterns.memory.sharding.ShardedHash` is one: Redis in Action §9.2.1 keeps the
    city table of §5.3 in small sharded hashes (``shard_hset(conn, 'cityid2city:', city_id,
    ..., TOTAL_SIZE, SHARD_SIZE)``) so each stays in the compact encoding.
    """

    async def get(self, key: str) -> str | None:
        """Return the JSON ``[city, region, country]`` of city ``key``, or None."""

    async def set_many(self, items: Iterable[tuple[str, str]]) -> int:
        """Store every ``(city id, JSON)`` pair."""


class IpLocations:
    """IP ranges and cities named ``name``: import them, then find the city of an address.

    Redis in Action §5.3. Every key shares the hash tag ``{name}``, so imports and lookups run
    unchanged on Redis Cluster (one index lives on one node). The client is the caller's and is
    never closed here.

    ``cities``, a :class:`CityTable` such as a ``ShardedHash(redis, "cities", total_elements=
    320_000, shard_size=1024, placement="book")``, holds the cities instead of the index's own
    HASH: the sharded IP lookup of Redis in Action §9.2.1. A lookup then takes two round trips
    (the range, then the city), and an import of cities writes into the table in place (the
    book's way: a reader may meet a city of the old import or the new one, never half a city;
    ids absent from the new data stay until the table is cleared by its owner).
    """

    kind = "geoip"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "default",
        *,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
        cities: CityTable | None = None,
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        if cities is not None and not isinstance(cities, CityTable):
            raise TypeError(
                "cities must be None or a table with async get() and set_many() "
                f"(such as a ShardedHash), not {type(cities).__name__}"
            )
        self.cities = cities
        self.ranges_key = keyspace.key(self.kind, name, "ranges")
        self.cities_key = keyspace.key(self.kind, name, "cities")

    # -- lookups

    async def find_id(self, ip: str | int | Address) -> str | None:
        """Return the id of the city whose range holds ``ip``, or None if no range does."""
        found = await self._find(ip)
        return None if found is None else found[0]

    async def find(self, ip: str | int | Address) -> City | None:
        """Return the city of ``ip``, or None if no range holds it or its city is unknown.

        One atomic round trip. Redis in Action §5.3 (``find_city_by_ip``), which answers the
        range before a gap, cannot read IPv6, and fails on Python 3.
        """
        found = await self._find(ip)
        if found is None:
            return None
        city_id, raw = found
        if self.cities is not None:
            raw = await self.cities.get(city_id)
        if raw is None:
            return None
        try:
            names = json.loads(raw)
            if not (isinstance(names, list) and len(names) == 3):
                raise ValueError(names)
            return City(city_id, *(str(n) for n in names))
        except ValueError:
            raise ValueError(f"city {city_id!r} of {self.name!r} holds malformed JSON") from None

    async def _find(self, ip: object) -> tuple[str, str | None] | None:
        address = parse_address(ip)
        width = _WIDTH[address.version]
        wanted = f"{int(address):0{width}x}"
        keys = [self.ranges_key, self.cities_key]
        args = [f"[{address.version}{wanted}", f"({address.version + 1}"]
        reply = await script("geoip_find")(self.redis, keys, args)
        if not reply:
            return None
        member = text(reply[0])
        start, _, city_id = member[1 + width + 1 :].partition(":")
        if start > wanted:  # fixed-width lowercase hex: text order is number order
            return None  # in a gap before the next range
        return city_id, None if reply[1] is None else text(reply[1])

    # -- imports

    async def import_ranges(self, rows: Iterable[object], *, batch: int = BATCH) -> int:
        """Replace every range by ``rows``; return how many were imported.

        A row is ``(network, city_id)`` with a CIDR network (``"10.0.0.0/8"``, ``"2001:db8::/32"``
        or an ``ipaddress`` network) or ``(start, end, city_id)`` with inclusive addresses (str,
        ``ipaddress`` address, or an int for IPv4). All rows are checked before anything is
        written; ranges must not overlap. Readers switch from the old ranges to the new ones at
        once. Redis in Action §5.3 (``import_ips_to_redis``).
        """
        size = check_count(batch, "batch")
        ranges = check_ranges(rows)
        return await self._replace(self.ranges_key, "ranges", [r.member() for r in ranges], size)

    async def import_cities(self, rows: Iterable[object], *, batch: int = BATCH) -> int:
        """Replace every city by ``rows`` (``(city_id, city, region, country)`` or :class:`City`).

        Return how many were imported. Ids must be unique. Redis in Action §5.3
        (``import_cities_to_redis``).
        """
        size = check_count(batch, "batch")
        cities = check_cities(rows)
        return await self._store_cities(cities, size)

    async def import_ranges_csv(
        self,
        source: str | os.PathLike[str] | IO[str],
        *,
        encoding: str = "utf-8",
        batch: int = BATCH,
    ) -> int:
        """Replace every range by those of a CSV ``source``; return how many were imported.

        ``source`` is CSV text (a ``str``), a path (``os.PathLike``, opened with ``encoding``)
        or a file opened in text mode. Two layouts are read, found by their header: GeoLite2
        blocks (``network,geoname_id,registered_country_geoname_id,…``; a network without a
        ``geoname_id`` takes its registered country's) and the book's GeoLiteCity blocks
        (``startIpNum,endIpNum,locId`` with integer or dotted addresses, after a copyright
        line). Without a header, rows are ``network,city_id`` or ``start,end,city_id``. A
        source with no data rows is refused, so a path passed as a ``str`` cannot empty the
        index. Parsing runs in a worker thread. Redis in Action §5.3 (``import_ips_to_redis``).
        """
        _check_source(source)
        size = check_count(batch, "batch")
        ranges = await asyncio.to_thread(_ranges_from_csv, source, _check_encoding(encoding))
        return await self._replace(self.ranges_key, "ranges", [r.member() for r in ranges], size)

    async def import_cities_csv(
        self,
        source: str | os.PathLike[str] | IO[str],
        *,
        encoding: str = "utf-8",
        batch: int = BATCH,
    ) -> int:
        """Replace every city by those of a CSV ``source``; return how many were imported.

        Sources as for :meth:`import_ranges_csv`. Layouts: GeoLite2 locations (``geoname_id``,
        ``city_name``, ``subdivision_1_name``, ``country_iso_code``) and the book's GeoLiteCity
        locations (``locId,country,region,city,…``, also without a header; that file is
        Latin-1, so pass ``encoding="latin-1"``). Redis in Action §5.3
        (``import_cities_to_redis``).
        """
        _check_source(source)
        size = check_count(batch, "batch")
        cities = await asyncio.to_thread(_cities_from_csv, source, _check_encoding(encoding))
        return await self._store_cities(cities, size)

    async def _store_cities(self, cities: dict[str, City], batch: int) -> int:
        items = [
            (c.id, encode_json([c.city, c.region, c.country], "city")) for c in cities.values()
        ]
        if self.cities is None:
            return await self._replace(self.cities_key, "cities", items, batch)
        task, before = cancelling()
        for first in range(0, len(items), batch):
            await self.cities.set_many(items[first : first + batch])
            honour_cancel(task, before)  # a swallowed cancel stops the import here
        return len(items)

    async def clear(self) -> None:
        """Delete every range and city of the index (a ``cities`` table is left to its owner)."""
        await self.redis.delete(self.ranges_key, self.cities_key)

    async def _replace(self, live: str, part: str, items: Sequence[Any], batch: int) -> int:
        """Write ``items`` to a staging key in pipelined batches, then switch it in."""
        staging = self.keyspace.key(self.kind, self.name, "staging", uuid.uuid4().hex, part)
        task, before = cancelling()
        try:
            for first in range(0, len(items), batch):
                chunk = items[first : first + batch]
                async with self.redis.pipeline(transaction=False) as pipe:
                    if part == "ranges":
                        pipe.zadd(staging, dict.fromkeys(chunk, 0))
                    else:
                        pipe.hset(staging, mapping=dict(chunk))
                    pipe.pexpire(staging, STAGING_MS)
                    await pipe.execute()
                # Python 3.11's redis-py can swallow a cancel (see cancellation.py): a cancelled
                # import must stop here, not switch its table in after all.
                honour_cancel(task, before)
            done = await script("geoip_switch")(self.redis, [staging, live], [len(items)])
        except BaseException:
            await best_effort(lambda: self.redis.delete(staging))
            raise
        if not done:
            raise RuntimeError(
                f"the import of {part} into {self.name!r} took longer than its staging TTL "
                f"({STAGING_MS // 1000} s per batch); nothing was changed"
            )
        return len(items)
