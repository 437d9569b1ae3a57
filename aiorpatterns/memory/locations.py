"""Store each user's country and state in 2 packed bytes, and count users per place.

Redis in Action §9.3 gives every user 2 bytes in a STRING shard of 2**20 users (``set_location``):
the country's index in a table of ISO-3166 codes plus one, then the state's index plus one, 0
meaning unknown, so a million users take 2 MB. ``aggregate_location`` reads every shard in blocks
and tallies the codes (``update_aggregates``); ``location:max`` remembers the largest user id so
the reader knows where to stop, kept by a ZUNIONSTORE through a temporary key.

:class:`Locations` fixes the book's code: the code table is explicit and
validated (the caller's countries and states, a small ISO-3166 sample by default), looked up by a
dict instead of ``get_code``'s bisect, whose ``>`` bounds checks raised IndexError for codes that
sort past the end; unknown places are refused rather than stored as 0. Codes are written and read
with BITFIELD ``u16`` (integers, never raw bytes, so ``decode_responses=True`` clients, which cannot
return GETRANGE bytes, work unchanged and no latin-1 connection is needed), and :meth:`aggregate`
counts each block in a Lua script that returns integers. The largest user id is kept with
``ZADD GT`` (no temporary key to leak), raised before the code is written, so a reader never stops
short of a stored user. Both writes (ZADD GT, BITFIELD SET) leave the same state when a client
retry re-sends them, and the counting script only reads.

Keys: ``<prefix>:location:{<name>}:max`` (ZSET ``max`` -> largest user id) and one STRING shard
``<prefix>:location:{<name>:<n>}`` per ``users_per_shard`` users, each its own cluster object so
the shards spread over the slots.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from ..core.checks import AsyncRedis, check_client, check_count, check_int, check_keyspace
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script

__all__ = [
    "DEFAULT_COUNTRIES",
    "DEFAULT_STATES",
    "Location",
    "LocationCounts",
    "Locations",
]

#: A sample of ISO-3166-1 alpha-3 country codes (pass your own full table to :class:`Locations`).
# fmt: off
DEFAULT_COUNTRIES: tuple[str, ...] = (
    "ARG", "AUS", "AUT", "BEL", "BRA", "CAN", "CHE", "CHL", "CHN", "COL", "CZE", "DEU", "DNK",
    "EGY", "ESP", "FIN", "FRA", "GBR", "GRC", "HUN", "IDN", "IND", "IRL", "ISR", "ITA", "JPN",
    "KEN", "KOR", "MEX", "NGA", "NLD", "NOR", "NZL", "PER", "POL", "PRT", "ROU", "RUS", "SWE",
    "TUR", "UKR", "USA", "VNM", "ZAF",
)
#: ISO-3166-2 subdivisions of the sample countries that have them here: Canada and the USA.
DEFAULT_STATES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "CAN": (
        "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
    ),
    "USA": (
        "AK", "AL", "AR", "AS", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "GU", "HI", "IA",
        "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MP", "MS", "MT",
        "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "PR", "RI", "SC",
        "SD", "TN", "TX", "UM", "UT", "VA", "VI", "VT", "WA", "WI", "WV", "WY",
    ),
})
# fmt: on
#: Users per STRING shard in the book (2 MB shards).
USERS_PER_SHARD = 2**20
#: Largest shard: BITFIELD offsets must stay below 2**32 bits (a 512 MB string).
_MAX_USERS_PER_SHARD = 2**28
#: Largest user id: ``location:max`` keeps it as a ZSET score, a double, exact up to 2**53.
MAX_USER_ID = 2**53
#: Bytes :meth:`Locations.aggregate` counts per script call (32768 users).
BLOCK_SIZE = 2**16
#: Users per pipeline in :meth:`Locations.aggregate_users` (the book's 1000).
_PIPELINE = 1000
_MAX_CODES = 255


class Location(NamedTuple):
    """A user's place: an ISO country code and, where the table has them, a state code."""

    country: str
    state: str | None = None


@dataclass(frozen=True, slots=True)
class LocationCounts:
    """Users per country, and per state within the countries that have states."""

    countries: dict[str, int] = field(default_factory=dict)
    states: dict[str, dict[str, int]] = field(default_factory=dict)


def _codes(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{what} must be a sequence of str, not {type(value).__name__}")
    items = tuple(value)
    for item in items:
        check_name(item, what)
    if not 1 <= len(items) <= _MAX_CODES:
        raise ValueError(f"{what} must hold 1 to {_MAX_CODES} codes, got {len(items)}")
    if len(set(items)) != len(items):
        raise ValueError(f"{what} must not repeat a code")
    return items


class Locations:
    """Per-user locations named ``name``, 2 bytes a user (Redis in Action §9.3).

    ``countries`` and ``states`` (country -> its states) are the code table: each code's position
    plus one is what is stored, so only ever append to them once data is written (at most 255
    each). ``users_per_shard`` users share one STRING shard. User ids are ints from 0 to
    :data:`MAX_USER_ID` (the largest is kept as a ZSET score, a double).
    """

    kind = "location"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "users",
        *,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
        users_per_shard: int = USERS_PER_SHARD,
        countries: Sequence[str] = DEFAULT_COUNTRIES,
        states: Mapping[str, Sequence[str]] = DEFAULT_STATES,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        check_keyspace(keyspace)
        self.users_per_shard = check_int(
            users_per_shard, "users_per_shard", minimum=1, maximum=_MAX_USERS_PER_SHARD
        )
        self.countries = _codes(countries, "countries")
        if not isinstance(states, Mapping):
            raise TypeError(f"states must be a mapping, not {type(states).__name__}")
        self.states: dict[str, tuple[str, ...]] = {}
        for country, subdivisions in states.items():
            if country not in self.countries:
                raise ValueError(f"states: {country!r} is not one of the countries")
            self.states[country] = _codes(subdivisions, f"states of {country}")
        self.name = name
        self.keyspace = keyspace
        self.max_key = keyspace.key(self.kind, name, "max")
        self._country_code = {c: i + 1 for i, c in enumerate(self.countries)}
        self._state_code = {c: {s: i + 1 for i, s in enumerate(v)} for c, v in self.states.items()}

    def shard_key(self, shard: int) -> str:
        """The STRING shard number ``shard`` (users ``shard * users_per_shard`` onwards)."""
        return self.keyspace.key(self.kind, f"{self.name}:{check_count(shard, 'shard', minimum=0)}")

    def code(self, country: str | None, state: str | None = None) -> int:
        """Return the 16-bit code of a place: country position + 1, then state position + 1.

        Redis in Action §9.3 (``get_code``), without its off-by-one: every code of the table,
        the last included, maps to itself. ``None`` for the country is the unknown place (0).
        """
        if country is None:
            if state is not None:
                raise ValueError("state needs a country")
            return 0
        if not isinstance(country, str):
            raise TypeError(f"country must be a str or None, not {type(country).__name__}")
        number = self._country_code.get(country)
        if number is None:
            raise ValueError(f"country {country!r} is not in the table")
        if state is None:
            return number << 8
        if not isinstance(state, str):
            raise TypeError(f"state must be a str or None, not {type(state).__name__}")
        known = self._state_code.get(country)
        if known is None:
            raise ValueError(f"country {country!r} has no states in the table")
        sub = known.get(state)
        if sub is None:
            raise ValueError(f"state {state!r} is not a state of {country!r}")
        return number << 8 | sub

    def place(self, code: int) -> Location | None:
        """Decode a stored 16-bit code; None for 0 or a code outside the table."""
        country, state = divmod(code, 256)
        if not 1 <= country <= len(self.countries):
            return None
        name = self.countries[country - 1]
        known = self.states.get(name, ())
        return Location(name, known[state - 1] if 1 <= state <= len(known) else None)

    def _where(self, user_id: object) -> tuple[str, int, int]:
        user = check_int(user_id, "user_id", minimum=0, maximum=MAX_USER_ID)
        shard, position = divmod(user, self.users_per_shard)
        return self.shard_key(shard), position, user

    async def set_location(
        self, user_id: int, country: str | None, state: str | None = None
    ) -> None:
        """Store user ``user_id``'s place (``country=None`` forgets it).

        Raises ``location:max`` first (ZADD GT), then writes the 2 bytes (BITFIELD SET u16): a
        cancellation between the two leaves the old place and a harmless larger max. Redis in
        Action §9.3 (``set_location``).
        """
        key, position, user = self._where(user_id)
        code = self.code(country, state)
        await self.redis.zadd(self.max_key, {"max": user}, gt=True)
        await self.redis.execute_command("BITFIELD", key, "SET", "u16", f"#{position}", code)

    async def get_location(self, user_id: int) -> Location | None:
        """Return user ``user_id``'s place, or None if unknown. Redis in Action §9.3."""
        key, position, _ = self._where(user_id)
        reply = await self.redis.execute_command("BITFIELD_RO", key, "GET", "u16", f"#{position}")
        return self.place(int(reply[0]))

    async def max_user(self) -> int | None:
        """Return the largest user id ever stored, or None."""
        score = await self.redis.zscore(self.max_key, "max")
        return None if score is None else int(score)

    async def aggregate(self) -> LocationCounts:
        """Count users per country and per state, over every shard, block by block.

        Not a snapshot: places written meanwhile may or may not be counted. Codes outside the
        table (written under a longer table) are skipped, as the book does. Redis in Action §9.3
        (``aggregate_location``).
        """
        counts: dict[int, int] = defaultdict(int)
        top = await self.max_user()
        if top is not None:
            count = script("locations_count")
            for shard in range(top // self.users_per_shard + 1):
                first = 0
                while True:
                    reply = await count(self.redis, [self.shard_key(shard)], [first, BLOCK_SIZE])
                    for i in range(1, len(reply), 2):
                        counts[int(reply[i])] += int(reply[i + 1])
                    if not int(reply[0]):
                        break
                    first += BLOCK_SIZE
        return self._tally(counts.items())

    async def aggregate_users(self, user_ids: Iterable[int]) -> LocationCounts:
        """Count the places of the given users only, pipelining 1000 reads at a time.

        Redis in Action §9.3 (``aggregate_location_list``).
        """
        if isinstance(user_ids, str | bytes) or not isinstance(user_ids, Iterable):
            raise TypeError(f"user_ids must be an iterable of ints, not {type(user_ids).__name__}")
        where = [self._where(user) for user in user_ids]
        counts: dict[int, int] = defaultdict(int)
        for start in range(0, len(where), _PIPELINE):
            pipe = self.redis.pipeline(transaction=False)
            for key, position, _ in where[start : start + _PIPELINE]:
                pipe.execute_command("BITFIELD_RO", key, "GET", "u16", f"#{position}")
            for reply in await pipe.execute():
                counts[int(reply[0])] += 1
        return self._tally(counts.items())

    def _tally(self, codes: Iterable[tuple[int, int]]) -> LocationCounts:
        """Turn (code, users) pairs into counts. Redis in Action §9.3 (``update_aggregates``)."""
        result = LocationCounts()
        for code, users in codes:
            where = self.place(code)
            if where is None or users <= 0:
                continue
            result.countries[where.country] = result.countries.get(where.country, 0) + users
            if where.state is not None:
                per = result.states.setdefault(where.country, {})
                per[where.state] = per.get(where.state, 0) + users
        return result
