"""What locks and semaphores share: a lease held by one object, and a FIFO wait with hand-off.

A :class:`Lease` is held by the Python object, not by a thread or a task: tasks that share one
object take turns on it through a local gate, and any task may release it (the holding task
acquiring it again gets :class:`~aiorpatterns.ReentryError` at once). Acquiring runs one
Lua script; if the resource is busy the same step puts the caller in a FIFO queue, and the holder's
release hands the resource straight to the first live waiter and wakes it through its client's
wake-up channel (:mod:`aiorpatterns.core.wakeup`): every task of one client waiting on one
resource shares one blocked connection, and a grant to a waiter of the releasing client is named
in the release's reply, so it wakes without a second round trip. There is no polling interval: a
waiter waits for at most :data:`MAX_WAIT_SLICE` seconds, or the holder's remaining lease, then
re-checks, so a lost wake-up or a crashed holder costs latency, never liveness. Redis in Action
§6.2 (locks), §6.3 (semaphores) and §11.2 (the Lua versions) describe the polling originals this
replaces.

Cancellation contract: if ``acquire()`` is cancelled (or fails) at any await, a shielded clean-up
removes the caller from the queue and gives up anything that was already handed to it, so nothing
stays held by an owner that will never release it. ``release()`` is shielded: once called, it
completes even if the caller is cancelled.

Retry safety: every step is safe to run twice with the same arguments (redis-py's ``Retry`` and
the cluster client re-send a script whose reply was lost): acquire recognises its token already
holding or queued, release leaves a short-lived tombstone under its token so that a second run
answers "released" again, and ``extend(seconds)`` passes a fresh call id for its receipt. Every
clean-up (a release, an abandoned acquire, a renewal) survives any exception the client raises:
it is tried twice, and a lease it could not give back ends with its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self

from ..core.cancellation import CLEANUP_TRIES, best_effort, honour_cancel, shielded
from ..core.checks import (
    AsyncRedis,
    check_callable,
    check_client,
    check_flag,
    check_keyspace,
    check_seconds,
    text,
    to_ms,
)
from ..core.errors import AcquireTimeoutError, LeaseLostError, NotOwnedError, ReentryError
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from ..core.waiting import MAX_WAIT_SLICE
from ..core.wakeup import channel_id, deliver, wake_channel

__all__ = ["Lease"]

log = logging.getLogger(__name__)

#: A waiter that has not re-checked for this long past its slice is presumed dead and skipped.
_WAITER_GRACE = 2.0
_UNSET: Any = object()


class Lease:
    """Base of :class:`~aiorpatterns.Lock`, the semaphores and the read-write lock's leases.

    Subclasses name their Lua scripts and keys; the scripts share one calling convention
    (see ``lua/lock_acquire.lua``): acquire takes ``token, lease_ms, wait_ms`` and answers a
    positive grant or minus a wait hint in ms; release takes ``token, mode``.
    """

    kind: ClassVar[str]
    _acquire: ClassVar[str]
    _release: ClassVar[str]
    _extend: ClassVar[str]

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        timeout: float = 10.0,
        acquire_timeout: float | None = 10.0,
        auto_renew: bool = False,
        on_lost: Callable[[Any], Awaitable[None] | None] | None = None,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        check_keyspace(keyspace)
        self.name = name
        self.timeout = check_seconds(timeout, "timeout")
        self.acquire_timeout = check_seconds(acquire_timeout, "acquire_timeout", allow_none=True)
        self.auto_renew = check_flag(auto_renew, "auto_renew")
        self.on_lost = check_callable(on_lost, "on_lost", allow_none=True)
        self.keyspace = keyspace
        self._queue = keyspace.key(self.kind, name, "queue")
        self._token: str | None = None
        self._grant: int | None = None
        self._lost = False
        self._gate = asyncio.Lock()
        self._gate_waiters = 0
        self._renewer: asyncio.Task[None] | None = None
        self._holder: asyncio.Task[Any] | None = None  # the task whose acquire() succeeded

    # -- what subclasses provide -------------------------------------------------------------

    def _keys(self) -> Sequence[str]:
        """KEYS of the acquire and release scripts (the last two: queue, waiters)."""
        raise NotImplementedError

    def _extend_keys(self) -> Sequence[str]:
        """KEYS of the extend script (also what :meth:`_owns` reads)."""
        raise NotImplementedError

    async def _owns(self, token: str) -> bool:
        """Ask Redis whether ``token`` holds the lease right now."""
        raise NotImplementedError

    def _new_token(self) -> str:
        """A fresh token for one acquire: ``<channel>.<random>`` (see ``core/wakeup.py``).

        The scripts read the waiter's wake-up channel from it; a subclass may prefix it (with a
        kind, say), never change its end.
        """
        return f"{channel_id(self.redis)}.{os.urandom(16).hex()}"

    def _check_reentry(self, task: asyncio.Task[Any] | None) -> None:
        """Raise :class:`~aiorpatterns.ReentryError` if ``task`` holds this lease already.

        A subclass whose leases guard one resource together (a read-write lock's) widens it.
        """
        if self._token is not None and task is not None and task is self._holder:
            raise ReentryError(
                f"{self.kind} {self.name!r} is already held by this {type(self).__name__} object "
                "in this task and is not re-entrant: release it first, or use another object"
            )

    # -- public API ------------------------------------------------------------------------

    @property
    def held(self) -> bool:
        """True while this object believes it holds the lease (see :meth:`owned`)."""
        return self._token is not None

    @property
    def lost(self) -> bool:
        """True once an auto-renewal or a release found the lease expired or taken over."""
        return self._lost

    @property
    def token(self) -> str | None:
        """The random token identifying this holder in Redis, while held."""
        return self._token

    async def owned(self) -> bool:
        """True if this object holds the lease right now (asks Redis; :attr:`held` does not)."""
        token = self._token
        return token is not None and await self._owns(token)

    async def acquire(
        self, *, blocking: bool = True, acquire_timeout: float | None = _UNSET
    ) -> bool:
        """Acquire the lease; return False if it could not be had in ``acquire_timeout`` seconds.

        With ``blocking=False`` make one attempt and never wait. ``acquire_timeout=None`` waits
        forever. Tasks sharing this object queue locally first, then in Redis. The task that
        holds it may not acquire it again (:class:`~aiorpatterns.ReentryError`, at once): it would
        wait for itself.
        """
        check_flag(blocking, "blocking")
        wait = self.acquire_timeout if acquire_timeout is _UNSET else acquire_timeout
        wait = check_seconds(wait, "acquire_timeout", allow_none=True)
        me = asyncio.current_task()
        self._check_reentry(me)
        now = asyncio.get_running_loop().time()
        deadline: float | None = now  # a non-blocking attempt: make one try, at once
        if blocking:
            deadline = None if wait is None else now + wait
        if not await self._enter_gate(deadline):
            return False
        try:
            grant = await self._acquire_remote(deadline)
        except BaseException:
            self._gate.release()
            raise
        if not grant:
            self._gate.release()
            return False
        self._grant = grant
        self._holder = me
        self._lost = False
        if self.auto_renew:
            self._renewer = asyncio.create_task(self._renew_forever(self._token or ""))
            self._renewer.add_done_callback(self._renewer_done)
        return True

    async def try_acquire(self) -> bool:
        """Make one attempt, without waiting: True if the lease is now held."""
        return await self.acquire(blocking=False)

    async def release(self) -> None:
        """Give the lease up (and hand it to the next waiter); one round trip.

        Raises :class:`NotOwnedError` if it was not held, or was lost meanwhile. Shielded: a
        cancelled caller still releases.
        """
        token = self._token
        if token is None:
            raise NotOwnedError(f"{self.kind} {self.name!r} is not held by this object")
        self._token = None  # ours to give up: a concurrent release() finds nothing held
        await shielded(self._finish(token))

    async def extend(self, seconds: float, *, replace: bool = False) -> float:
        """Add ``seconds`` to the remaining lease (or set it to ``seconds`` with ``replace``).

        Returns the new remaining lease in seconds; raises :class:`NotOwnedError` if lost.
        """
        ms = to_ms(check_seconds(seconds, "seconds"))
        check_flag(replace, "replace")
        token = self._token
        if token is None:
            raise NotOwnedError(f"{self.kind} {self.name!r} is not held by this object")
        call = uuid.uuid4().hex  # one per call: a re-sent add finds its receipt, adds nothing
        keys = self._extend_keys()
        left = int(await self._run(self._extend, keys, token, ms, int(replace), call))
        if left <= 0:
            self._lost = True
            raise NotOwnedError(f"{self.kind} {self.name!r}: the lease expired or was taken over")
        return left / 1000

    async def __aenter__(self) -> Self:
        if not await self.acquire():
            raise AcquireTimeoutError(
                f"{self.kind} {self.name!r} not acquired within {self.acquire_timeout} s"
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.release()
        except NotOwnedError as lost:
            if exc is None:  # never mask the block's own exception
                raise LeaseLostError(str(lost)) from None
        except Exception:
            if exc is None:
                raise
            # The block's own exception says more; the lease still ends with its timeout.
            log.warning("%s %r: release failed", self.kind, self.name, exc_info=True)

    # -- mechanics ---------------------------------------------------------------------------

    async def _run(self, name: str, keys: Sequence[str], *args: object) -> Any:
        return await script(name)(self.redis, keys, args)

    async def _enter_gate(self, deadline: float | None) -> bool:
        """Take this object's local gate (tasks sharing it take turns); False at the deadline.

        A free gate nobody queues for is taken at once, without timeout machinery. Otherwise the
        wait is bounded even for a non-blocking attempt: the gate may be unlocked yet promised
        to a task that was woken but has not run, and queueing behind it could block for ever.
        """
        if not self._gate.locked() and not self._gate_waiters:
            await self._gate.acquire()  # no waiter: asyncio.Lock returns without suspending
            return True
        self._gate_waiters += 1
        try:
            async with asyncio.timeout_at(deadline):
                await self._gate.acquire()
        except TimeoutError:
            return False
        finally:
            self._gate_waiters -= 1
        return True

    async def _acquire_remote(self, deadline: float | None) -> int:
        """Run the acquire script and wait for a hand-off; return the grant, or 0."""
        token = self._new_token()
        keys = self._keys()
        lease_ms = to_ms(self.timeout or 0.0)
        try_only = deadline is not None and deadline <= asyncio.get_running_loop().time()
        alive_ms = 0 if try_only else to_ms(MAX_WAIT_SLICE + _WAITER_GRACE)
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        # Listening before the first step: a release run meanwhile may hand it to us already.
        channel = wake_channel(self.redis, self._queue)
        channel.expect(token)
        try:
            reply = self._status(await self._run(self._acquire, keys, token, lease_ms, alive_ms))
            while reply <= 0 and not try_only:
                honour_cancel(task, cancels)  # every turn: a waiter may wait for ever
                slice_ = self._wait_slice(deadline, -reply / 1000)
                if slice_ is None:  # out of time: keep a late hand-off, else leave the queue
                    reply = self._status(await self._run(self._release, keys, token, "settle"))
                    break
                grant = await channel.wait(token, slice_)
                if grant is not None:
                    reply = int(grant)
                    break
                # No word within the slice (a wake-up lost, or the holder crashed): re-check.
                reply = self._status(
                    await self._run(self._acquire, keys, token, lease_ms, alive_ms)
                )
            honour_cancel(task, cancels)
        except BaseException:
            await self._abandon(token)
            raise
        finally:
            channel.forget(token)
        if reply > 0:
            self._token = token
        return max(reply, 0)

    @staticmethod
    def _wait_slice(deadline: float | None, hint: float) -> float | None:
        """How long to wait for a wake-up before re-checking; None when the deadline has passed.

        Spread over the last quarter of :data:`MAX_WAIT_SLICE`: waiters that queued together
        re-check apart, not in one burst of commands (a thousand of them would need a thousand
        connections at once, ten times what a redis-py 8 pool opens by default).
        """
        slice_ = min(MAX_WAIT_SLICE * random.uniform(0.75, 1.0), hint + 0.005)
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            if left < 0.001:
                return None
            slice_ = min(slice_, left)
        return max(slice_, 0.001)  # BLPOP with timeout 0 would block forever

    async def _abandon(self, token: str) -> None:
        """Leave the queue and give back a hand-off we will not use (shielded, best effort)."""

        async def abandon() -> None:
            self._status(await self._run(self._release, self._keys(), token, "abandon"))

        await best_effort(abandon)

    def _status(self, reply: Any) -> int:
        """A step's status; wake the waiters of our channel its reply names.

        An acquire or release hands the resource on in the same step (a release, or a lease
        that ran out); a waiter of this client's channel is named in the reply (token, grant
        pairs after the status) rather than pushed to, so it wakes without a second round trip
        and nothing is left in a wake list for a waiter that re-checked on its own
        (``core/wakeup.py``).
        """
        if not isinstance(reply, list):
            return int(reply)
        for i in range(1, len(reply) - 1, 2):
            deliver(self.redis, self._queue, text(reply[i]), text(reply[i + 1]))
        return int(reply[0])

    async def _finish(self, token: str) -> None:
        """Stop renewing and run the release script for ``token``, already taken from the object.

        A release that finds the lease gone (expired, or taken over) marks the object
        :attr:`lost` and raises :class:`NotOwnedError`. Redis in Action §6.2.3 (``release_lock``).
        """
        try:
            await self._stop_renewer()
            released = await self._release_tries(token)
            if not released:
                self._lost = True
        finally:
            self._grant = None
            self._holder = None
            self._gate.release()
        if not released:
            raise NotOwnedError(f"{self.kind} {self.name!r}: the lease expired or was taken over")

    async def _release_tries(self, token: str) -> int:
        """Run the release script, tried again after any failure (as ``best_effort`` does).

        The release is safe to run twice (a try whose reply was lost already released: the next
        answers "released" again), so a client that broke under a cancellation storm, or any
        other exception, gets a second try on another connection before the lease is left to
        expire. The last failure is raised.
        """
        for attempt in range(1, CLEANUP_TRIES + 1):
            try:
                return self._status(await self._run(self._release, self._keys(), token, "release"))
            except Exception as exc:
                if attempt == CLEANUP_TRIES:
                    log.warning(
                        "%s %r: release failed %d times; the lease ends with its timeout: %r",
                        *(self.kind, self.name, attempt, exc),
                    )
                    raise
                log.info("%s %r: release failed, trying once more: %r", self.kind, self.name, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _stop_renewer(self) -> None:
        """Stop the renewer and wait for it; a renewer that crashed never breaks a release."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None and renewer is not asyncio.current_task():
            renewer.cancel()
            # The renewer also stops by itself once it is no longer self._renewer, so this
            # wait ends even if redis-py swallowed the cancellation (see _acquire_remote). Its
            # crash, if any, was logged by _renewer_done.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await renewer

    def _renewer_done(self, renewer: asyncio.Task[None]) -> None:
        """Log a renewer that crashed (the lease then lives only until its timeout)."""
        if not renewer.cancelled() and (exc := renewer.exception()) is not None:
            log.error("%s %r: auto-renewal crashed", self.kind, self.name, exc_info=exc)

    async def _renew_forever(self, token: str) -> None:
        """Reset the lease to ``timeout`` every third of it, until released, stopped or lost."""
        period = (self.timeout or 1.0) / 3
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        valid_until = loop.time() + period * 3  # at the latest: the lease was just granted
        while True:
            await asyncio.sleep(period)
            if self._token != token or self._renewer is not me:
                return
            sent = loop.time()
            try:
                left = int(
                    await self._run(
                        self._extend, self._extend_keys(), token, to_ms(period * 3), 1, ""
                    )
                )
            except Exception as exc:  # any failure: the lease may still be valid, retry soon
                log.warning("%s %r: renewal failed: %r", self.kind, self.name, exc)
                if loop.time() < valid_until:
                    continue
                left = 0  # no renewal confirmed for a whole lease: it may have ended
            else:
                valid_until = sent + left / 1000
            if left <= 0 and self._token == token and self._renewer is me:
                self._lost = True
                log.warning("%s %r: lease lost while held", self.kind, self.name)
                if self.on_lost is not None:
                    try:
                        outcome = self.on_lost(self)
                        if outcome is not None:
                            await outcome
                    except Exception:  # the holder's callback must not break release()
                        log.exception("%s %r: on_lost callback failed", self.kind, self.name)
                return
