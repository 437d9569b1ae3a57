"""Periodic tasks: the cron parser in Python, and one enqueue per tick on real servers.

The cron tests compare against times computed by hand (and, for the search, against a
minute-by-minute scan). The Redis tests use ``every=`` ticks of a few hundred milliseconds, on a
standalone server and a 3-master cluster: three schedulers at once, a scheduler stopped and a
new one started later (with each catch-up policy), a claim left unconfirmed by a dead scheduler,
every script call sent twice, and schedulers cancelled at many points. While they run, a
consumer drains the queue (get, then ack), so a tick enqueued twice would show as a repeated id
rather than collapse into the task still queued. Nothing asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from helpers import NO_REDIS, until

from aiorpatterns.core.scripts import script
from aiorpatterns.queues.periodic import Cron, Periodic, Scheduler
from aiorpatterns.queues.taskqueue import TaskQueue


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the cron parser ----------------------------------------------------------------------------

NEXT = [
    # expression, after, the next time it fires
    ("* * * * *", "2024-03-10 12:34:56", "2024-03-10 12:35"),
    ("* * * * *", "2024-03-10 12:35:00", "2024-03-10 12:36"),  # strictly after
    ("*/5 * * * *", "2024-03-10 12:35:00", "2024-03-10 12:40"),
    ("*/15 9-17 * * *", "2024-03-10 17:50", "2024-03-11 09:00"),
    ("0 0 * * *", "2024-12-31 23:59:59", "2025-01-01 00:00"),
    ("30 2 1 * *", "2024-01-31 03:00", "2024-02-01 02:30"),
    ("0 12 * * mon-fri", "2024-03-08 12:00", "2024-03-11 12:00"),  # Friday noon -> Monday
    ("0 12 * * 1-5", "2024-03-08 12:00", "2024-03-11 12:00"),
    ("0 0 * * 0", "2024-03-10 00:00", "2024-03-17 00:00"),  # Sundays: 0 ...
    ("0 0 * * 7", "2024-03-10 00:00", "2024-03-17 00:00"),  # ... or 7
    ("0 0 29 2 *", "2024-03-01 00:00", "2028-02-29 00:00"),  # leap days only
    ("0 0 29 2 *", "2096-03-01 00:00", "2104-02-29 00:00"),  # 2100 is not a leap year
    ("0 0 13 * 5", "2024-09-01 00:00", "2024-09-06 00:00"),  # OR: a Friday first ...
    ("0 0 13 * 5", "2024-09-12 00:00", "2024-09-13 00:00"),  # ... the 13th (a Friday too)
    ("0 0 13 * 5", "2024-10-11 00:00", "2024-10-13 00:00"),  # ... the 13th, a Sunday
    ("0 0 */2 * 5", "2024-09-01 00:00", "2024-09-13 00:00"),  # '*/2': AND, odd-day Fridays
    ("0 0 1-7 * */7", "2024-09-02 00:00", "2024-10-06 00:00"),  # '*/7' (0,7): AND, 1st Sunday
    ("5,10-12/2 1 * jan,jul *", "2024-01-01 01:07", "2024-01-01 01:10"),
    ("5,10-12/2 1 * jan,jul *", "2024-01-01 01:12", "2024-01-02 01:05"),
    ("5,10-12/2 1 * JAN,JUL *", "2024-01-31 02:00", "2024-07-01 01:05"),
    ("0 0 31 * *", "2024-04-01 00:00", "2024-05-31 00:00"),
    ("59 23 31 12 *", "2024-01-01 00:00", "2024-12-31 23:59"),
    ("@hourly", "2024-03-10 12:00", "2024-03-10 13:00"),
    ("@daily", "2024-03-10 12:00", "2024-03-11 00:00"),
    ("@weekly", "2024-03-10 12:00", "2024-03-17 00:00"),
    ("@monthly", "2024-03-10 12:00", "2024-04-01 00:00"),
    ("@yearly", "2024-03-10 12:00", "2025-01-01 00:00"),
]


@pytest.mark.parametrize(("expression", "after", "expected"), NEXT)
def test_cron_next_after(expression: str, after: str, expected: str) -> None:
    assert Cron(expression).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(("expression", "after", "expected"), NEXT)
def test_cron_last_at_or_before_inverts_next_after(
    expression: str, after: str, expected: str
) -> None:
    cron = Cron(expression)
    fire = at(expected)
    assert cron.last_at_or_before(fire) == fire
    assert cron.last_at_or_before(fire + timedelta(seconds=59)) == fire
    before = cron.last_at_or_before(fire - timedelta(milliseconds=1))
    assert before < fire
    assert cron.next_after(before) == fire


def test_cron_is_utc_and_takes_any_aware_time() -> None:
    cron = Cron("0 9 * * *")
    paris = timezone(timedelta(hours=1))
    # 09:30 at +01:00 is 08:30 UTC: the same day's 09:00 UTC comes next, not tomorrow's.
    assert cron.next_after(datetime(2024, 3, 10, 9, 30, tzinfo=paris)) == at("2024-03-10 09:00")
    with pytest.raises(ValueError, match="aware"):
        cron.next_after(datetime(2024, 3, 10))


@pytest.mark.parametrize(
    "expression",
    ["*/7 */5 * * *", "0 0 13 * 5", "15 3 1-10/3 * mon,wed", "0 */6 * feb-apr *", "0 0 */2 * 5"],
)
def test_cron_search_agrees_with_a_minute_scan(expression: str) -> None:
    """Each next time matches, and no minute between two of them does (checked minute by minute
    over random stretches, against the parsed fields read independently)."""
    cron = Cron(expression)
    fields = expression.split()
    minutes, hours, doms, months, dows = (_expand(f, i) for i, f in enumerate(fields))
    either = not fields[2].startswith("*") and not fields[4].startswith("*")

    def fires(t: datetime) -> bool:
        dom, dow = t.day in doms, t.isoweekday() % 7 in {d % 7 for d in dows}
        day = (dom or dow) if either else (dom and dow)
        return t.minute in minutes and t.hour in hours and t.month in months and day

    rng = random.Random(expression)
    for _ in range(3):
        t = at("2020-01-01 00:00") + timedelta(minutes=rng.randrange(5 * 365 * 24 * 60))
        fire = cron.next_after(t)
        for _ in range(4):
            probe = t.replace(second=0) + timedelta(minutes=1)
            while probe < fire:
                assert not fires(probe), (expression, probe)
                probe += timedelta(minutes=1)
            assert fires(fire), (expression, fire)
            t, fire = fire, cron.next_after(fire)


_NAMES = {"mon": 1, "wed": 3, "feb": 2, "apr": 4}


def _expand(field: str, index: int) -> set[int]:
    low, high = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)][index]
    values: set[int] = set()
    for item in field.split(","):
        body, _, step = item.partition("/")
        if body == "*":
            a, b = low, high
        else:
            first, _, last = body.partition("-")
            a = _NAMES.get(first) or int(first)
            b = (_NAMES.get(last) or int(last)) if last else a
        values.update(range(a, b + 1, int(step or 1)))
    return values


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "must have 5 fields"),
        ("* * * * * *", "must have 5 fields"),
        ("", "must have 5 fields"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day of month: 0 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day of week: 8 is out of range 0-7"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step must be at least 1"),
        ("5/10 * * * *", "a step needs a range"),
        ("* * * smarch *", "month: 'smarch' is not a number or a name"),
        ("x * * * *", "minute: 'x' is not a number"),
        ("1,,2 * * * *", "cannot read ''"),
        ("-5 * * * *", "cannot read"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
    ],
)
def test_bad_cron_expressions_are_refused(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Cron(expression)


def test_cron_type_errors() -> None:
    with pytest.raises(TypeError, match="cron must be a str"):
        Cron(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="when must be a datetime"):
        Cron("* * * * *").next_after("now")  # type: ignore[arg-type]


# -- entries and the scheduler's arguments -----------------------------------------------------


def test_every_ticks_fall_on_multiples_of_the_interval() -> None:
    entry = Periodic("job", every=0.25)
    assert entry.next_after(1000) == 1250
    assert entry.next_after(1249) == 1250
    assert entry.last_at_or_before(1249) == 1000
    assert entry.last_at_or_before(1250) == 1250
    assert entry.due(1000, 2000, 1000) == ([1250, 1500, 1750, 2000], False)
    assert entry.due(1000, 2000, 2) == ([1750, 2000], True)
    assert entry.due(2000, 2000, 1000) == ([], False)
    assert entry.task_id(1250) == "periodic:job:1250"
    daily = Periodic("digest", cron="0 8 * * *", task="send_digest", args=[1])
    eight = int(at("2024-03-10 08:00").timestamp() * 1000)
    assert daily.due(eight - 1, eight + 86_400_000, 1000) == ([eight, eight + 86_400_000], False)
    assert daily.next_after(eight) == eight + 86_400_000
    assert "send_digest" in repr(daily)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({}, ValueError, "exactly one"),
        ({"every": 1, "cron": "* * * * *"}, ValueError, "exactly one"),
        ({"every": 0}, ValueError, "every must be a positive"),
        ({"every": 0.0001}, ValueError, "every must be at least 0.001"),
        ({"every": "1"}, TypeError, "every must be a number"),
        ({"cron": "* * *"}, ValueError, "5 fields"),
        ({"every": 1, "args": "abc"}, TypeError, "args must be a sequence"),
        ({"every": 1, "kwargs": [1]}, TypeError, "kwargs must be a mapping"),
        ({"every": 1, "kwargs": {1: 2}}, TypeError, "kwargs keys must be str"),
        ({"every": 1, "args": [object()]}, TypeError, "not JSON-serialisable"),
        ({"every": 1, "args": [float("nan")]}, ValueError, "not valid JSON"),
        ({"every": 1, "task": ""}, ValueError, "task must not be empty"),
        ({"every": 1, "priority": 1}, TypeError, "priority must be a str"),
        ({"every": 1, "max_attempts": 0}, ValueError, "max_attempts must be at least 1"),
        ({"every": 1, "visibility_timeout": -1}, ValueError, "visibility_timeout"),
    ],
)
def test_bad_entries_are_refused(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Periodic("job", **options)


def test_bad_entry_names_are_refused() -> None:
    with pytest.raises(ValueError, match="name must not be empty"):
        Periodic("", every=1)
    with pytest.raises(ValueError, match="'}'"):
        Periodic("a}b", every=1)


def test_bad_scheduler_arguments_are_refused_before_redis() -> None:
    queue = TaskQueue(NO_REDIS, "jobs")
    job = Periodic("job", every=1)
    with pytest.raises(TypeError, match="queue must be a TaskQueue"):
        Scheduler(NO_REDIS, [job])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="entries must not be empty"):
        Scheduler(queue, [])
    with pytest.raises(TypeError, match="entries must be Periodic"):
        Scheduler(queue, ["job"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unique"):
        Scheduler(queue, [job, Periodic("job", cron="* * * * *")])
    with pytest.raises(ValueError, match="unknown priority 'urgent'"):
        Scheduler(queue, Periodic("job", every=1, priority="urgent"))
    with pytest.raises(ValueError, match="catch_up must be"):
        Scheduler(queue, job, catch_up="none")  # type: ignore[arg-type]
    assert Scheduler(queue, job).entries == (job,)


# -- on real servers ----------------------------------------------------------------------------

EVERY = 0.2
EVERY_MS = round(EVERY * 1000)


class Drain:
    """Consume a queue (get, then ack) and keep the id of every task, in order."""

    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue
        self.ids: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Drain:
        self._task = asyncio.create_task(self._consume())
        return self

    async def _consume(self) -> None:
        while True:
            task = await self.queue.get(timeout=1)
            if task is not None:
                self.ids.append(task.id)
                await self.queue.ack(task)

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        while (task := await self.queue.get(timeout=0)) is not None:  # what is left
            self.ids.append(task.id)
            await self.queue.ack(task)

    def ticks(self, name: str) -> list[int]:
        prefix = f"periodic:{name}:"
        assert all(i.startswith(prefix) for i in self.ids), self.ids
        return [int(i.removeprefix(prefix)) for i in self.ids]


def consecutive(ticks: list[int], step: int = EVERY_MS) -> bool:
    return all(b - a == step for a, b in itertools.pairwise(ticks))


async def server_ms(queue: TaskQueue) -> int:
    reply = await script("periodic_claim")(queue.redis, [_key(queue)], ["read"])
    return int(reply[0])


def _key(queue: TaskQueue) -> str:
    return queue.keyspace.key("queue", queue.name, "periodic")


async def marker(queue: TaskQueue, name: str) -> str:
    value = await queue.redis.hget(_key(queue), name)  # type: ignore[misc]
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture
async def fresh(redis_client: Any) -> AsyncIterator[Callable[[str], Awaitable[TaskQueue]]]:
    """A queue under a name of its own (and its marker deleted), on ``redis_client``."""

    made: list[TaskQueue] = []

    async def make(name: str) -> TaskQueue:
        queue = TaskQueue(redis_client, f"{name}-{random.randrange(10**9)}")
        made.append(queue)
        return queue

    yield make
    for queue in made:  # the marker and the queue's counter never expire: leave nothing
        base = queue.keyspace.tag("queue", queue.name)
        async for key in redis_client.scan_iter(match=base + "*"):
            await redis_client.delete(key)


async def test_three_schedulers_enqueue_each_tick_once(
    redis_client: Any, new_client: Callable[..., Awaitable[Any]], fresh: Any
) -> None:
    queue = await fresh("three")
    job = Periodic("beat", every=EVERY, args=["x"])
    schedulers = []
    for _ in range(3):
        own = TaskQueue(await new_client(), queue.name)  # as in three processes
        schedulers.append(Scheduler(own, job))
    async with Drain(queue) as drain:
        for scheduler in schedulers:
            await scheduler.start()
        await until(lambda: _count(drain, 10), "ten ticks enqueued", limit=30)
        for scheduler in schedulers:
            await scheduler.aclose()
    ticks = drain.ticks("beat")
    assert len(ticks) >= 10
    assert len(set(ticks)) == len(ticks), ticks
    assert sorted(ticks) == ticks
    assert consecutive(ticks), ticks
    assert sum(s.enqueued for s in schedulers) == len(ticks)
    assert str(ticks[-1]) == await marker(queue, "beat")  # settled, no claim left open


async def _count(drain: Drain, n: int) -> bool:
    return len(drain.ids) >= n


@pytest.mark.parametrize("catch_up", ["all", "last"])
async def test_a_restart_enqueues_missed_ticks_per_policy_and_none_twice(
    redis_client: Any, fresh: Any, catch_up: Any
) -> None:
    queue = await fresh(f"restart-{catch_up}")
    job = Periodic("beat", every=EVERY)
    async with Drain(queue) as drain:
        async with Scheduler(queue, job) as first:
            await until(lambda: _count(drain, 3), "three ticks before the stop", limit=30)
        stopped = int(await marker(queue, "beat"))  # the last tick settled: all were confirmed
        missed_until = stopped + 4 * EVERY_MS

        async def four_ticks_missed() -> bool:
            return await server_ms(queue) >= missed_until

        await until(four_ticks_missed, "four ticks to fall with no scheduler running")
        before = len(drain.ids)
        second = Scheduler(queue, job, catch_up=catch_up)
        await second.start()
        await until(lambda: _count(drain, before + 3), "ticks after the restart", limit=30)
        await second.aclose()
    ticks = drain.ticks("beat")
    assert len(set(ticks)) == len(ticks), ticks
    assert sorted(ticks) == ticks
    old = [t for t in ticks if t <= stopped]
    new = [t for t in ticks if t > stopped]
    assert consecutive(old)
    assert old[-1] == stopped
    assert first.enqueued == len(old)
    assert second.enqueued == len(new)
    if catch_up == "all":
        assert consecutive(ticks), ticks  # every missed tick, once
    else:
        assert new[0] >= missed_until, (stopped, ticks)  # only the newest missed one
    assert str(ticks[-1]) == await marker(queue, "beat")


async def test_an_unconfirmed_claim_is_taken_over_after_its_lease(fresh: Any) -> None:
    """A scheduler that died between its claim and its confirmation: its tick is put again once
    its lease ends (once: the first put, if it happened, and this one collapse into one task)."""
    queue = await fresh("orphan")
    job = Periodic("beat", every=3600)  # no tick of its own falls during the test
    now = await server_ms(queue)
    tick = job.last_at_or_before(now)
    claim = script("periodic_claim")
    # A dead scheduler's claim, its lease ending in 300 ms.
    assert await claim(queue.redis, [_key(queue)], ["read", "beat"]) is not None
    await queue.redis.hset(_key(queue), "beat", str(tick - 3_600_000))  # type: ignore[misc]
    reply = await claim(queue.redis, [_key(queue)], ["claim", "beat", tick, "dead" * 8, 300])
    assert [int(x) for x in reply] == [1, tick]
    async with Drain(queue) as drain, Scheduler(queue, job) as alive:
        await until(lambda: _count(drain, 1), "the orphaned tick enqueued", limit=30)
        await until(
            lambda: _is(marker(queue, "beat"), str(tick)), "the take-over confirmed", limit=30
        )
    assert drain.ids == [job.task_id(tick)]
    assert alive.enqueued == 1


async def _is(value: Awaitable[str], expected: str) -> bool:
    return await value == expected


@pytest.mark.retry_safe("periodic_claim")
async def test_every_step_sent_twice_enqueues_each_tick_once(
    redis_client: Any, twice_client: Any, fresh: Any
) -> None:
    """Read, claim and confirm re-sent after a lost reply (every call runs twice here)."""
    queue = await fresh("twice")
    job = Periodic("beat", every=EVERY)
    doubled = TaskQueue(twice_client, queue.name)
    async with Drain(queue) as drain, Scheduler(doubled, job) as scheduler:
        await until(lambda: _count(drain, 5), "five ticks enqueued", limit=30)
    ticks = drain.ticks("beat")
    assert len(set(ticks)) == len(ticks), ticks
    assert consecutive(ticks), ticks
    assert scheduler.enqueued == len(ticks)  # a re-sent claim answered as the first did
    # Each mode on its own, run twice: the second run answers as the first did.
    settled = int(await marker(queue, "beat"))
    tick = settled + EVERY_MS

    async def run(*args: object) -> list[int]:
        reply = await script("periodic_claim")(twice_client, [_key(queue)], args)
        return [int(x) for x in reply] if isinstance(reply, list) else [int(reply)]

    a, b, c = "a" * 32, "b" * 32, "c" * 32
    assert await run("claim", "beat", tick, a, 5000) == [1, tick]
    assert (await run("claim", "beat", tick, b, 5000))[0] == -1  # a holds it
    assert await run("confirm", "beat", tick, b) == [0]
    assert await run("confirm", "beat", tick, a) == [1]
    assert await marker(queue, "beat") == str(tick)
    assert await run("claim", "beat", tick, b, 5000) == [0, tick]
    assert await run("confirm", "beat", settled, c) == [1]


async def test_cancelled_schedulers_leave_no_claim_open_and_no_tick_twice(fresh: Any) -> None:
    """Schedulers cancelled (run() cancelled, or closed) at many points, one after another."""
    queue = await fresh("cancel")
    every = 0.05
    job = Periodic("beat", every=every)
    rng = random.Random(7)
    async with Drain(queue) as drain:
        for i in range(12):
            scheduler = Scheduler(queue, job)
            runner = asyncio.create_task(scheduler.run())
            await asyncio.sleep(rng.uniform(0, 3 * every))
            if i % 2:
                runner.cancel()
            else:
                await scheduler.aclose()
            await asyncio.wait([runner], timeout=30)
            assert runner.done()
            assert " " not in await marker(queue, "beat")  # every claim confirmed
    ticks = drain.ticks("beat")
    assert len(set(ticks)) == len(ticks), ticks
    assert consecutive(ticks, round(every * 1000)), ticks
