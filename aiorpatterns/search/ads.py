"""Target ads by location and page content, and learn their eCPMs from views and clicks.

Redis in Action §7.3 indexes each ad under its locations (a SET per location) and its words (a
ZSET per word, ad -> bonus), converts every bid to an eCPM (expected revenue per 1000 views:
CPC and CPA bids times the rate of clicks or actions, CPM bids as they are, §7.3.1), and picks
for a request the ad with the highest eCPM among those in the request's locations, plus bonuses
for the page's words it has (§7.3.2-§7.3.3). Every view, click and action is counted, per ad and
per word, and the eCPMs and bonuses are recomputed from those counts (§7.3.4).

:class:`AdIndex` keeps the book's formulas and fixes what breaks under Python 3 or on a cluster:
words are compared as text, so bonuses are actually learned; type checks compare text, so CPA
and CPM ads behave as such; clicks are counted where the update reads them; the average click
rate of each type lives in Redis, shared by every process, not in a process-local dict.
Re-indexing an ad replaces its locations and words, and :meth:`~AdIndex.remove_ad` exists. Each
step is one atomic script, and the index lives under its own hash tag and kind (``ads``), so it
never collides with a search index's ``word`` keys and works on Redis Cluster. Every step is
safe to re-send: indexing writes the same state again, and the steps that count or take an id
(targeting, views, clicks, removal) keep their reply as a receipt under a token made per call.

Keys (``name`` is the index's name): ``<prefix>:ads:{<name>}:loc:<location>`` (SET of ads),
``…:word:<word>`` (ZSET ad -> bonus), ``…:type`` (HASH ad -> type), ``…:value`` (ZSET ad ->
eCPM), ``…:base`` (ZSET ad -> bid), ``…:stats`` (HASH of per-type counters),
``…:terms:<ad>`` and ``…:locs:<ad>`` (the ad's words and locations), ``…:views:<ad>``,
``…:clicks:<ad>``, ``…:actions:<ad>`` (ZSETs word -> count, ``''`` for the total),
``…:served`` (request counter), ``…:matched:<target>`` (SET, expires), ``…:tmp:<uuid>``
(scratch, deleted by the script that makes it), and receipts ``…:served:<token>`` and
``…:stats:<token>`` (expire).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Final, NamedTuple

from ..core.checks import AsyncRedis, check_client, check_count, check_keyspace, text
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from .index import (
    MAX_DOCUMENT_CHARS,
    STOP_WORDS,
    _check_stop_words,
    check_number,
    check_ttl,
    tokenize,
)

__all__ = ["AdIndex", "Targeting", "cpa_to_ecpm", "cpc_to_ecpm"]

#: How an ad pays: per click, per action (after a click), or per 1000 views.
AD_TYPES: Final = ("cpc", "cpa", "cpm")
#: Most locations one ad or one request may name: each is a key of one script call.
MAX_LOCATIONS: Final = 1000

#: The highest bid: the scripts multiply a bid by 1000 and by a 64-bit count (below 1e19), and
#: subtract two such eCPMs for a bonus, which must stay finite doubles (an infinite eCPM would
#: make a bonus NaN, which Redis refuses half-way through an update).
MAX_BID: Final = 1e280

_RETRIES: Final = 100


def cpc_to_ecpm(views: float, clicks: float, cpc: float) -> float:
    """Return the eCPM of a cost-per-click bid: ``1000 * cpc * clicks / views``.

    Redis in Action §7.3.1 (``cpc_to_ecpm``).
    """
    return 1000.0 * cpc * clicks / views


def cpa_to_ecpm(views: float, actions: float, cpa: float) -> float:
    """Return the eCPM of a cost-per-action bid: ``1000 * cpa * actions / views``.

    Redis in Action §7.3.1 (``cpa_to_ecpm``).
    """
    return 1000.0 * cpa * actions / views


class Targeting(NamedTuple):
    """The ad chosen for one request, and the request's id (for :meth:`AdIndex.record_click`)."""

    target_id: int
    ad_id: str


class AdIndex:
    """An ad index named ``name``, on one hash tag (Redis in Action §7.3).

    ``matched_ttl`` (seconds, the book's 900) is how long a request remembers the words its ad
    matched, for a click to credit them; ``update_every`` (the book's 100) is how many views of
    an ad trigger :meth:`update_ecpms`. Results are plain Python whether the client decodes
    responses or not; the client is the caller's and is never closed here.
    """

    kind = "ads"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "ads",
        *,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
        stop_words: Iterable[str] = STOP_WORDS,
        matched_ttl: float = 900.0,
        update_every: int = 100,
        max_content_chars: int = MAX_DOCUMENT_CHARS,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        check_keyspace(keyspace)
        self.name = name
        self.keyspace = keyspace
        self.stop_words = _check_stop_words(stop_words)
        self.matched_ttl_ms = check_ttl(matched_ttl, "matched_ttl")
        self.update_every = check_count(update_every, "update_every")
        self.max_content_chars = check_count(max_content_chars, "max_content_chars")
        key = self._key
        self.type_key, self.value_key, self.base_key = key("type"), key("value"), key("base")
        self.stats_key, self.served_key = key("stats"), key("served")

    # -- keys --

    def _key(self, *parts: str) -> str:
        return self.keyspace.key(self.kind, self.name, *parts)

    def location_key(self, location: str) -> str:
        """The SET of the ads shown in ``location``."""
        return self._key("loc", check_name(location, "location"))

    def word_key(self, word: str) -> str:
        """The ZSET of the ads having ``word`` (ad -> bonus)."""
        return self._key("word", check_name(word, "word"))

    def _ad_keys(self, ad_id: str) -> dict[str, str]:
        check_name(ad_id, "ad_id")
        parts = ("terms", "locs", "views", "clicks", "actions")
        return {part: self._key(part, ad_id) for part in parts}

    def _matched_key(self, target_id: int) -> str:
        return self._key("matched", str(target_id))

    def _temp_key(self) -> str:
        return self._key("tmp", uuid.uuid4().hex)

    # -- indexing --

    def _words(self, content: object) -> list[str]:
        if not isinstance(content, str):
            raise TypeError(f"content must be a str, not {type(content).__name__}")
        if len(content) > self.max_content_chars:
            raise ValueError(
                f"content has {len(content)} characters, more than max_content_chars "
                f"({self.max_content_chars})"
            )
        return sorted(tokenize(content, self.stop_words))

    async def index_ad(
        self,
        ad_id: str,
        *,
        locations: Iterable[str],
        content: str,
        ad_type: str,
        bid: float,
    ) -> float:
        """Index ad ``ad_id`` (replacing an earlier version of it) and return its eCPM.

        ``ad_type`` is ``"cpc"``, ``"cpa"`` or ``"cpm"``; ``bid`` what the advertiser pays per
        click, per action or per 1000 views. A CPC or CPA bid starts at ``bid`` times the type's
        clicks (actions) per 1000 views so far, or at ``bid`` before any view of that type.
        Redis in Action §7.3.1 (``index_ad``).
        """
        ad_keys = self._ad_keys(ad_id)
        places = _locations(locations)
        if not places:
            raise ValueError("locations must name at least one location")
        words = self._words(content)
        if ad_type not in AD_TYPES:
            raise ValueError(f"ad_type must be one of {AD_TYPES}, got {ad_type!r}")
        value = check_number(bid, "bid", minimum=0, maximum=MAX_BID)
        reply = await self._replace(ad_id, ad_keys, "index", ad_type, value, places, words)
        return float(text(reply))

    async def remove_ad(self, ad_id: str) -> bool:
        """Remove ad ``ad_id``, its postings and its counts; return whether it was indexed."""
        ad_keys = self._ad_keys(ad_id)
        return bool(await self._replace(ad_id, ad_keys, "remove", "", "0", [], []))

    async def _replace(
        self,
        ad_id: str,
        ad_keys: dict[str, str],
        mode: str,
        ad_type: str,
        bid: str,
        places: list[str],
        words: list[str],
    ) -> Any:
        fixed = [self.type_key, self.value_key, self.base_key, self.stats_key, *ad_keys.values()]
        new_keys = [self.location_key(p) for p in places] + [self.word_key(w) for w in words]
        old_places: list[str] = []  # a first guess; the script answers with the truth if wrong
        old_words: list[str] = []
        token = uuid.uuid4().hex  # one per call: a retried removal finds its receipt
        for _ in range(_RETRIES):
            old_keys = [self.location_key(p) for p in old_places]
            old_keys += [self.word_key(w) for w in old_words]
            keys = [*fixed, *old_keys, *new_keys]
            args: list[object] = [ad_id, mode, ad_type, bid, len(old_places), len(old_words)]
            args += [len(places), len(words), token, *old_places, *old_words, *places, *words]
            reply = await script("ads_index")(self.redis, keys, args)
            if not isinstance(reply, list):
                return reply
            old_places = [text(p) for p in reply[0]]
            old_words = [text(w) for w in reply[1]]
        raise RuntimeError(f"ad {ad_id!r} kept changing while it was being re-indexed")

    # -- targeting --

    async def target_ads(self, locations: Iterable[str], content: str) -> Targeting | None:
        """Choose the best ad for a request from ``locations`` showing ``content``.

        Returns the request's id and the ad (recorded as viewed), or None when no ad is placed
        in any of the locations. Redis in Action §7.3.2-§7.3.3 (``target_ads``): one script
        scores the ads; a second records the view (§7.3.4, ``record_targeting_result``), and
        every ``update_every`` views of an ad its eCPMs are recomputed.
        """
        places = _locations(locations)
        if not places:
            raise ValueError("locations must name at least one location")
        words = self._words(content)
        scratch = [self._temp_key() for _ in range(6)]
        keys = [self.value_key, self.served_key, *scratch]
        keys += [self.location_key(p) for p in places] + [self.word_key(w) for w in words]
        # One token per request, for both steps' receipts (kept under different keys): a retried
        # step answers what it answered first and counts nothing twice.
        token = uuid.uuid4().hex
        target, ad = await script("ads_target")(self.redis, keys, [len(places), token])
        if ad is None:
            return None
        targeting = Targeting(int(target), text(ad))
        await self._record_view(targeting, words, token)
        return targeting

    async def _record_view(self, targeting: Targeting, words: list[str], token: str) -> None:
        ad_keys = self._ad_keys(targeting.ad_id)
        keys = [self.type_key, self.stats_key, ad_keys["terms"]]
        keys += [self._matched_key(targeting.target_id), ad_keys["views"]]
        args = [targeting.ad_id, self.matched_ttl_ms, token, *words]
        views = int(await script("ads_record_view")(self.redis, keys, args))
        if views and views % self.update_every == 0:
            await self.update_ecpms(targeting.ad_id)

    async def record_click(self, target_id: int, ad_id: str, *, action: bool = False) -> bool:
        """Record a click on ad ``ad_id`` shown for request ``target_id``; update its eCPMs.

        With ``action``, record the action a CPA ad pays for instead (for other types it counts
        as a click). The words the request matched are credited too. Returns False for an
        unknown ad.
        Redis in Action §7.3.4 (``record_click``).
        """
        target = check_count(target_id, "target_id")
        ad_keys = self._ad_keys(ad_id)
        if not isinstance(action, bool):
            raise TypeError("action must be a bool")
        keys = [self.type_key, self.stats_key, self._matched_key(target)]
        keys += [ad_keys["clicks"], ad_keys["actions"]]
        args: list[object] = [ad_id, int(action), self.matched_ttl_ms, uuid.uuid4().hex]
        if not await script("ads_record_click")(self.redis, keys, args):
            return False
        await self.update_ecpms(ad_id)
        return True

    async def update_ecpms(self, ad_id: str) -> bool:
        """Recompute the eCPM of ad ``ad_id`` and its word bonuses from its counts.

        eCPM = ``1000 * bid * clicks / views`` (actions for CPA), once the ad has a click; a
        word's bonus is the eCPM computed over that word's views and clicks minus the ad's.
        Returns False for an unknown ad. Redis in Action §7.3.4 (``update_cpms``).
        """
        ad_keys = self._ad_keys(ad_id)
        fixed = [self.type_key, self.base_key, self.value_key, ad_keys["terms"]]
        fixed += [ad_keys["views"], ad_keys["clicks"], ad_keys["actions"]]
        words: list[str] = []  # a first guess; the script answers with the ad's words if wrong
        for _ in range(_RETRIES):
            keys = [*fixed, *(self.word_key(w) for w in words)]
            reply = await script("ads_update")(self.redis, keys, [ad_id, *words])
            if not isinstance(reply, list):
                return bool(reply)
            words = [text(w) for w in reply]
        raise RuntimeError(f"ad {ad_id!r} kept changing while its eCPM was being updated")

    # -- reading --

    async def ecpm(self, ad_id: str) -> float | None:
        """Return the current eCPM of ad ``ad_id``, or None if it is not indexed."""
        score = await self.redis.zscore(self.value_key, check_name(ad_id, "ad_id"))
        return None if score is None else float(score)

    async def bid(self, ad_id: str) -> float | None:
        """Return the bid of ad ``ad_id``, or None if it is not indexed."""
        score = await self.redis.zscore(self.base_key, check_name(ad_id, "ad_id"))
        return None if score is None else float(score)

    async def bonus(self, ad_id: str, word: str) -> float | None:
        """Return the bonus of ad ``ad_id`` for ``word``, or None if the ad lacks the word."""
        score = await self.redis.zscore(self.word_key(word), check_name(ad_id, "ad_id"))
        return None if score is None else float(score)

    async def ad_type(self, ad_id: str) -> str | None:
        """Return how ad ``ad_id`` pays (``"cpc"``, ``"cpa"`` or ``"cpm"``), or None."""
        kind = await self.redis.hget(self.type_key, check_name(ad_id, "ad_id"))
        return None if kind is None else text(kind)

    async def average_per_1k(self, ad_type: str) -> float:
        """Return the clicks (actions for CPA) per 1000 views of all ads of ``ad_type`` so far.

        1.0 before any view, as the book's ``AVERAGE_PER_1K`` default; a type with views but no
        click counts 1 click, as the book's update does.
        """
        if ad_type not in AD_TYPES:
            raise ValueError(f"ad_type must be one of {AD_TYPES}, got {ad_type!r}")
        which = "actions" if ad_type == "cpa" else "clicks"
        views, clicks = await self.redis.hmget(
            self.stats_key, f"{ad_type}:views", f"{ad_type}:{which}"
        )
        if not views or not int(views):
            return 1.0
        return 1000 * int(clicks or 1) / int(views)

    def __repr__(self) -> str:
        return f"<AdIndex {self.keyspace.tag(self.kind, self.name)!r}>"


def _locations(locations: object) -> list[str]:
    if isinstance(locations, str | bytes) or not isinstance(locations, Iterable):
        raise TypeError("locations must be a collection of str")
    places = list(dict.fromkeys(check_name(p, "location") for p in locations))
    if len(places) > MAX_LOCATIONS:
        raise ValueError(f"at most {MAX_LOCATIONS} locations")
    return places
