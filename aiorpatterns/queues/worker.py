"""A worker that runs registered handlers for queued calls, with retries and a graceful stop.

Redis in Action §6.4.1 ``worker_watch_queue`` / ``worker_watch_queues``: pop a JSON
``['FUNCTION_NAME', [ARG1, ...]]`` and call the callback registered under that name (its
"callback table"), so a queue can never make a worker run arbitrary code. The book's worker runs
one task at a time, loses a task if it crashes, and silently skips unknown names. This one:

- claims tasks through :meth:`TaskQueue.get <aiorpatterns.TaskQueue.get>` (reliable: a task of a
  worker that dies comes back after its visibility timeout), and runs up to ``concurrency``
  handlers at once, each kept alive by a heartbeat that extends its visibility deadline;
- acks a task whose handler returned, retries one whose handler raised (backoff, then the
  dead-letter set with the exception as reason), and dead-letters at once a payload it cannot
  decode or a name with no handler, with the reason: never a crash, never a silent drop;
- stops gracefully: :meth:`Worker.aclose` (or leaving ``async with``) stops taking tasks, lets
  running handlers finish for ``grace`` seconds, then cancels the rest and gives their tasks
  back to the queue (uncounted), so another worker runs them;
- tells a handler what it runs if it asks (a ``ctx`` parameter gets a
  :class:`~aiorpatterns.TaskContext`), bounds each run by the task's own ``handler_timeout`` or the
  worker's (a handler past it is cancelled, and the task fails and retries like any failure),
  keeps the handler's return value when the task keeps results (``result_ttl``), calls the
  ``on_start``, ``on_success`` and ``on_failure`` hooks around each task, and cancels a
  handler whose task is aborted (:meth:`TaskQueue.abort <aiorpatterns.TaskQueue.abort>`): it
  watches the queue's abort stream through the client's wake-up channel, and its heartbeat
  hears of an abort too.

Payloads are ``[name, args]`` or ``[name, args, kwargs]`` (what :meth:`TaskQueue.put_call
<aiorpatterns.TaskQueue.put_call>` writes). Handlers may be coroutine functions, which run on
the event loop, or plain callables, which run in a worker thread (anyio's ``to_thread``), so a
blocking one never stalls the loop, the heartbeats or the other handlers.
Delivery is at least once (see :mod:`aiorpatterns.queues.taskqueue`): make handlers idempotent.

Retries and clean-up: the worker's steps are the queue's, each safe to run twice (a re-sent
claim returns the same task, a re-sent ack or settle answers as the first did), and a task given
back on shutdown, or for want of room, is released by its claim token through
:func:`~aiorpatterns.core.cancellation.best_effort`: whatever the client raises, the release
is tried again, and a handler cancelled before it ever started still gives its task back. A
handled task's ack (or its failure's record) that Redis fails is sent again, backing off, while
the task's visibility lasts: a Redis blip does not make a finished task run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio

from ..core.cancellation import best_effort, cancelling, honour_cancel
from ..core.checks import check_callable, check_count, check_seconds, check_wait, text
from ..core.keys import check_name
from ..core.serializers import JSON, Serializer
from ..core.waiting import MAX_WAIT_SLICE, Backoff
from ..core.wakeup import stream_wait
from .context import CONTEXT_PARAMETER, TaskContext, wants_context
from .taskqueue import Task, TaskQueue

__all__ = ["Worker", "WorkerStats"]

log = logging.getLogger(__name__)

T = TypeVar("T")

Handler = Callable[..., Any]
Hook = Callable[..., Any]

#: How long ``aclose`` still waits for handlers that were cancelled after the grace period.
_CANCEL_WAIT = 5.0


class BadTaskError(ValueError):
    """A payload that is not a call ``[name, args, kwargs]`` a worker can make."""


def decode_call(data: str, serializer: Serializer = JSON) -> tuple[str, list[Any], dict[str, Any]]:
    """Return ``(name, args, kwargs)`` from a payload, or raise :class:`BadTaskError`."""
    try:
        value = serializer.loads(data)
    except Exception as exc:  # whatever the serializer raises on bad text
        raise BadTaskError(f"undecodable payload (not {serializer!r}): {exc}") from None
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise BadTaskError("undecodable payload: expected [name, args] or [name, args, kwargs]")
    name, args = value[0], value[1]
    kwargs = value[2] if len(value) == 3 else {}
    if not isinstance(name, str) or not name:
        raise BadTaskError("undecodable payload: the task name must be a non-empty string")
    if not isinstance(args, list):
        raise BadTaskError("undecodable payload: args must be a JSON array")
    if not isinstance(kwargs, dict):
        raise BadTaskError("undecodable payload: kwargs must be a JSON object")
    return name, args, kwargs


async def _call(handler: Handler, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run a handler: a coroutine function on the loop, a plain callable in a worker thread.

    A cancelled wait for a thread abandons it (the thread finishes on its own; its task is
    given back): Python cannot stop a thread.
    """
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
    ):
        return await handler(*args, **kwargs)
    call = functools.partial(handler, *args, **kwargs)
    result = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    if inspect.isawaitable(result):  # a plain function that returned a coroutine
        return await result
    return result


async def _hook(hook: Hook | None, *args: Any) -> None:
    """Call a hook (plain or async); one that raises is logged and changes nothing."""
    if hook is None:
        return
    try:
        outcome = hook(*args)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:
        log.exception("hook %r raised", hook)


@dataclass(slots=True)
class WorkerStats:
    """What a worker did with the tasks it claimed."""

    acked: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    #: Tasks that were no longer this worker's when it settled them (another worker had
    #: taken them after their visibility deadline passed).
    lost: int = 0
    #: Handlers that ran past their timeout (their tasks were retried or dead-lettered).
    timed_out: int = 0
    #: Running tasks whose abort was asked: their handlers were cancelled, the tasks deleted.
    aborted: int = 0


class Worker:
    """Run handlers for the calls queued on ``queues`` (Redis in Action §6.4.1).

    ``handlers`` maps task names to callables; only those names are ever run. ``concurrency``
    bounds the handlers running at once (over all queues); ``grace`` is how long
    :meth:`aclose` lets running handlers finish; ``heartbeat`` extends each running task's
    visibility deadline every third of its timeout. ``timeout`` bounds a handler's run
    (seconds; a task's own ``handler_timeout`` from ``put`` wins). ``on_start(ctx)``,
    ``on_success(ctx, result)`` and ``on_failure(ctx, exc)`` (plain or async) are called around
    each task; a handler with a ``ctx`` parameter gets the :class:`~aiorpatterns.TaskContext`.
    Use ``async with Worker(...):`` or :meth:`start` and :meth:`aclose`, or :meth:`run` to
    serve until cancelled.
    """

    def __init__(
        self,
        queues: TaskQueue | Sequence[TaskQueue],
        handlers: Mapping[str, Handler],
        *,
        concurrency: int = 1,
        grace: float = 10.0,
        heartbeat: bool = True,
        timeout: float | None = None,
        on_start: Hook | None = None,
        on_success: Hook | None = None,
        on_failure: Hook | None = None,
    ) -> None:
        chosen = [queues] if isinstance(queues, TaskQueue) else queues
        if isinstance(chosen, str) or not isinstance(chosen, Sequence):
            raise TypeError("queues must be a TaskQueue or a sequence of them")
        if not chosen:
            raise ValueError("queues must not be empty")
        for queue in chosen:
            if not isinstance(queue, TaskQueue):
                raise TypeError(f"queues must be TaskQueue objects, not {type(queue).__name__}")
        if not isinstance(handlers, Mapping):
            raise TypeError(f"handlers must be a mapping, not {type(handlers).__name__}")
        if not handlers:
            raise ValueError("handlers must not be empty")
        for name, handler in handlers.items():
            check_name(name, "handler name")
            if not callable(handler):
                raise TypeError(f"handler {name!r} is not callable")
        self.queues: tuple[TaskQueue, ...] = tuple(chosen)
        self.handlers: dict[str, Handler] = dict(handlers)
        self.concurrency = check_count(concurrency, "concurrency")
        self.grace = check_wait(grace, "grace")
        self.heartbeat = bool(heartbeat)
        self.timeout = check_seconds(timeout, "timeout", allow_none=True)
        self.on_start = check_callable(on_start, "on_start", allow_none=True)
        self.on_success = check_callable(on_success, "on_success", allow_none=True)
        self.on_failure = check_callable(on_failure, "on_failure", allow_none=True)
        self._with_context = {name: wants_context(h) for name, h in self.handlers.items()}
        self._hooked = any(h is not None for h in (on_start, on_success, on_failure))
        self.stats = WorkerStats()
        #: Handlers running now, by (queue name, task id): what an abort cancels.
        self._in_handler: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self._aborting: set[tuple[str, str]] = set()
        #: A queue's wait hint from a hand-over that found nothing ready (see _ack).
        self._hints: dict[str, int] = {}
        self._active = 0
        self._room = asyncio.Event()
        self._fetchers: list[asyncio.Task[None]] = []
        self._handling: set[asyncio.Task[None]] = set()
        #: Handling tasks whose coroutine has begun (a task cancelled before its first step
        #: never runs its own clean-up, so :meth:`_handled` gives its claim back instead).
        self._begun: set[asyncio.Task[None]] = set()
        self._cleanups: set[asyncio.Task[None]] = set()
        self._started = False
        self._closing = False
        self._shutdown: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    @property
    def running(self) -> int:
        """How many handlers are running now."""
        return self._active

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has been called."""
        return self._closing

    async def start(self) -> None:
        """Start taking tasks (one fetch loop per queue) and return at once."""
        if self._closing:
            raise RuntimeError("this worker is closed")
        if self._started:
            return
        self._started = True
        me, before = cancelling()
        try:
            # Where each abort stream stands before any task is claimed: an abort asked for a
            # task this worker runs comes after it, so the watch sees it.
            positions = [await self._abort_position(queue) for queue in self.queues]
            honour_cancel(me, before)  # a cancel redis-py swallowed (Python 3.11) stops it here
        except BaseException:
            self._started = False  # nothing runs yet: a later start() starts afresh
            raise
        self._fetchers = [
            asyncio.create_task(self._fetch(queue), name=f"aiorpatterns-worker-{queue.name}")
            for queue in self.queues
        ] + [
            asyncio.create_task(
                self._watch_aborts(queue, position), name=f"aiorpatterns-aborts-{queue.name}"
            )
            for queue, position in zip(self.queues, positions, strict=True)
        ]

    async def run(self) -> None:
        """Serve until :meth:`aclose` is called; when cancelled, shut down gracefully first."""
        await self.start()
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            await self.aclose()
            raise

    async def aclose(self, *, grace: float | None = None) -> None:
        """Stop taking tasks, let running handlers finish for ``grace`` seconds, then stop them.

        A handler still running after the grace period is cancelled and its task given back to
        the queue (:meth:`TaskQueue.release <aiorpatterns.TaskQueue.release>`). Calling it again
        waits for the same shutdown. Shielded: cancelling the caller does not cut it short.
        """
        wait = self.grace if grace is None else check_wait(grace, "grace")
        self._closing = True
        if self._shutdown is None:
            self._shutdown = asyncio.create_task(self._stop(wait))
        await asyncio.shield(self._shutdown)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- mechanics ---------------------------------------------------------------------------

    async def _stop(self, grace: float) -> None:
        try:
            await self._drain(grace)
        finally:
            self._stopped.set()

    async def _drain(self, grace: float) -> None:
        # A cancelled get() gives back a task it had claimed, so nothing is stranded here. A
        # cancellation can be lost inside a Redis call (redis-py on Python 3.11): cancel again.
        pending = set(self._fetchers)
        for _ in range(int(_CANCEL_WAIT / 0.5)):
            if not pending:
                break
            for fetcher in pending:
                fetcher.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
        if pending:
            log.error("%d fetch loop(s) did not stop when cancelled", len(pending))
        if self._handling:
            _, late = await asyncio.wait(set(self._handling), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                _, stuck = await asyncio.wait(late, timeout=_CANCEL_WAIT)
                if stuck:
                    log.error(
                        "%d handler(s) ignored cancellation; their tasks stay claimed", len(stuck)
                    )
        if self._cleanups:
            await asyncio.wait(set(self._cleanups), timeout=_CANCEL_WAIT)

    async def _fetch(self, queue: TaskQueue) -> None:
        backoff = Backoff()
        while True:
            while self._active >= self.concurrency:
                self._room.clear()
                await self._room.wait()
            try:
                # As many as there is room for, in one step (each still claimed on its own).
                room = max(self.concurrency - self._active, 1)
                tasks = await queue._claim(room, None, self._hints.pop(queue.name, None))
            except Exception as exc:  # Redis unreachable, say: keep serving once it is back
                log.warning(
                    "queue %r: get() failed: %r; retrying in %.1f s", queue.name, exc, backoff.pause
                )
                await backoff.sleep()
                continue
            backoff.reset()
            for task in tasks:
                if self._active >= self.concurrency:
                    # Another queue's fetch loop took the last slot while this one waited.
                    self._give_back_later(queue, task)
                    continue
                self._active += 1
                handling = asyncio.create_task(self._handle(queue, task))
                self._handling.add(handling)
                handling.add_done_callback(functools.partial(self._handled, queue=queue, task=task))

    def _handled(self, handling: asyncio.Task[None], queue: TaskQueue, task: Task) -> None:
        self._handling.discard(handling)
        self._active -= 1
        self._room.set()
        if handling in self._begun:
            self._begun.discard(handling)
        elif handling.cancelled():
            # Cancelled before its first step: nothing of _handle ran, so give the task back
            # here.
            self._give_back_later(queue, task)
            return
        if not handling.cancelled() and handling.exception() is not None:
            log.error("task handling crashed", exc_info=handling.exception())

    async def _handle(self, queue: TaskQueue, task: Task) -> None:
        me = asyncio.current_task()
        if me is not None:
            self._begun.add(me)
        # One slot, task after task: an ack claims the next ready task in the same step.
        following: Task | None = task
        while following is not None:
            beat = asyncio.create_task(self._beat(queue, following)) if self.heartbeat else None
            try:
                following = await self._dispatch(queue, following)
            finally:
                if beat is not None:
                    beat.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await beat

    async def _dispatch(self, queue: TaskQueue, task: Task) -> Task | None:
        """Run one task's handler and settle the task; return the next task claimed with its
        ack, if any."""
        try:
            name, args, kwargs = decode_call(task.data, queue.serializer)
        except BadTaskError as exc:
            await self._fail(queue, task, str(exc), retry=False)
            return None
        handler = self.handlers.get(name)
        if handler is None:
            await self._fail(queue, task, f"unknown task name {name!r}", retry=False)
            return None
        limit = task.handler_timeout if task.handler_timeout is not None else self.timeout
        # Built only for someone to read: a ctx parameter, or a hook.
        wanted = self._with_context[name] or self._hooked
        ctx = self._context(queue, task, name, limit) if wanted else None
        if self._with_context[name]:
            if CONTEXT_PARAMETER in kwargs:
                reason = f"the keyword argument {CONTEXT_PARAMETER!r} is the handler's context"
                await self._fail(queue, task, reason, retry=False)
                return None
            kwargs = {**kwargs, CONTEXT_PARAMETER: ctx}
        await _hook(self.on_start, ctx)
        key = (queue.name, task.id)
        current, cancels = cancelling()
        timer = asyncio.timeout(limit)
        try:
            if current is not None:
                self._in_handler[key] = current
            async with timer:
                result = await _call(handler, args, kwargs)
        except asyncio.CancelledError as exc:
            self._in_handler.pop(key, None)
            if key in self._aborting:
                await self._finish_abort(queue, task, ctx, exc, current)
                return None
            if current is not None and current.cancelling() > cancels:
                # Shutting down past the grace period: the task goes back, uncounted.
                await self._give_back(queue, task)
                raise
            # Nobody cancelled this worker: the handler raised it (a cancelled future it
            # awaited, say). That is the handler failing, not a reason to stop serving.
            log.info("task %s (%s) failed: CancelledError raised by the handler", task.id, name)
            await _hook(self.on_failure, ctx, exc)
            await self._fail(queue, task, "CancelledError raised by the handler", retry=True)
            return None
        except Exception as exc:
            self._in_handler.pop(key, None)
            if timer.expired():
                self.stats.timed_out += 1
                reason = f"TimeoutError: the handler ran past its timeout of {limit:g} s"
            else:
                reason = f"{type(exc).__name__}: {exc}"
            log.info("task %s (%s) failed: %s", task.id, name, reason)
            await _hook(self.on_failure, ctx, exc)
            await self._fail(queue, task, reason, retry=True)
            return None
        self._in_handler.pop(key, None)
        await _hook(self.on_success, ctx, result)
        return await self._ack(queue, task, name, result)

    def _context(self, queue: TaskQueue, task: Task, name: str, limit: float | None) -> TaskContext:
        return TaskContext(
            task_id=task.id,
            queue=queue.name,
            name=name,
            attempt=task.attempts,
            max_attempts=task.max_attempts,
            priority=task.priority,
            enqueued_at=task.enqueued_at,
            deadline=None if limit is None else time.time() + limit,
            task=task,
        )

    async def _ack(self, queue: TaskQueue, task: Task, name: str, result: Any) -> Task | None:
        """Ack ``task`` and, unless stopping, claim the next ready one in the same step."""
        try:
            data = queue._result_data(task, result)
        except Exception as exc:  # the serializer refuses the result: a failed task
            await self._fail(queue, task, f"result not serializable: {exc}", retry=False)
            return None
        stopping = self._closing
        step = functools.partial(queue._hand_over, task, data, claim=not stopping)
        settled = await self._settle(task, "its ack", step)
        if settled is None:
            return None
        acked, following, hint = settled
        if acked:
            self.stats.acked += 1
        else:
            self.stats.lost += 1
            log.warning("task %s (%s) was taken over before its ack", task.id, name)
        if following is None and not stopping and self._active == 1:
            # Nothing ready, and the fetch loop waits for this slot: it can wait for a task at
            # once rather than ask again (a put after this step wakes it).
            self._hints[queue.name] = hint
        if following is not None and self._closing:  # stopping began meanwhile: give it back
            await self._give_back(queue, following)
            return None
        return following

    async def _finish_abort(
        self,
        queue: TaskQueue,
        task: Task,
        ctx: TaskContext | None,
        exc: BaseException,
        current: asyncio.Task[Any] | None,
    ) -> None:
        """The handler was cancelled for an abort: delete the task, keep serving."""
        self._aborting.discard((queue.name, task.id))
        if current is not None:
            current.uncancel()  # this cancellation was ours, and is handled here
        await _hook(self.on_failure, ctx, exc)
        if await queue.finish_abort(task):
            self.stats.aborted += 1
        log.info("task %s aborted", task.id)

    def _abort_local(self, queue_name: str, task_id: str) -> None:
        """Cancel the handler of ``task_id`` if it runs here (an abort was asked)."""
        key = (queue_name, task_id)
        handling = self._in_handler.get(key)
        if handling is not None and key not in self._aborting:
            self._aborting.add(key)
            handling.cancel()

    @staticmethod
    async def _abort_position(queue: TaskQueue) -> int | None:
        """The newest entry of ``queue``'s abort stream (0: none yet), None if Redis failed."""
        try:
            last = await queue.redis.xrevrange(queue.aborts_key, count=1)
        except Exception as exc:  # the watch asks again; the fetch loop waits for Redis
            log.warning("queue %r: reading the abort stream failed: %r", queue.name, exc)
            return None
        return int(text(last[0][0]).partition("-")[0]) if last else 0

    async def _watch_aborts(self, queue: TaskQueue, position: int | None) -> None:
        """Cancel the handlers of running tasks whose abort is asked, as the requests come.

        The queue's abort stream holds entries ``<n>-0`` -> task id (queue_abort.lua); one
        blocked ``XREAD`` per client serves every worker of it (core/wakeup.py). A request
        missed (the stream expired, Redis was away) still reaches the handler's heartbeat.
        """
        backoff = Backoff()
        while True:
            try:
                while position is None:
                    await asyncio.sleep(backoff.pause)
                    position = await self._abort_position(queue)
                if await stream_wait(queue.redis, queue.aborts_key, position, MAX_WAIT_SLICE):
                    entries = await queue.redis.xrange(queue.aborts_key, f"{position + 1}-0")
                    for entry_id, fields in entries or ():
                        position = max(position, int(text(entry_id).partition("-")[0]))
                        found = (fields or {}).get(b"id", (fields or {}).get("id"))
                        if found is not None:
                            self._abort_local(queue.name, text(found))
                backoff.reset()
            except Exception as exc:
                log.warning("queue %r: abort watch failed: %r", queue.name, exc)
                await backoff.sleep()

    def _give_back_later(self, queue: TaskQueue, task: Task) -> None:
        """Give a task back in a task of its own (a cancelled caller cannot cut it short),
        tracked so that :meth:`aclose` waits for it."""
        cleanup = asyncio.create_task(self._give_back(queue, task))
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanups.discard)

    async def _give_back(self, queue: TaskQueue, task: Task) -> None:
        """Release a claimed task unhandled, by its claim token, whatever goes wrong.

        Tried twice and never raising (:func:`best_effort`): if Redis stays unreachable, the
        task's visibility timeout gives it back instead, and the worker keeps serving.
        """

        async def release() -> None:
            if await queue.release(task):
                self.stats.released += 1

        await best_effort(release)

    async def _fail(self, queue: TaskQueue, task: Task, reason: str, *, retry: bool) -> None:
        step = functools.partial(queue.fail, task, reason, retry=retry)
        outcome = await self._settle(task, "its failure", step)
        if outcome is None:
            return
        if outcome == "retrying":
            self.stats.retried += 1
        elif outcome == "dead":
            self.stats.dead += 1
            log.warning("task %s dead-lettered: %s", task.id, reason)
        else:
            self.stats.lost += 1

    async def _settle(self, task: Task, what: str, step: Callable[[], Awaitable[T]]) -> T | None:
        """Run a step that settles ``task`` (its ack or its failure), again while Redis fails.

        Each step is safe to run twice, so a handled task is not run again for want of its ack
        in a Redis blip: the step is retried, backing off, while the task's visibility timeout
        lasts (the heartbeat keeps extending it once Redis answers). Past that, another
        consumer may run the task: None, and the task is left to its redelivery.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + task.visibility_timeout
        backoff = Backoff()
        while True:
            try:
                return await step()
            except Exception as exc:
                if loop.time() + backoff.pause >= give_up:
                    log.error(
                        "task %s: settling %s failed, left to redelivery: %r", task.id, what, exc
                    )
                    return None
                log.warning(
                    "task %s: settling %s failed: %r; retrying in %.1f s",
                    task.id,
                    what,
                    exc,
                    backoff.pause,
                )
            await backoff.sleep()

    async def _beat(self, queue: TaskQueue, task: Task) -> None:
        """Extend the task's visibility every third of its timeout while its handler runs."""
        period = task.visibility_timeout / 3
        while True:
            await asyncio.sleep(period)
            try:
                code = await queue._extend_code(task)
                if code < 0:  # its abort was asked (a request the abort watch missed)
                    self._abort_local(queue.name, task.id)
                    return
                if code == 0:
                    log.warning("task %s: visibility lost; another worker may run it", task.id)
                    return
            except Exception as exc:  # the deadline may still be ahead: try again next period
                log.warning("task %s: heartbeat failed: %r", task.id, exc)
