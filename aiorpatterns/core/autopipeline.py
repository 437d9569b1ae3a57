"""Coalesce the commands that concurrent tasks issue into one pipelined write per loop turn.

Redis in Action §4.5 ("Non-transactional pipelines") shows that most of a small command's cost is
the round trip, not the work: ``update_token_pipeline`` sends the same five commands as
``update_token`` in one ``pipeline(False)`` and makes 1.7 to 5 times as many calls per second
(the chapter's ``benchmark_update_token`` table, from a local socket to a VPN). The book has to
rewrite each function around an explicit pipeline. An async server has a better opportunity:
hundreds of tasks are each waiting on one small command at the same moment, and their commands
can share a round trip without any of them changing.

:class:`AutoPipeline` wraps a ``redis.asyncio`` client (``Redis`` or ``RedisCluster``) and is
used in its place. Its command methods are redis-py's own command mixins, but a command is
queued instead of sent; one flush per event-loop turn sends everything queued in that turn as
one non-transactional pipeline (on a cluster, redis-py's cluster pipeline writes one batch per
node and follows MOVED/ASK). Each caller gets its own reply, parsed by the client's own response
callbacks, or its own exception: a WRONGTYPE, a bad argument or a failing callback of one caller
does not touch the others, and a dropped connection fails only the commands of the batch that
was on it. Commands that block or that change the state of a connection (BLPOP and friends,
XREAD BLOCK, WAIT, CLIENT …, SELECT, WATCH/MULTI), commands a cluster routes by node flag
(SCRIPT LOAD, KEYS, PING, …), ``pipeline()``, ``transaction()``, ``pubsub()`` and ``lock()`` go
straight to the wrapped client, unbatched.

What stays the client's: its retry policy (a standalone batch is retried as a whole, as redis-py
retries a pipeline; on a cluster each command is retried as ``RedisCluster`` retries it), its
connection pool and its lifetime. Within one pipeline (per node on a cluster) commands are
written in the order they were issued; between commands that different tasks issue
concurrently nothing more is promised than the plain client's pool promises.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, Self

from redis.asyncio.client import Pipeline, Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncCoreCommands, AsyncScript
from redis.commands.redismodules import AsyncRedisModuleCommands
from redis.commands.sentinel import AsyncSentinelCommands
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import ScriptTextT

__all__ = ["AutoPipeline", "AutoPipelineStats"]

#: Commands that can hold a connection for as long as the server likes: they would stall every
#: command batched behind them, so they always take the dedicated path.
_BLOCKING: Final = frozenset(
    {
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BLMOVE",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
        "WAIT",
        "WAITAOF",
    }
)
#: Commands whose effect belongs to one connection (or that take it over): batching them would
#: apply them to whichever pooled connection the batch happened to use.
_CONNECTION_STATE: Final = frozenset(
    {
        "ASKING",
        "AUTH",
        "CLIENT",
        "DEBUG",
        "DISCARD",
        "EXEC",
        "HELLO",
        "HIMPORT",
        "MONITOR",
        "MULTI",
        "PSUBSCRIBE",
        "PSYNC",
        "PUNSUBSCRIBE",
        "QUIT",
        "READONLY",
        "READWRITE",
        "RESET",
        "SELECT",
        "SHUTDOWN",
        "SSUBSCRIBE",
        "SUBSCRIBE",
        "SUNSUBSCRIBE",
        "SYNC",
        "UNSUBSCRIBE",
        "UNWATCH",
        "WATCH",
    }
)
_MAY_BLOCK: Final = frozenset({"XREAD", "XREADGROUP"})


@dataclass(slots=True)
class AutoPipelineStats:
    """Counters of an :class:`AutoPipeline`, for tests, logs and benchmarks.

    A *batch* is one pipeline execution (on a cluster: one write per node it touches).
    """

    batches: int = 0
    """Pipelines sent."""
    commands: int = 0
    """Commands sent inside those pipelines."""
    largest_batch: int = 0
    """The most commands one pipeline carried."""
    failed_batches: int = 0
    """Pipelines that failed as a whole (a dropped connection): each caller got the error."""
    direct: int = 0
    """Commands sent straight to the wrapped client (blocking, connection state, cluster-wide)."""
    fallbacks: int = 0
    """Cluster batches re-sent one command at a time because one of them could not be routed."""


@dataclass(slots=True)
class _CallbackFailed:
    error: Exception


async def _guard_awaitable(result: Awaitable[Any]) -> Any:
    try:
        return await result
    except Exception as exc:
        return _CallbackFailed(exc)


class _GuardedCallbacks(MutableMapping[str | bytes, Any]):
    """A live view of a client's response callbacks that return exceptions instead of raising."""

    def __init__(self, callbacks: MutableMapping[str | bytes, Any]) -> None:
        self._callbacks = callbacks
        self._guarded: dict[str | bytes, tuple[Callable[..., Any], Callable[..., Any]]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._callbacks

    def __getitem__(self, name: str | bytes) -> Callable[..., Any]:
        callback = self._callbacks[name]
        cached = self._guarded.get(name)
        if cached is not None and cached[0] is callback:  # set_response_callback may replace it
            return cached[1]

        def guarded(response: Any, **options: Any) -> Any:
            try:
                result = callback(response, **options)
            except Exception as exc:
                return _CallbackFailed(exc)
            return _guard_awaitable(result) if inspect.isawaitable(result) else result

        self._guarded[name] = (callback, guarded)
        return guarded

    def __setitem__(self, name: str | bytes, callback: Any) -> None:
        self._callbacks[name] = callback

    def __delitem__(self, name: str | bytes) -> None:
        del self._callbacks[name]

    def __iter__(self) -> Iterator[str | bytes]:
        return iter(self._callbacks)

    def __len__(self) -> int:
        return len(self._callbacks)


@dataclass(slots=True)
class _Queued:
    args: tuple[Any, ...]
    options: dict[str, Any]
    future: asyncio.Future[Any]


# (ignore: redis-py's own mixins disagree on command_info's signature; Redis has the same bases)
class AutoPipeline(AsyncCoreCommands, AsyncRedisModuleCommands, AsyncSentinelCommands):  # type: ignore[misc]
    """A drop-in wrapper of a ``redis.asyncio`` client that batches concurrent commands.

    ``AutoPipeline(redis)`` works wherever ``redis`` would: ``await ap.get(key)``,
    ``ap.register_script(...)``, ``Lock(ap, "cart:42")``. Commands issued in the same event-loop
    turn travel in one non-transactional pipeline (Redis in Action §4.5), at most ``max_batch``
    per pipeline (``None``: no cap). The client stays the caller's: :meth:`aclose` closes it only
    with ``close_client=True``. :attr:`stats` counts batches and commands.
    """

    # Selects the async overloads of redis-py's typed command methods (Awaitable replies).
    _is_async_client: Literal[True] = True

    def __new__(
        cls,
        client: Redis | RedisCluster,
        *,
        max_batch: int | None = 1000,
        close_client: bool = False,
    ) -> Self:
        # One public name for both topologies: a cluster gets redis-py's cluster command
        # mixins (multi-key commands split by slot), exactly as RedisCluster itself has them.
        if cls is AutoPipeline and isinstance(client, RedisCluster):
            return super().__new__(_ClusterAutoPipeline)  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        max_batch: int | None = 1000,
        close_client: bool = False,
    ) -> None:
        if isinstance(client, Pipeline) or not isinstance(client, Redis | RedisCluster):
            raise TypeError(
                f"client must be a redis.asyncio Redis or RedisCluster, not {type(client).__name__}"
            )
        if max_batch is not None:
            if isinstance(max_batch, bool) or not isinstance(max_batch, int):
                raise TypeError(f"max_batch must be an int or None, not {type(max_batch).__name__}")
            if max_batch < 1:
                raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._client: Any = client
        self._event_dispatcher = client._event_dispatcher
        self._encoder: Any = client.get_encoder()
        self._callbacks = _GuardedCallbacks(client.response_callbacks)
        self.max_batch = max_batch
        self.close_client = bool(close_client)
        self.stats = AutoPipelineStats()
        self._queue: list[_Queued] = []
        self._pending: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def client(self) -> Redis | RedisCluster:
        """The wrapped client (the dedicated path for anything that must not be batched)."""
        return self._client  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run; commands then raise ``RuntimeError``."""
        return self._closed

    def __getattr__(self, name: str) -> Any:
        # Everything that is not a command (get_encoder, connection_pool, nodes_manager,
        # get_nodes, keyslot, ...) is the wrapped client's own.
        if name.startswith("__") or "_client" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self._client, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r} {self.stats}>"

    # -- the dedicated path ---------------------------------------------------------------

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        """An explicit pipeline (or MULTI/WATCH transaction) of the wrapped client."""
        return self._client.pipeline(*args, **kwargs)

    async def transaction(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped client's ``transaction()`` (WATCH, MULTI, EXEC with retries)."""
        return await self._client.transaction(*args, **kwargs)

    def pubsub(self, **kwargs: Any) -> Any:
        """A pub/sub object of the wrapped client (it owns its own connection)."""
        return self._client.pubsub(**kwargs)

    def monitor(self) -> Any:
        """The wrapped client's MONITOR connection."""
        return self._client.monitor()

    # (override: redis-py types register_script for its own client classes only)
    def register_script(self, script: ScriptTextT) -> AsyncScript:  # type: ignore[override]
        """A Lua script whose EVALSHA calls (and NOSCRIPT reloads) go through this wrapper."""
        return AsyncScript(self, script)  # type: ignore[arg-type]

    def lock(self, *args: Any, **kwargs: Any) -> Any:
        """redis-py's own ``Lock`` on the wrapped client (see :class:`aiorpatterns.Lock`)."""
        return self._client.lock(*args, **kwargs)

    # -- batching -----------------------------------------------------------------------

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        """Queue the command for this loop turn's batch (or send it directly); return its reply."""
        if self._closed:
            raise RuntimeError("this AutoPipeline is closed")
        if not args:
            raise TypeError("execute_command needs a command name")
        if self._is_direct(_command_name(args[0]), args, options):
            self.stats.direct += 1
            return await self._client.execute_command(*args, **options)
        # Encode now so a bad argument (None, a dict, a bool) fails its own caller, as it would
        # on the plain client, instead of the packing of the whole batch.
        # bytes, ints, floats and ASCII text always encode: only the rest is tried here.
        encode = self._encoder.encode
        for arg in args:
            kind = type(arg)
            if kind is bytes or kind is int or kind is float or (kind is str and arg.isascii()):
                continue
            encode(arg)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Queued(args, options, future))
        pending = self._pending
        # (A flush left behind by a loop that has since stopped will never run: start another.)
        if pending is None or pending.get_loop() is not loop:
            # A task's first step runs on the next loop turn, after every task that is ready
            # now has had its chance to queue: that is what makes a turn one batch.
            self._pending = task = loop.create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        # A cancelled caller cancels its future: the flush then skips it if not yet sent, or
        # drops its reply, and everybody else's commands are unaffected.
        return await future

    def _is_direct(self, name: str, args: Sequence[Any], options: dict[str, Any]) -> bool:
        word = name.split(" ", 1)[0]
        if word in _BLOCKING or word in _CONNECTION_STATE:
            return True
        if word in _MAY_BLOCK:
            for arg in args[1:]:
                token = _command_name(arg) if isinstance(arg, str | bytes) else ""
                if token == "STREAMS":
                    break
                if token == "BLOCK":
                    return True
        return False

    async def _flush(self) -> None:
        self._pending = None
        loop = asyncio.get_running_loop()
        batch = [q for q in self._queue if not q.future.done() and q.future.get_loop() is loop]
        self._queue = []
        if not batch:
            return
        size = self.max_batch or len(batch)
        if len(batch) <= size:
            await self._send(batch)
        else:
            await asyncio.gather(*(self._send(part) for part in _chunks(batch, size)))

    async def _send(self, batch: list[_Queued]) -> None:
        self.stats.batches += 1
        self.stats.commands += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        try:
            replies = await self._execute(batch)
        except asyncio.CancelledError:
            for queued in batch:
                queued.future.cancel()
            raise
        except Exception as exc:
            self.stats.failed_batches += 1
            for queued in batch:
                _settle(queued.future, _own_copy(exc))
            return
        for queued, reply in zip(batch, replies, strict=True):
            _settle(queued.future, reply)

    async def _execute(self, batch: list[_Queued]) -> list[Any]:
        client = self._client
        # The standalone pipeline reads replies in order and stops at the first exception a
        # response callback raises (a bad score_cast_func, say), leaving the rest unread on a
        # connection that goes back to the pool. Guarded callbacks hand such an exception back
        # as that one command's reply instead.
        pipe = Pipeline(client.connection_pool, self._callbacks, False, None)
        for queued in batch:
            pipe.execute_command(*queued.args, **queued.options)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return [r.error if isinstance(r, _CallbackFailed) else r for r in replies]

    # -- lifetime -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Send what is queued, wait for the batches in flight, then stop accepting commands.

        The wrapped client is closed too only if this object was made with
        ``close_client=True``.
        """
        self._closed = True
        while self._flushes:
            await asyncio.wait(set(self._flushes))
        if self.close_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _ClusterAutoPipeline(AutoPipeline):
    """:class:`AutoPipeline` over a ``RedisCluster``: one batch per node via its cluster pipeline.

    Its command methods are ``RedisCluster``'s own (copied below), e.g. ``delete`` of keys in
    several slots splits them by slot as the cluster client does.
    """

    def _is_direct(self, name: str, args: Sequence[Any], options: dict[str, Any]) -> bool:
        # Commands routed by a node flag (SCRIPT LOAD to every primary, KEYS, PING, ...) or by
        # explicit target_nodes, and those whose replies the client merges over nodes, are the
        # cluster client's business; the cluster pipeline would refuse or mis-route them.
        client = self._client
        return (
            "target_nodes" in options
            or name in client.command_flags
            or name in client.result_callbacks
            or super()._is_direct(name, args, options)
        )

    async def _execute(self, batch: list[_Queued]) -> list[Any]:
        client = self._client
        pipe = client.pipeline()
        for queued in batch:
            pipe.execute_command(*queued.args, **queued.options)
        try:
            # Per node, a reply that fails to parse (or whose callback raises) is stored as
            # that command's result and the reading goes on: nothing to guard here.
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        except (RedisConnectionError, RedisTimeoutError, *RedisCluster.ERRORS_ALLOW_RETRY):
            raise
        except (RedisClusterException, RedisError):
            # The cluster pipeline routes every command before it writes anything, and a
            # command it cannot route (keys in several slots, no key, an unknown command)
            # fails the whole batch. Nothing was sent: run each command on its own, so that
            # one gets the plain client's answer and the others their replies.
            self.stats.fallbacks += 1
            return await asyncio.gather(
                *(client.execute_command(*q.args, **q.options) for q in batch),
                return_exceptions=True,
            )
        if client.retry.get_retries() > 0:
            # The cluster pipeline stores a connection lost while reading (a node restarted,
            # an idle pooled connection killed) as each command's reply and never retries it,
            # where RedisCluster.execute_command would: give those commands the same retries
            # the plain client gives them, through it.
            redo = [
                i
                for i, reply in enumerate(replies)
                if type(reply) in RedisCluster.ERRORS_ALLOW_RETRY and not batch[i].future.done()
            ]
            if redo:
                again = await asyncio.gather(
                    *(client.execute_command(*batch[i].args, **batch[i].options) for i in redo),
                    return_exceptions=True,
                )
                for i, reply in zip(redo, again, strict=True):
                    replies[i] = reply
        return replies


def _adopt_cluster_commands() -> None:
    # The standalone and cluster command mixins have no common method resolution order, so
    # the cluster class takes, from RedisCluster's MRO, each command method that differs.
    for name in dir(RedisCluster):
        if (
            name.startswith("__")
            or name in vars(AutoPipeline)
            or name in vars(_ClusterAutoPipeline)
        ):
            continue
        owner = next(klass for klass in RedisCluster.__mro__ if name in vars(klass))
        if not owner.__module__.startswith("redis.commands."):
            continue
        method = vars(owner)[name]
        if inspect.getattr_static(AutoPipeline, name, None) is not method:
            setattr(_ClusterAutoPipeline, name, method)


_adopt_cluster_commands()


def _command_name(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace").upper()
    return str(value).upper()


def _chunks(items: list[_Queued], size: int) -> Iterator[list[_Queued]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():  # its caller was cancelled: nobody wants this reply
        return
    if isinstance(outcome, asyncio.CancelledError):
        future.cancel()
    elif isinstance(outcome, BaseException):
        future.set_exception(outcome)
        # The caller may be cancelled before it reads this; don't let asyncio log it then.
        future.exception()
    else:
        future.set_result(outcome)


def _own_copy(exc: BaseException) -> BaseException:
    """Give each caller its own exception object (tracebacks grow as each one re-raises it)."""
    try:
        dup = copy.copy(exc)
    except Exception:
        return exc
    dup.__cause__ = exc.__cause__
    dup.__context__ = exc.__context__
    dup.__suppress_context__ = exc.__suppress_context__
    return dup.with_traceback(exc.__traceback__)
