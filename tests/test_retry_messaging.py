"""Run-twice tests of the messaging scripts: Inbox, Chats, Fanout (issue 10, rule 1).

``twice_client`` sends every EVALSHA twice and keeps the second reply, as redis-py's ``Retry``
does after a lost reply; :func:`assert_retry_safe` compares what the caller saw and what the
keyspace holds with a single run. Each scenario walks the interesting paths (a hand-off of an
expired lease or claim, a refusal, a clean-up by token), not only the happy one. Also: the
inbox claim's reply shapes, and a claim run twice by hand with one token.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from helpers import text
from retrysafe import assert_retry_safe, plain

from aiorpatterns.core.scripts import script
from aiorpatterns.messaging.chat import Chats
from aiorpatterns.messaging.envelope import parse_envelope
from aiorpatterns.messaging.fanout import Fanout
from aiorpatterns.messaging.inbox import Inbox

_RECEIPT = re.compile(r":[0-9a-f]{32}$")


async def _receipts(client: Any) -> list[Any]:
    """Take the steps' receipts out of the keyspace: each kept reply, by its base key.

    The keyspace comparison masks tokens, so two receipts under one base key would look like
    one key (whichever it read last); compared here as a sorted list, they count one by one.
    """
    found = []
    async for raw in client.scan_iter(match="aiorp:*", count=1000):
        key = text(raw)
        if _RECEIPT.search(key):
            kept = await client.get(key)
            found.append((_RECEIPT.sub("", key), plain(kept), await client.pttl(key) > 0))
            await client.delete(key)
    return sorted(found, key=repr)


def _with_receipts(
    scenario: Callable[[Any], Awaitable[list[Any]]],
) -> Callable[[Any], Awaitable[list[Any]]]:
    async def run(client: Any) -> list[Any]:
        seen = await scenario(client)
        return [*seen, await _receipts(client)]

    return run


# -- Inbox --------------------------------------------------------------------------------------


async def test_claim_reply_shapes_cannot_be_mistaken(redis_client: Any) -> None:
    """A wait hint of 1 ms is not a message: the first element names the reply's shape."""
    inbox = Inbox(redis_client, "shapes")
    token = uuid.uuid4().hex
    # The replies a claim step can give, as the client reads them (ints, or bytes/str).
    assert inbox._claimed([0, 1], token) == (None, 1)
    assert inbox._claimed([0, 0], token) == (None, 0)
    assert inbox._claimed([0, -1], token) == (None, -1)
    with pytest.raises(RuntimeError, match="refused"):
        inbox._claimed([-2], token)
    with pytest.raises(RuntimeError, match="unexpected"):
        inbox._claimed([1], token)  # the old shape of a 1 ms hint: never read as a message
    # The script's own replies, with the keys arranged: a lease held far into the future.
    await redis_client.zadd(inbox.keys[2], {"someone": 2**50})
    reply = await script("inbox_claim")(redis_client, inbox.keys, [token, 1000, 100])
    assert len(reply) == 2
    assert int(reply[0]) == 0
    assert int(reply[1]) > 1000
    got, hint = inbox._claimed(reply, token)
    assert got is None
    assert hint == int(reply[1])
    await redis_client.zrem(inbox.keys[2], "someone")
    reply = await script("inbox_claim")(redis_client, inbox.keys, [token, 1000, 100])
    assert [int(x) for x in reply] == [0, -1]
    await inbox.send("m", sender="s")
    reply = await script("inbox_claim")(redis_client, inbox.keys, [token, 1000, 100])
    assert len(reply) == 3
    assert int(reply[0]) == 1
    got, _ = inbox._claimed(reply, token)
    assert got is not None
    assert (got.id, got.message) == (1, "m")


async def test_a_claim_run_twice_with_one_token_takes_one_message(redis_client: Any) -> None:
    """What redis-py's Retry sends: the second run answers the first's message, takes nothing."""
    inbox = Inbox(redis_client, "twice")
    for i in range(3):
        await inbox.send(i, sender="s")
    token = uuid.uuid4().hex
    first = await script("inbox_claim")(redis_client, inbox.keys, [token, 60000, 100])
    second = await script("inbox_claim")(redis_client, inbox.keys, [token, 60000, 100])
    a, b = parse_envelope(first[2]), parse_envelope(second[2])
    assert (a.id, a.message) == (b.id, b.message) == (1, 0)
    assert int(first[1]) == int(second[1])  # the same lease, not a longer one
    assert (await inbox.counts()).waiting == 2
    # The clean-up a cancelled receive makes, by token: gives back what the token holds.
    assert await script("inbox_settle")(redis_client, inbox.keys, [token, "abandon", 1, "e" * 32])
    seen = []
    while (got := await inbox.receive(timeout=0)) is not None:
        seen.append(got.message)
        assert await inbox.ack(got)
    assert seen == [0, 1, 2]


@pytest.mark.retry_safe("inbox_send", "inbox_claim", "inbox_settle")
async def test_inbox_steps_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> list[Any]:
        inbox = Inbox(client, "rt", visibility_timeout=60)
        seen: list[Any] = []
        seen.append([await inbox.send(i, sender="s") for i in range(5)])
        first = await inbox.receive(timeout=0)
        assert first is not None
        seen += [first.message, await inbox.ack(first), await inbox.ack(first)]
        second = await inbox.receive(timeout=0)
        assert second is not None
        seen += [second.message, await inbox.release(second), await inbox.release(second)]
        third = await inbox.receive(timeout=0)
        assert third is not None
        seen += [third.message, await inbox.extend(third, 120) is not None]
        # A receiver presumed dead: its lease ended, the next claim takes the message back.
        await client.zadd(inbox.keys[2], {third.claim: 1})
        again = await inbox.receive(timeout=0)
        assert again is not None
        seen += [again.message, await inbox.ack(third), await inbox.extend(third)]
        # A cancelled receive's clean-up, by token: one holding a message, one holding nothing.
        run = script("inbox_settle")
        seen.append(await run(client, inbox.keys, [again.claim, "abandon", 60000, "c" * 32]))
        gone = uuid.uuid4().hex
        seen.append(await run(client, inbox.keys, [gone, "abandon", 60000, "d" * 32]))
        refused = await script("inbox_claim")(client, inbox.keys, [gone, 1000, 100])
        seen.append([int(x) for x in refused])
        rest = []
        while (got := await inbox.receive(timeout=0)) is not None:
            rest.append(got.message)
            assert await inbox.ack(got)
        seen += [rest, await inbox.counts()]
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, _with_receipts(scenario))
    assert seen[0] == [1, 2, 3, 4, 5]
    assert seen[-3] == [1, 2, 3, 4]


# -- Chats --------------------------------------------------------------------------------------


@pytest.mark.retry_safe("chat_create", "chat_send", "chat_join", "chat_leave")
async def test_chat_changes_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> list[Any]:
        chats = Chats(client)
        seen: list[Any] = []
        # Bounded: a create that takes its own retry's "exists" for a taken id never returns.
        cid = await asyncio.wait_for(chats.create("a", ["b"], "hello"), 20)
        named = await asyncio.wait_for(chats.create("a", ["c"], "x", chat_id="named"), 20)
        seen += [cid, named]
        with pytest.raises(ValueError, match="exists"):
            await chats.create("b", ["c"], "y", chat_id="named")
        seen.append([await chats.send(cid, "a", i) for i in range(3)])
        seen += [await chats.join(cid, "c"), await chats.join(cid, "c")]
        with pytest.raises(LookupError):
            await chats.join("nowhere", "c")
        with pytest.raises(LookupError):
            await chats.send("nowhere", "a", 1)
        seen += [await chats.leave(cid, "c"), await chats.leave(cid, "c")]
        seen += [await chats.members(cid), await chats.chats_of("c")]
        seen += [await chats.leave(named, "a"), await chats.leave(named, "c")]
        seen += [await chats.exists(named), await chats.last_id(cid)]
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, _with_receipts(scenario))
    assert seen[:3] == ["1", "named", [2, 3, 4]]
    assert seen[3:7] == [True, False, True, False]


@pytest.mark.retry_safe("chat_fetch", "chat_settle")
async def test_chat_fetches_and_settles_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> list[Any]:
        chats = Chats(client, claim_timeout=60)
        cid = await Chats(redis_client).create("a", ["b", "c"], 0)  # once, on the plain client
        for i in range(1, 6):
            await Chats(redis_client).send(cid, "a", i)
        seen: list[Any] = []

        def ids(batch: Any) -> list[int]:
            return [m.id for m in batch]

        batch = await chats.fetch(cid, "b", count=2)  # the same batch, not a longer one
        busy = await chats.fetch(cid, "b")
        seen += [ids(batch), busy.busy, await chats.ack(batch, through=1), await chats.ack(batch)]
        rest = await chats.fetch(cid, "b", count=10)
        seen += [ids(rest), await chats.release(rest), await chats.release(rest)]
        rest = await chats.fetch(cid, "b", count=10)
        seen += [ids(rest), await chats.ack(rest), ids(await chats.fetch(cid, "b"))]
        # A reader presumed dead: its claim ended, the member's next fetch is handed the batch.
        held = await chats.fetch(cid, "c", count=3)
        keys = chats.keys(cid)
        owner, _, last_id = (await client.hget(keys[1], "c")).split()
        ended = [owner, b"1" if isinstance(owner, bytes) else "1", last_id]
        await client.hset(keys[1], "c", (b" " if isinstance(owner, bytes) else " ").join(ended))
        anew = await chats.fetch(cid, "c", count=2)
        seen += [ids(held), ids(anew), await chats.ack(held), await chats.ack(anew)]
        # A cancelled fetch's clean-up, by token: one holding a batch, one holding nothing.
        out = await chats.fetch(cid, "c")
        assert out.claim is not None
        settle = script("chat_settle")
        seen.append(await settle(client, keys, ["c", out.claim, "abandon", 0, 60000, "f" * 32]))
        gone = uuid.uuid4().hex
        seen.append(await settle(client, keys, ["c", gone, "abandon", 0, 60000, "0" * 32]))
        refused = await script("chat_fetch")(client, keys, ["c", gone, 10, 60000])
        seen.append([int(x) for x in refused])
        last = await chats.fetch(cid, "c", count=10)
        seen += [ids(last), await chats.ack(last), await chats.members(cid)]
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, _with_receipts(scenario))
    assert seen[:4] == [[1, 2], True, True, False]
    assert seen[4] == [2, 3, 4, 5, 6]


# -- Fanout -------------------------------------------------------------------------------------


@pytest.mark.retry_safe("fanout_publish", "fanout_trim", "fanout_leave")
async def test_fanout_steps_run_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> list[Any]:
        fanout = Fanout(client, "rt", maxlen=1000, approximate=False)
        seen: list[Any] = []
        seen.append(await fanout.create_group("g"))
        seen.append(await fanout.publish({"n": 0}))
        seen.append(await fanout.publish_many([{"n": i} for i in range(1, 5)]))
        first = fanout.consumer("g", "first", min_idle=60)
        got = await first.read(count=3, timeout=0)
        seen += [[e.payload["n"] for e in got], await first.ack(got[:2])]
        seen += [await fanout.trim(), await fanout.trim(), await fanout.length()]
        seen.append(await first.aclose())  # still holds an entry: stays
        second = fanout.consumer("g", "second", min_idle=60)
        more = await second.read(timeout=0)
        seen += [[e.payload["n"] for e in more], await second.ack(more), await second.aclose()]
        seen.append(await second.aclose())
        seen += [await first.ack(got[2:]), await first.aclose(), await fanout.trim()]
        seen += [await fanout.length(), [g.pending for g in await fanout.groups()]]
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, _with_receipts(scenario))
    assert seen[3:8] == [[0, 1, 2], 2, 2, 0, 3]
    assert seen[8:13] == [False, [3, 4], 2, True, True]
    assert seen[13:-1] == [1, True, 3, 0, [0]]


async def test_a_late_claim_after_its_clean_up_is_refused(redis_client: Any) -> None:
    """A receive cancelled holding a message gives it back; its claim re-sent late takes none."""
    inbox = Inbox(redis_client, "late")
    await inbox.send("x", sender="s")
    token = uuid.uuid4().hex
    claim, settle = script("inbox_claim"), script("inbox_settle")
    reply = await claim(redis_client, inbox.keys, [token, 60000, 100])
    assert int(reply[0]) == 1
    assert await settle(redis_client, inbox.keys, [token, "abandon", 60000, uuid.uuid4().hex])
    again = await claim(redis_client, inbox.keys, [token, 60000, 100])
    assert [int(x) for x in again] == [-2]
    assert (await inbox.counts()).waiting == 1


async def test_a_late_fetch_after_its_clean_up_is_refused(redis_client: Any) -> None:
    """A fetch cancelled holding a batch gives it back; its step re-sent late claims none."""
    chats = Chats(redis_client)
    cid = await chats.create("a", ["b"], "x")
    keys, token = chats.keys(cid), uuid.uuid4().hex
    fetch, settle = script("chat_fetch"), script("chat_settle")
    assert int((await fetch(redis_client, keys, ["b", token, 10, 60000]))[0]) == 1
    abandon = ["b", token, "abandon", 0, 60000, uuid.uuid4().hex]
    assert await settle(redis_client, keys, abandon) == 1
    again = await fetch(redis_client, keys, ["b", token, 10, 60000])
    assert [int(x) for x in again] == [-3]
    assert await redis_client.hlen(keys[1]) == 0
