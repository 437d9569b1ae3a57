"""Reliable task queues: FIFO with priority levels, delayed tasks, retries and dead letters.

Redis in Action §6.4 builds a task queue from a LIST that workers ``BLPOP`` (§6.4.1), priorities
from several lists popped by one ``BLPOP`` (§6.4.1, ``worker_watch_queues``) and delayed tasks
from a ZSET that a poller moves, one item at a time under a lock, to the list (§6.4.2). A task
popped by a worker that then crashes is lost, and so is a delayed task whose poller dies between
its ZREM and its RPUSH. Here:

- a task is a record in one queue; ``get()`` *claims* it: one Lua step pops the most urgent ready
  task and files it under a visibility deadline (the server's clock), so a worker that dies or
  hangs loses it to the next consumer once the deadline passes, never to nobody;
- the same step first promotes due delayed tasks and takes back expired claims, so no separate
  poller is needed and no task is moved twice, whatever number of consumers or
  :meth:`TaskQueue.promote` callers run at once;
- ``ack`` deletes a task, ``extend`` (a heartbeat) pushes its deadline back, ``fail`` retries it
  with exponential backoff until ``max_attempts`` deliveries, then dead-letters it with the
  reason; dead letters can be listed, re-queued and deleted;
- priorities are levels of one ready set (highest first, FIFO within a level): one ``ZPOPMIN``
  serves them all, as the book's one ``BLPOP`` over several lists did;
- a consumer with nothing to do blocks on a wake-up list that every ``put`` pushes to, for at
  most :data:`~aiorpatterns.core.waiting.MAX_WAIT_SLICE` seconds or until the next delayed task is
  due or a visibility deadline ends (told by the same step, in server time), then re-checks:
  no polling, and a lost wake-up costs latency, never a task.

Seeing what happened: :meth:`TaskQueue.status` answers a task's state by the id ``put``
returned (queued, delayed, failed, running, aborting, dead, done, aborted, unknown). A queue or a
task with ``result_ttl`` keeps the outcome of each finished task that long (done with the
handler's result, dead with its reason, aborted), and :meth:`TaskQueue.result` waits for it on
the client's wake-up channel (the outcome is a one-element list: a latch). :meth:`TaskQueue.abort`
deletes a queued or delayed task at once, and asks the worker of a running one to cancel its
handler: a stream of abort requests every worker watches, and the task's next heartbeat, tell it.
Without ``result_ttl`` an acked task leaves nothing behind (its status is then unknown), as
before.

Delivery contract: **at least once**. A task is deleted only by an ``ack`` (or
:meth:`~TaskQueue.delete_dead`); every delivery counts toward ``max_attempts``, except one given
back with :meth:`~TaskQueue.release` or by a cancelled ``get()``. A handler can run more than once
for one task (its worker was presumed dead, or died after the work but before the ack), so make
handlers idempotent. ``put`` is idempotent per ``task_id``: retrying a put that was cancelled or
failed never enqueues twice.

Retries: every step is safe to run twice with the same arguments (redis-py's ``Retry`` and the
cluster client re-send a script whose reply was lost): a put finds its task id already queued, a
claim finds its token already holding a task and returns that one, a settle finds its token in
the task's record and answers the same outcome, an ack finds its task gone and answers done, and
``promote`` and the dead-letter maintenance keep a receipt of their reply (``_once.lua``).

Cancellation: a cancelled ``put`` enqueued the task or did not (put it again with the same
``task_id`` to be sure). A cancelled ``get`` gives back a task the server had already claimed for
it (a shielded clean-up), or leaves a tombstone that makes a claim still in flight return
nothing. ``ack``, ``fail`` and ``release`` are shielded: once called, they complete.

Keys (one hash tag per queue, so every step runs on one Redis Cluster node):
``<prefix>:queue:{<name>}:`` + ``ready`` (ZSET), ``delayed`` (ZSET), ``running`` (ZSET),
``tasks`` (HASH id -> payload), ``meta`` (HASH id -> JSON record), ``dead`` (ZSET), ``claims``
(HASH), ``seq`` (the FIFO counter, never expires), and short-lived ones, which expire:
``signal`` (wake-up tokens), ``abandoned`` (tombstones), ``result:<id>`` (a finished task's
outcome, for its ``result_ttl``; an aborted one's for an hour) and ``aborts`` (abort requests
for running tasks, a day after the last one).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..core.cancellation import best_effort, cancelling, honour_cancel, shielded
from ..core.checks import (
    MAX_SECONDS,
    AsyncRedis,
    check_client,
    check_float,
    check_int,
    check_keyspace,
    check_seconds,
    check_wait,
    text,
    to_ms,
)
from ..core.errors import ScriptError, TaskAbortedError, TaskFailedError
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from ..core.serializers import JSON, Serializer, check_serializer
from ..core.waiting import MAX_WAIT_SLICE, blocking_cap
from ..core.wakeup import latch_wait, signal_wait

__all__ = ["DeadLetter", "QueueCounts", "Task", "TaskQueue", "TaskStatus"]

#: Priority levels of a queue unless it is given its own (highest first).
DEFAULT_PRIORITIES = ("high", "normal", "low")
#: Most priority levels a queue may have (scores stay exact integers, see _queue_common.lua).
MAX_LEVELS = 64
#: The server's timer tick at the default ``hz`` 10: blocking timeouts can fire this late.
_SERVER_TICK = 0.1
#: Most delayed tasks promoted, and expired claims taken back, by one claim step.
_BATCH = 100
#: Most tasks one put_many() step enqueues.
_PUT_BATCH = 500
#: Most tasks one get_many() claims.
_CLAIM_MAX = 1000
#: Reasons are stored with the task; a traceback-sized one is cut to this many characters.
_REASON_MAX = 2000
#: Largest count a script reads (Lua numbers are doubles: integers stay exact up to 2**53).
_LUA_INT_MAX = 2**53
#: A queue's keys (``TaskQueue.keys`` in this order); each script is passed the ones its
#: header names (``Script.key_names``), in its own order.
_PARTS = (
    "ready",
    "delayed",
    "running",
    "tasks",
    "meta",
    "dead",
    "signal",
    "claims",
    "abandoned",
    "seq",
)
_SIGNAL = _PARTS.index("signal")
_DEAD = _PARTS.index("dead")

FailOutcome = Literal["retrying", "dead", "lost"]
#: A task's state, as :meth:`TaskQueue.status` answers it.
TaskStatus = Literal[
    "queued", "delayed", "failed", "running", "aborting", "dead", "done", "aborted", "unknown"
]


def _attempts(value: object) -> int:
    return check_int(value, "max_attempts", minimum=1, maximum=_LUA_INT_MAX)


def _delay_seconds(value: object, what: str) -> float:
    """A delay: finite seconds >= 0, at most MAX_SECONDS (its ms stay exact in Lua)."""
    return check_float(check_wait(value, what), what, maximum=MAX_SECONDS)


def _seconds(ms: object) -> float:
    return int(ms) / 1000 if isinstance(ms, int | float | str) else 0.0


@dataclass(frozen=True, slots=True)
class Task:
    """One delivery of a task, as :meth:`TaskQueue.get` returns it.

    Times are the Redis server's clock (Unix seconds), so they compare with each other whatever
    the clients' clocks say. ``attempts`` counts deliveries, this one included.
    """

    id: str
    data: str
    queue: str
    priority: str
    attempts: int
    max_attempts: int
    enqueued_at: float
    due_at: float
    ready_at: float
    claimed_at: float
    deadline: float
    visibility_timeout: float
    last_error: str | None
    claim: str = field(repr=False)
    #: The handler's own timeout in seconds (None: the worker's default).
    handler_timeout: float | None = None
    #: How long the task's outcome is kept once it finishes (None: not kept).
    result_ttl: float | None = None
    serializer: Serializer = field(default=JSON, repr=False)

    @property
    def payload(self) -> Any:
        """The payload decoded by the queue's serializer (JSON: ``ValueError`` if it is not)."""
        return self.serializer.loads(self.data)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-lettered task: its payload, how often it was tried, and why it died."""

    id: str
    data: str
    queue: str
    priority: str
    attempts: int
    max_attempts: int
    reason: str
    enqueued_at: float
    died_at: float

    @property
    def payload(self) -> Any:
        """The payload decoded from JSON (``ValueError`` if it is not JSON)."""
        return JSON.loads(self.data)


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """How many tasks a queue holds in each state."""

    ready: int
    delayed: int
    running: int
    dead: int

    @property
    def total(self) -> int:
        return self.ready + self.delayed + self.running + self.dead


class TaskQueue:
    """A reliable task queue named ``name`` (Redis in Action §6.4).

    ``priorities`` names the levels, highest first; ``put`` uses ``default_priority`` (the middle
    level, rounding towards the lower one) unless told otherwise. ``visibility_timeout`` is how
    long a claimed task stays with its consumer without an ``ack`` or ``extend`` (a task may set
    its own at ``put``); ``max_attempts`` how many deliveries a task gets before it is
    dead-lettered; a failed task is retried after ``retry_backoff * 2**(attempts - 1)`` seconds,
    at most ``max_backoff``. ``result_ttl`` (seconds) keeps each finished task's outcome and
    result that long, for :meth:`status` and :meth:`result` (a task may set its own at ``put``);
    ``serializer`` turns payloads and results into text (JSON by default, see
    :mod:`aiorpatterns.core.serializers`). Producers and consumers of one queue may hold
    separate objects: what a task needs is stored with it at ``put`` (but priority names map to
    levels by position, so give every object of one queue the same ``priorities``, and the same
    ``serializer``).
    """

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        priorities: Sequence[str] = DEFAULT_PRIORITIES,
        default_priority: str | None = None,
        visibility_timeout: float = 30.0,
        max_attempts: int = 5,
        retry_backoff: float = 1.0,
        max_backoff: float = 300.0,
        result_ttl: float | None = None,
        serializer: Serializer = JSON,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        check_keyspace(keyspace)
        if isinstance(priorities, str) or not isinstance(priorities, Sequence):
            raise TypeError("priorities must be a sequence of names, highest first")
        levels = tuple(priorities)
        for level in levels:
            if not isinstance(level, str):
                raise TypeError(f"priority names must be str, not {type(level).__name__}")
            if not level:
                raise ValueError("priority names must not be empty")
        if not levels or len(levels) > MAX_LEVELS:
            raise ValueError(f"priorities must name 1 to {MAX_LEVELS} levels, got {len(levels)}")
        if len(set(levels)) != len(levels):
            raise ValueError(f"priorities must be unique: {levels!r}")
        if default_priority is None:
            default_priority = levels[len(levels) // 2]
        elif default_priority not in levels:
            raise ValueError(f"default_priority {default_priority!r} is not one of {levels!r}")
        self.name = name
        self.keyspace = keyspace
        self.priorities = levels
        self.default_priority = default_priority
        self.visibility_timeout = check_seconds(visibility_timeout, "visibility_timeout")
        self.max_attempts = _attempts(max_attempts)
        self.retry_backoff = _delay_seconds(retry_backoff, "retry_backoff")
        self.max_backoff = _delay_seconds(max_backoff, "max_backoff")
        self.result_ttl = check_seconds(result_ttl, "result_ttl", allow_none=True)
        self.serializer = check_serializer(serializer)
        self.keys = tuple(keyspace.key("queue", name, part) for part in _PARTS)
        #: The keys' common part; a finished task's outcome and the abort requests live under it.
        self._base = self.keys[0][: -len(_PARTS[0])]
        self.aborts_key = self._base + "aborts"
        #: Each script's keys, by script name: the queue's keys its header names.
        self._script_keys: dict[str, tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return f"<TaskQueue {self.name!r} priorities={self.priorities!r}>"

    # -- producing ---------------------------------------------------------------------------

    async def put(
        self,
        payload: Any,
        *,
        priority: str | None = None,
        delay: float | None = None,
        at: float | datetime | None = None,
        task_id: str | None = None,
        visibility_timeout: float | None = None,
        max_attempts: int | None = None,
        handler_timeout: float | None = None,
        result_ttl: float | None = None,
    ) -> str:
        """Enqueue ``payload`` (any value the queue's serializer takes) and return the task's id.

        ``delay`` (seconds) or ``at`` (a Unix time or an aware ``datetime``, read on this
        machine's clock and turned into a delay at once, so the server's clock may differ) makes
        it a delayed task (Redis in Action §6.4.2). ``task_id`` makes the put idempotent: an id
        already in the queue is left as it is. ``handler_timeout`` bounds its handler's run
        (seconds; None: the worker's default), ``result_ttl`` keeps its outcome that long once
        finished (None: the queue's). A payload the serializer refuses (with JSON:
        ``TypeError``, or ``ValueError`` for NaN) raises before anything reaches Redis.
        """
        return await self._put(
            self.serializer.dumps(payload),
            priority=priority,
            delay=delay,
            at=at,
            task_id=task_id,
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
            handler_timeout=handler_timeout,
            result_ttl=result_ttl,
        )

    async def put_call(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        priority: str | None = None,
        delay: float | None = None,
        at: float | datetime | None = None,
        task_id: str | None = None,
        visibility_timeout: float | None = None,
        max_attempts: int | None = None,
        handler_timeout: float | None = None,
        result_ttl: float | None = None,
    ) -> str:
        """Enqueue a call ``[name, args, kwargs]`` for a :class:`~aiorpatterns.Worker`.

        The book's task format (Redis in Action §6.4.1: ``['FUNCTION_NAME', [ARG1, ...]]``), with
        keyword arguments. The other parameters are those of :meth:`put`.
        """
        check_name(name, "name")
        if isinstance(args, str | bytes) or not isinstance(args, Sequence):
            raise TypeError(f"args must be a sequence, not {type(args).__name__}")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise TypeError(f"kwargs must be a mapping, not {type(kwargs).__name__}")
        if kwargs and not all(isinstance(k, str) for k in kwargs):
            raise TypeError("kwargs keys must be str")
        return await self.put(
            [name, list(args), dict(kwargs or {})],
            priority=priority,
            delay=delay,
            at=at,
            task_id=task_id,
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
            handler_timeout=handler_timeout,
            result_ttl=result_ttl,
        )

    async def put_raw(
        self,
        data: str,
        *,
        priority: str | None = None,
        delay: float | None = None,
        at: float | datetime | None = None,
        task_id: str | None = None,
        visibility_timeout: float | None = None,
        max_attempts: int | None = None,
        handler_timeout: float | None = None,
        result_ttl: float | None = None,
    ) -> str:
        """Enqueue already-encoded payload text as it is (from another producer, say).

        Nothing checks that the serializer can read ``data``: a :class:`~aiorpatterns.Worker`
        dead-letters a payload it cannot decode. The other parameters are those of :meth:`put`.
        """
        if not isinstance(data, str):
            raise TypeError(f"data must be a str, not {type(data).__name__}")
        return await self._put(
            data,
            priority=priority,
            delay=delay,
            at=at,
            task_id=task_id,
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
            handler_timeout=handler_timeout,
            result_ttl=result_ttl,
        )

    async def put_many(
        self,
        payloads: Iterable[Any],
        *,
        priority: str | None = None,
        delay: float | None = None,
        at: float | datetime | None = None,
        task_ids: Sequence[str] | None = None,
        visibility_timeout: float | None = None,
        max_attempts: int | None = None,
        handler_timeout: float | None = None,
        result_ttl: float | None = None,
    ) -> list[str]:
        """Enqueue several payloads, up to 500 per step, and return their ids in order.

        Each is a task of its own, as if :meth:`put` with these options; ``task_ids`` (one per
        payload) makes each put idempotent as ``task_id`` does. Every payload is serialized and
        every option checked before anything reaches Redis.
        """
        chosen = list(payloads)
        ids = [None] * len(chosen) if task_ids is None else list(task_ids)
        if isinstance(task_ids, str) or len(ids) != len(chosen):
            raise ValueError("task_ids must be a sequence with one id per payload")
        options: dict[str, Any] = {
            "priority": priority,
            "delay": delay,
            "at": at,
            "visibility_timeout": visibility_timeout,
            "max_attempts": max_attempts,
            "handler_timeout": handler_timeout,
            "result_ttl": result_ttl,
        }
        argv = [
            self._put_args(self.serializer.dumps(p), task_id=i, **options)
            for p, i in zip(chosen, ids, strict=True)
        ]
        task, cancels = cancelling()
        for start in range(0, len(argv), _PUT_BATCH):
            await self._run(
                "queue_put", *(a for one in argv[start : start + _PUT_BATCH] for a in one)
            )
        honour_cancel(task, cancels)
        return [str(one[0]) for one in argv]

    async def _put(self, data: str, **options: Any) -> str:
        argv = self._put_args(data, **options)
        task, cancels = cancelling()
        await self._run("queue_put", *argv)
        honour_cancel(task, cancels)
        return str(argv[0])

    def _put_args(
        self,
        data: str,
        *,
        priority: str | None = None,
        delay: float | None = None,
        at: float | datetime | None = None,
        task_id: str | None = None,
        visibility_timeout: float | None = None,
        max_attempts: int | None = None,
        handler_timeout: float | None = None,
        result_ttl: float | None = None,
    ) -> list[object]:
        """The eight ARGV of one task for queue_put.lua, every option checked."""
        level = self._level(priority)
        wait = self._delay(delay, at)
        if task_id is None:
            task_id = uuid.uuid4().hex
        self._check_id(task_id)
        vis = check_seconds(visibility_timeout, "visibility_timeout", allow_none=True)
        attempts = self.max_attempts if max_attempts is None else _attempts(max_attempts)
        limit = check_seconds(handler_timeout, "handler_timeout", allow_none=True)
        keep = check_seconds(result_ttl, "result_ttl", allow_none=True) or self.result_ttl
        delay_ms = math.ceil(wait * 1000) if wait > 0 else 0
        ms = [to_ms(x) if x else 0 for x in (vis, limit, keep)]
        return [task_id, data, level, delay_ms, attempts, *ms]

    def _level(self, priority: str | None) -> int:
        if priority is None:
            priority = self.default_priority
        elif not isinstance(priority, str):
            raise TypeError(f"priority must be a str, not {type(priority).__name__}")
        try:
            return self.priorities.index(priority)
        except ValueError:
            raise ValueError(
                f"unknown priority {priority!r}: expected one of {self.priorities!r}"
            ) from None

    @staticmethod
    def _delay(delay: float | None, at: float | datetime | None) -> float:
        if delay is not None and at is not None:
            raise ValueError("give delay or at, not both")
        if at is not None:
            if isinstance(at, datetime):
                if at.tzinfo is None:
                    raise ValueError("at must be an aware datetime (with a tzinfo)")
                when = at.timestamp()
            else:
                when = check_float(at, "at", minimum=0.0)
            return _delay_seconds(max(0.0, when - time.time()), "at (from now)")
        return 0.0 if delay is None else _delay_seconds(delay, "delay")

    # -- consuming ---------------------------------------------------------------------------

    # A timeout parameter, not asyncio.timeout(): cancelling a wait would cost a clean-up round
    # trip, and timeout=0 means "one attempt", which no outer timeout can express.
    async def get(self, *, timeout: float | None = None) -> Task | None:  # noqa: ASYNC109
        """Claim the next task, waiting up to ``timeout`` seconds (None: forever); None if none.

        The most urgent ready task is moved to the running set in the same step, with a
        visibility deadline (Redis in Action §6.4.1, made reliable): ``ack`` it when done, or it
        goes back to the queue once the deadline passes. ``timeout=0`` makes one attempt.
        """
        got = await self._claim(1, timeout)
        return got[0] if got else None

    async def get_many(self, count: int, *, timeout: float | None = None) -> list[Task]:  # noqa: ASYNC109
        """Claim up to ``count`` ready tasks in one step, waiting up to ``timeout`` seconds
        (None: forever) for the first; an empty list if none came.

        Each task is claimed (and acked, failed or released) on its own, as :meth:`get`'s.
        """
        return await self._claim(check_int(count, "count", minimum=1, maximum=_CLAIM_MAX), timeout)

    async def ack_many(
        self, tasks: Sequence[Task], results: Sequence[Any] | None = None
    ) -> list[bool]:
        """Ack several tasks in one step (each as :meth:`ack`, with its result if ``results``
        gives one per task); return each ack's answer, in order. Shielded."""
        chosen = list(tasks)
        for task in chosen:
            self._check_task(task)
        values = [None] * len(chosen) if results is None else list(results)
        if len(values) != len(chosen):
            raise ValueError("results must give one result per task")
        acks = [
            (t.id, t.claim, self._result_data(t, r)) for t, r in zip(chosen, values, strict=True)
        ]
        answers = ""
        for start in range(0, len(acks), _PUT_BATCH):
            step = self._claim_step("", 0, *acks[start : start + _PUT_BATCH])
            answers += text((await shielded(step))[0])
        return [a == "1" for a in answers]

    async def ack_and_get(self, task: Task, result: Any = None) -> tuple[bool, Task | None]:
        """Ack ``task`` (as :meth:`ack`) and claim the next ready task in the same step.

        A worker's hand-over from one task to the next in one round trip: returns the ack's
        answer and the next task, or None if none is ready now (no waiting). Shielded: once
        called the ack completes; a next task claimed for a caller cancelled meanwhile is
        given back.
        """
        self._check_task(task)
        acked, following, _ = await self._hand_over(task, self._result_data(task, result))
        return acked, following

    async def _hand_over(
        self, task: Task, data: str, *, claim: bool = True
    ) -> tuple[bool, Task | None, int]:
        """Ack ``task`` with its serialized result ``data`` and, if ``claim``, claim the next
        ready task in the same step; also answer the claim's wait hint (ms) if none was ready.
        (:meth:`ack_and_get`; a worker's step.)"""
        token = uuid.uuid4().hex
        current, cancels = cancelling()
        step = self._claim_step(token, 1 if claim else 0, (task.id, task.claim, data))
        try:
            reply = await shielded(step)
            nexts = self._tasks(reply, token)
            honour_cancel(current, cancels)  # a cancel redis-py swallowed (Python 3.11)
        except BaseException:
            if claim:  # cancelled or failed with the step on the wire: nobody takes its claim
                await self._abandon(token)
            raise
        return text(reply[0]) == "1", (nexts[0] if nexts else None), int(reply[1])

    async def _claim(
        self, count: int, seconds: float | None, hint: int | None = None
    ) -> list[Task]:
        """Claim up to ``count`` tasks, waiting up to ``seconds`` (the caller's timeout) for the
        first.

        ``hint``: a claim step of this client just found nothing ready and answered this wait
        hint (a worker's hand-over): wait first, not claim. Safe: whatever becomes ready after
        that step pushes a wake-up token (a put, a give-back) or is due at the hint (a delayed
        task, a visibility deadline).
        """
        wait = None if seconds is None else check_wait(seconds, "timeout")
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        token = uuid.uuid4().hex
        cap = blocking_cap(self.redis)
        current, cancels = cancelling()
        claiming = False
        got: list[Task] = []
        try:
            while True:
                if hint is None:
                    claiming = True
                    reply = await self._claim_step(token, count)
                    got = self._tasks(reply, token)
                    if got:
                        break
                    claiming = False
                    hint = int(reply[1])
                # Checked on every turn, not only at the end: with no timeout and no task, a
                # swallowed cancellation would otherwise keep this loop waiting for ever.
                honour_cancel(current, cancels)
                if hint == -2:
                    raise ScriptError(f"queue {self.name!r}: a live claim token was refused")
                pause, exact = self._pause(deadline, hint, cap)
                hint = None
                if pause is None:
                    break
                await self._wait(pause, exact=exact)
                honour_cancel(current, cancels)
            honour_cancel(current, cancels)
        except BaseException:
            if claiming or got:
                await self._abandon(token, count)
            raise
        return got

    async def _claim_step(self, token: str, count: int, *acks: tuple[str, str, str]) -> Any:
        """One claim step: ack ``acks`` (id, claim, result), then claim up to ``count``."""
        flat = [part for one in acks for part in one]
        vis_ms = to_ms(self.visibility_timeout)
        return await self._run("queue_claim", token, vis_ms, _BATCH, count, *flat)

    def _tasks(self, reply: Sequence[Any], token: str) -> list[Task]:
        """The tasks a claim step's reply holds (five fields each after acks and wait)."""
        fields = reply[2:]
        return [self._task(fields[i : i + 5], token) for i in range(0, len(fields), 5)]

    @staticmethod
    def _pause(
        deadline: float | None, hint_ms: int, cap: float | None
    ) -> tuple[float | None, bool]:
        """How long to wait before re-checking (0: at once; None: the deadline passed), and
        whether the wait must end at that exact time (a task due, a visibility deadline) rather
        than at a re-check slice or the caller's timeout, where a put must end it at once.
        """
        if hint_ms < 0:
            pause, exact = MAX_WAIT_SLICE, False
        else:  # rounded up, so the re-check finds the delayed task due or the claim expired
            pause = min(MAX_WAIT_SLICE, hint_ms / 1000 + 0.001 if hint_ms else 0.0)
            exact = pause < MAX_WAIT_SLICE
        if cap is not None and cap < pause:
            pause, exact = cap, False
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            if left < 0.001:
                return None, False
            if left <= pause:
                pause, exact = left, False
        return pause, exact

    async def _wait(self, pause: float, *, exact: bool) -> None:
        """Block on the wake-up list for ``pause`` seconds (a put ends it early).

        Redis checks blocked clients' timeouts on its timer tick (``hz`` 10: every 100 ms), so a
        BLPOP can return up to a tick late. When the wait must end at a known time, block until
        a tick before it, then sleep the rest here: a put in that last tick waits for the sleep.
        """
        if pause <= 0:
            return
        if exact and pause <= _SERVER_TICK:
            await asyncio.sleep(pause)
            return
        block = pause - _SERVER_TICK if exact else pause
        # One blocked connection for every consumer of this client (core/wakeup.py).
        await signal_wait(self.redis, self.keys[_SIGNAL], max(block, 0.001))

    async def _abandon(self, token: str, count: int = 1) -> None:
        """Give back whatever ``token`` claimed (a batch of ``count``: ``<token>#<i>``), or refuse
        its claim to come (shielded)."""
        batch = count if count > 1 else 0
        await best_effort(lambda: self._run("queue_settle", "", token, "abandon", "", batch))

    async def ack(self, task: Task, result: Any = None) -> bool:
        """Delete a task that was handled; True if it is done, False if another consumer has it.

        A task that keeps its outcome (``result_ttl``) keeps ``result`` too, serialized (a value
        the serializer refuses raises before anything reaches Redis), for :meth:`result`.
        False means another consumer runs it now (our visibility deadline passed and it was
        delivered again): that consumer owns it. True means it was deleted, or was gone already
        (acked before: by this very call re-sent after a lost reply, by an earlier ack, or by
        the consumer that ran it after us). A late ack for a task taken back but not yet
        delivered again still deletes it. Shielded: a cancelled caller still acks.
        """
        self._check_task(task)
        data = self._result_data(task, result)
        return bool(await self._settle("queue_ack", task.id, task.claim, data))

    def _result_data(self, task: Task, result: Any) -> str:
        """The result as stored with the outcome ("" if the task keeps none, or it is None)."""
        return self.serializer.dumps(result) if task.result_ttl and result is not None else ""

    async def fail(
        self, task: Task, reason: str, *, retry: bool = True, delay: float | None = None
    ) -> FailOutcome:
        """Record a failed delivery: retry later, or dead-letter once out of attempts.

        The retry is due after ``delay`` seconds, or the queue's exponential backoff. With
        ``retry=False`` the task is dead-lettered at once. Returns ``"retrying"``, ``"dead"``, or
        ``"lost"`` if the task was no longer ours. Settling one delivery again (the same call
        re-sent, or called twice) answers what the first settlement did. Shielded.
        """
        self._check_task(task)
        if not isinstance(reason, str):
            raise TypeError(f"reason must be a str, not {type(reason).__name__}")
        wait = self.backoff(task.attempts) if delay is None else _delay_seconds(delay, "delay")
        mode = "retry" if retry else "dead"
        code = int(
            await self._settle(
                "queue_settle",
                task.id,
                task.claim,
                mode,
                reason[:_REASON_MAX],
                math.ceil(wait * 1000),
            )
        )
        return {2: "retrying", 3: "dead"}.get(code, "lost")  # type: ignore[return-value]

    async def release(self, task: Task) -> bool:
        """Give a task back unhandled, to its place at the head of its level; True if ours.

        The delivery does not count toward ``max_attempts`` (a worker shutting down gives back
        what it could not finish). Shielded.
        """
        self._check_task(task)
        return int(await self._settle("queue_settle", task.id, task.claim, "release", "", 0)) == 1

    async def extend(self, task: Task, seconds: float | None = None) -> bool:
        """Push a running task's visibility deadline to ``seconds`` from now (a heartbeat).

        ``seconds`` defaults to the task's visibility timeout. False if the task is no longer
        ours (its deadline passed and another consumer took it, or it was settled, or its abort
        was asked: a :class:`~aiorpatterns.Worker` then stops its handler). Sent twice
        (a client retry), it extends from the later run: the same as one heartbeat.
        """
        return await self._extend_code(task, seconds) > 0

    async def _extend_code(self, task: Task, seconds: float | None = None) -> int:
        """Extend, answering the script's code: > 0 extended, 0 not ours, -1 abort asked."""
        self._check_task(task)
        wait = task.visibility_timeout if seconds is None else check_seconds(seconds, "seconds")
        return int(await self._run("queue_extend", task.id, task.claim, to_ms(wait or 0.0)))

    async def finish_abort(self, task: Task) -> bool:
        """Delete a running task whose abort was asked, once its handler stopped; True if done.

        A :class:`~aiorpatterns.Worker`'s step (its outcome is kept as ``aborted``). Shielded;
        sent twice, it answers as the first run did.
        """
        self._check_task(task)
        return int(await self._settle("queue_settle", task.id, task.claim, "aborted", "", 0)) == 4

    def backoff(self, attempts: int) -> float:
        """Seconds before retrying a task that failed its ``attempts``-th delivery."""
        exponent = max(0, min(attempts - 1, 64))
        return float(min(self.max_backoff, self.retry_backoff * 2**exponent))

    # -- following a task ----------------------------------------------------------------------

    async def status(self, task_id: str) -> TaskStatus:
        """Return the state of the task ``put`` returned ``task_id`` for (one atomic read).

        ``queued`` (ready), ``delayed`` (not due yet), ``failed`` (waiting to be retried),
        ``running``, ``aborting`` (running, its abort asked), ``dead``; once it is finished,
        ``done`` or ``aborted`` while its outcome is kept (``result_ttl``; an abort for an hour
        even without it); else ``unknown`` (never put, or finished and forgotten).
        """
        state, _ = await self._status(task_id)
        return state

    async def _status(self, task_id: str) -> tuple[TaskStatus, str]:
        self._check_id(task_id)
        state, detail = await self._run("queue_inspect", "status", task_id)
        return text(state), text(detail)  # type: ignore[return-value]

    async def result(self, task_id: str, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait up to ``timeout`` seconds (None: forever) for a task's result and return it.

        Needs the task to keep its outcome (``result_ttl``, on the queue or at ``put``). Raises
        :class:`~aiorpatterns.TaskFailedError` (with the reason) if it died,
        :class:`~aiorpatterns.TaskAbortedError` if it was aborted, ``TimeoutError`` if it has not
        finished in time. Waits on the client's wake-up channel, never by polling: the outcome is
        written as a one-element list that every waiter of this client is woken by (a latch).
        """
        wait = None if timeout is None else check_wait(timeout, "timeout")
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        key = self._base + "result:" + task_id
        while True:
            state, detail = await self._status(task_id)
            if state == "done":
                value = text(json.loads(detail).get("v", ""))
                return self.serializer.loads(value) if value else None
            if state == "dead":
                reason = json.loads(detail).get("r", "") if detail.startswith("{") else detail
                raise TaskFailedError(f"task {task_id!r} died: {reason}")
            if state == "aborted":
                raise TaskAbortedError(f"task {task_id!r} was aborted")
            left = MAX_WAIT_SLICE if deadline is None else deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"task {task_id!r} is {state} after {wait} s")
            await latch_wait(self.redis, key, max(min(left, MAX_WAIT_SLICE), 0.001))

    async def abort(self, task_id: str) -> bool:
        """Abort a task; True if it is aborted, or its abort is under way, False if not found.

        A queued or delayed task is deleted at once (its status: ``aborted``). A running one is
        marked ``aborting``: its :class:`~aiorpatterns.Worker` sees the request on the queue's
        abort stream (or at its next heartbeat), cancels the handler and deletes the task. A
        dead or finished task is not aborted (False). Safe to call again.
        """
        self._check_id(task_id)
        return int(await self._run("queue_abort", task_id)) > 0

    # -- maintenance -------------------------------------------------------------------------

    async def promote(self, *, limit: int = 1000) -> list[str]:
        """Move delayed tasks that are due to the ready set; return their ids.

        One atomic step per call (Redis in Action §6.4.2 ``poll_queue``, without its lock or its
        lost-task window): any number of promoters may run, and each task moves once.
        Consumers promote by themselves, so calling this is never required.
        """
        limit = check_int(limit, "limit", minimum=1, maximum=_LUA_INT_MAX)
        reply = await self._run("queue_promote", limit, uuid.uuid4().hex)
        return [text(x) for x in reply[1:]]

    async def counts(self) -> QueueCounts:
        """Return how many tasks are ready, delayed, running and dead (one atomic read)."""
        ready, delayed, running, dead = (int(x) for x in await self._run("queue_inspect", "counts"))
        return QueueCounts(ready, delayed, running, dead)

    async def dead_letters(self, *, count: int = 100, offset: int = 0) -> list[DeadLetter]:
        """List dead-lettered tasks, oldest first, with the reason each one died."""
        count = check_int(count, "count", minimum=1, maximum=_LUA_INT_MAX)
        offset = check_int(offset, "offset", minimum=0, maximum=_LUA_INT_MAX)
        reply = await self._run("queue_inspect", "dead", offset, count)
        letters = []
        for i in range(0, len(reply), 3):
            record = json.loads(text(reply[i + 2]))
            letters.append(
                DeadLetter(
                    id=text(reply[i]),
                    data=text(reply[i + 1]),
                    queue=self.name,
                    priority=self._priority_name(record),
                    attempts=int(record.get("a", 0)),
                    max_attempts=int(record.get("m", 1)),
                    reason=str(record.get("r", "")),
                    enqueued_at=_seconds(record.get("e")),
                    died_at=_seconds(record.get("t")),
                )
            )
        return letters

    async def requeue_dead(self, ids: Iterable[str] | None = None) -> int:
        """Put dead-lettered tasks (all, or those in ``ids``) back at the tail; return how many.

        Their attempts start again from zero.
        """
        return await self._dead("requeue", ids)

    async def delete_dead(self, ids: Iterable[str] | None = None) -> int:
        """Delete dead-lettered tasks (all, or those in ``ids``); return how many."""
        return await self._dead("delete", ids)

    async def _dead(self, mode: str, ids: Iterable[str] | None) -> int:
        if ids is not None:
            if isinstance(ids, str):
                raise TypeError("ids must be an iterable of task ids, not a str")
            chosen = list(ids)
            for one in chosen:
                if not isinstance(one, str):
                    raise TypeError(f"task ids must be str, not {type(one).__name__}")
            batches = [chosen[i : i + 500] for i in range(0, len(chosen), 500)]
            return sum([await self._dead_batch(mode, b) for b in batches if b])
        done = 0
        while True:
            # Re-read from the start: what the previous batch handled has left the dead set.
            batch = [text(x) for x in await self.redis.zrange(self.keys[_DEAD], 0, 499)]
            if not batch:
                return done
            moved = await self._dead_batch(mode, batch)
            if moved == 0:
                return done
            done += moved

    async def _dead_batch(self, mode: str, ids: Sequence[str]) -> int:
        # A token per call: its receipt answers a re-sent call with the count the first run got.
        return int(await self._run("queue_dead", mode, uuid.uuid4().hex, *ids))

    # -- mechanics ---------------------------------------------------------------------------

    async def _run(self, name: str, *args: object) -> Any:
        return await script(name)(self.redis, self.script_keys(name), args)

    def script_keys(self, name: str) -> tuple[str, ...]:
        """The keys script ``name`` is passed: those its header names, in its order."""
        keys = self._script_keys.get(name)
        if keys is None:
            by_part = dict(zip(_PARTS, self.keys, strict=True))
            keys = self._script_keys[name] = tuple(by_part[k] for k in script(name).key_names)
        return keys

    async def _settle(self, name: str, *args: object) -> Any:
        """Run a settling script to completion even if the caller is cancelled."""
        return await shielded(self._run(name, *args))

    @staticmethod
    def _check_id(task_id: object) -> None:
        if not isinstance(task_id, str):
            raise TypeError(f"task_id must be a str, not {type(task_id).__name__}")
        if not task_id:
            raise ValueError("task_id must not be empty")

    def _check_task(self, task: object) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task must be a Task from get(), not {type(task).__name__}")
        if task.queue != self.name:
            raise ValueError(f"task {task.id!r} belongs to queue {task.queue!r}, not {self.name!r}")

    def _priority_name(self, record: Mapping[str, Any]) -> str:
        level = int(record.get("p", 0))
        return self.priorities[level] if 0 <= level < len(self.priorities) else str(level)

    def _task(self, reply: Sequence[Any], token: str) -> Task:
        record = json.loads(text(reply[2]))
        vis = record.get("v")
        return Task(
            id=text(reply[0]),
            data=text(reply[1]),
            queue=self.name,
            priority=self._priority_name(record),
            attempts=int(record.get("a", 1)),
            max_attempts=int(record.get("m", 1)),
            enqueued_at=_seconds(record.get("e")),
            due_at=_seconds(record.get("d")),
            ready_at=_seconds(record.get("rd")),
            claimed_at=_seconds(reply[3]),
            deadline=_seconds(reply[4]),
            visibility_timeout=self.visibility_timeout if vis is None else int(vis) / 1000,
            last_error=record.get("r"),
            claim=str(record.get("c") or token),  # a batch's: "<token>#<i>"
            handler_timeout=_seconds(record["to"]) if "to" in record else None,
            result_ttl=_seconds(record["rt"]) if "rt" in record else None,
            serializer=self.serializer,
        )
