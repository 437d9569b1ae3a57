"""Near cache: a bounded in-process LRU in front of Redis, kept true by the server.

A :class:`~aiorpatterns.Cache` made with ``near=N`` keeps up to ``N`` entries it read in the
process, and serves them without a round trip until the server says they changed. The server
says so through ``CLIENT TRACKING`` in broadcast mode: one dedicated connection per server (per
primary of a cluster) runs ``CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX
<the cache's keys>`` and subscribes to ``__redis__:invalidate`` (RESP2, so any server since
Redis 6 and any redis-py parser will do). Every write, delete, expiry or eviction of a key under
the prefix, by anyone, arrives there as the key's name, and the entry is dropped here.
redis-py's own client-side caching is sync only (redis/redis-py#3916); Redis in Action predates
tracking (§2.3-2.4 cache in Redis alone).

What keeps it true:

- entries are served only while every tracking connection is up; when one fails, every entry is
  dropped and nothing is served locally until all are back (**flush on reconnect**);
- a silent connection is found by a ``PING`` after ``ping_interval`` seconds without traffic,
  answered within another ``ping_interval``: the staleness bound when the network drops
  without a word is about ``2 * ping_interval`` (1 s by default); otherwise it is the time an
  invalidation message takes to arrive;
- a value read from Redis is kept only if no invalidation arrived while it was being read
  (:meth:`NearCache.mark` before the read, :meth:`NearCache.keep` after), so a read that
  raced a write never pins the old value;
- a value past its soft TTL is never kept (the expiry of its ``:fresh`` mark drops it too), and
  an invalidated tag drops every local entry that carries tags.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from redis.asyncio.cluster import RedisCluster

from ..core.autopipeline import AutoPipeline
from ..core.cancellation import cancelling, honour_cancel
from ..core.checks import text
from ..core.waiting import Backoff
from .entries import Entry

__all__ = ["NearCache"]

log = logging.getLogger(__name__)

CHANNEL = "__redis__:invalidate"
_FRESH = ":fresh"
_MAX_BACKOFF = 2.0


def _resp2(cls: Any, kwargs: dict[str, Any]) -> Callable[[], Any]:
    """A maker of a connection like the client's, speaking RESP2 (invalidations arrive as
    pub/sub messages, whatever protocol the client's own connections speak)."""
    return lambda: cls(**{**kwargs, "protocol": 2})


class NearCache:
    """Up to ``size`` entries of the keys under ``prefix``, dropped when the server says so."""

    def __init__(
        self, redis: Any, prefix: str, tags_key: str, size: int, *, ping_interval: float = 1.0
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.tags_key = tags_key
        self.size = size
        self.ping_interval = ping_interval
        self._entries: OrderedDict[str, tuple[Entry, float]] = OrderedDict()
        #: Counts invalidations and flushes: a read that saw it change keeps nothing.
        self._seq = 0
        self._live = False
        self._task: asyncio.Task[None] | None = None
        #: Entries dropped all at once because a tracking connection failed.
        self.flushes = 0

    @property
    def live(self) -> bool:
        """Whether every tracking connection is up (entries are served only then)."""
        return self._live

    def __len__(self) -> int:
        return len(self._entries)

    # -- the cache's side --------------------------------------------------------------------

    def lookup(self, key: str) -> Entry | None:
        """The entry kept for ``key``, if tracking is live and it has not expired here."""
        if not self._live:
            return None
        found = self._entries.get(key)
        if found is None:
            return None
        entry, expires = found
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def mark(self) -> int:
        """Call before reading from Redis; pass the result to :meth:`keep` (starts tracking)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self._seq

    def keep(self, key: str, entry: Entry, ttl: float, mark: int) -> None:
        """Keep ``entry`` (read since :meth:`mark` answered ``mark``) for at most ``ttl`` s."""
        if not self._live or mark != self._seq:
            return  # not tracking, or something changed while it was read: not safe to keep
        self._entries[key] = (entry, time.monotonic() + ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop ``key`` now (this process wrote it; the server's message follows)."""
        self._seq += 1
        self._entries.pop(key, None)

    def forget_tagged(self) -> None:
        """Drop every entry that carries tags (a tag was invalidated)."""
        self._seq += 1
        for key in [k for k, (entry, _) in self._entries.items() if entry.tags]:
            del self._entries[key]

    async def aclose(self) -> None:
        """Stop tracking and drop every entry."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._flush()

    # -- the tracking connections ------------------------------------------------------------

    def _flush(self) -> None:
        self._live = False
        self._seq += 1
        if self._entries:
            self.flushes += 1
        self._entries.clear()

    def _invalidate(self, keys: Any) -> None:
        self._seq += 1
        if keys is None:  # FLUSHDB / FLUSHALL
            self._entries.clear()
            return
        for raw in keys:
            key = text(raw)
            if key == self.tags_key:
                self.forget_tagged()
            else:
                self._entries.pop(key.removesuffix(_FRESH), None)

    async def _connections(self) -> list[Callable[[], Any]]:
        """A maker of one dedicated connection per server holding the cache's keys."""
        client = self.redis.client if isinstance(self.redis, AutoPipeline) else self.redis
        if not isinstance(client, RedisCluster):
            pool = client.connection_pool
            return [_resp2(pool.connection_class, pool.connection_kwargs)]
        await client.initialize()  # learn the primaries (a no-op once the client knows them)
        primaries = client.get_primaries()
        if not primaries:
            raise ConnectionError("the cluster client knows no primary")
        return [_resp2(node.connection_class, node.connection_kwargs) for node in primaries]

    async def _run(self) -> None:
        """Keep one tracking connection per server; flush whenever one fails."""
        backoff = Backoff(0.05, _MAX_BACKOFF)
        while True:
            try:
                makers = await self._connections()
                ready = [asyncio.Event() for _ in makers]
                async with asyncio.TaskGroup() as group:
                    for make, event in zip(makers, ready, strict=True):
                        group.create_task(self._listen(make, event))
                    await asyncio.gather(*(event.wait() for event in ready))
                    self._seq += 1  # reads begun before tracking started keep nothing
                    self._live = True
                    backoff.reset()
            except* Exception as failures:
                log.warning("near cache %s: tracking lost, flushed: %r", self.prefix, failures)
            self._flush()
            await backoff.sleep()

    async def _listen(self, make: Callable[[], Any], ready: asyncio.Event) -> None:
        """Track the prefix on one server and apply its invalidations until the link fails."""
        conn = make()
        try:
            await conn.connect()
            await conn.send_command("CLIENT", "ID")
            own = int(await conn.read_response())
            await conn.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", own, "BCAST", "PREFIX", self.prefix
            )
            await conn.read_response()
            await conn.send_command("SUBSCRIBE", CHANNEL)
            await conn.read_response()
            ready.set()
            pinged = False
            task, before = cancelling()
            while True:
                message = await conn.read_response(timeout=self.ping_interval)
                # A cancel landing as the read's timeout fires is swallowed on Python 3.11
                # (the read answers None): honour it, or aclose() would wait for ever.
                honour_cancel(task, before)
                if message is None:  # quiet: is the server still there?
                    if pinged:
                        raise ConnectionError(f"no answer to PING in {self.ping_interval} s")
                    await conn.send_command("PING")
                    pinged = True
                    continue
                pinged = False
                if text(message[0]) == "message" and text(message[1]) == CHANNEL:
                    self._invalidate(message[2])
        finally:
            with contextlib.suppress(Exception):
                await conn.disconnect()
