"""Test AdIndex: indexing, targeting with word bonuses, and the eCPM learning loop.

Redis in Action §7.3. Random sequences of indexing, targeting, clicks, actions and removals run
against the index and against a Python model of the book's formulas (with its Python 3 bugs
fixed): the chosen ad, every eCPM, every bonus and every counter must agree exactly. Every test
runs on a standalone server and a cluster; the book's own test also with ``decode_responses``
on and off.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import NO_REDIS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiorpatterns.search.ads import MAX_BID, AdIndex, Targeting, cpa_to_ecpm, cpc_to_ecpm
from aiorpatterns.search.index import SearchIndex, tokenize

CONTENT = "this is some random content, look at how it is indexed."
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def zset(client: Any, key: str) -> list[tuple[str, float]]:
    return [(text(m), s) for m, s in await client.zrange(key, 0, -1, withscores=True)]


async def keys_of(index: AdIndex) -> list[str]:
    pattern = f"{index.keyspace.tag(index.kind, index.name)}:*"
    return [text(k) async for k in index.redis.scan_iter(match=pattern, count=1000)]


def test_ecpm_formulas() -> None:
    assert cpc_to_ecpm(100, 1, 0.25) == 2.5
    assert cpa_to_ecpm(1000, 3, 2.0) == 6.0


async def test_index_and_target_ads(redis_client_text: Any) -> None:
    """Book ch07 test_index_and_target_ads."""
    r = redis_client_text
    ads = AdIndex(r)
    assert await ads.index_ad(
        "1", locations=["USA", "CA"], content=CONTENT, ad_type="cpc", bid=0.25
    )
    await ads.index_ad(
        "2", locations=["USA", "VA"], content=CONTENT + " wooooo", ad_type="cpc", bid=0.125
    )
    for _ in range(100):
        targeted = await ads.target_ads(["USA"], CONTENT)
        assert targeted is not None
        assert targeted.ad_id == "1"
    assert await ads.target_ads(["VA"], "wooooo") == Targeting(101, "2")
    assert await zset(r, ads.value_key) == [("2", 0.125), ("1", 0.25)]
    assert await zset(r, ads.base_key) == [("2", 0.125), ("1", 0.25)]
    assert await ads.record_click(targeted.target_id, targeted.ad_id)
    assert await zset(r, ads.value_key) == [("2", 0.125), ("1", 2.5)]
    assert await zset(r, ads.base_key) == [("2", 0.125), ("1", 0.25)]
    # Beyond the book's test (its word learning never runs under Python 3): the clicked request's
    # words were credited, each at the ad's own rate, so their bonus is 0 and now learned.
    for word in tokenize(CONTENT):
        assert await ads.bonus("1", word) == 0.0
    assert await ads.average_per_1k("cpc") == 1000 * 1 / 101
    assert await ads.ad_type("1") == "cpc"
    assert await ads.ecpm("1") == 2.5
    assert await ads.bid("2") == 0.125


# -- the model --------------------------------------------------------------------------------


@dataclass
class Ad:
    kind: str
    bid: float
    locations: set[str]
    words: set[str]
    ecpm: float
    bonus: dict[str, float]
    views: Counter[str] = field(default_factory=Counter)
    clicks: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)


@dataclass
class Model:
    """The book's §7.3 algorithms in plain Python, with its Python 3 bugs fixed."""

    update_every: int
    ads: dict[str, Ad] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    matched: dict[int, set[str]] = field(default_factory=dict)
    served: int = 0

    def average(self, kind: str) -> float:
        views = self.stats[f"{kind}:views"]
        if not views:
            return 1.0
        which = "actions" if kind == "cpa" else "clicks"
        return 1000 * (self.stats[f"{kind}:{which}"] or 1) / views

    def index(self, ad_id: str, locations: list[str], content: str, kind: str, bid: float) -> float:
        words = tokenize(content)
        ecpm = bid if kind == "cpm" else 1000 * bid * self.average(kind) / 1000
        old = self.ads.get(ad_id)
        ad = Ad(kind, bid, set(locations), words, ecpm, dict.fromkeys(words, 0.0))
        if old is not None:  # re-indexing keeps what was counted
            ad.views, ad.clicks, ad.actions = old.views, old.clicks, old.actions
        self.ads[ad_id] = ad
        return ecpm

    def remove(self, ad_id: str) -> bool:
        return self.ads.pop(ad_id, None) is not None

    def target(self, locations: list[str], content: str) -> Targeting | None:
        words = tokenize(content)
        self.served += 1
        scores = {}
        for ad_id, ad in self.ads.items():
            if ad.locations & set(locations):
                bonuses = [ad.bonus[w] for w in words & ad.words]
                score = ad.ecpm
                if bonuses:
                    score = score + (0.5 * min(bonuses) + 0.5 * max(bonuses))
                scores[ad_id] = score
        if not scores:
            return None
        best = max(scores, key=lambda a: (scores[a], a.encode()))
        ad = self.ads[best]
        matched = words & ad.words
        if matched:
            self.matched[self.served] = matched
        self.stats[f"{ad.kind}:views"] += 1
        for w in [*matched, ""]:
            ad.views[w] += 1
        if ad.views[""] % self.update_every == 0:
            self.update(best)
        return Targeting(self.served, best)

    def click(self, target: Targeting, action: bool) -> bool:
        ad = self.ads.get(target.ad_id)
        if ad is None:
            return False
        counts = ad.actions if ad.kind == "cpa" and action else ad.clicks
        which = "actions" if ad.kind == "cpa" and action else "clicks"
        self.stats[f"{ad.kind}:{which}"] += 1
        for w in [*self.matched.get(target.target_id, ()), ""]:
            counts[w] += 1
        self.update(target.ad_id)
        return True

    def update(self, ad_id: str) -> None:
        ad = self.ads[ad_id]
        if ad.kind == "cpm":
            return
        counts = ad.actions if ad.kind == "cpa" else ad.clicks
        if counts[""] >= 1:
            ad.ecpm = 1000 * ad.bid * counts[""] / (ad.views[""] or 1)
        for w in ad.words:
            if counts[w] >= 1:
                ad.bonus[w] = 1000 * ad.bid * counts[w] / (ad.views[w] or 1) - ad.ecpm


async def assert_same_state(index: AdIndex, model: Model) -> None:
    r = index.redis
    assert dict(await zset(r, index.value_key)) == {a: ad.ecpm for a, ad in model.ads.items()}
    assert dict(await zset(r, index.base_key)) == {a: ad.bid for a, ad in model.ads.items()}
    bonuses: dict[str, dict[str, float]] = {}
    locations: dict[str, set[str]] = {}
    for ad_id, ad in model.ads.items():
        assert await index.ad_type(ad_id) == ad.kind
        for word, bonus in ad.bonus.items():
            bonuses.setdefault(word, {})[ad_id] = bonus
        for location in ad.locations:
            locations.setdefault(location, set()).add(ad_id)
        for part, counts in (("views", ad.views), ("clicks", ad.clicks), ("actions", ad.actions)):
            got = dict(await zset(r, index._ad_keys(ad_id)[part]))
            assert got == {w: float(c) for w, c in counts.items() if c}
    keys = await keys_of(index)
    assert {k for k in keys if ":word:" in k} == {index.word_key(w) for w in bonuses}
    for word, expected in bonuses.items():
        assert dict(await zset(r, index.word_key(word))) == expected
    assert {k for k in keys if ":loc:" in k} == {index.location_key(p) for p in locations}
    for location, ads in locations.items():
        assert {text(m) for m in await r.smembers(index.location_key(location))} == ads
    stats = {text(k): int(v) for k, v in (await r.hgetall(index.stats_key)).items()}
    assert stats == {k: v for k, v in model.stats.items() if v}
    assert not [k for k in keys if ":tmp:" in k]


_LOCATIONS = ["US", "CA", "VA", "UK"]
_WORDS = ["shoes", "hats", "red", "blue", "sale", "wool"]
_steps = st.one_of(
    st.tuples(
        st.just("index"),
        st.sampled_from(["a1", "a2", "a3", "b", "10", "9"]),
        st.lists(st.sampled_from(_LOCATIONS), min_size=1, max_size=2),
        st.lists(st.sampled_from(_WORDS), max_size=3),
        st.sampled_from(["cpc", "cpa", "cpm"]),
        st.sampled_from([0.125, 0.25, 0.5, 1.0, 3.0, 0.3]),
    ),
    st.tuples(
        st.just("target"),
        st.lists(st.sampled_from(_LOCATIONS), min_size=1, max_size=2),
        st.lists(st.sampled_from(_WORDS), max_size=4),
    ),
    st.tuples(st.just("click"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("remove"), st.sampled_from(["a1", "a2", "b"])),
)


@SETTINGS
@given(
    steps=st.lists(_steps, min_size=1, max_size=40),
    update_every=st.sampled_from([1, 2, 3, 100]),
)
async def test_targeting_and_learning_equal_the_model(
    redis_client_text: Any, steps: list[tuple[Any, ...]], update_every: int
) -> None:
    index = AdIndex(redis_client_text, f"a{uuid.uuid4().hex[:8]}", update_every=update_every)
    model = Model(update_every)
    targets: list[Targeting] = []
    for step in steps:
        if step[0] == "index":
            _, ad_id, locations, words, kind, bid = step
            content = " ".join(words)
            expected = model.index(ad_id, locations, content, kind, bid)
            got = await index.index_ad(
                ad_id, locations=locations, content=content, ad_type=kind, bid=bid
            )
            assert got == expected
        elif step[0] == "target":
            _, locations, words = step
            chosen = model.target(locations, " ".join(words))
            got_target = await index.target_ads(locations, " ".join(words))
            assert got_target == chosen
            if got_target is not None:
                assert type(got_target.target_id) is int
                assert type(got_target.ad_id) is str
            if chosen is not None:
                targets.append(chosen)
        elif step[0] == "click" and targets:
            _, which, action = step
            target = targets[which % len(targets)]
            expected_ok = model.click(target, action)
            assert await index.record_click(target.target_id, target.ad_id, action=action) == (
                expected_ok
            )
        elif step[0] == "remove":
            assert await index.remove_ad(step[1]) == model.remove(step[1])
    await assert_same_state(index, model)


async def test_word_bonuses_are_learned_and_win_targeting(redis_client: Any) -> None:
    """A word whose pages earn clicks lifts its ad above a higher eCPM on pages with that word."""
    ads = AdIndex(redis_client, update_every=1000)
    await ads.index_ad("cheap", locations=["US"], content="shoes hats", ad_type="cpc", bid=0.5)
    shown = [await ads.target_ads(["US"], page) for page in ("shoes", "shoes", "hats", "hats")]
    for targeted in shown[:2]:  # only the shoe pages get clicks
        assert targeted is not None
        assert await ads.record_click(targeted.target_id, "cheap")
    # 4 views, 2 clicks: eCPM 1000 * 0.5 * 2 / 4 = 250; "shoes": 2 views, 2 clicks, eCPM 500.
    assert await ads.ecpm("cheap") == 250.0
    assert await ads.bonus("cheap", "shoes") == 250.0
    assert await ads.bonus("cheap", "hats") == 0.0
    # A new CPC ad starts at its bid times the type's rate so far (500 clicks per 1000 views).
    rich = await ads.index_ad(
        "rich", locations=["US"], content="shoes hats", ad_type="cpc", bid=0.8
    )
    assert rich == 1000 * 0.8 * 500.0 / 1000
    assert await ads.target_ads(["US"], "shoes") == Targeting(5, "cheap")  # 250 + 250 > 400
    assert await ads.target_ads(["US"], "hats") == Targeting(6, "rich")  # 250 + 0 < 400


async def test_cpa_and_cpm_ads_learn_as_their_type_says(redis_client: Any) -> None:
    ads = AdIndex(redis_client, update_every=1000)
    await ads.index_ad("act", locations=["US"], content="wool", ad_type="cpa", bid=2.0)
    shown = [await ads.target_ads(["US"], "wool") for _ in range(10)]
    first = shown[0]
    assert first is not None
    assert await ads.record_click(first.target_id, "act")  # a click alone pays nothing
    assert await ads.ecpm("act") == 2.0
    assert await ads.record_click(first.target_id, "act", action=True)
    assert await ads.ecpm("act") == 1000 * 2.0 * 1 / 10
    assert await ads.average_per_1k("cpa") == 1000 * 1 / 10
    # A new CPA ad starts from the type's average rate, shared through Redis.
    assert await ads.index_ad("act2", locations=["UK"], content="x", ad_type="cpa", bid=1.0) == (
        1000 * 1.0 * 100.0 / 1000
    )

    await ads.index_ad("cpm", locations=["CA"], content="wool", ad_type="cpm", bid=3.0)
    shown_cpm = await ads.target_ads(["CA"], "wool")
    assert shown_cpm is not None
    assert await ads.record_click(shown_cpm.target_id, "cpm")
    assert await ads.ecpm("cpm") == 3.0
    assert await ads.average_per_1k("cpm") == 1000.0


async def test_unknown_ads_and_requests(redis_client: Any) -> None:
    ads = AdIndex(redis_client)
    assert await ads.target_ads(["nowhere"], "anything") is None
    assert not await ads.record_click(1, "ghost")
    assert not await ads.update_ecpms("ghost")
    assert not await ads.remove_ad("ghost")
    assert await ads.ecpm("ghost") is None
    assert await ads.bid("ghost") is None
    assert await ads.bonus("ghost", "word") is None
    assert await ads.ad_type("ghost") is None
    assert await ads.average_per_1k("cpc") == 1.0


async def test_reindex_and_remove_leave_no_stale_postings(redis_client: Any) -> None:
    ads = AdIndex(redis_client)
    await ads.index_ad("1", locations=["US", "CA"], content="red shoes", ad_type="cpc", bid=1.0)
    await ads.index_ad("1", locations=["UK"], content="blue hats", ad_type="cpm", bid=2.0)
    assert await ads.target_ads(["US"], "red shoes") is None
    targeted = await ads.target_ads(["UK"], "blue")
    assert targeted is not None
    assert targeted.ad_id == "1"
    keys = await keys_of(ads)
    assert {k for k in keys if ":loc:" in k} == {ads.location_key("UK")}
    assert {k for k in keys if ":word:" in k} == {ads.word_key("blue"), ads.word_key("hats")}
    assert await ads.remove_ad("1")
    keys = await keys_of(ads)
    kept = {ads.stats_key, ads.served_key, ads._key("matched", str(targeted.target_id))}
    receipts = {k for k in keys if len(k.rsplit(":", 1)[1]) == 32}  # a token's: they expire
    assert set(keys) - receipts == kept  # shared counters, the request's words until they expire
    for key in receipts:
        assert await redis_client.pttl(key) > 0
    assert await redis_client.pttl(ads._key("matched", str(targeted.target_id))) > 0


async def test_ad_and_search_indexes_share_a_name_without_clashing(redis_client: Any) -> None:
    """The book's idx:<word> is a SET for documents and a ZSET for ads: WRONGTYPE in one DB."""
    docs, ads = SearchIndex(redis_client, "site"), AdIndex(redis_client, "site")
    await docs.index_document("page", "cheap shoes")
    await ads.index_ad("ad", locations=["US"], content="cheap shoes", ad_type="cpc", bid=1.0)
    assert await docs.match("shoes") == {"page"}
    assert await ads.target_ads(["US"], "shoes") == Targeting(1, "ad")


async def test_many_locations_and_words(redis_client: Any) -> None:
    ads = AdIndex(redis_client)
    places = [f"p{i}" for i in range(1000)]
    content = " ".join(f"w{i}" for i in range(3000))
    await ads.index_ad("big", locations=places, content=content, ad_type="cpc", bid=1.0)
    assert await ads.target_ads(places[-2:], content) == Targeting(1, "big")
    await ads.index_ad("big", locations=["one"], content="small", ad_type="cpc", bid=1.0)
    keys = await keys_of(ads)
    assert len([k for k in keys if ":loc:" in k]) == 1
    assert len([k for k in keys if ":word:" in k]) == 1


# -- bad input -------------------------------------------------------------------------------


async def test_bad_arguments_raise_before_touching_redis() -> None:
    ads = AdIndex(NO_REDIS)  # any Redis call would fail with AttributeError

    def index(**changes: Any) -> Any:
        options: dict[str, Any] = {
            "locations": ["US"],
            "content": "shoes",
            "ad_type": "cpc",
            "bid": 1.0,
        }
        options.update(changes)
        return ads.index_ad(options.pop("ad_id", "1"), **options)

    bad_calls: list[tuple[type[Exception], Any]] = [
        (TypeError, lambda: index(ad_id=1)),
        (ValueError, lambda: index(ad_id="")),
        (ValueError, lambda: index(ad_id="a}b")),
        (TypeError, lambda: index(locations="US")),
        (ValueError, lambda: index(locations=[])),
        (ValueError, lambda: index(locations=[""])),
        (TypeError, lambda: index(locations=[None])),
        (ValueError, lambda: index(locations=[f"p{i}" for i in range(1001)])),
        (TypeError, lambda: index(content=None)),
        (TypeError, lambda: index(content=b"shoes")),
        (ValueError, lambda: index(content="x" * 1_000_001)),
        (ValueError, lambda: index(ad_type="CPC")),
        (ValueError, lambda: index(ad_type="cpv")),
        (TypeError, lambda: index(bid="1")),
        (TypeError, lambda: index(bid=True)),
        (ValueError, lambda: index(bid=-1)),
        (ValueError, lambda: index(bid=float("nan"))),
        (TypeError, lambda: ads.target_ads("US", "shoes")),
        (ValueError, lambda: ads.target_ads([], "shoes")),
        (TypeError, lambda: ads.target_ads(["US"], None)),
        (ValueError, lambda: ads.record_click(0, "1")),
        (TypeError, lambda: ads.record_click("1", "1")),
        (TypeError, lambda: ads.record_click(1, None)),
        (TypeError, lambda: ads.record_click(1, "1", action="yes")),
        (TypeError, lambda: ads.remove_ad(None)),
        (ValueError, lambda: ads.average_per_1k("cpv")),
    ]
    for error, call in bad_calls:
        with pytest.raises(error):
            await call()
    with pytest.raises(TypeError):
        AdIndex(None)
    with pytest.raises(ValueError, match="update_every"):
        AdIndex(NO_REDIS, update_every=0)
    assert repr(ads) == "<AdIndex 'aiorp:ads:{ads}'>"


async def test_numbers_are_range_checked_before_redis() -> None:
    """Bids, TTLs and ids are checked before anything reaches Redis."""
    ads = AdIndex(NO_REDIS)

    def index(bid: Any) -> Any:
        return ads.index_ad("1", locations=["US"], content="shoes", ad_type="cpc", bid=bid)

    bad_calls: list[tuple[type[Exception], str, Any]] = [
        (ValueError, "bid", lambda: index(MAX_BID * 10)),
        (ValueError, "bid", lambda: index(10**400)),
        (ValueError, "bid", lambda: index(float("inf"))),
        (ValueError, "bid", lambda: index(5e-324)),
        (ValueError, "bid", lambda: index(-0.5)),
        (ValueError, "target_id", lambda: ads.record_click(2**63, "1")),
        (TypeError, "target_id", lambda: ads.record_click(True, "1")),
        (TypeError, "target_id", lambda: ads.record_click(1.0, "1")),
    ]
    for error, named, call in bad_calls:
        with pytest.raises(error, match=named):
            await call()
    for ttl in (1e10, float("inf"), float("nan"), -1):
        with pytest.raises(ValueError, match="matched_ttl"):
            AdIndex(NO_REDIS, matched_ttl=ttl)
    with pytest.raises(ValueError, match="update_every"):
        AdIndex(NO_REDIS, update_every=2**63)
    with pytest.raises(ValueError, match="max_content_chars"):
        AdIndex(NO_REDIS, max_content_chars=-1)
    with pytest.raises(ValueError, match="matched_ttl"):
        AdIndex(NO_REDIS, matched_ttl=0)
    assert repr(ads) == "<AdIndex 'aiorp:ads:{ads}'>"


async def test_cancelled_calls_leave_a_consistent_index(redis_client: Any) -> None:
    """Cancel indexing, targeting, clicks and removal at every await point."""
    ads = AdIndex(redis_client, update_every=2)
    await ads.index_ad("keep", locations=["US"], content="red", ad_type="cpc", bid=1.0)
    for steps in range(10):
        for make in (
            lambda: ads.index_ad(
                "x", locations=["US", "UK"], content="red hats", ad_type="cpa", bid=2.0
            ),
            lambda: ads.index_ad("x", locations=["CA"], content="blue", ad_type="cpc", bid=0.5),
            lambda: ads.target_ads(["US", "CA"], "red blue hats"),
            lambda: ads.record_click(1, "x", action=True),
            lambda: ads.remove_ad("x"),
        ):
            task = asyncio.ensure_future(make())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await asyncio.sleep(0.05)  # let a script that was already sent finish
    r = redis_client
    keys = await keys_of(ads)
    assert not [k for k in keys if ":tmp:" in k]
    indexed = {text(a) for a in await r.hkeys(ads.type_key)}
    assert set(dict(await zset(r, ads.value_key))) == indexed
    for key in (k for k in keys if ":loc:" in k or ":word:" in k):
        members = (
            {text(m) for m in await r.smembers(key)}
            if ":loc:" in key
            else set(dict(await zset(r, key)))
        )
        assert members <= indexed
        for ad in members:
            part = "locs" if ":loc:" in key else "terms"
            name = key.rsplit(":", 1)[1]
            assert await r.sismember(ads._ad_keys(ad)[part], name)
    for ad in indexed:
        for location in await r.smembers(ads._ad_keys(ad)["locs"]):
            assert await r.sismember(ads.location_key(text(location)), ad)
        for word in await r.smembers(ads._ad_keys(ad)["terms"]):
            assert await r.zscore(ads.word_key(text(word)), ad) is not None
