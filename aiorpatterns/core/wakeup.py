"""Wake-up channels: the waiting tasks of a process share one blocked connection per client.

Redis in Action §6.2-6.4 polls (``time.sleep(.001)`` between tries); the usual fix, one
``BLPOP`` per waiting task on a list of its own, holds one server connection per waiter, so a
thousand tasks waiting on one lock hold a thousand connections. Here:

- **Grants** (a lock, a semaphore slot handed to a waiter, :class:`WakeChannel`). Every event
  loop has a channel id (random), and a waiter's token starts with it (``<id>.<random>``), so
  the scripts know where each waiter listens. A hand-off pushes ``"<token> <grant>"`` onto the
  list ``<queue>:wake:<id>`` (under the queue's hash tag, so the same script may write it on a
  cluster), where one dispatcher task per client object blocks in ``BLPOP`` while any of that
  client's tasks waits on that queue. A hand-off made by a script of this same event loop (a
  release) is not pushed at all: the script names the grant in its reply and :func:`deliver`
  wakes the waiter at once, without a second round trip, whichever client object it waits on.
- **Signals** (a task put on a queue, a message sent, :class:`SignalChannel`): a producer pushes
  one signal per item to a list; one dispatcher per client object and list pops them and wakes
  one local waiter each, as that waiter's own ``BLPOP`` would have.
- **Latches** (a page being rendered, :class:`LatchChannel`): a value left in a list wakes every
  waiter, as each one's own rotating ``BLMOVE`` would have, and stays for late comers.
- **Stream positions** (a chat's newest message, :class:`StreamChannel`): each waiter waits for
  an entry above its own position; one ``XREAD BLOCK`` from the lowest of them wakes every
  waiter the new entry passes.

Why lists and not pub/sub: a pushed grant stays until it is read, so a dispatcher that
reconnects still finds it, and a list works unchanged through a cluster client, a pipeline
wrapper or an ACL user limited to the prefix. A dispatcher whose command fails (a client without
retries, a server gone) fails the waits it serves with that error, as each waiter's own
blocking command would have. A lost or late wake-up (a reply lost with its connection) costs
latency, never liveness: every waiter waits at most its slice
(:data:`~aiorpatterns.core.waiting.MAX_WAIT_SLICE`), then re-checks with its acquire step, which
finds a grant made meanwhile. A grant nobody waits for any more is dropped here: the waiter that
gave up always runs its clean-up step, which gives such a grant back.
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

__all__ = [
    "LatchChannel",
    "SignalChannel",
    "StreamChannel",
    "WakeChannel",
    "channel_id",
    "deliver",
    "latch_wait",
    "signal_wait",
    "stream_wait",
    "wake_channel",
]

log = logging.getLogger(__name__)


class _Loop:
    """What one event loop shares: its channel id, its waiting tokens and its listeners."""

    def __init__(self) -> None:
        self.ident = os.urandom(8).hex()
        #: Every token waiting for a grant in this loop, on any client object.
        self.tokens: dict[str, asyncio.Future[str]] = {}
        #: Each client object's listeners, by the list they block on.
        self.listeners: weakref.WeakKeyDictionary[Any, dict[str, _Listener]] = (
            weakref.WeakKeyDictionary()
        )


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Loop] = weakref.WeakKeyDictionary()


def _this_loop() -> _Loop:
    loop = asyncio.get_running_loop()
    found = _LOOPS.get(loop)
    if found is None:
        found = _LOOPS[loop] = _Loop()
    return found


class _Listener:
    """One blocked connection for a client's waiters on one list: the dispatcher both kinds share.

    While anyone waits, one task blocks in ``BLPOP`` on :attr:`key` and hands each popped value
    to :meth:`_take`; a failed command fails every pending wait with its error; an idle listener
    leaves the registry when its task ends.
    """

    def __init__(self, redis: Any, key: str) -> None:
        self.redis = redis
        self.key = key
        self._waiters: dict[Any, asyncio.Future[Any]] = {}
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """How many tasks wait here right now."""
        return len(self._waiters)

    def _listen(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name=f"wake {self.key}")

    async def _block(self, seconds: float) -> str | None:
        """Block up to ``seconds`` for the next value (default: ``BLPOP`` on :attr:`key`)."""
        popped = await self.redis.blpop([self.key], timeout=seconds)
        return None if popped is None else text(popped[1])

    async def _take(self, value: str) -> None:
        raise NotImplementedError

    async def _dispatch(self) -> None:
        cap = blocking_cap(self.redis)
        block = MAX_WAIT_SLICE if cap is None else min(MAX_WAIT_SLICE, cap)
        try:
            while any(not future.done() for future in self._waiters.values()):
                try:
                    value = await self._block(block)
                except RedisTimeoutError:  # the socket timeout cut the block short
                    continue
                if value is not None:
                    await self._take(value)
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
            self._leave_if_idle()

    def _leave_if_idle(self) -> None:
        """Leave the registry once nobody waits and no dispatcher runs (the next makes anew)."""
        if not self._waiters and self._dispatcher is None:
            mine = _this_loop().listeners.get(self.redis, {})
            if mine.get(self.key) is self:
                del mine[self.key]

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
    """A client's tasks waiting on one wait queue (a lease's), each woken by its own token.

    Use :meth:`expect` before the step that may queue the caller (a grant can arrive while
    that step's reply is on its way), :meth:`wait` for it, and :meth:`forget` when done.
    """

    def expect(self, token: str) -> None:
        """Register ``token``, so a grant named in a reply finds it (nothing is sent yet).

        The dispatcher starts with the first :meth:`wait`: an acquire that is granted at once
        never blocks anything, and a grant pushed before that wait stays in the list for it.
        """
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[token] = future
        _this_loop().tokens[token] = future

    async def wait(self, token: str, seconds: float) -> str | None:
        """Wait up to ``seconds`` for ``token``'s grant; None if none came."""
        future = self._waiters.get(token)
        if future is None:
            raise RuntimeError(f"wait() for a token that expect() did not register: {token}")
        self._listen()
        return str(future.result()) if await self._until(future, seconds) else None

    def forget(self, token: str) -> None:
        """Stop waiting for ``token`` (a grant pushed later is dropped)."""
        _this_loop().tokens.pop(token, None)
        self._drop(self._waiters.pop(token, None))
        self._leave_if_idle()

    async def _take(self, value: str) -> None:
        token, _, grant = value.partition(" ")
        _deliver(_this_loop(), token, grant)


class SignalChannel(_Listener):
    """A client's tasks waiting on one signal list (a queue's, an inbox's): one woken per signal.

    A producer pushes one signal per item to the list; each popped signal wakes the local
    waiter that has waited longest, as it would have woken one ``BLPOP`` of its own. A signal
    popped after every local waiter left is pushed back, for a waiter elsewhere.
    """

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a signal; False if none came."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[future] = future
        return await self._wait(future, seconds)

    async def _wait(self, future: asyncio.Future[None], seconds: float) -> bool:
        self._listen()
        try:
            if not await self._until(future, seconds):
                return False
            future.result()  # a failed dispatcher's error
            return True
        finally:
            self._drop(self._waiters.pop(future, None))
            self._leave_if_idle()

    async def _take(self, value: str) -> None:
        for future in self._waiters.values():
            if not future.done():
                future.set_result(None)
                return
        await self.redis.lpush(self.key, value)  # nobody here any more: give it back


class LatchChannel(SignalChannel):
    """A client's tasks waiting on one latch list: a value there wakes all of them.

    The dispatcher rotates the list (``BLMOVE key key RIGHT LEFT``), so the value stays for
    waiters that come later, as it did for each waiter's own rotating ``BLMOVE``; whoever
    resets the latch deletes the list.
    """

    async def _block(self, seconds: float) -> str | None:
        # redis-py types BLMOVE's timeout as int; Redis (6.0+) takes fractional seconds.
        moved = await self.redis.blmove(self.key, self.key, seconds, src="RIGHT", dest="LEFT")
        return None if moved is None else text(moved)

    async def _take(self, value: str) -> None:
        for future in self._waiters.values():
            if not future.done():
                future.set_result(None)


class StreamChannel(SignalChannel):
    """A client's tasks waiting for entries of one stream above their own positions.

    Entry ids are ``<n>-0``; a waiter at position ``n`` waits for an entry above it. The
    dispatcher reads from the lowest waiting position (``XREAD BLOCK``) and wakes every waiter
    below the entry it gets.
    """

    def __init__(self, redis: Any, key: str) -> None:
        super().__init__(redis, key)
        self._positions: dict[Any, int] = {}

    async def wait_above(self, position: int, seconds: float) -> bool:
        """Wait up to ``seconds`` for an entry above ``position``; False if none came."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[future] = future
        self._positions[future] = position
        try:
            return await self._wait(future, seconds)
        finally:
            self._positions.pop(future, None)

    async def _block(self, seconds: float) -> str | None:
        waiting = [p for f, p in self._positions.items() if not f.done()]
        if not waiting:
            return None
        ms = max(1, int(seconds * 1000))
        read = await self.redis.xread({self.key: f"{min(waiting)}-0"}, count=1, block=ms)
        if isinstance(read, dict):  # RESP3: {key: [[entries]]}; RESP2: [[key, [entries]]]
            batches = [e[0] if e and isinstance(e[0], list) else e for e in read.values()]
        else:
            batches = [entries for _, entries in read or ()]
        for entries in batches:
            for entry_id, _ in entries:
                return text(entry_id)
        return None

    async def _take(self, value: str) -> None:
        newest = int(value.partition("-")[0])
        for future, position in self._positions.items():
            if position < newest and not future.done():
                future.set_result(None)


def _listener(redis: Any, key: str, kind: type[_Listener]) -> Any:
    mine = _this_loop().listeners.setdefault(redis, {})
    found = mine.get(key)
    if type(found) is not kind:
        found = mine[key] = kind(redis, key)
    return found


def _deliver(loop: _Loop, token: str, grant: str) -> bool:
    future = loop.tokens.get(token)
    if future is None or future.done():
        return False
    future.set_result(grant)
    return True


def channel_id(redis: Any) -> str:
    """The channel id waiters of this event loop give the scripts (``redis``: any client)."""
    return _this_loop().ident


def wake_channel(redis: Any, queue: str) -> WakeChannel:
    """The wake-up channel of ``redis`` (the client object) for the wait queue ``queue``.

    Take it right before :meth:`WakeChannel.expect`, never keep it across waits: a channel
    nobody waits on leaves the registry once its dispatcher stops.
    """
    channel: WakeChannel = _listener(redis, f"{queue}:wake:{_this_loop().ident}", WakeChannel)
    return channel


def deliver(redis: Any, queue: str, token: str, grant: str) -> bool:
    """Wake ``token`` with ``grant`` if it waits in this event loop (a grant named in a reply).

    ``redis`` and ``queue`` name where the grant came from; tokens are unique, so the waiter is
    found on whichever client object it waits.
    """
    return _deliver(_this_loop(), token, grant)


async def latch_wait(redis: Any, key: str, seconds: float) -> bool:
    """Wait up to ``seconds`` for a value in the latch list ``key`` (:class:`LatchChannel`).

    What a rotating ``BLMOVE key key`` did for each waiter, for every waiter of ``redis`` at
    once: True if the latch is set (every waiter wakes), False if it stayed empty.
    """
    channel: LatchChannel = _listener(redis, key, LatchChannel)
    return await channel.wait(seconds)


async def stream_wait(redis: Any, key: str, position: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for an entry of stream ``key`` above ``<position>-0``.

    What ``XREAD BLOCK`` from that position did for each waiter, for every waiter of ``redis``
    at once (:class:`StreamChannel`): True if such an entry came, False if none in time.
    """
    channel: StreamChannel = _listener(redis, key, StreamChannel)
    return await channel.wait_above(position, seconds)


async def signal_wait(redis: Any, key: str, seconds: float) -> bool:
    """Wait up to ``seconds`` for one signal on the list ``key``, sharing one blocked connection.

    What ``BLPOP key`` did for each waiter, for every waiter of ``redis`` at once
    (:class:`SignalChannel`): True if a signal was taken, False if none came in time.
    """
    channel: SignalChannel = _listener(redis, key, SignalChannel)
    return await channel.wait(seconds)
