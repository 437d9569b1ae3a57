"""TaskQueue on real servers: FIFO, priorities, delays, visibility, retries, dead letters, cancels.

Every test that takes ``redis_client`` runs on a standalone server and on a 3-master cluster.
Visibility timeouts and delays that must run out are short (0.1-1 s); nothing here asserts how
fast anything is: times are compared only with each other, as the server's clock recorded them.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import NO_REDIS, keys_of, outcome, until
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.core.scripts import script
from aiorpatterns.queues.taskqueue import DEFAULT_PRIORITIES, QueueCounts, Task, TaskQueue
from aiorpatterns.testing.server import free_port


async def idle(queue: TaskQueue) -> None:
    """Nothing left in the queue at all."""

    async def empty() -> bool:
        return (await queue.counts()).total == 0

    await until(empty, f"queue {queue.name} to empty")


def counts(ready: int = 0, delayed: int = 0, running: int = 0, dead: int = 0) -> QueueCounts:
    return QueueCounts(ready, delayed, running, dead)


# -- FIFO, priorities, waiting ----------------------------------------------------------------


async def test_fifo_round_trip(redis_client_text: Any) -> None:
    """The book's FIFO (§6.4.1): payloads come back in order, decoded, whatever the client."""
    q = TaskQueue(redis_client_text, "fifo")
    payloads: list[Any] = [{"to": "a@b.c", "n": 1}, [1, 2.5, None], "héllo ✓", 42, True]
    ids = [await q.put(p) for p in payloads]
    assert len(set(ids)) == len(ids)
    assert await q.counts() == counts(ready=5)
    for left, (expected, task_id) in enumerate(zip(payloads, ids, strict=True)):
        task = await q.get(timeout=0)
        assert task is not None
        assert (task.id, task.payload, task.queue) == (task_id, expected, "fifo")
        assert json.loads(task.data) == expected
        assert (task.attempts, task.max_attempts, task.priority) == (1, 5, "normal")
        assert task.enqueued_at <= task.ready_at <= task.claimed_at < task.deadline
        assert task.deadline - task.claimed_at == pytest.approx(30.0)
        assert await q.counts() == counts(ready=4 - left, running=1)
        assert await q.ack(task) is True
        assert await q.ack(task) is True  # done already: the same ack again changes nothing
    assert await q.get(timeout=0) is None
    assert await q.counts() == counts()


async def test_get_waits_for_a_put(redis_client: Any) -> None:
    """A blocked get() is woken by the put (its wake-up list), not by a poll."""
    q = TaskQueue(redis_client, "wait")
    waiting = asyncio.create_task(q.get(timeout=30))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await TaskQueue(redis_client, "wait").put("wake")
    task = await waiting
    assert task is not None
    assert task.payload == "wake"
    assert await q.ack(task)


async def test_many_waiters_each_get_one(redis_client: Any) -> None:
    """A burst of puts wakes every blocked consumer; each task goes to exactly one of them."""
    q = TaskQueue(redis_client, "burst")
    waiters = [asyncio.create_task(q.get(timeout=30)) for _ in range(8)]
    await asyncio.sleep(0.05)
    for i in range(8):
        await q.put(i)
    got = [await w for w in waiters]
    assert sorted(t.payload for t in got if t is not None) == list(range(8))
    for t in got:
        assert t is not None
        assert await q.ack(t)


async def test_get_timeout(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "empty")
    assert await q.get(timeout=0) is None
    assert await q.get(timeout=0.05) is None
    assert await keys_of(redis_client) == []


async def test_priorities_then_fifo_within_a_level(redis_client: Any) -> None:
    """Highest level first, FIFO inside a level: the book's ordered lists (§6.4.1), one ZSET."""
    q = TaskQueue(redis_client, "prio")
    order = ["low", "normal", "high", "low", "high", "normal", "high", "low", None]
    for i, level in enumerate(order):
        await q.put(i, priority=level)
    got = []
    while (task := await q.get(timeout=0)) is not None:
        got.append((task.priority, task.payload))
        await q.ack(task)
    expected = [
        (p, i) for p in DEFAULT_PRIORITIES for i, lv in enumerate(order) if (lv or "normal") == p
    ]
    assert got == expected


async def test_put_call_and_put_raw_pass_every_option_of_put(redis_client: Any) -> None:
    """put_call and put_raw spell out put's options (no ``**options``) and pass each one on."""
    q = TaskQueue(redis_client, "spelt")
    for _ in range(2):  # a task_id makes the put idempotent: the second one adds nothing
        await q.put_call(
            "send", ["a@b"], {"urgent": True}, priority="high", task_id="call-1",
            visibility_timeout=7, max_attempts=2,
        )  # fmt: skip
    await q.put_raw('["f", [], {}]', priority="low", task_id="raw-1", max_attempts=3)
    await q.put_call("later", delay=60, task_id="call-2")
    await q.put_raw("[]", at=time.time() + 60, task_id="raw-2")
    counts = await q.counts()
    assert (counts.ready, counts.delayed) == (2, 2)
    first = await q.get(timeout=0)
    assert first is not None
    assert (first.id, first.priority, first.payload) == (
        "call-1", "high", ["send", ["a@b"], {"urgent": True}]
    )  # fmt: skip
    assert (first.visibility_timeout, first.max_attempts) == (7, 2)
    second = await q.get(timeout=0)
    assert second is not None
    assert (second.id, second.priority, second.data, second.max_attempts) == (
        "raw-1", "low", '["f", [], {}]', 3
    )  # fmt: skip
    assert await q.get(timeout=0) is None  # the delayed ones are not due
    for task in (first, second):
        await q.ack(task)


async def test_custom_priorities_and_default(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "levels", priorities=["p0", "p1", "p2", "p3"])
    assert q.default_priority == "p2"
    q1 = TaskQueue(
        redis_client, "levels", priorities=["p0", "p1", "p2", "p3"], default_priority="p3"
    )
    await q1.put("default")
    await q.put("urgent", priority="p0")
    first, second = await q.get(timeout=0), await q.get(timeout=0)
    assert first is not None
    assert second is not None
    assert (first.priority, second.priority) == ("p0", "p3")
    assert await q.ack(first)
    assert await q.ack(second)


async def test_put_is_idempotent_per_task_id(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "idem")
    assert await q.put("first", task_id="job-1") == "job-1"
    assert await q.put("second", task_id="job-1") == "job-1"
    assert await q.counts() == counts(ready=1)
    task = await q.get(timeout=0)
    assert task is not None
    assert task.payload == "first"
    assert await q.ack(task)
    await q.put("again", task_id="job-1")  # done and deleted: the id may be used again
    assert await q.counts() == counts(ready=1)


# -- delayed tasks ----------------------------------------------------------------------------


async def test_delayed_task_is_not_delivered_before_it_is_due(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "later")
    await q.put("soon", delay=0.3)
    assert await q.get(timeout=0) is None
    assert await q.counts() == counts(delayed=1)
    task = await q.get(timeout=10)
    assert task is not None
    assert task.payload == "soon"
    assert task.due_at - task.enqueued_at == pytest.approx(0.3, abs=0.002)
    assert task.due_at <= task.ready_at <= task.claimed_at
    assert await q.ack(task)


async def test_at_accepts_unix_times_and_aware_datetimes(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "at")
    await q.put("by-float", at=time.time() + 0.2)
    await q.put("by-datetime", at=datetime.now(UTC) + timedelta(seconds=0.2))
    await q.put("in-the-past", at=time.time() - 100)
    assert await q.counts() == counts(ready=1, delayed=2)
    got = []
    for _ in range(3):
        task = await q.get(timeout=10)
        assert task is not None
        assert task.claimed_at >= task.due_at
        got.append(task.payload)
        await q.ack(task)
    assert got[0] == "in-the-past"
    assert sorted(got[1:]) == ["by-datetime", "by-float"]


async def test_a_thousand_delayed_tasks_four_promoters(redis_client: Any) -> None:
    """1,000 random delays, 4 promoters at once: each task promoted once, none early."""
    q = TaskQueue(redis_client, "promote")
    rng = random.Random(4)
    ids = [f"t{i}" for i in range(1000)]

    async def put_some(chunk: list[str]) -> None:
        for task_id in chunk:
            await q.put(task_id, task_id=task_id, delay=rng.uniform(0.001, 1.0))

    await asyncio.gather(*(put_some(ids[i::10]) for i in range(10)))
    promoted: list[str] = []
    by_promoter = [0] * 4

    async def promoter(n: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(promoted) < len(ids):
            assert loop.time() < deadline, "promotion stalled"
            moved = await q.promote(limit=25)
            promoted.extend(moved)
            by_promoter[n] += len(moved)
            if not moved:
                await asyncio.sleep(0.005)

    await asyncio.gather(*(promoter(n) for n in range(4)))
    assert collections.Counter(promoted) == collections.Counter(ids)
    assert sum(1 for n in by_promoter if n) >= 2, f"the promoters never overlapped: {by_promoter}"
    assert await q.counts() == counts(ready=1000)
    delivered = collections.Counter()
    while (task := await q.get(timeout=0)) is not None:
        delivered[task.id] += 1
        assert task.due_at <= task.ready_at, f"{task.id} promoted before it was due"
        assert task.payload == task.id
        assert task.attempts == 1
        assert await q.ack(task)
    assert delivered == collections.Counter(ids)
    assert await q.counts() == counts()


# -- visibility, heartbeats, late acks --------------------------------------------------------


async def test_unacked_task_comes_back_after_its_visibility_timeout(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "vis")
    await q.put("crashy", visibility_timeout=0.2)
    first = await q.get(timeout=0)
    assert first is not None
    assert first.visibility_timeout == pytest.approx(0.2)
    second = await q.get(timeout=10)  # wakes at the deadline, takes it back, delivers it
    assert second is not None
    assert second.id == first.id
    assert second.attempts == 2
    assert second.claimed_at >= first.deadline
    assert await q.ack(first) is False  # running elsewhere now: that consumer owns it
    assert await q.extend(first) is False
    assert await q.ack(second) is True
    assert await q.counts() == counts()


async def test_extend_keeps_a_task_from_being_taken_back(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "beat", visibility_timeout=0.3)
    await q.put("long")
    task = await q.get(timeout=0)
    assert task is not None
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await q.extend(task) is True
    assert await q.extend(task, 30) is True
    await asyncio.sleep(0.35)  # past the original deadline and every short extension
    assert await q.get(timeout=0) is None
    assert await q.counts() == counts(running=1)
    assert await q.ack(task)


async def test_late_ack_deletes_a_task_taken_back_but_not_redelivered(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "late")
    await q.put("slow", visibility_timeout=0.1)
    slow = await q.get(timeout=0)
    assert slow is not None
    await q.put("urgent", priority="high")
    await asyncio.sleep(0.2)
    urgent = await q.get(timeout=0)  # takes "slow" back to ready, then serves "urgent" first
    assert urgent is not None
    assert urgent.payload == "urgent"
    assert await q.counts() == counts(ready=1, running=1)
    assert await q.ack(slow) is True  # the work is done: no need to run it again
    assert await q.counts() == counts(running=1)
    assert await q.ack(urgent)


async def test_out_of_attempts_by_timeouts_is_dead_lettered(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "hang", max_attempts=1)
    await q.put("hang", visibility_timeout=0.1)
    task = await q.get(timeout=0)
    assert task is not None
    await asyncio.sleep(0.2)
    assert await q.get(timeout=0) is None  # the re-check takes it back: out of attempts
    [dead] = await q.dead_letters()
    assert dead.id == task.id
    assert dead.attempts == 1
    assert "visibility timeout" in dead.reason
    assert await q.ack(task) is True  # a late ack still means it was done
    assert await q.counts() == counts()


async def test_release_gives_a_task_back_to_the_head_uncounted(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "release")
    await q.put("a")
    await q.put("b")
    a = await q.get(timeout=0)
    assert a is not None
    assert a.payload == "a"
    assert await q.release(a) is True
    assert await q.release(a) is True  # the same settlement again: same answer, no change
    again = await q.get(timeout=0)
    assert again is not None
    assert again.id == a.id
    assert again.attempts == 1
    assert await q.ack(again)


# -- failures, retries, dead letters ----------------------------------------------------------


async def test_failures_retry_with_backoff_then_dead_letter(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "retry", max_attempts=3, retry_backoff=0.05, max_backoff=0.08)
    assert [q.backoff(n) for n in (1, 2, 3)] == [0.05, 0.08, 0.08]
    await q.put("flaky")
    outcomes, previous = [], None
    for attempt in (1, 2, 3):
        task = await q.get(timeout=10)
        assert task is not None
        assert task.attempts == attempt
        assert task.claimed_at >= task.due_at
        if previous is not None:
            assert task.last_error == f"error {attempt - 1}"
            assert task.due_at >= previous.claimed_at + q.backoff(previous.attempts) - 0.001
        outcomes.append(await q.fail(task, f"error {attempt}"))
        previous = task
    assert outcomes == ["retrying", "retrying", "dead"]
    [dead] = await q.dead_letters()
    assert (dead.payload, dead.attempts, dead.reason) == ("flaky", 3, "error 3")
    assert dead.died_at >= dead.enqueued_at
    # Settling that delivery again answers what its settlement did, and changes nothing.
    assert await q.fail(previous, "again") == "dead"  # type: ignore[arg-type]
    assert [d.reason for d in await q.dead_letters()] == ["error 3"]


async def test_fail_without_retry_and_with_a_given_delay(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "failmodes")
    await q.put("poison")
    await q.put("later")
    poison, later = await q.get(timeout=0), await q.get(timeout=0)
    assert poison is not None
    assert later is not None
    assert await q.fail(poison, "bad data", retry=False) == "dead"
    assert await q.fail(later, "busy", delay=0.2) == "retrying"
    assert await q.counts() == counts(delayed=1, dead=1)
    again = await q.get(timeout=10)
    assert again is not None
    assert again.id == later.id
    assert again.due_at - later.claimed_at >= 0.2 - 0.001
    assert await q.ack(again)


async def test_dead_letters_can_be_listed_requeued_and_deleted(redis_client_text: Any) -> None:
    q = TaskQueue(redis_client_text, "dlq")
    ids = []
    for i in range(3):
        ids.append(await q.put({"n": i}, priority="high" if i == 1 else None))
        task = await q.get(timeout=0)
        assert task is not None
        assert await q.fail(task, f"reason {i}", retry=False) == "dead"
    letters = await q.dead_letters(count=2)
    assert [(d.id, d.payload, d.reason) for d in letters] == [
        (ids[0], {"n": 0}, "reason 0"),
        (ids[1], {"n": 1}, "reason 1"),
    ]
    assert letters[1].priority == "high"
    assert [d.id for d in await q.dead_letters(offset=2)] == [ids[2]]
    assert await q.requeue_dead([ids[1], "no-such-task"]) == 1
    assert await q.counts() == counts(ready=1, dead=2)
    task = await q.get(timeout=0)
    assert task is not None
    assert task.id == ids[1]
    assert (task.attempts, task.last_error, task.priority) == (1, None, "high")
    assert await q.ack(task)
    assert await q.requeue_dead() == 2
    assert await q.counts() == counts(ready=2)
    for _ in range(2):
        task = await q.get(timeout=0)
        assert task is not None
        await q.fail(task, "again", retry=False)
    assert await q.delete_dead([ids[0]]) == 1
    assert await q.delete_dead() == 1
    assert await q.counts() == counts()


# -- keys -------------------------------------------------------------------------------------


async def test_keys_share_one_tag_and_only_the_counter_stays(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "keys")
    await q.put("x")
    await q.put("y", delay=0.05)
    task = await q.get(timeout=5)
    assert task is not None
    waiter = asyncio.create_task(q.get(timeout=5))
    got = await waiter
    assert got is not None
    for key in await keys_of(redis_client):
        assert key.startswith("aiorp:queue:{keys}:"), key
    assert await q.ack(task)
    assert await q.ack(got)
    assert await q.get(timeout=0) is None
    for key in await keys_of(redis_client):
        ttl = await redis_client.pttl(key)
        assert key == "aiorp:queue:{keys}:seq" or ttl > 0, f"{key} never expires"


# -- cancellation -----------------------------------------------------------------------------


async def test_cancel_put_at_each_step(redis_client: Any) -> None:
    """Cancelled after k loop turns, a put enqueued the task whole or not at all; a retry with
    the same task_id makes it exactly one."""
    q = TaskQueue(redis_client, "cput")
    completed = cancelled = 0
    ids = []
    for steps in range(60):
        task_id = f"t{steps}"
        ids.append(task_id)
        put = asyncio.create_task(q.put(steps, task_id=task_id))
        for _ in range(steps):
            await asyncio.sleep(0)
        put.cancel()
        if await outcome(put) is None:
            cancelled += 1
        else:
            completed += 1
        c = await q.counts()
        assert c.ready in (len(ids) - 1, len(ids)), "a put left a partial task"
        assert await redis_client.hlen(q.keys[3]) == await redis_client.hlen(q.keys[4]) == c.ready
        await q.put(steps, task_id=task_id)  # the retry a caller makes
        assert await q.counts() == counts(ready=len(ids))
        if completed >= 3 and cancelled >= 3:
            break
    assert completed >= 3
    assert cancelled >= 3
    seen = collections.Counter()
    while (task := await q.get(timeout=0)) is not None:
        seen[task.id] += 1
        await q.ack(task)
    assert seen == collections.Counter(ids)


async def test_cancel_get_at_each_step(redis_client: Any) -> None:
    """Cancelled after k loop turns, get() either returned the task or left it ready, uncounted."""
    q = TaskQueue(redis_client, "cget")
    completed = cancelled = 0
    put = acked = 0
    await q.put(put)
    put += 1
    for steps in range(80):
        getting = asyncio.create_task(q.get(timeout=5))
        for _ in range(steps):
            await asyncio.sleep(0)
        getting.cancel()
        task = await outcome(getting)
        if task is None:
            cancelled += 1
            assert await q.counts() == counts(ready=1), f"lost at step {steps}"
        else:
            completed += 1
            assert task.attempts == 1, "a cancelled get() counted a delivery"
            assert await q.ack(task)
            acked += 1
            await q.put(put)
            put += 1
        if completed >= 3 and cancelled >= 3:
            break
    assert completed >= 3
    assert cancelled >= 3
    last = await q.get(timeout=0)
    assert last is not None
    assert last.attempts == 1
    assert await q.ack(last)
    assert acked + 1 == put
    assert await q.counts() == counts()


async def test_cancel_a_blocked_get(redis_client: Any) -> None:
    q = TaskQueue(redis_client, "cblock")
    getting = asyncio.create_task(q.get(timeout=30))
    await asyncio.sleep(0.05)
    getting.cancel()
    assert await outcome(getting) is None
    await q.put("after")
    task = await q.get(timeout=5)
    assert task is not None
    assert task.attempts == 1
    assert await q.ack(task)


async def test_a_claim_that_arrives_after_its_clean_up_is_refused(redis_client: Any) -> None:
    """The tombstone: a cancelled get()'s claim, run after its clean-up, claims nothing."""
    q = TaskQueue(redis_client, "tomb")
    await q.put("x")
    token = uuid.uuid4().hex
    assert (
        await script("queue_settle")(
            redis_client, q.script_keys("queue_settle"), ["", token, "abandon", "", 0]
        )
        == 0
    )
    reply = await script("queue_claim")(
        redis_client, q.script_keys("queue_claim"), [token, 1000, 100, 1]
    )
    assert [x.decode() if isinstance(x, bytes) else x for x in reply] == ["", -2]
    assert await q.counts() == counts(ready=1)
    assert 0 < await redis_client.pttl(q.keys[8]) <= 60000


@pytest.mark.parametrize("op", ["ack", "release", "fail"])
async def test_cancel_settling_at_each_step(redis_client: Any, op: str) -> None:
    """ack/release/fail are shielded: cancelled at any point once running, they still complete.

    (A task cancelled before its first turn never calls them at all, so k starts at 1.)
    """
    q = TaskQueue(redis_client, f"c{op}")
    expected = {"ack": counts(), "release": counts(ready=1), "fail": counts(dead=1)}[op]
    for steps in range(1, 9):
        await q.put(steps)
        task = await q.get(timeout=0)
        assert task is not None
        call: Awaitable[Any] = {
            "ack": lambda t: q.ack(t),
            "release": lambda t: q.release(t),
            "fail": lambda t: q.fail(t, "x", retry=False),
        }[op](task)
        settling = asyncio.ensure_future(call)
        for _ in range(steps):
            await asyncio.sleep(0)
        settling.cancel()
        await outcome(settling)

        async def settled() -> bool:
            return await q.counts() == expected

        await until(settled, f"{op} after {steps} steps")
        if op == "release":
            again = await q.get(timeout=0)
            assert again is not None
            assert again.attempts == 1
            assert await q.ack(again)
        elif op == "fail":
            assert await q.delete_dead() == 1


# -- bad input --------------------------------------------------------------------------------


@pytest.fixture
async def unreachable() -> AsyncIterator[Redis]:
    """A client for a port nobody listens on: any Redis call would raise ConnectionError."""
    client = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    yield client
    await client.aclose()


def fake_task(queue: str = "q") -> Task:
    return Task(
        id="t",
        data="1",
        queue=queue,
        priority="normal",
        attempts=1,
        max_attempts=5,
        enqueued_at=0.0,
        due_at=0.0,
        ready_at=0.0,
        claimed_at=0.0,
        deadline=30.0,
        visibility_timeout=30.0,
        last_error=None,
        claim="c",
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": ""}, ValueError),
        ({"name": "a}b"}, ValueError),
        ({"name": 5}, TypeError),
        ({"priorities": "high"}, TypeError),
        ({"priorities": []}, ValueError),
        ({"priorities": ["a", "a"]}, ValueError),
        ({"priorities": ["a", ""]}, ValueError),
        ({"priorities": ["a", 1]}, TypeError),
        ({"priorities": [str(i) for i in range(65)]}, ValueError),
        ({"default_priority": "urgent"}, ValueError),
        ({"visibility_timeout": 0}, ValueError),
        ({"visibility_timeout": math.nan}, ValueError),
        ({"visibility_timeout": "1"}, TypeError),
        ({"max_attempts": 0}, ValueError),
        ({"max_attempts": True}, TypeError),
        ({"max_attempts": 1.5}, TypeError),
        ({"retry_backoff": -1}, ValueError),
        ({"max_backoff": math.inf}, ValueError),
        ({"max_backoff": 10**10}, ValueError),
        ({"retry_backoff": 10**10}, ValueError),
        ({"max_attempts": 2**53 + 1}, ValueError),
        ({"keyspace": "aiorp"}, TypeError),
    ],
)
def test_bad_constructor_arguments(unreachable: Redis, kwargs: dict[str, Any], error: type) -> None:
    options = {"name": "q", **kwargs}
    name = options.pop("name")
    with pytest.raises(error):
        TaskQueue(unreachable, name, **options)


def test_redis_none_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="redis"):
        TaskQueue(None, "q")


class Unserialisable:
    pass


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda q: q.put(Unserialisable()), TypeError, "JSON"),
        (lambda q: q.put({"s": {1, 2}}), TypeError, "JSON"),
        (lambda q: q.put(math.nan), ValueError, "JSON"),
        (lambda q: q.put([math.inf]), ValueError, "JSON"),
        (lambda q: q.put(1, priority="urgent"), ValueError, "priority"),
        (lambda q: q.put(1, priority=0), TypeError, "priority"),
        (lambda q: q.put(1, delay=-1), ValueError, "delay"),
        (lambda q: q.put(1, delay=math.nan), ValueError, "delay"),
        (lambda q: q.put(1, delay=math.inf), ValueError, "delay"),
        (lambda q: q.put(1, delay="1"), TypeError, "delay"),
        (lambda q: q.put(1, delay=1, at=time.time()), ValueError, "not both"),
        (lambda q: q.put(1, at=datetime.now()), ValueError, "aware"),
        (lambda q: q.put(1, at=math.nan), ValueError, "at"),
        (lambda q: q.put(1, task_id=""), ValueError, "task_id"),
        (lambda q: q.put(1, task_id=5), TypeError, "task_id"),
        (lambda q: q.put(1, visibility_timeout=0), ValueError, "visibility_timeout"),
        (lambda q: q.put(1, max_attempts=0), ValueError, "max_attempts"),
        (lambda q: q.put_call("", []), ValueError, "name"),
        (lambda q: q.put_call("f", "abc"), TypeError, "args"),
        (lambda q: q.put_call("f", [], [1]), TypeError, "kwargs"),
        (lambda q: q.put_call("f", [], {1: 2}), TypeError, "kwargs"),
        (lambda q: q.put_call("f", [object()]), TypeError, "JSON"),
        (lambda q: q.put_raw(b"{}"), TypeError, "data"),
        (lambda q: q.get(timeout=-1), ValueError, "timeout"),
        (lambda q: q.get(timeout=math.nan), ValueError, "timeout"),
        (lambda q: q.ack("t"), TypeError, "Task"),
        (lambda q: q.ack(fake_task("other")), ValueError, "other"),
        (lambda q: q.release(None), TypeError, "Task"),
        (lambda q: q.fail(fake_task(), 5), TypeError, "reason"),
        (lambda q: q.fail(fake_task(), "x", delay=-1), ValueError, "delay"),
        (lambda q: q.extend(fake_task(), 0), ValueError, "seconds"),
        (lambda q: q.promote(limit=0), ValueError, "limit"),
        (lambda q: q.dead_letters(count=0), ValueError, "count"),
        (lambda q: q.dead_letters(offset=-1), ValueError, "offset"),
        (lambda q: q.put(1, delay=10**10), ValueError, "delay"),
        (lambda q: q.put(1, delay=True), TypeError, "delay"),
        (lambda q: q.put(1, at=-1), ValueError, "at"),
        (lambda q: q.put(1, at=time.time() + 10**10), ValueError, "at"),
        (lambda q: q.put(1, max_attempts=2**63), ValueError, "max_attempts"),
        (lambda q: q.put(1, visibility_timeout=10**10), ValueError, "visibility_timeout"),
        (lambda q: q.fail(fake_task(), "x", delay=10**10), ValueError, "delay"),
        (lambda q: q.fail(fake_task(), "x", delay=math.inf), ValueError, "delay"),
        (lambda q: q.extend(fake_task(), 10**10), ValueError, "seconds"),
        (lambda q: q.promote(limit=2**60), ValueError, "limit"),
        (lambda q: q.promote(limit=1.5), TypeError, "limit"),
        (lambda q: q.dead_letters(count=2**60), ValueError, "count"),
        (lambda q: q.dead_letters(offset=2**60), ValueError, "offset"),
        (lambda q: q.requeue_dead("abc"), TypeError, "ids"),
        (lambda q: q.delete_dead([1]), TypeError, "ids"),
    ],
)
async def test_bad_arguments_fail_before_redis(
    call: Callable[[TaskQueue], Awaitable[Any]], error: type, match: str
) -> None:
    # The tripwire client: a check that let anything reach Redis would fail the test.
    with pytest.raises(error, match=match):
        await call(TaskQueue(NO_REDIS, "q"))


async def test_get_many_claims_a_batch_each_on_its_own(redis_client: Any) -> None:
    """One step claims up to count tasks in order; each is acked, failed or released alone,
    and a cancelled batch claim's clean-up gives every task back, uncounted."""
    q = TaskQueue(redis_client, "batch", retry_backoff=0.0)
    for i in range(5):
        await q.put(i)
    batch = await q.get_many(3, timeout=0)
    assert [t.payload for t in batch] == [0, 1, 2]
    assert len({t.claim for t in batch}) == 3
    assert await q.counts() == counts(ready=2, running=3)
    assert await q.ack(batch[0])
    assert await q.fail(batch[1], "no", delay=0) == "retrying"
    assert await q.release(batch[2])
    rest = await q.get_many(10, timeout=5)  # the retry was promoted: at the tail
    assert [(t.payload, t.attempts) for t in rest] == [(2, 1), (3, 1), (4, 1), (1, 2)]
    await q._abandon(rest[0].claim.partition("#")[0], 10)  # what a cancelled get_many() runs
    assert await q.counts() == counts(ready=4)
    again = await q.get_many(10, timeout=5)  # the same places, the same attempts
    assert [(t.payload, t.attempts) for t in again] == [(2, 1), (3, 1), (4, 1), (1, 2)]
    assert await q.get_many(1, timeout=0) == []
    with pytest.raises(ValueError, match="count"):
        await q.get_many(0)


async def test_ack_and_get_hands_over_in_one_step(redis_client: Any) -> None:
    """A finished task's ack claims the next ready task in the same step."""
    q = TaskQueue(redis_client, "handover", result_ttl=60)
    first_id = await q.put("a")
    await q.put("b")
    first = await q.get(timeout=0)
    assert first is not None
    acked, second = await q.ack_and_get(first, "done-a")
    assert acked
    assert second is not None
    assert second.payload == "b"
    assert await q.result(first_id, timeout=5) == "done-a"
    acked, third = await q.ack_and_get(second)
    assert acked
    assert third is None
    assert await q.counts() == counts()


async def test_a_hand_over_cancelled_in_flight_gives_the_next_task_back(
    redis_client: Any,
) -> None:
    """Cancelled while its step is on the wire, ack_and_get still acks (shielded), and the
    next task the step claimed goes back to the queue at once, not after its visibility."""
    q = TaskQueue(redis_client, "handover-cancel", visibility_timeout=3600)
    await q.put("a")
    await q.put("b")
    first = await q.get(timeout=0)
    assert first is not None
    handing = asyncio.create_task(q.ack_and_get(first))
    await asyncio.sleep(0)  # the step is sent: its caller waits on the shielded reply
    handing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handing

    async def given_back() -> bool:
        return await q.counts() == counts(ready=1)

    await until(given_back, "the claimed next task back in the queue")
    again = await q.get(timeout=0)
    assert again is not None
    assert again.payload == "b"
    assert again.attempts == 1  # a claim given back costs no attempt


async def test_put_many_enqueues_each_once_in_order(redis_client: Any) -> None:
    """One step per 500 tasks, in order; ids make it idempotent; a bad payload anywhere fails
    before anything is enqueued."""
    q = TaskQueue(redis_client, "many")
    ids = await q.put_many(range(1200))
    assert len(set(ids)) == 1200
    assert await q.counts() == counts(ready=1200)
    fixed = await q.put_many(["a", "b"], task_ids=["x", "y"], priority="high")
    assert fixed == ["x", "y"]
    assert await q.put_many(["c", "d"], task_ids=["x", "y"]) == ["x", "y"]  # already there
    assert await q.put_many([]) == []
    with pytest.raises(TypeError):
        await q.put_many([1, object(), 3])
    with pytest.raises(ValueError, match="task_ids"):
        await q.put_many([1, 2], task_ids=["only-one"])
    assert await q.counts() == counts(ready=1202)
    got = await q.get_many(1000, timeout=0)
    assert [t.payload for t in got[:3]] == ["a", "b", 0]
    assert [t.payload for t in got[2:]] == list(range(998))


async def test_ack_many_acks_each_with_its_result(redis_client: Any) -> None:
    """One step acks a batch; a task taken over meanwhile answers False; results are kept."""
    q = TaskQueue(redis_client, "ackmany", result_ttl=60, visibility_timeout=0.2)
    ids = await q.put_many(["a", "b", "c"])
    got = await q.get_many(3, timeout=0)
    again = await q.get(timeout=10)  # their visibility ends: another consumer takes one
    assert again is not None
    answers = await q.ack_many(got, ["ra", "rb", "rc"])
    assert answers == [t.id != again.id for t in got]  # a late ack of the others still counts
    kept = {i: r for i, r, ok in zip(ids, ["ra", "rb", "rc"], answers, strict=True) if ok}
    assert {i: await q.result(i, timeout=5) for i in kept} == kept
    assert await q.ack_many([again]) == [True]
    assert await q.ack_many([]) == []
    with pytest.raises(ValueError, match="results"):
        await q.ack_many(got, ["one"])
