"""Cancellation storms on the messaging patterns: Inbox, Chats, Fanout (issue 10, rule 3).

Fifty concurrent readers, about half cancelled at random moments (while waiting for a message,
while holding one, while acknowledging), while a sender keeps sending. Afterwards the test
drains what is left with a fresh reader and counts: every message acknowledged exactly once
(none lost, none acknowledged twice), nothing left held. An acknowledgement is recorded by a
callback on the shielded step itself, so one that completes after its caller was cancelled
still counts. Leases and claims of readers cancelled while holding end by expiry (short here),
as documented; the drain waits for that with ``until``, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from helpers import until
from storms import storm

from aiorpatterns.messaging.chat import ChatBatch, Chats
from aiorpatterns.messaging.fanout import Fanout, FanoutEntry
from aiorpatterns.messaging.inbox import Inbox, InboxMessage

TASKS = 50
MESSAGES = 60
#: Fetch-and-ack rounds per reader: readers live long enough for the cancels to find them busy.
ROUNDS = 3


def _topology(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["redis_client"])


class _Acks:
    """Settling steps run to the end even if their caller is cancelled; count what they did."""

    def __init__(self) -> None:
        self.done: list[int] = []
        self.steps: list[asyncio.Future[Any]] = []

    async def settle(self, step: Awaitable[Any], ids: Callable[[Any], list[int]]) -> Any:
        future = asyncio.ensure_future(step)

        def record(f: asyncio.Future[Any]) -> None:
            if not f.cancelled() and f.exception() is None:
                self.done.extend(ids(f.result()))

        future.add_done_callback(record)
        self.steps.append(future)
        return await asyncio.shield(future)

    async def finished(self) -> None:
        await asyncio.gather(*self.steps, return_exceptions=True)


async def _trickle(send: Callable[[int], Awaitable[Any]], start: int, stop: int) -> None:
    """Send ``start..stop-1`` while the storm runs (each send completes: not cancelled)."""
    for i in range(start, stop):
        await send(i)
        await asyncio.sleep(0.003)


async def test_inbox_storm(redis_client: Any, request: pytest.FixtureRequest) -> None:
    inbox = Inbox(redis_client, "storm", visibility_timeout=1.0)
    rng = random.Random(10)
    acks = _Acks()
    ids: dict[int, int] = {}  # message value -> id

    async def send(i: int) -> None:
        ids[i] = await inbox.send(i, sender="s")

    for i in range(MESSAGES // 2):
        await send(i)

    async def receiver(_: int) -> int:
        done = 0
        for _round in range(ROUNDS):
            got = await inbox.receive(timeout=1)
            if got is None:
                break
            await asyncio.sleep(rng.uniform(0, 0.02))  # handling it; a cancel here drops it
            message: InboxMessage = got
            done += await acks.settle(
                inbox.ack(message), lambda ok, m=message: [m.id] if ok else []
            )
        return done

    sender = asyncio.create_task(_trickle(send, MESSAGES // 2, MESSAGES))
    report = await storm(receiver, tasks=TASKS, within=0.3, seed=10)
    await sender
    await acks.finished()
    later: list[int] = []

    async def drained() -> bool:
        while (got := await inbox.receive(timeout=0)) is not None:
            if await inbox.ack(got):
                later.append(got.id)
        return len(acks.done) + len(later) >= MESSAGES and (await inbox.counts()).total == 0

    await until(drained, "every message acknowledged or received again", limit=60)
    everything = collections.Counter(acks.done + later)
    lost = len(set(ids.values()) - set(everything))
    duplicated = sum(n - 1 for n in everything.values())
    held = await redis_client.hlen(inbox.keys[1]) + await redis_client.zcard(inbox.keys[2])
    leftovers = held + await redis_client.llen(inbox.keys[0])
    report.record(
        "Inbox", _topology(request), lost=lost, duplicated=duplicated, leftovers=leftovers
    )
    assert (lost, duplicated, leftovers) == (0, 0, 0)
    assert report.results, "no receive completed: the storm cancelled everything"


async def test_chats_storm(redis_client: Any, request: pytest.FixtureRequest) -> None:
    chats = Chats(redis_client, claim_timeout=1.0)
    members = [f"m{i}" for i in range(5)]
    chat_id = await chats.create(members[0], members[1:], 0)
    rng = random.Random(11)
    acked: dict[str, _Acks] = {m: _Acks() for m in members}

    async def send(i: int) -> None:
        await chats.send(chat_id, "s", i)

    for i in range(1, MESSAGES // 2):
        await send(i)

    async def reader(i: int) -> int:
        member = members[i % len(members)]
        done = rounds = 0
        while rounds < ROUNDS:
            batch = await chats.fetch(chat_id, member, count=rng.randint(1, 6), timeout=1)
            if batch.busy:  # another fetch of this member holds a batch: try again shortly
                await asyncio.sleep(0.01)
                continue
            rounds += 1
            if not batch.messages:
                break
            await asyncio.sleep(rng.uniform(0, 0.02))  # reading it; a cancel here drops it
            held: ChatBatch = batch
            ok = await acked[member].settle(
                chats.ack(held), lambda ok, b=held: [m.id for m in b.messages] if ok else []
            )
            done += len(held.messages) if ok else 0
        return done

    sender = asyncio.create_task(_trickle(send, MESSAGES // 2, MESSAGES))
    report = await storm(reader, tasks=TASKS, within=0.3, seed=11)
    await sender
    for member in members:
        await acked[member].finished()
    total = await chats.last_id(chat_id)
    assert total == MESSAGES

    async def drained(member: str) -> bool:
        while True:
            batch = await chats.fetch(chat_id, member, count=100)
            if batch.busy:
                return False  # a cancelled reader's claim: it ends by claim_timeout
            if not batch.messages:
                return True
            if await chats.ack(batch):
                acked[member].done.extend(m.id for m in batch.messages)

    lost = duplicated = 0
    for member in members:
        await until(lambda m=member: drained(m), f"{member}'s view drained", limit=60)
        seen = collections.Counter(acked[member].done)
        lost += len(set(range(1, total + 1)) - set(seen))
        duplicated += sum(n - 1 for n in seen.values())
    keys = chats.keys(chat_id)
    leftovers = await redis_client.hlen(keys[1]) + await redis_client.zcard(keys[2])
    report.record(
        "Chats", _topology(request), lost=lost, duplicated=duplicated, leftovers=leftovers
    )
    assert (lost, duplicated, leftovers) == (0, 0, 0)
    assert await chats.members(chat_id) == dict.fromkeys(members, total)
    assert report.results, "no fetch completed: the storm cancelled everything"


async def test_fanout_storm(redis_client: Any, request: pytest.FixtureRequest) -> None:
    fanout = Fanout(redis_client, "storm")
    await fanout.create_group("g")
    consumers = [fanout.consumer("g", f"c{i}", min_idle=60) for i in range(5)]
    rng = random.Random(12)
    acks = _Acks()
    published: list[str] = []

    async def publish(i: int) -> None:
        published.append(await fanout.publish(i))

    for i in range(MESSAGES // 2):
        await publish(i)

    def order(entry_id: str) -> int:
        return published.index(entry_id)

    async def reader(i: int) -> int:
        consumer = consumers[i % len(consumers)]
        done = 0
        for _round in range(ROUNDS):
            got = await consumer.read(count=rng.randint(1, 4), timeout=1)
            if not got:
                break
            await asyncio.sleep(rng.uniform(0, 0.02))  # processing; a cancel here drops them
            for entry in got:  # one ack each: XACK's count tells which entry it settled
                one: FanoutEntry = entry
                done += await acks.settle(
                    consumer.ack(one), lambda n, one=one: [order(one.id)] if n else []
                )
        return done

    publisher = asyncio.create_task(_trickle(publish, MESSAGES // 2, MESSAGES))
    report = await storm(reader, tasks=TASKS, within=0.3, seed=12)
    await publisher
    await acks.finished()
    # Entries the cancelled readers held stay pending: another consumer takes them over.
    rescuer = fanout.consumer("g", "rescuer", min_idle=0.2)

    async def drained() -> bool:
        for entry in await rescuer.read(count=100, timeout=0):
            if await rescuer.ack(entry):
                acks.done.append(order(entry.id))
        return (await fanout.groups())[0].pending == 0 and len(set(acks.done)) >= MESSAGES

    await until(drained, "every entry acknowledged by the group", limit=60)
    seen = collections.Counter(acks.done)
    lost = len(set(range(MESSAGES)) - set(seen))
    duplicated = sum(n - 1 for n in seen.values())
    leftovers = (await fanout.groups())[0].pending
    report.record(
        "Fanout", _topology(request), lost=lost, duplicated=duplicated, leftovers=leftovers
    )
    assert (lost, duplicated, leftovers) == (0, 0, 0)
    for consumer in [*consumers, rescuer]:
        assert await consumer.aclose()  # holds nothing: removed
    assert report.results, "no read completed: the storm cancelled everything"
