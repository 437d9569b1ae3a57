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
wrapper or an ACL user limited to the prefix. A dispatcher whose command fails (a client without
retries, a server gone) fails the waits it serves with that error, as each waiter's own
blocking command would have. A lost or late wake-up (a reply lost with its connection) costs
latency, never liveness: every waiter waits at most
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

__all__ = ["SignalChannel", "WakeChannel", "channel_id", "deliver", "signal_wait", "wake_channel"]

log = logging.getLogger(__name__)


class _Listener:
    """One blocked connection for every local waiter on one list: the dispatcher both kinds share.

    While anyone waits, one task blocks in ``BLPOP`` on :attr:`key` and hands each popped value
    to :meth:`_take`; a failed command fails every pending wait with its error; an idle listener
    leaves the registry (:data:`_CHANNELS`) when its task ends.
    """

    def __init__(self, redis: Any, key: str, owner: _ClientChannels) -> None:
        self.redis = redis
        self.key = key
        self._owner = owner
        self._waiters: dict[Any, asyncio.Future[Any]] = {}
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """How many tasks wait here right now."""
        return len(self._waiters)

    def _listen(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name=f"wake {self.key}")

    async def _take(self, value: str) -> None:
        raise NotImplementedError

    async def _dispatch(self) -> None:
        cap = blocking_cap(self.redis)
        block = MAX_WAIT_SLICE if cap is None else min(MAX_WAIT_SLICE, cap)
        try:
            while self._waiters:
                try:
                    popped = await self.redis.blpop([self.key], timeout=block)
                except RedisTimeoutError:  # the socket timeout cut the block short
                    continue
                if popped is not None:
                    await self._take(text(popped[1]))
        except Exception as exc:
            # What each waiter's own blocking command would have raised: a client without
            # retries fails its waits promptly (a retrying client retried the BLPOP itself).
            log.info("wake-up channel %s stopped: %r", self.key, exc)
            for future in self._waiters.values():
                if not future.done():
                    future.set_exception(exc)
        finally:
            if self._dispatcher is asyncio.current_task():
                self._dispatcher = None
            if not self._waiters and self._owner.listeners.get(self.key) is self:
                del self._owner.listeners[self.key]  # idle: the next waiter makes a new one

    @staticmethod
    async def _until(future: asyncio.Future[Any], seconds: float) -> bool:
        if not future.done():
            done, _ = await asyncio.wait((future,), timeout=seconds)
            return bool(done)
        return True

    @staticmethod
    def _drop(future: asyncio.Future[Any] | None) -> None:
        if future is None:
            return
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()  # seen: a failed wait nobody read is not worth a warning


class WakeChannel(_Listener):
    """The waiting tasks of one client on one wait queue (a lease's), each woken by its token.

    Use :meth:`expect` before the step that may queue the caller (a grant can arrive while
    that step's reply is on its way), :meth:`wait` for it, and :meth:`forget` when done.
    """

    def __init__(self, redis: Any, queue: str, owner: _ClientChannels) -> None:
        super().__init__(redis, f"{queue}:wake:{owner.ident}", owner)
        self.ident = owner.ident

    def expect(self, token: str) -> None:
        """Register ``token``, so a grant named in a reply finds it (nothing is sent yet).

        The dispatcher starts with the first :meth:`wait`: an acquire that is granted at once
        never blocks anything, and a grant pushed before that wait stays in the list for it.
        """
        self._waiters[token] = asyncio.get_running_loop().create_future()

    async def wait(self, token: str, seconds: float) -> str | None:
        """Wait up to ``seconds`` for ``token``'s grant; None if none came."""
        future = self._waiters.get(token)
        if future is None:
            raise RuntimeError(f"wait() for a token that expect() did not register: {token}")
        self._listen()
        return str(future.result()) if await self._until(future, seconds) else None

    def forget(self, token: str) -> None:
        """Stop waiting for ``token`` (a grant pushed later is dropped)."""
        self._drop(self._waiters.pop(token, None))

    def deliver(self, token: str, grant: str) -> bool:
        """Wake ``token`` with ``grant`` if it waits here; False if nobody here waits for it."""
        future = self._waiters.get(token)
        if future is None or future.done():
            return False
        future.set_result(grant)
        return True

    async def _take(self, value: str) -> None:
        token, _, grant = value.partition(" ")
        self.deliver(token, grant)


class SignalChannel(_Listener):
    """The tasks of one client waiting on one signal list (a queue's, an inbox's): one per signal.

    A producer pushes one signal per item to the list; each popped signal wakes the local
    waiter that has waited longest, as it would have woken one ``BLPOP`` of its own. A signal
    popped after every local waiter left is pushed back, for a waiter elsewhere.
    """

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a signal; False if none came."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[future] = future
        self._listen()
        try:
            if not await self._until(future, seconds):
                return False
            future.result()  # a failed dispatcher's error
            return True
        finally:
            self._drop(self._waiters.pop(future, None))

    async def _take(self, value: str) -> None:
        for future in self._waiters.values():
            if not future.done():
                future.set_result(None)
                return
        await self.redis.lpush(self.key, value)  # nobody here any more: give it back


class _ClientChannels:
    """A client's listeners by list key, and the id its waiters give the lease scripts."""

    def __init__(self) -> None:
        self.ident = os.urandom(8).hex()
        self.listeners: dict[str, _Listener] = {}


_CHANNELS: weakref.WeakKeyDictionary[Any, _ClientChannels] = weakref.WeakKeyDictionary()


def _channels(redis: Any) -> _ClientChannels:
    channels = _CHANNELS.get(redis)
    if channels is None:
        channels = _CHANNELS[redis] = _ClientChannels()
    return channels


def channel_id(redis: Any) -> str:
    """The id of ``redis``'s (the client object's) channels, as waiters tell it to the server."""
    return _channels(redis).ident


def wake_channel(redis: Any, queue: str) -> WakeChannel:
    """The wake-up channel of ``redis`` for the wait queue ``queue``, made if needed.

    Take it right before :meth:`WakeChannel.expect`, never keep it across waits: a channel
    nobody waits on leaves the registry once its dispatcher stops.
    """
    channels = _channels(redis)
    key = f"{queue}:wake:{channels.ident}"
    channel = channels.listeners.get(key)
    if not isinstance(channel, WakeChannel):
        channel = WakeChannel(redis, queue, channels)
        channels.listeners[key] = channel
    return channel


def deliver(redis: Any, queue: str, token: str, grant: str) -> bool:
    """Wake ``token`` if it waits on ``redis``'s channel for ``queue`` (a grant in a reply)."""
    channels = _CHANNELS.get(redis)
    if channels is None:
        return False
    channel = channels.listeners.get(f"{queue}:wake:{channels.ident}")
    return isinstance(channel, WakeChannel) and channel.deliver(token, grant)


async def signal_wait(redis: Any, key: str, seconds: float) -> bool:
    """Wait up to ``seconds`` for one signal on the list ``key``, sharing one blocked connection.

    What ``BLPOP key`` did for each waiter, for every waiter of ``redis`` at once
    (:class:`SignalChannel`): True if a signal was taken, False if none came in time.
    """
    channels = _channels(redis)
    channel = channels.listeners.get(key)
    if not isinstance(channel, SignalChannel):
        channel = SignalChannel(redis, key, channels)
        channels.listeners[key] = channel
    return await channel.wait(seconds)
