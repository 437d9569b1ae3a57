"""Inbox on real servers: FIFO, blocking receive, leases that run out, many receivers, cancels.

Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster.
Visibility timeouts that must run out are short (0.2 s); nothing asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
from helpers import ends_after_cancel, outcome, until
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.core.autopipeline import AutoPipeline
from aiorpatterns.core.scripts import script
from aiorpatterns.messaging.inbox import Inbox, InboxCounts, InboxMessage
from aiorpatterns.testing.server import free_port


async def test_send_and_receive_in_order(redis_client_text: Any) -> None:
    """Redis in Action §6.5.1: a per-recipient mailbox, read in send order, whatever the client."""
    inbox = Inbox(redis_client_text, "jeff")
    values: list[Any] = [{"text": "hi", "n": 1}, [1, 2.5, None], "héllo ✓", 2**70, True]
    ids = [await Inbox(redis_client_text, "jeff").send(v, sender="joe") for v in values]
    assert ids == [1, 2, 3, 4, 5]
    assert await inbox.counts() == InboxCounts(waiting=5, held=0)
    for left, (value, mid) in enumerate(zip(values, ids, strict=True)):
        got = await inbox.receive(timeout=0)
        assert got is not None
        assert (got.id, got.sender, got.message, got.inbox) == (mid, "joe", value, "jeff")
        assert got.sent_at <= got.deadline
        assert got.deadline - got.sent_at == pytest.approx(30.0, abs=5)
        assert await inbox.counts() == InboxCounts(waiting=4 - left, held=1)
        assert await inbox.ack(got) is True
        assert await inbox.ack(got) is False
    assert await inbox.receive(timeout=0) is None
    assert (await inbox.counts()).total == 0


async def test_a_blocked_receive_wakes_on_send(redis_client: Any) -> None:
    inbox = Inbox(redis_client, "wait")
    waiting = asyncio.create_task(inbox.receive(timeout=30))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await Inbox(redis_client, "wait").send("wake", sender="s")
    got = await waiting
    assert got is not None
    assert got.message == "wake"
    assert await inbox.ack(got)


async def test_receive_timeout(redis_client: Any) -> None:
    inbox = Inbox(redis_client, "empty")
    assert await inbox.receive(timeout=0.05) is None
    assert await inbox.receive(timeout=0) is None


async def test_many_receivers_get_each_message_once(redis_client: Any) -> None:
    """3 senders x 100 messages, 6 receivers at once: each message is received exactly once."""
    total = 300
    seen: collections.Counter[int] = collections.Counter()
    by_sender: dict[str, list[int]] = collections.defaultdict(list)

    async def send_all(sender: str) -> None:
        box = Inbox(redis_client, "many")
        for n in range(100):
            await box.send({"n": n}, sender=sender)

    async def receive_all() -> None:
        box = Inbox(redis_client, "many")
        while sum(seen.values()) < total:
            got = await box.receive(timeout=0.2)
            if got is None:
                continue
            seen[got.id] += 1
            by_sender[got.sender].append(got.message["n"])
            assert await box.ack(got)

    await asyncio.gather(*(send_all(f"s{i}") for i in range(3)), *(receive_all() for _ in range(6)))
    assert seen == collections.Counter(range(1, total + 1))
    for sender in ("s0", "s1", "s2"):
        assert sorted(by_sender[sender]) == list(range(100))
    assert (await Inbox(redis_client, "many").counts()).total == 0


# -- crashes: leases that run out -------------------------------------------------------------


async def test_a_crashed_receivers_message_is_delivered_again_first(redis_client: Any) -> None:
    """A receiver that dies before its ack loses nothing: once its lease ends the message goes
    back to the head of the inbox, before newer ones."""
    inbox = Inbox(redis_client, "crash", visibility_timeout=0.2)
    for i in range(3):
        await inbox.send(i, sender="s")

    async def crash() -> None:
        got = await inbox.receive(timeout=0)
        assert got is not None
        assert got.message == 0
        raise RuntimeError("reader died before the ack")

    with pytest.raises(RuntimeError):
        await crash()
    await asyncio.sleep(0.3)  # past the dead reader's lease
    order = []
    while (got := await inbox.receive(timeout=0)) is not None:
        order.append((got.id, got.message))
        assert await inbox.ack(got)
    assert order == [(1, 0), (2, 1), (3, 2)]
    # A receive with nothing waiting blocks until the held message's lease ends.
    await inbox.send("lone", sender="s")
    with pytest.raises(RuntimeError):
        await crash_on("lone", inbox)
    again = await inbox.receive(timeout=5)
    assert again is not None
    assert again.message == "lone"
    assert await inbox.ack(again)
    assert (await inbox.counts()).total == 0


async def crash_on(expected: Any, inbox: Inbox) -> None:
    got = await inbox.receive(timeout=0)
    assert got is not None
    assert got.message == expected
    raise RuntimeError("reader died before the ack")


async def test_a_late_ack_before_redelivery_still_counts(redis_client: Any) -> None:
    inbox = Inbox(redis_client, "late", visibility_timeout=0.1)
    await inbox.send("x", sender="s")
    got = await inbox.receive(timeout=0)
    assert got is not None
    await asyncio.sleep(0.2)  # the lease ended, but no receive has taken the message back yet
    assert await inbox.ack(got) is True
    assert await inbox.receive(timeout=0) is None


async def test_release_and_extend(redis_client: Any) -> None:
    inbox = Inbox(redis_client, "rel", visibility_timeout=0.2)
    for i in range(2):
        await inbox.send(i, sender="s")
    held = await inbox.receive(timeout=0)
    assert held is not None
    assert held.message == 0
    assert await inbox.release(held) is True
    assert await inbox.release(held) is False
    again = await inbox.receive(timeout=0)
    assert again is not None
    assert again.message == 0
    deadline = await inbox.extend(again, 30)
    assert deadline is not None
    assert deadline > again.deadline
    await asyncio.sleep(0.3)
    other = await inbox.receive(timeout=0)
    assert other is not None
    assert other.message == 1
    assert await inbox.ack(again)
    assert await inbox.ack(other)
    assert await inbox.extend(other) is None


# -- cancellation ------------------------------------------------------------------------------


async def test_cancel_receive_at_each_step(redis_client: Any) -> None:
    """Cancelled after k loop turns, receive() either returned the message or left it waiting."""
    inbox = Inbox(redis_client, "crecv")
    sent = 0
    received: list[int] = []
    completed = cancelled = 0
    await inbox.send(sent, sender="s")
    sent += 1
    for steps in range(80):
        receiving = asyncio.create_task(inbox.receive(timeout=5))
        for _ in range(steps):
            await asyncio.sleep(0)
        receiving.cancel()
        got = await outcome(receiving)
        if got is None:
            cancelled += 1

            async def back() -> bool:
                return await inbox.counts() == InboxCounts(waiting=1, held=0)

            await until(back, f"the message back after {steps} steps")
        else:
            completed += 1
            received.append(got.message)
            assert await inbox.ack(got)
            await inbox.send(sent, sender="s")
            sent += 1
        if completed >= 3 and cancelled >= 3:
            break
    assert completed >= 3
    assert cancelled >= 3
    last = await inbox.receive(timeout=0)
    assert last is not None
    received.append(last.message)
    assert received == list(range(sent))


async def test_cancel_a_waiting_receive_never_hangs(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]]
) -> None:
    """A client with a short socket_timeout waits in short BLPOPs; a cancel landing anywhere in
    that loop (even one redis-py swallows mid-command) ends the receive promptly."""
    impatient = await new_client(socket_timeout=0.02)
    inbox = Inbox(impatient, "chang")
    for steps in range(120):
        receiving = asyncio.create_task(inbox.receive())
        await asyncio.sleep((steps % 30) * 0.001)
        # Nothing was sent: every receive was waiting, so each one ends cancelled.
        await ends_after_cancel(receiving, f"receive() cancelled at {steps % 30} ms")
    assert await Inbox(redis_client, "chang").counts() == InboxCounts(waiting=0, held=0)


async def test_cancel_a_blocked_receive(redis_client: Any) -> None:
    inbox = Inbox(redis_client, "cblock")
    receiving = asyncio.create_task(inbox.receive(timeout=30))
    await asyncio.sleep(0.05)
    receiving.cancel()
    assert await outcome(receiving) is None
    await inbox.send("after", sender="s")
    got = await inbox.receive(timeout=5)
    assert got is not None
    assert got.message == "after"


async def test_a_receive_that_arrives_after_its_clean_up_is_refused(redis_client: Any) -> None:
    """The tombstone: a cancelled receive's step, run after its clean-up, takes nothing."""
    inbox = Inbox(redis_client, "tomb")
    await inbox.send("x", sender="s")
    token = uuid.uuid4().hex
    call = uuid.uuid4().hex
    abandon = [token, "abandon", 60000, call]
    assert await script("inbox_settle")(redis_client, inbox.keys, abandon) == 0
    reply = await script("inbox_claim")(redis_client, inbox.keys, [token, 1000, 100])
    assert [int(x) for x in reply] == [-2]
    assert await inbox.counts() == InboxCounts(waiting=1, held=0)
    assert 0 < await redis_client.pttl(inbox.keys[4]) <= 60000


@pytest.mark.parametrize("op", ["send", "ack", "release"])
async def test_cancel_settling_at_each_step(redis_client: Any, op: str) -> None:
    """send/ack/release are shielded: once started, a cancelled call still completes, once."""
    inbox = Inbox(redis_client, f"c{op}")
    expected = {"send": None, "ack": InboxCounts(0, 0), "release": InboxCounts(1, 0)}[op]
    for steps in range(1, 9):  # a task cancelled before its first step never called anything
        got: InboxMessage | None = None
        if op != "send":
            await inbox.send(steps, sender="s")
            got = await inbox.receive(timeout=0)
            assert got is not None
        if op == "send":
            call: Coroutine[Any, Any, Any] = inbox.send(steps, sender="s")
        else:
            assert got is not None
            call = inbox.ack(got) if op == "ack" else inbox.release(got)
        settling = asyncio.create_task(call)
        for _ in range(steps):
            await asyncio.sleep(0)
        settling.cancel()
        await outcome(settling)
        want = InboxCounts(steps, 0) if expected is None else expected

        async def settled() -> bool:
            return await inbox.counts() == want  # noqa: B023

        await until(settled, f"{op} after {steps} steps")
        if op == "release":
            again = await inbox.receive(timeout=0)
            assert again is not None
            assert again.message == steps
            assert await inbox.ack(again)
    if op == "send":
        order = []
        while (got := await inbox.receive(timeout=0)) is not None:
            order.append(got.message)
            await inbox.ack(got)
        assert order == list(range(1, 9))


# -- bad input ---------------------------------------------------------------------------------


@pytest.fixture
async def unreachable() -> AsyncIterator[Redis]:
    """A client for a port nobody listens on: any Redis call would raise ConnectionError."""
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


async def test_bad_input_is_refused_before_redis(unreachable: Redis) -> None:
    inbox = Inbox(unreachable, "me")
    fake = InboxMessage(
        id=1, sender="s", sent_at=0.0, message=1, inbox="other", deadline=0.0, claim="x"
    )
    bad: list[tuple[type[Exception], Callable[[], Awaitable[Any]]]] = [
        (TypeError, lambda: inbox.send(object(), sender="s")),
        (ValueError, lambda: inbox.send(float("inf"), sender="s")),
        (ValueError, lambda: inbox.send("m", sender="")),
        (TypeError, lambda: inbox.send("m", sender=None)),  # type: ignore[arg-type]
        (ValueError, lambda: inbox.receive(timeout=-1)),
        (ValueError, lambda: inbox.receive(timeout=float("nan"))),
        (TypeError, lambda: inbox.receive(timeout="1")),  # type: ignore[arg-type]
        (TypeError, lambda: inbox.ack("m")),  # type: ignore[arg-type]
        (ValueError, lambda: inbox.ack(fake)),
        (ValueError, lambda: inbox.extend(fake, -1)),
    ]
    for kind, call in bad:
        with pytest.raises(kind):
            await call()
    builds: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: Inbox(None, "me"), TypeError),
        (lambda: Inbox(unreachable, ""), ValueError),
        (lambda: Inbox(unreachable, "a}b"), ValueError),
        (lambda: Inbox(unreachable, 5), TypeError),  # type: ignore[arg-type]
        (lambda: Inbox(unreachable, "me", visibility_timeout=0), ValueError),
    ]
    for build, kind in builds:
        with pytest.raises(kind):
            build()


async def test_through_an_autopipeline(redis_client: Any) -> None:
    """Sends batch through an AutoPipeline; the blocking wait goes straight to the client."""
    async with AutoPipeline(redis_client) as auto:
        inbox = Inbox(auto, "auto")
        waiting = asyncio.create_task(inbox.receive(timeout=30))
        ids = await asyncio.gather(*(inbox.send(i, sender="s") for i in range(20)))
        assert sorted(ids) == list(range(1, 21))
        got = [await waiting]
        while (more := await inbox.receive(timeout=0)) is not None:
            got.append(more)
        assert sorted(m.id for m in got if m is not None) == list(range(1, 21))
        assert all(await asyncio.gather(*(inbox.ack(m) for m in got if m is not None)))
