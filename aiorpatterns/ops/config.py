"""Configuration in Redis: a maintenance flag and JSON settings, cached locally for a bounded time.

Redis in Action §5.4 keeps an ``is-under-maintenance`` STRING and JSON settings under
``config:<type>:<component>``, and caches both in process-global variables refreshed at most once
a second. Its faults, fixed here: the caches are module globals (two apps in one process, or two
tests, share them), concurrent callers whose cache is stale each issue their own read, a
``set_config`` is not visible to the process that wrote it until the cache expires, and the
``redis_connection`` decorator passes a hard-coded ``host=`` beside ``**config``, so a config with a
host raises a duplicate-keyword ``TypeError`` (ch08 also encodes the keys to bytes, which
``Redis(**…)`` refuses).

:class:`Config` owns its cache. A value is re-read when it is older than ``wait`` seconds
(``refresh`` by default), timed from the moment its read was sent, so a value returned is never
older than that bound plus one round trip. Concurrent callers with a stale entry share one read
(single flight): a hundred tasks cost one ``GET``. The read runs in its own task, so cancelling
one caller neither cancels the others' read nor leaves a half-filled cache. A write through the
same object updates its cache at once. Every write is a SET or DEL of a whole value, so a
client retry that re-sends one leaves the same state.

Keys: ``<prefix>:config:{<kind>}:<component>`` (STRING, JSON) and
``<prefix>:maintenance:{flag}`` (STRING ``"yes"`` while under maintenance).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar, overload

from redis.asyncio import Redis

from ..core.cancellation import observe
from ..core.checks import (
    AsyncRedis,
    check_client,
    check_flag,
    check_keyspace,
    check_wait,
    encode_json,
    text,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name

__all__ = ["Config", "redis_from_config", "redis_from_settings"]

T = TypeVar("T")
_ABSENT: Any = object()


def _check_expect(expect: object) -> None:
    if expect is not None and not (isinstance(expect, type) and expect in _JSON_TYPES):
        names = ", ".join(t.__name__ for t in _JSON_TYPES)
        raise TypeError(f"expect must be one of {names}, got {expect!r}")


_JSON_TYPES: tuple[type, ...] = (dict, list, str, int, float, bool)


def _typed(value: Any, expect: type | None, where: str) -> Any:
    if expect is None or value is None:
        return value
    if expect is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # JSON writes 1.0 as 1
    if isinstance(value, bool) and expect is not bool:
        raise TypeError(f"{where} holds a bool, expected {expect.__name__}")
    if not isinstance(value, expect):
        raise TypeError(f"{where} holds a {type(value).__name__}, expected {expect.__name__}")
    return value


class Config:
    """Settings and a maintenance flag shared through Redis, with a per-object local cache.

    ``refresh`` is the default staleness bound in seconds (0 reads Redis on every call, still
    sharing reads between concurrent callers). Redis in Action §5.4. The client is the caller's
    and is never closed here; results are plain Python whatever ``decode_responses``.
    """

    kind = "config"

    def __init__(
        self, redis: AsyncRedis, *, keyspace: Keyspace = DEFAULT_KEYSPACE, refresh: float = 1.0
    ) -> None:
        check_keyspace(keyspace)
        self.redis = check_client(redis)
        self.keyspace = keyspace
        self.refresh = check_wait(refresh, "refresh")
        self.maintenance_key = keyspace.key("maintenance", "flag")
        # key -> (loop time the read was sent, raw value); the stamp orders reads and writes.
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._reads: dict[str, asyncio.Task[tuple[float, str | None]]] = {}

    def config_key(self, kind: str, component: str) -> str:
        """The STRING holding the JSON settings of ``component`` of ``kind``."""
        return self.keyspace.key(
            self.kind, check_name(kind, "kind"), check_name(component, "component")
        )

    # -- the maintenance flag

    async def is_under_maintenance(self, *, wait: float | None = None) -> bool:
        """Return whether the maintenance flag is set, as seen at most ``wait`` seconds ago.

        Redis in Action §5.4 (``is_under_maintenance``), without its process-global cache.
        """
        bound = self.refresh if wait is None else check_wait(wait, "wait")
        return await self._read(self.maintenance_key, bound) is not None

    async def set_maintenance(self, on: bool) -> None:
        """Set (``True``) or clear (``False``) the maintenance flag."""
        check_flag(on, "on")
        started = asyncio.get_running_loop().time()
        if on:
            await self.redis.set(self.maintenance_key, "yes")
        else:
            await self.redis.delete(self.maintenance_key)
        self._store(self.maintenance_key, started, "yes" if on else None)

    # -- JSON settings

    async def set_config(self, kind: str, component: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) as the settings of ``component`` of ``kind``.

        Redis in Action §5.4 (``set_config``).
        """
        key = self.config_key(kind, component)
        raw = encode_json(value, "value")
        started = asyncio.get_running_loop().time()
        await self.redis.set(key, raw)
        self._store(key, started, raw)

    async def delete_config(self, kind: str, component: str) -> None:
        """Remove the settings of ``component`` of ``kind``."""
        key = self.config_key(kind, component)
        started = asyncio.get_running_loop().time()
        await self.redis.delete(key)
        self._store(key, started, None)

    @overload
    async def get_config(
        self, kind: str, component: str, *, wait: float | None = ..., default: Any = ...
    ) -> Any: ...

    @overload
    async def get_config(
        self,
        kind: str,
        component: str,
        *,
        wait: float | None = ...,
        default: T | None = ...,
        expect: type[T],
    ) -> T | None: ...

    async def get_config(
        self,
        kind: str,
        component: str,
        *,
        wait: float | None = None,
        default: Any = None,
        expect: type | None = None,
    ) -> Any:
        """Return the settings of ``component`` of ``kind``, as seen at most ``wait`` seconds ago.

        ``default`` (None) if none are stored. With ``expect`` (``dict``, ``list``, ``str``,
        ``int``, ``float`` or ``bool``) a stored value of another JSON type raises
        ``TypeError`` (an int is accepted as a float; a bool is never an int). Each call returns
        a fresh object, so mutating it cannot corrupt the cache. Redis in Action §5.4
        (``get_config``).
        """
        key = self.config_key(kind, component)
        bound = self.refresh if wait is None else check_wait(wait, "wait")
        _check_expect(expect)
        raw = await self._read(key, bound)
        if raw is None:
            return default
        try:
            value = json.loads(raw)
        except ValueError:
            raise ValueError(f"{key} does not hold JSON: {raw[:50]!r}") from None
        return _typed(value, expect, key)

    # -- the cache

    async def _read(self, key: str, wait: float) -> str | None:
        loop = asyncio.get_running_loop()
        hit = self._cache.get(key)
        if hit is not None and loop.time() - hit[0] < wait:
            return hit[1]
        task = self._reads.get(key)
        if task is None:
            # One read per key at a time, in its own task: every stale caller awaits it, and a
            # cancelled caller does not cancel it for the others.
            task = asyncio.ensure_future(self._fetch(key))
            task.add_done_callback(observe)
            task.add_done_callback(lambda done: self._forget(key, done))
            self._reads[key] = task
        return (await asyncio.shield(task))[1]

    async def _fetch(self, key: str) -> tuple[float, str | None]:
        started = asyncio.get_running_loop().time()
        raw = await self.redis.get(key)
        value = None if raw is None else text(raw)
        self._store(key, started, value)
        return started, value

    def _forget(self, key: str, task: asyncio.Task[tuple[float, str | None]]) -> None:
        if self._reads.get(key) is task:
            del self._reads[key]

    def _store(self, key: str, started: float, value: str | None) -> None:
        # A read sent before a write that has since completed must not undo it in the cache.
        hit = self._cache.get(key)
        if hit is None or hit[0] <= started:
            self._cache[key] = (started, value)


async def redis_from_config(
    config: Config, component: str, *, wait: float | None = None, **overrides: Any
) -> Redis:
    """Return a new ``redis.asyncio.Redis`` built from the settings stored for ``component``.

    The settings (``config.set_config("redis", component, {...})``) are keyword arguments of
    ``redis.asyncio.Redis`` (``host``, ``port``, ``db``, …) or a ``url`` with extra arguments;
    ``overrides`` win over stored values, so no keyword is ever passed twice (the book's
    ``redis_connection`` passed ``host`` twice). The caller owns, and closes, the client. Raises
    ``LookupError`` if nothing is stored. Redis in Action §5.4.2 (``redis_connection``).
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a Config, not {type(config).__name__}")
    settings = await config.get_config("redis", component, wait=wait, expect=dict)
    if settings is None:
        raise LookupError(f"no settings stored for redis component {component!r}")
    return redis_from_settings(settings, **overrides)


def redis_from_settings(settings: dict[str, Any], **overrides: Any) -> Redis:
    """A new ``redis.asyncio.Redis`` from stored settings (see :func:`redis_from_config`)."""
    options: dict[str, Any] = {**settings, **overrides}
    url = options.pop("url", None)
    if url is not None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        return Redis.from_url(url, **options)
    return Redis(**options)
