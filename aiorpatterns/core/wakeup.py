"""One wake-up channel per client and wait queue: waiting tasks share one blocked connection.

Redis in Action §6.2-6.3 polls (``time.sleep(.001)`` between tries); the usual fix, one
``BLPOP`` per waiting task on a list of its own, holds one server connection per waiter, so a
thousand tasks waiting on one lock hold a thousand connections. Here the tasks of one client
that wait in one wait queue (one lock, one semaphore, ...) share a :class:`WakeChannel`:

- the channel has an id of its own (random, one per client object), and a waiter tells the
  server that id when it queues (``_waitqueue.lua`` keeps it beside the waiter);
- a hand-off to a waiter pushes ``"<token> <grant>"`` onto the channel's list, ``<queue>:wake:<id>``
  (under the queue's hash tag, so the same script may write it on a cluster); one dispatcher task
  per channel blocks in ``BLPOP`` on that list while any local task waits, and resolves the
  waiter's future: one blocked connection however many tasks wait;
- a hand-off made by a script this client ran (a release) to a waiter of this same channel is
  not pushed at all: the script names it in its reply and :meth:`WakeChannel.deliver` wakes the
  waiter at once, without a second round trip.

Why lists and not pub/sub: a pushed grant stays until it is read, so a dispatcher that
reconnects still finds it, and a list works unchanged through a cluster client, a pipeline
wrapper or an ACL user limited to the prefix. A lost or late wake-up (a reply lost with its
connection, a dispatcher that failed) costs latency, never liveness: every waiter waits at most
its slice (:data:`~aiorpatterns.core.waiting.MAX_WAIT_SLICE`), then re-checks with its acquire
step, which finds a grant made meanwhile. A grant nobody waits for any more is dropped here:
the waiter that gave up always runs its clean-up step, which gives such a grant back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from typing import Any

from redis.exceptions import TimeoutError as RedisTimeoutError

from .checks import text
from .waiting import MAX_WAIT_SLICE, blocking_cap

__all__ = ["WakeChannel", "channel_id", "deliver", "wake_channel"]

log = logging.getLogger(__name__)


class WakeChannel:
    """The waiting tasks of one client on one wait queue, woken through one blocked connection.

    Use :meth:`expect` before the step that may queue the caller (a grant can arrive while
    that step's reply is on its way), :meth:`wait` for it, and :meth:`forget` when done.
    """

    def __init__(self, redis: Any, queue: str, owner: _ClientChannels) -> None:
        self.redis = redis
        self.queue = queue
        self.ident = owner.ident
        self.key = f"{queue}:wake:{owner.ident}"
        self._owner = owner
        self._waiters: dict[str, asyncio.Future[str]] = {}
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """How many tasks wait on this channel right now."""
        return len(self._waiters)

    def expect(self, token: str) -> None:
        """Register ``token`` as waiting, and make sure the dispatcher listens."""
        self._waiters[token] = asyncio.get_running_loop().create_future()
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name=f"wake {self.key}")

    async def wait(self, token: str, seconds: float) -> str | None:
        """Wait up to ``seconds`` for ``token``'s grant; None if none came."""
        future = self._waiters.get(token)
        if future is None:
            raise RuntimeError(f"wait() for a token that expect() did not register: {token}")
        if self._dispatcher is None:  # it ended on an error meanwhile: listen again
            self._dispatcher = asyncio.create_task(self._dispatch(), name=f"wake {self.key}")
        if not future.done():
            done, _ = await asyncio.wait((future,), timeout=seconds)
            if not done:
                return None
        return future.result()

    def forget(self, token: str) -> None:
        """Stop waiting for ``token`` (a grant pushed later is dropped)."""
        future = self._waiters.pop(token, None)
        if future is not None and not future.done():
            future.cancel()

    def deliver(self, token: str, grant: str) -> bool:
        """Wake ``token`` with ``grant`` if it waits here; False if nobody here waits for it."""
        future = self._waiters.get(token)
        if future is None or future.done():
            return False
        future.set_result(grant)
        return True

    async def _dispatch(self) -> None:
        """Pop grants off the channel's list while anyone waits, and wake their waiters."""
        cap = blocking_cap(self.redis)
        block = MAX_WAIT_SLICE if cap is None else min(MAX_WAIT_SLICE, cap)
        try:
            while self._waiters:
                try:
                    popped = await self.redis.blpop([self.key], timeout=block)
                except RedisTimeoutError:  # the socket timeout cut the block short
                    continue
                if popped is not None:
                    token, _, grant = text(popped[1]).partition(" ")
                    self.deliver(token, grant)
        except Exception as exc:  # the waiters re-check at the end of their slices
            log.warning("wake-up channel %s stopped: %r", self.key, exc)
        finally:
            if self._dispatcher is asyncio.current_task():
                self._dispatcher = None
            if not self._waiters and self._owner.by_queue.get(self.queue) is self:
                del self._owner.by_queue[self.queue]  # idle: the next waiter makes a new one


class _ClientChannels:
    """A client's channels, one per wait queue, under one random id."""

    def __init__(self) -> None:
        self.ident = os.urandom(8).hex()
        self.by_queue: dict[str, WakeChannel] = {}


_CHANNELS: weakref.WeakKeyDictionary[Any, _ClientChannels] = weakref.WeakKeyDictionary()


def channel_id(redis: Any) -> str:
    """The id of ``redis``'s (the client object's) channels, as waiters tell it to the server."""
    channels = _CHANNELS.get(redis)
    if channels is None:
        channels = _CHANNELS[redis] = _ClientChannels()
    return channels.ident


def wake_channel(redis: Any, queue: str) -> WakeChannel:
    """The wake-up channel of ``redis`` for the wait queue ``queue``, made if needed.

    Take it right before :meth:`WakeChannel.expect`, never keep it across waits: a channel
    nobody waits on leaves the registry once its dispatcher stops.
    """
    channel_id(redis)
    channels = _CHANNELS[redis]
    channel = channels.by_queue.get(queue)
    if channel is None:
        channel = channels.by_queue[queue] = WakeChannel(redis, queue, channels)
    return channel


def deliver(redis: Any, queue: str, token: str, grant: str) -> bool:
    """Wake ``token`` if it waits on ``redis``'s channel for ``queue`` (a grant in a reply)."""
    channels = _CHANNELS.get(redis)
    channel = channels.by_queue.get(queue) if channels is not None else None
    return channel is not None and channel.deliver(token, grant)
