"""Every other pattern runs for a Redis ACL user limited to ``~aiorp:*``, and stays inside it.

The companion of ``tests/test_acl.py`` (Lock, Semaphore, FairSemaphore): each exercise below
drives one pattern end to end (its main write and read paths, Lua scripts included, after a
``SCRIPT FLUSH`` so the user must load them itself) through the restricted client, then checks
that no key outside the ``aiorp:`` prefix was created.

Not exercised, because the ACL question does not apply to them:

- ``ShardedClients`` over several servers: the fixture has one server, so ``syndicate`` and
  ``sharded_zrangebyscore`` run over one shard (the keys are the same on every shard);
- ``wait_for_replicas`` / ``wait_for_sync`` / ``wait_for_aof`` / ``supports_waitaof``: they
  need a replica and use keyless commands (``WAIT``, ``WAITAOF``, ``INFO``);
- ``encoding`` / ``is_compact`` / ``memory_usage`` / ``compact_limits`` / ``listpack_bytes``:
  introspection helpers over the caller's own keys (``CONFIG GET`` is ``@dangerous``), not
  patterns with keys of their own;
- ``RedisServer`` / ``ClusterServer`` / ``redis_from_config``: they start servers or build new
  clients, they do not touch keys.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Restricted
from redis.asyncio import Redis

from aiorpatterns import (
    AccessTimer,
    AdIndex,
    Articles,
    Autocomplete,
    AutoPipeline,
    Cache,
    Chats,
    CommonLog,
    Config,
    Counters,
    ExpiringSessions,
    Fanout,
    Inbox,
    IpLocations,
    JobIndex,
    JobLevelIndex,
    JobYearsIndex,
    Locations,
    LogProcessor,
    Market,
    PageCache,
    RecentContacts,
    RecentLog,
    RowCache,
    RowCacheWorker,
    SearchIndex,
    Sessions,
    ShardedClients,
    ShardedHash,
    ShardedList,
    ShardedSearch,
    ShardedSet,
    Social,
    Stats,
    StatusStream,
    TaskQueue,
    UniqueVisitors,
    Worker,
    book_can_cache,
    sharded_zrangebyscore,
    syndicate,
)
from aiorpatterns.core.keys import DEFAULT_KEYSPACE


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


# -- messaging --------------------------------------------------------------------------------


async def exercise_task_queue(client: Redis) -> None:
    """Put (now and delayed), get, fail to the dead letters, requeue, ack; a Worker runs a call."""
    queue = TaskQueue(client, "acl", max_attempts=1, retry_backoff=0.01)
    task_id = await queue.put({"n": 1}, priority="high")
    await queue.put("later", delay=0.05)
    task = await queue.get(timeout=1)
    assert task is not None
    assert task.id == task_id
    assert await queue.extend(task, 30)
    assert await queue.fail(task, "boom") == "dead"
    assert [d.id for d in await queue.dead_letters()] == [task_id]
    assert await queue.requeue_dead() == 1
    await asyncio.sleep(0.1)
    assert await queue.promote()
    seen = []
    for _ in range(2):
        got = await queue.get(timeout=1)
        assert got is not None
        seen.append(got.id)
        assert await queue.ack(got)
    assert task_id in seen
    done = asyncio.Event()
    worker = Worker(queue, {"add": lambda a, b: done.set() if a + b == 3 else None})
    await worker.start()
    try:
        await queue.put_call("add", [1, 2])
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        await worker.aclose()
    counts = await queue.counts()
    assert counts is not None


async def exercise_inbox(client: Redis) -> None:
    """Send, receive, extend, release, receive again, ack."""
    inbox = Inbox(client, "acl")
    assert await inbox.send({"hi": 1}, sender="bob") >= 1
    message = await inbox.receive(timeout=1)
    assert message is not None
    assert await inbox.extend(message, 10) is not None
    assert await inbox.release(message)
    again = await inbox.receive(timeout=1)
    assert again is not None
    assert await inbox.ack(again)
    await inbox.counts()


async def exercise_chats(client: Redis) -> None:
    """Create a chat, send, fetch, ack, pending fetch, join and leave."""
    chats = Chats(client)
    chat = await chats.create("alice", ["bob"], "hello")
    assert await chats.send(chat, "bob", "hi") >= 2
    batch = await chats.fetch(chat, "alice")
    assert batch.messages
    assert await chats.ack(batch)
    pending = await chats.fetch(chat, "bob")
    assert await chats.release(pending)
    assert [b.chat for b in await chats.fetch_pending("bob")] == [chat]
    assert await chats.join(chat, "carol")
    assert set(await chats.members(chat)) == {"alice", "bob", "carol"}
    assert chat in await chats.chats_of("carol")
    assert await chats.leave(chat, "carol")
    assert await chats.exists(chat)
    assert await chats.last_id(chat) >= 2


async def exercise_fanout(client: Redis) -> None:
    """Publish, create a group, read, ack, list groups, trim."""
    fanout = Fanout(client, "acl", maxlen=10)
    await fanout.publish({"n": 1})
    await fanout.publish_many([{"n": 2}, {"n": 3}])
    assert await fanout.create_group("g")
    consumer = fanout.consumer("g", "c1", min_idle=0.01)
    entries = await consumer.read(timeout=1)
    assert len(entries) == 3
    assert await consumer.ack(entries) == 3
    assert [g.name for g in await fanout.groups()] == ["g"]
    assert await fanout.trim() == 3  # every group has acked them
    assert await fanout.length() == 0
    await consumer.aclose()
    assert await fanout.delete_group("g")


# -- social -----------------------------------------------------------------------------------


async def exercise_social(client: Redis) -> None:
    """Users, follow, post (fan-out), timelines, lists, delete and unfollow."""
    social = Social(client, "acl")
    alice = await social.create_user("alice", "Alice")
    bob = await social.create_user("bob", "Bob")
    assert await social.get_uid("alice") == alice
    assert (await social.get_user(bob)) is not None
    assert await social.follow_user(bob, alice)
    status = await social.post_status(alice, "hello", tag="x")
    home = await social.get_status_messages(bob)
    assert [s.id for s in home] == [status]
    lst = await social.create_list(bob, "friends")
    assert await social.follow_user_list(lst, alice)
    assert [s.id for s in await social.get_list_messages(lst)] == [status]
    assert await social.get_lists(bob) == [lst]
    await social.refill_timeline(bob)
    assert await social.delete_status(alice, status)
    await social.clean_timelines(status)
    assert await social.unfollow_user_list(lst, alice)
    assert await social.unfollow_user(bob, alice)
    assert await social.get_status_messages(bob) == []


async def exercise_status_stream(client: Redis) -> None:
    """Posting through Social publishes to the stream; a reader sees the event."""
    stream = StatusStream(client, "acl")
    social = Social(client, "acl", events=stream)
    alice = await social.create_user("alice", "Alice")
    status = await social.post_status(alice, "hello")
    assert await stream.length() == 1
    assert not await stream.missed("0-0")
    events = stream.events(last_id="0", timeout=1)
    async with asyncio.timeout(5):
        event = await anext(aiter(events))
    await events.aclose()  # type: ignore[attr-defined]
    assert event.status.id == status
    assert await stream.last_id()


async def exercise_autocomplete(client: Redis) -> None:
    """Join, complete, count, leave."""
    names = Autocomplete(client, "acl")
    assert await names.join("abc", "abd", "xyz") == 3
    assert await names.complete("ab") == ["abc", "abd"]
    assert await names.count("ab") == 2
    assert await names.leave("abc") == 1


async def exercise_recent_contacts(client: Redis) -> None:
    """Add, list, complete, remove."""
    recent = RecentContacts(client, "acl", size=2)
    for contact in ("jack", "jill", "jim"):
        await recent.add("me", contact)
    assert await recent.contacts("me") == ["jim", "jill"]
    assert await recent.complete("me", "ji") == ["jim", "jill"]
    assert await recent.remove("me", "jim")


# -- search and indexes -----------------------------------------------------------------------


async def exercise_search_index(client: Redis) -> None:
    """Index, set operations, sorted and zsorted searches, fields, removal."""
    index = SearchIndex(client, "acl")
    await index.index_document("d1", "lorem ipsum dolor", fields={"updated": 1, "votes": 5})
    await index.index_document("d2", "lorem sit amet", fields={"updated": 2, "votes": 1})
    assert await index.match("lorem -amet") == {"d1"}
    assert await index.incr_field("d1", "votes", 1) == 6
    assert (await index.fields("d1"))["votes"] == "6"
    await index.union(["lorem", "amet"])
    await index.intersect(["lorem", "amet"])
    await index.difference(["lorem", "amet"])
    assert (await index.search("lorem", sort="-updated")).ids == ["d2", "d1"]
    assert (await index.search("lorem", sort="votes")).ids == ["d2", "d1"]
    zsorted = await index.search_zsorted("lorem", weights={"updated": 1, "votes": 0})
    assert zsorted.ids == ["d2", "d1"]
    assert await index.words("d1") == {"lorem", "ipsum", "dolor"}
    assert await index.remove_document("d1")
    assert await index.documents() == {"d2"}


async def exercise_sharded_search(client: Redis) -> None:
    """ShardedSearch over two indexes on the same (restricted) server."""
    search = ShardedSearch([SearchIndex(client, "acl-a"), SearchIndex(client, "acl-b")])
    for n in range(4):
        await search.index_document(f"d{n}", "common words", fields={"updated": n})
    assert (await search.search("common")).ids == ["d3", "d2", "d1", "d0"]
    assert len((await search.search_zsorted("common")).ids) == 4
    assert await search.remove_document("d0")


async def exercise_ad_index(client: Redis) -> None:
    """Index ads, target, record a view and a click, update eCPMs, remove."""
    ads = AdIndex(client, "acl")
    await ads.index_ad("a1", locations=["USA"], content="cheap red shoes", ad_type="cpc", bid=0.5)
    await ads.index_ad("a2", locations=["USA"], content="blue shoes", ad_type="cpm", bid=2.0)
    targeting = await ads.target_ads(["USA"], "red shoes")
    assert targeting is not None
    assert await ads.record_click(targeting.target_id, targeting.ad_id)
    assert await ads.update_ecpms(targeting.ad_id)
    assert await ads.ecpm("a1") is not None
    assert await ads.bid("a2") == 2.0
    assert await ads.ad_type("a1") == "cpc"
    await ads.average_per_1k("cpc")
    assert await ads.remove_ad("a1")


async def exercise_job_index(client: Redis) -> None:
    """Plain, level and years job indexes: index, qualify, find, remove."""
    jobs = JobIndex(client, "acl")
    await jobs.index_job("j1", ["python", "redis"])
    await jobs.index_job("j2", ["java"])
    assert await jobs.is_qualified("j1", ["python", "redis", "go"])
    assert await jobs.find_jobs(["python", "redis"]) == ["j1"]
    assert await jobs.jobs() == {"j1", "j2"}
    assert await jobs.requirements("j1")
    assert await jobs.remove_job("j2")
    levels = JobLevelIndex(client, "acl-levels")
    await levels.index_job("j1", {"python": 2})
    assert await levels.find_jobs({"python": 2}) == ["j1"]
    assert await levels.find_jobs({"python": 1}) == []
    years = JobYearsIndex(client, "acl-years")
    await years.index_job("j1", {"python": 3})
    assert await years.find_jobs({"python": 5}) == ["j1"]
    assert await years.find_jobs({"python": 1}) == []


async def exercise_market(client: Redis) -> None:
    """Deposit, stock, list, buy, unlist."""
    market = Market(client, "acl")
    await market.deposit("buyer", 100)
    await market.add_items("seller", "sword", "shield")
    assert await market.list_item("sword", "seller", 30)
    assert await market.list_item("shield", "seller", 10)
    assert await market.price("sword", "seller") == 30
    assert len(await market.listings()) == 2
    await market.purchase_item("buyer", "sword", "seller", 30)
    assert await market.funds("buyer") == 70
    assert await market.inventory("buyer") == {"sword"}
    assert await market.unlist_item("shield", "seller")


async def exercise_articles(client: Redis) -> None:
    """Post, vote, pages by score and time, groups."""
    articles = Articles(client, "acl")
    first = await articles.post_article("alice", title="A", link="http://a")
    await articles.post_article("bob", title="B", link="http://b")
    await articles.article_vote("bob", first)
    assert (await articles.get_article(first)) is not None
    assert (await articles.get_articles())[0].id == first
    assert len(await articles.get_articles(order="time")) == 2
    assert await articles.add_remove_groups(first, add=["python"])
    assert [a.id for a in await articles.get_group_articles("python")] == [first]
    assert await articles.group_members("python") == {first}


# -- caching and sessions ---------------------------------------------------------------------


async def exercise_sessions(client: Redis) -> None:
    """Token updates, viewed items, cart, cleaning and rescaling."""
    sessions = Sessions(client, "acl", history=2)
    await sessions.update_token("t1", "alice", "item1")
    await sessions.update_token("t2", "bob", "item1")
    assert await sessions.check_token("t1") == "alice"
    assert await sessions.viewed("t1") == ["item1"]
    assert await sessions.last_seen("t1") is not None
    assert await sessions.add_to_cart("t1", "item1", count=2)
    assert await sessions.cart("t1") == {"item1": 2}
    assert await sessions.rank("item1") == 0
    await sessions.rescale_viewed(keep=10)
    assert await sessions.clean_sessions(limit=1) == 1
    assert await sessions.check_token("t1") is None


async def exercise_page_cache(client: Redis) -> None:
    """Cache a page (claim and fill), read it back, invalidate."""
    sessions = Sessions(client, "acl")
    await sessions.update_token("t1", "alice", "42")
    pages = PageCache(client, "acl", should_cache=book_can_cache(sessions))
    calls = []

    def render(request: str) -> str:
        calls.append(request)
        return f"page {request}"

    request = "http://shop/?item=42"
    assert await pages.can_cache(request)
    assert await pages.cache_request(request, render) == f"page {request}"
    assert await pages.cache_request(request, render) == f"page {request}"
    assert await pages.get_page(request) == f"page {request}"
    assert len(calls) == 1
    assert await pages.invalidate(request)


async def exercise_row_cache(client: Redis) -> None:
    """Schedule rows, cache one by hand and one through a RowCacheWorker, read them."""
    rows = RowCache(client, "acl")

    def fetch(row: str) -> dict[str, Any]:
        return {"id": row}

    assert await rows.schedule_row_cache("r1", delay=5)
    assert await rows.cache_rows(fetch) == "r1"
    assert await rows.get_row("r1") == {"id": "r1"}
    assert await rows.schedule_row_cache("r2", delay=5)
    worker = RowCacheWorker(rows, fetch, idle=0.01)
    worker.start()
    try:

        async def cached() -> bool:
            return await rows.get_row("r2") is not None

        await _eventually(cached)
    finally:
        await worker.aclose()
    await rows.wait_for_work(0.01)


# -- logging and counters ---------------------------------------------------------------------


async def exercise_recent_log(client: Redis) -> None:
    """Log a few messages at two severities."""
    log = RecentLog(client, "acl", keep=2)
    for n in range(3):
        await log.log(f"message {n}")
    await log.log("bad", severity="error")


async def exercise_common_log(client: Redis) -> None:
    """Log repeated messages, read the current hour, look at the previous one."""
    log = CommonLog(client, "acl")
    for _ in range(2):
        await log.log("same")
    await log.log("other", severity="warning")
    current = await log.current()
    assert current is not None
    await log.previous()


async def exercise_counters(client: Redis) -> None:
    """Update, read, list names, clean."""
    counters = Counters(client, "acl", precisions=(1, 5), samples=2)
    await counters.update("hits", 3)
    await counters.update("hits", 2)
    assert sum(s.count for s in await counters.get("hits", precision=5)) == 5
    assert await counters.names() == ["hits"]
    await counters.clean()


async def exercise_stats(client: Redis) -> None:
    """Update statistics, read them back, look at the previous period."""
    stats = Stats(client, "acl")
    await stats.update("latency", 1.0)
    await stats.update("latency", 3.0)
    got = await stats.get("latency")
    assert got is not None
    assert got.count == 2
    await stats.previous("latency")


async def exercise_access_timer(client: Redis) -> None:
    """Time a block: statistics plus the slowest-pages zset."""
    async with AccessTimer(client, "/cart"):
        await asyncio.sleep(0.01)
    stats = await Stats(client, "/cart").get("AccessTime")
    assert stats is not None
    assert stats.count == 1


def _write_logs(directory: Path) -> None:
    (directory / "a.log").write_bytes(b"one\ntwo\n")
    (directory / "b.log").write_bytes(b"three\n")


async def exercise_log_processor(client: Redis) -> None:
    """Process a directory of log files, resume, reset (progress kept under the prefix)."""
    lines: list[bytes] = []

    def callback(pipe: Any, line: bytes) -> None:
        lines.append(line)

    with tempfile.TemporaryDirectory() as directory:
        _write_logs(Path(directory))
        processor = LogProcessor(client, "acl", directory=directory, callback=callback)
        assert await processor.process() == 3
        assert await processor.process() == 0
        assert await processor.progress() is not None
        await processor.reset()
    assert len(lines) == 3


# -- sharding and counting --------------------------------------------------------------------


async def exercise_sharded_hash(client: Redis) -> None:
    """Set and get across shards."""
    sharded = ShardedHash(client, "acl", total_elements=10_000, shard_size=100)
    for n in range(20):
        await sharded.set(n * 997, n)
    assert await sharded.get(997 * 5) == "5"
    assert await sharded.get("absent") is None


async def exercise_sharded_list(client: Redis) -> None:
    """Push and pop at both ends across chunks, blocking pops included."""
    sharded = ShardedList(client, "acl", chunk_size=2)
    assert await sharded.rpush(*range(5)) == 5
    assert await sharded.lpush("a") == 6
    assert await sharded.llen() == 6
    assert await sharded.lpop() == "a"
    assert await sharded.rpop() == "4"
    assert await sharded.blpop(timeout=1) == "0"
    assert await sharded.brpop(timeout=1) == "3"


async def exercise_syndicate(client: Redis) -> None:
    """Page a sharded follower ZSET and syndicate a post to the default home timelines."""
    shards = ShardedClients([client])
    followers = DEFAULT_KEYSPACE.key("followers", "acl")
    await client.zadd(followers, {f"user{n}": n for n in range(5)})
    page = await sharded_zrangebyscore(shards, followers, num=2)
    assert page == [("user0", 0.0), ("user1", 1.0)]
    assert await syndicate(shards, followers, shards, "post1", 1.0, batch=2) == 5
    assert await client.zscore(DEFAULT_KEYSPACE.key("home", "user4"), "post1") == 1.0


async def exercise_unique_visitors(client: Redis) -> None:
    """Exact (sharded sets) and approximate (HyperLogLog) unique visitor counts."""
    for mode in ("exact", "approximate"):
        visitors = UniqueVisitors(client, f"acl-{mode}", mode=mode, expected=1000)
        first = uuid.uuid4()
        assert await visitors.count_visit(first)
        await visitors.count_visit(first)
        await visitors.count_visit(uuid.uuid4())
        assert await visitors.count() == 2


async def exercise_cache(client: Redis) -> None:
    """Cache-aside with a claim, tags, a soft TTL, plain writes; expiring sessions; config
    clients; a sharded set."""
    cache = Cache(client, "acl", soft_ttl=30)
    calls: list[int] = []

    @cache.cached(key="u:{n}", tags=("user:{n}",))
    async def load(n: int) -> int:
        calls.append(n)
        return n * 2

    assert await asyncio.gather(*(load(1) for _ in range(5))) == [2] * 5
    await cache.invalidate("user:1")
    assert await load(1) == 2
    assert calls == [1, 1]
    await cache.set_many({"a": 1, "b": 2})
    assert await cache.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert await cache.delete("a")
    sessions = ExpiringSessions(client, "acl", ttl=60)
    await sessions.update_token("t", "ann", item="x")
    assert await sessions.add_to_cart("t", "x", count=1)
    members = ShardedSet(client, "acl", total_elements=100, shard_size=10)
    assert await members.sadd(7)
    assert await members.scard() == 1


async def exercise_locations(client: Redis) -> None:
    """Set and read user locations, aggregate all and some users."""
    locations = Locations(client, "acl", users_per_shard=4)
    await locations.set_location(1, "USA", "CA")
    await locations.set_location(6, "FRA")
    location = await locations.get_location(1)
    assert location is not None
    assert location.country == "USA"
    assert await locations.max_user() == 6
    assert (await locations.aggregate()).countries["USA"] == 1
    assert (await locations.aggregate_users([6])).countries == {"FRA": 1}


async def exercise_ip_locations(client: Redis) -> None:
    """Import cities and ranges, look an address up, clear."""
    geo = IpLocations(client, "acl")
    assert await geo.import_cities([("1", "Paris", "IDF", "FR")]) == 1
    assert await geo.import_ranges([("10.0.0.0/8", "1")]) == 1
    assert await geo.find_id("10.1.2.3") == "1"
    city = await geo.find("10.1.2.3")
    assert city is not None
    assert city.city == "Paris"
    await geo.clear()


async def exercise_config(client: Redis) -> None:
    """Maintenance flag and configuration values, set, read and deleted."""
    config = Config(client, refresh=0)
    await config.set_maintenance(True)
    assert await config.is_under_maintenance()
    await config.set_maintenance(False)
    await config.set_config("redis", "cache", {"db": 1})
    assert await config.get_config("redis", "cache") == {"db": 1}
    await config.delete_config("redis", "cache")
    assert await config.get_config("redis", "cache", default="none") == "none"


async def exercise_auto_pipeline(client: Redis) -> None:
    """Patterns (scripts and multi-command methods) through an AutoPipeline on the client."""
    async with AutoPipeline(client) as pipe:
        market = Market(pipe, "acl-pipe")
        await asyncio.gather(market.deposit("buyer", 10), market.add_items("seller", "x"))
        assert await market.list_item("x", "seller", 5)
        await market.purchase_item("buyer", "x", "seller", 5)
        assert await market.funds("buyer") == 5
        articles = Articles(pipe, "acl-pipe")
        ids = await asyncio.gather(
            *(articles.post_article("u", title=str(n), link="l") for n in range(3))
        )
        await asyncio.gather(*(articles.article_vote("v", a) for a in ids))
        assert len(await articles.get_articles()) == 3
        counters = Counters(pipe, "acl-pipe", precisions=(1,))
        await asyncio.gather(*(counters.update("hits") for _ in range(5)))
        assert sum(s.count for s in await counters.get("hits", precision=1)) == 5


EXERCISES: dict[str, Callable[[Redis], Awaitable[None]]] = {
    "access_timer": exercise_access_timer,
    "ad_index": exercise_ad_index,
    "articles": exercise_articles,
    "auto_pipeline": exercise_auto_pipeline,
    "autocomplete": exercise_autocomplete,
    "cache": exercise_cache,
    "chats": exercise_chats,
    "common_log": exercise_common_log,
    "config": exercise_config,
    "counters": exercise_counters,
    "fanout": exercise_fanout,
    "inbox": exercise_inbox,
    "ip_locations": exercise_ip_locations,
    "job_index": exercise_job_index,
    "locations": exercise_locations,
    "log_processor": exercise_log_processor,
    "market": exercise_market,
    "page_cache": exercise_page_cache,
    "recent_contacts": exercise_recent_contacts,
    "recent_log": exercise_recent_log,
    "row_cache": exercise_row_cache,
    "search_index": exercise_search_index,
    "sessions": exercise_sessions,
    "sharded_hash": exercise_sharded_hash,
    "sharded_list": exercise_sharded_list,
    "sharded_search": exercise_sharded_search,
    "social": exercise_social,
    "stats": exercise_stats,
    "status_stream": exercise_status_stream,
    "syndicate": exercise_syndicate,
    "task_queue": exercise_task_queue,
    "unique_visitors": exercise_unique_visitors,
}
# Patterns refused today (a key or command outside the prefix): name -> reason.
ESCAPES: dict[str, str] = {}


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=ESCAPES[name]))
        if name in ESCAPES
        else name
        for name in sorted(EXERCISES)
    ],
)
async def test_pattern_runs_with_only_its_keyspace(restricted: Restricted, pattern: str) -> None:
    """Each pattern works end to end for a user who may touch only ``aiorp:*`` keys."""
    await restricted.admin.script_flush()  # the user must be able to load the scripts itself
    await EXERCISES[pattern](restricted.client)
    keys: list[Any] = await restricted.admin.keys("*")
    stray = [k for k in keys if not k.startswith(b"aiorp:")]
    assert stray == []
