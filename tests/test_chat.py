"""Chats on real servers: the book's scenario, exactly-once in order, trimming, join/leave, cancels.

Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster.
Claim timeouts that must run out are short (0.2-0.3 s); nothing asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
from helpers import NO_REDIS, ends_after_cancel, keys_of, outcome, until
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.core.autopipeline import AutoPipeline
from aiorpatterns.messaging.chat import ChatBatch, Chats
from aiorpatterns.messaging.envelope import Message
from aiorpatterns.testing.server import free_port

# A consistent snapshot of one chat, read in one step: lowest position, lowest stored id, last
# id, number of stored messages, and the claims.
_SNAPSHOT = """
local low = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {low[2] or false, first[2] or false, redis.call('GET', KEYS[4]) or '0',
        redis.call('ZCARD', KEYS[3]), redis.call('HLEN', KEYS[2])}
"""


async def check_trimmed_exactly(redis: Any, chats: Chats, chat_id: str) -> int:
    """Messages after the lowest position are all stored, and none before it: return #claims."""
    low, first, seq, stored, claims = await redis.eval(_SNAPSHOT, 5, *chats.keys(chat_id))
    low, seq = int(low), int(seq)
    assert int(stored) == seq - low, "a message nobody acknowledged is missing, or one lingers"
    if seq > low:
        assert int(first) == low + 1
    return int(claims)


def payloads(batch: ChatBatch) -> list[Any]:
    return [m.message for m in batch]


# -- the book's scenario ------------------------------------------------------------------------


async def test_book_multi_recipient_messaging(redis_client_text: Any) -> None:
    """Redis in Action §6.5.2 and its test (ch06 L956): joe starts a chat with jeff and jenny,
    sends three more messages, and jeff and jenny fetch the same pending messages."""
    chats = Chats(redis_client_text)
    chat_id = await chats.create("joe", ["jeff", "jenny"], "message 1")
    assert chat_id == "1"
    for i in range(2, 5):
        assert await chats.send(chat_id, "joe", f"message {i}") == i
    (jeff,) = await chats.fetch_pending("jeff")
    (jenny,) = await chats.fetch_pending("jenny")
    assert [(m.id, m.sender, m.message) for m in jeff] == [
        (i, "joe", f"message {i}") for i in range(1, 5)
    ]
    assert jeff.messages == jenny.messages
    assert (jeff.chat, jeff.member, jeff.after) == ("1", "jeff", 0)
    assert all(isinstance(m, Message) and m.sent_at > 0 for m in jeff)
    assert [m.sent_at for m in jeff] == sorted(m.sent_at for m in jeff)
    assert await chats.ack(jeff)
    assert await chats.ack(jenny)
    assert await chats.fetch_pending("jeff") == []
    assert await chats.members(chat_id) == {"joe": 0, "jeff": 4, "jenny": 4}
    # joe, the sender, has not read the chat: nothing is trimmed yet.
    assert await redis_client_text.zcard(chats.keys(chat_id)[2]) == 4
    (joe,) = await chats.fetch_pending("joe")
    assert payloads(joe) == [f"message {i}" for i in range(1, 5)]
    assert await chats.ack(joe)
    assert await redis_client_text.zcard(chats.keys(chat_id)[2]) == 0
    assert await chats.chats_of("jenny") == ["1"]


async def test_book_figure_seen_five_of_six(redis_client: Any) -> None:
    """The book's figure 6.12: jason22 has seen five of the six messages of chat 827."""
    chats = Chats(redis_client)
    await chats.create("jeff24", ["jason22"], {"text": "m1"}, chat_id="827")
    for i in range(2, 7):
        await chats.send("827", "jeff24", {"text": f"m{i}"})
    batch = await chats.fetch("827", "jason22", count=5)
    assert [m.id for m in batch] == [1, 2, 3, 4, 5]
    assert await chats.ack(batch)
    assert (await chats.members("827"))["jason22"] == 5
    rest = await chats.fetch("827", "jason22")
    assert [(m.id, m.message) for m in rest] == [(6, {"text": "m6"})]
    assert rest.after == 5
    assert rest.last_id == 6


# -- concurrency -------------------------------------------------------------------------------


async def test_many_senders_every_member_gets_everything_once_in_order(redis_client: Any) -> None:
    """20 senders x 50 messages: every member receives every message exactly once, in id order,
    including one member fetching from two tasks at once; trimming keeps exactly the unread."""
    chats = Chats(redis_client)
    senders = [f"s{i}" for i in range(20)]
    twin = "twin"
    chat_id = await chats.create("s0", [*senders[1:], twin], {"sender": "s0", "n": -1})
    total = 1 + 20 * 50
    rng = random.Random(7)
    received: dict[str, list[Message]] = collections.defaultdict(list)
    done = asyncio.Event()

    async def send_all(sender: str) -> None:
        for n in range(50):
            await chats.send(chat_id, sender, {"sender": sender, "n": n})
            if n % 10 == 0:
                await asyncio.sleep(0)

    busy: collections.Counter[str] = collections.Counter()

    async def read_all(member: str) -> None:
        got = received[member]
        while len(got) < total:
            batch = await chats.fetch(chat_id, member, count=rng.randint(1, 60))
            busy[member] += batch.busy
            got.extend(batch)  # before any await: batches are handed out one at a time
            if batch:
                assert await chats.ack(batch), f"{member} lost a claim"
            else:
                await asyncio.sleep(0.002)

    async def sample() -> None:
        while not done.is_set():
            await check_trimmed_exactly(redis_client, chats, chat_id)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    readers = [read_all(m) for m in senders] + [read_all(twin), read_all(twin)]
    await asyncio.gather(*(send_all(s) for s in senders), *readers)
    done.set()
    await sampler
    for member in [*senders, twin]:
        ids = [m.id for m in received[member]]
        assert ids == list(range(1, total + 1)), f"{member}: duplicate, gap or disorder"
        by_sender: dict[str, list[int]] = collections.defaultdict(list)
        for m in received[member]:
            assert m.message["sender"] == m.sender
            by_sender[m.sender].append(m.message["n"])
        assert by_sender["s5"] == list(range(50))
    assert set((await chats.members(chat_id)).values()) == {total}
    assert await check_trimmed_exactly(redis_client, chats, chat_id) == 0
    assert busy[twin] > 0, "the twin's two readers never fetched at the same time"
    assert await redis_client.zcard(chats.keys(chat_id)[2]) == 0


async def test_one_batch_per_member_at_a_time(redis_client: Any) -> None:
    chats = Chats(redis_client)
    chat_id = await chats.create("a", ["b"], 1)
    first = await chats.fetch(chat_id, "b")
    assert len(first) == 1
    assert not first.busy
    second = await chats.fetch(chat_id, "b")
    assert second.busy
    assert len(second) == 0
    assert second.claim is None
    assert await chats.ack(second)  # an empty batch: nothing to do
    assert await chats.ack(first)
    await chats.send(chat_id, "a", 2)
    assert payloads(await chats.fetch(chat_id, "b")) == [2]


# -- trimming, join and leave ------------------------------------------------------------------


async def test_trimming_never_removes_what_a_slow_member_has_not_read(redis_client: Any) -> None:
    chats = Chats(redis_client)
    chat_id = await chats.create("fast", ["slow"], 0)
    for i in range(1, 10):
        await chats.send(chat_id, "fast", i)
    fast = await chats.fetch(chat_id, "fast")
    assert await chats.ack(fast)
    slow = await chats.fetch(chat_id, "slow", count=4)
    assert payloads(slow) == [0, 1, 2, 3]
    assert await chats.ack(slow)
    assert await check_trimmed_exactly(redis_client, chats, chat_id) == 0
    stored = await redis_client.zrange(chats.keys(chat_id)[2], 0, -1, withscores=True)
    assert [int(score) for _, score in stored] == [5, 6, 7, 8, 9, 10]
    rest = await chats.fetch(chat_id, "slow")
    assert payloads(rest) == list(range(4, 10))
    assert await chats.ack(rest)
    assert await redis_client.zcard(chats.keys(chat_id)[2]) == 0


async def test_a_joiner_sees_only_messages_sent_after_joining(redis_client: Any) -> None:
    chats = Chats(redis_client)
    chat_id = await chats.create("a", ["b"], "before 1")
    await chats.send(chat_id, "a", "before 2")
    assert await chats.join(chat_id, "late") is True
    assert await chats.join(chat_id, "late") is False
    assert (await chats.members(chat_id))["late"] == 2
    assert len(await chats.fetch(chat_id, "late")) == 0
    await chats.send(chat_id, "b", "after")
    batch = await chats.fetch(chat_id, "late")
    assert [(m.id, m.sender, m.message) for m in batch] == [(3, "b", "after")]
    assert await chats.chats_of("late") == [chat_id]
    with pytest.raises(LookupError):
        await chats.join("no-such-chat", "late")
    assert await chats.chats_of("late") == [chat_id]


async def test_leaving_trims_what_only_the_leaver_held_back(redis_client: Any) -> None:
    chats = Chats(redis_client)
    chat_id = await chats.create("a", ["b", "c"], 1)
    for i in range(2, 6):
        await chats.send(chat_id, "a", i)
    for member in ("a", "b"):
        assert await chats.ack(await chats.fetch(chat_id, member))
    held = await chats.fetch(chat_id, "c", count=2)  # c leaves holding a batch
    assert await redis_client.zcard(chats.keys(chat_id)[2]) == 5
    assert await chats.leave(chat_id, "c") is True
    assert await redis_client.zcard(chats.keys(chat_id)[2]) == 0
    assert await chats.ack(held) is False  # its claim went with it
    assert await chats.leave(chat_id, "c") is False
    assert await chats.chats_of("c") == []
    with pytest.raises(LookupError):
        await chats.fetch(chat_id, "c")
    # The last one out deletes the chat and every key of it.
    assert await chats.leave(chat_id, "a")
    assert await chats.leave(chat_id, "b")
    assert not await chats.exists(chat_id)
    assert await _lasting(redis_client) == ["aiorp:chatid:{seq}"]
    with pytest.raises(LookupError):
        await chats.send(chat_id, "a", "anyone?")
    assert await _lasting(redis_client) == ["aiorp:chatid:{seq}"]


async def _lasting(redis: Any) -> list[str]:
    """The keys that stay: every other one is a step's receipt, which expires (_once.lua)."""
    lasting = []
    for key in await keys_of(redis):
        if await redis.pttl(key) < 0:
            lasting.append(key)
        else:
            assert re.search(r":[0-9a-f]{32}$", key), f"{key} expires but is not a receipt"
    return lasting


async def test_create_ids_and_existing_chats(redis_client: Any) -> None:
    chats = Chats(redis_client)
    assert await chats.create("a", ["b"], 0, chat_id="2") == "2"
    with pytest.raises(ValueError, match="already exists"):
        await chats.create("x", ["y"], 0, chat_id="2")
    assert await chats.chats_of("x") == []
    # Generated ids skip one chosen by hand.
    assert await chats.create("a", ["c"], 0) == "1"
    assert await chats.create("a", ["c", "c", "a"], 0) == "3"
    assert await chats.members("3") == {"a": 0, "c": 0}
    assert await chats.chats_of("a") == ["1", "2", "3"]
    assert await chats.last_id("3") == 1
    assert await chats.last_id("nope") == 0


async def test_fetch_pending_across_chats(redis_client: Any) -> None:
    """On a cluster the chats live on different nodes: one atomic fetch each, concurrently."""
    chats = Chats(redis_client)
    for name in ("alpha", "beta", "gamma", "delta"):
        await chats.create("boss", ["me"], f"{name} 1", chat_id=name)
        await chats.send(name, "boss", f"{name} 2")
    assert await chats.ack(await chats.fetch("delta", "me"))
    await redis_client.sadd(chats.index_key("me"), "stale")  # a half-done join: ignored
    batches = await chats.fetch_pending("me", count=1)
    assert [(b.chat, payloads(b)) for b in batches] == [
        ("alpha", ["alpha 1"]),
        ("beta", ["beta 1"]),
        ("gamma", ["gamma 1"]),
    ]
    await asyncio.gather(*(chats.ack(b) for b in batches))
    batches = await chats.fetch_pending("me")
    assert [payloads(b) for b in batches] == [["alpha 2"], ["beta 2"], ["gamma 2"]]
    assert all(await asyncio.gather(*(chats.ack(b) for b in batches)))
    assert await chats.leave("stale", "me") is False
    assert await chats.chats_of("me") == ["alpha", "beta", "delta", "gamma"]
    await chats.send("beta", "boss", "beta 3")
    held = await chats.fetch("beta", "me")
    batches = await chats.fetch_pending("me")  # beta's batch is out: reported busy, not skipped
    assert [(b.chat, b.busy, payloads(b)) for b in batches] == [("beta", True, [])]
    assert await chats.ack(batches[0])  # an empty batch acks trivially
    assert await chats.ack(held)


async def test_racing_joins_and_leaves_keep_the_index_true(redis_client: Any) -> None:
    """A join and a leave of one member at once: the member's index (on another node of a
    cluster) ends agreeing with the chat, whichever chat step ran last."""
    chats = Chats(redis_client)
    chat_id = await chats.create("host", ["guest"], "hi")
    rng = random.Random(11)
    for _ in range(150):
        steps = [chats.join(chat_id, "guest"), chats.leave(chat_id, "guest")]
        rng.shuffle(steps)
        await asyncio.gather(*steps)
        inside = "guest" in await chats.members(chat_id)
        assert (chat_id in await chats.chats_of("guest")) == inside


# -- waiting for messages ----------------------------------------------------------------------


async def test_a_fetch_waits_until_a_message_is_sent(redis_client: Any) -> None:
    """With nothing pending, fetch(timeout=...) waits for the send instead of returning empty."""
    chats = Chats(redis_client)
    chat_id = await chats.create("host", ["guest"], "hi")
    assert await chats.ack(await chats.fetch(chat_id, "guest"))
    waiting = asyncio.create_task(chats.fetch(chat_id, "guest", timeout=30))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await chats.send(chat_id, "host", "are you there?")
    batch = await asyncio.wait_for(waiting, 10)
    assert payloads(batch) == ["are you there?"]
    assert await chats.ack(batch)
    forever = asyncio.create_task(chats.fetch(chat_id, "guest", timeout=None))
    await asyncio.sleep(0.2)
    await chats.send(chat_id, "host", "still?")
    assert payloads(await asyncio.wait_for(forever, 10)) == ["still?"]


async def test_a_waiting_fetch_times_out_empty_and_busy_returns_at_once(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    chats = Chats(await new_client(socket_timeout=0.05))  # waits longer than the socket timeout
    chat_id = await chats.create("host", ["guest"], "hi")
    held = await chats.fetch(chat_id, "guest")
    busy = await asyncio.wait_for(chats.fetch(chat_id, "guest", timeout=None), 10)
    assert busy.busy
    assert busy.messages == ()
    assert await chats.ack(held)
    empty = await chats.fetch(chat_id, "guest", timeout=0.3)
    assert (empty.messages, empty.busy, empty.after) == ((), False, 1)
    with pytest.raises(LookupError):
        await chats.fetch(chat_id, "stranger", timeout=1)


async def test_cancel_a_waiting_fetch_never_hangs(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    """Cancelled anywhere in its wait loop (short XREAD slices), a fetch ends promptly and
    leaves no claim: the next fetch gets the message sent afterwards."""
    chats = Chats(await new_client(socket_timeout=0.02))
    chat_id = await chats.create("host", ["guest"], "hi")
    assert await chats.ack(await chats.fetch(chat_id, "guest"))
    for steps in range(120):
        fetching = asyncio.create_task(chats.fetch(chat_id, "guest", timeout=None))
        await asyncio.sleep((steps % 30) * 0.001)
        # Nothing was sent: every fetch was waiting, so each one ends cancelled.
        await ends_after_cancel(fetching, f"fetch() cancelled at {steps % 30} ms")
    await chats.send(chat_id, "host", "after")
    batch = await chats.fetch(chat_id, "guest", timeout=5)
    assert payloads(batch) == ["after"]
    assert not batch.busy


# -- crashes: claims that run out --------------------------------------------------------------


async def test_an_unacknowledged_batch_is_handed_out_again(redis_client: Any) -> None:
    """A reader that dies before its ack loses nothing: after claim_timeout the member's next
    fetch gets the same messages; the dead reader's late ack is refused."""
    chats = Chats(redis_client, claim_timeout=0.2)
    chat_id = await chats.create("a", ["b"], "m1")
    await chats.send(chat_id, "a", "m2")
    dead = await chats.fetch(chat_id, "b")
    assert (await chats.fetch(chat_id, "b")).busy

    tries: list[ChatBatch] = []

    async def expired() -> bool:
        tries.append(await chats.fetch(chat_id, "b"))
        return not tries[-1].busy

    await until(expired, "the claim to run out")
    again = tries[-1]
    assert again.messages == dead.messages
    assert await chats.ack(dead) is False
    assert (await chats.members(chat_id))["b"] == 0
    assert await chats.ack(again) is True
    assert (await chats.members(chat_id))["b"] == 2


async def test_release_and_partial_ack(redis_client: Any) -> None:
    chats = Chats(redis_client)
    chat_id = await chats.create("a", ["b"], 1)
    for i in range(2, 6):
        await chats.send(chat_id, "a", i)
    batch = await chats.fetch(chat_id, "b")
    assert await chats.release(batch) is True
    assert await chats.release(batch) is False
    batch = await chats.fetch(chat_id, "b")
    assert payloads(batch) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="not in the batch"):
        await chats.ack(batch, through=6)
    assert await chats.ack(batch, through=2)
    rest = await chats.fetch(chat_id, "b")
    assert payloads(rest) == [3, 4, 5]
    assert rest.after == 2


# -- cancellation ------------------------------------------------------------------------------


async def test_cancel_fetch_at_each_step(redis_client: Any) -> None:
    """Cancelled after k loop turns, a fetch either returned its batch or gave it back: the
    next fetch is never busy, and every message is received exactly once, in order."""
    chats = Chats(redis_client)
    chat_id = await chats.create("a", ["b"], 0)
    sent, received = 1, list[Any]()
    completed = cancelled = 0
    for steps in range(80):
        fetching = asyncio.create_task(chats.fetch(chat_id, "b"))
        for _ in range(steps):
            await asyncio.sleep(0)
        fetching.cancel()
        batch = await outcome(fetching)

        async def no_claim() -> bool:
            return not await redis_client.hexists(chats.keys(chat_id)[1], "b")

        if batch is None:
            cancelled += 1
            await until(no_claim, f"the clean-up after {steps} steps")
        else:
            completed += 1
            received.extend(m.message for m in batch)
            assert await chats.ack(batch)
            await chats.send(chat_id, "a", sent)
            sent += 1
        if completed >= 3 and cancelled >= 3:
            break
    assert completed >= 3
    assert cancelled >= 3
    last = await chats.fetch(chat_id, "b")
    assert not last.busy
    received.extend(m.message for m in last)
    assert received == list(range(sent))


async def test_cancel_fetch_pending_gives_every_batch_back(redis_client: Any) -> None:
    chats = Chats(redis_client)
    names = ["c1", "c2", "c3", "c4"]
    for name in names:
        await chats.create("a", ["b"], name, chat_id=name)

    async def no_claims() -> bool:
        held = [await redis_client.hlen(chats.keys(n)[1]) for n in names]
        return not any(held)

    completed = cancelled = 0
    for steps in range(30):
        fetching = asyncio.create_task(chats.fetch_pending("b"))
        for _ in range(steps):
            await asyncio.sleep(0)
        fetching.cancel()
        batches = await outcome(fetching)
        if batches is None:
            cancelled += 1
        else:
            completed += 1
            assert [payloads(b) for b in batches] == [[n] for n in names]
            await asyncio.gather(*(chats.release(b) for b in batches))
        await until(no_claims, f"every batch given back after {steps} steps")
    assert completed >= 1
    assert cancelled >= 1
    batches = await chats.fetch_pending("b")
    assert [payloads(b) for b in batches] == [[n] for n in names]


async def test_a_failing_chat_gives_the_other_batches_back(redis_client: Any) -> None:
    """fetch_pending is all or nothing: if one chat's fetch fails, the batches of the others
    are given back before the error propagates."""
    chats = Chats(redis_client)
    names = ["c1", "c2", "c3"]
    for name in names:
        await chats.create("a", ["b"], name, chat_id=name)
    await redis_client.sadd(chats.index_key("b"), "broken")
    await redis_client.set(chats.keys("broken")[0], "not a zset")
    with pytest.raises(Exception, match="WRONGTYPE"):
        await chats.fetch_pending("b")
    for name in names:
        assert await redis_client.hlen(chats.keys(name)[1]) == 0
    await redis_client.delete(chats.keys("broken")[0])
    batches = await chats.fetch_pending("b")
    assert [payloads(b) for b in batches] == [[n] for n in names]


@pytest.mark.parametrize("op", ["send", "ack", "join", "leave", "create"])
async def test_cancel_changes_at_each_step(redis_client: Any, op: str) -> None:
    """send/ack/join/leave/create are shielded: cancelled at any point once they have started,
    they still complete, once."""
    chats = Chats(redis_client)
    chat_id = await chats.create("a", ["b"], 0, chat_id="x")
    # From 1: a task cancelled before its first step never called anything.
    for steps in range(1, 9):
        batch = await chats.fetch(chat_id, "b") if op == "ack" else None
        member = f"m{steps}"
        if op == "leave":
            await chats.join(chat_id, member)
        call: Coroutine[Any, Any, Any]
        if op == "send":
            call = chats.send(chat_id, "a", steps)
        elif op == "ack":
            assert batch is not None
            call = chats.ack(batch)
        elif op == "join":
            call = chats.join(chat_id, member)
        elif op == "leave":
            call = chats.leave(chat_id, member)
        else:
            call = chats.create("a", [member], steps, chat_id=member)
        changing = asyncio.create_task(call)
        for _ in range(steps):
            await asyncio.sleep(0)
        changing.cancel()
        await outcome(changing)

        async def done(steps: int = steps, member: str = member) -> bool:
            members = await chats.members(chat_id)
            index = await chats.chats_of(member)
            if op == "send":
                return await chats.last_id(chat_id) == steps + 1
            if op == "ack":
                return members["b"] == steps
            if op == "join":
                return member in members and index == [chat_id]
            if op == "leave":
                return member not in members and index == []
            return await chats.last_id(member) == 1 and index == [member]

        await until(done, f"{op} after {steps} steps")
        if op == "ack":
            await chats.send(chat_id, "a", steps)
    if op == "send":
        batch = await chats.fetch(chat_id, "b")
        assert payloads(batch) == list(range(9))


# -- results and bad input ---------------------------------------------------------------------


async def test_results_are_plain_python(redis_client_text: Any) -> None:
    chats = Chats(redis_client_text)
    value = {"big": 2**70, "f": 0.1, "s": 'héllo ✓ "q" \\', "l": [None, True, 1e300]}
    chat_id = await chats.create("sénder", ["you"], value)
    (batch,) = await chats.fetch_pending("you")
    (message,) = batch
    assert message == Message(id=1, sender="sénder", sent_at=message.sent_at, message=value)
    assert type(message.message["big"]) is int
    assert await chats.members(chat_id) == {"sénder": 0, "you": 0}
    assert await chats.chats_of("you") == [chat_id]
    assert math.isfinite(message.sent_at)


@pytest.fixture
async def unreachable() -> AsyncIterator[Redis]:
    """A client for a port nobody listens on: any Redis call would raise ConnectionError."""
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


async def test_bad_input_is_refused_before_redis(unreachable: Redis) -> None:
    chats = Chats(unreachable)
    bad: list[tuple[type[Exception], Callable[[], Awaitable[Any]]]] = [
        (ValueError, lambda: chats.create("a", [], "m")),
        (ValueError, lambda: chats.create("a", ["a"], "m")),
        (TypeError, lambda: chats.create("a", "bob", "m")),
        (TypeError, lambda: chats.create("a", [1], "m")),  # type: ignore[list-item]
        (ValueError, lambda: chats.create("", ["b"], "m")),
        (ValueError, lambda: chats.create("a", ["b}"], "m")),
        (TypeError, lambda: chats.create("a", ["b"], object())),
        (ValueError, lambda: chats.create("a", ["b"], float("nan"))),
        (ValueError, lambda: chats.create("a", ["b"], "m", chat_id="")),
        (TypeError, lambda: chats.send(1, "a", "m")),  # type: ignore[arg-type]
        (ValueError, lambda: chats.send("c", "", "m")),
        (TypeError, lambda: chats.send("c", "a", {1, 2})),
        (ValueError, lambda: chats.fetch("c", "b", count=0)),
        (ValueError, lambda: chats.fetch("c", "b", count=-1)),
        (TypeError, lambda: chats.fetch("c", "b", count=True)),
        (TypeError, lambda: chats.fetch("c", "b", count=1.5)),  # type: ignore[arg-type]
        (ValueError, lambda: chats.fetch("c", "b", timeout=-1)),
        (ValueError, lambda: chats.fetch("c", "b", timeout=math.inf)),
        (TypeError, lambda: chats.fetch("c", "b", timeout="1")),  # type: ignore[arg-type]
        (ValueError, lambda: chats.fetch_pending("b", count=0)),
        (ValueError, lambda: chats.fetch_pending("")),
        (ValueError, lambda: chats.join("c", "")),
        (ValueError, lambda: chats.leave("", "b")),
        (TypeError, lambda: chats.ack("batch")),  # type: ignore[arg-type]
        (TypeError, lambda: chats.release(None)),  # type: ignore[arg-type]
        (ValueError, lambda: chats.ack(ChatBatch("c", "b", ()), through=-1)),
    ]
    for kind, call in bad:
        with pytest.raises(kind):
            await call()
    with pytest.raises(TypeError):
        Chats(None)
    with pytest.raises(ValueError, match="claim_timeout"):
        Chats(unreachable, claim_timeout=0)
    with pytest.raises(TypeError):
        Chats(unreachable, keyspace="x")  # type: ignore[arg-type]


async def test_through_an_autopipeline(redis_client: Any) -> None:
    """Concurrent members' steps share round trips through an AutoPipeline; nothing changes."""
    async with AutoPipeline(redis_client) as auto:
        chats = Chats(auto)
        members = [f"m{i}" for i in range(10)]
        chat_id = await chats.create("boss", members, "hello")
        await asyncio.gather(*(chats.send(chat_id, m, m) for m in members))
        batches = await asyncio.gather(*(chats.fetch(chat_id, m) for m in members))
        for batch in batches:
            assert [m.id for m in batch] == list(range(1, 12))
        assert all(await asyncio.gather(*(chats.ack(b) for b in batches)))
        assert set((await chats.members(chat_id)).values()) == {0, 11}


async def test_counts_are_checked_before_redis_and_whole_range_works(redis_client: Any) -> None:
    """Range checks (issue 10): a bad count is refused first; any accepted one works in Redis."""
    offline = Chats(NO_REDIS)
    with pytest.raises(ValueError, match="count"):
        await offline.fetch("c", "b", count=2**63)
    with pytest.raises(ValueError, match="count"):
        await offline.fetch_pending("b", count=2**63)
    with pytest.raises(ValueError, match="through"):
        await offline.ack(ChatBatch("c", "b", (), claim="x"), through=2**63)
    chats = Chats(redis_client)
    chat_id = await chats.create("a", ["b"], "hi")
    batch = await chats.fetch(chat_id, "b", count=2**63 - 1)  # reaches LIMIT intact
    assert [m.message for m in batch] == ["hi"]
    assert await chats.ack(batch)
