"""Clients built from stored settings, one per component, rebuilt when the settings change.

Redis in Action §5.4.3 (``redis_connection``) decorates a function so that it gets a connection
for a named component, built from the settings under ``config:redis:<component>`` and rebuilt
whenever those settings change (read through the §5.4.2 cache, at most once a second). Its
faults: a module-global cache of connections, a hard-coded ``host=`` passed beside the settings
(so a config with a host raises), and the old connection simply dropped, whatever was still
using it. :class:`RedisConnections` owns its clients: one per component, built by
:func:`~aiorpatterns.ops.config.redis_from_settings`, rebuilt when the stored settings differ
from those it was built with (compared as values, read through :class:`~aiorpatterns.Config`'s
cache); a replaced client is closed after ``grace`` seconds, so commands already running on it
finish. Concurrent callers of a component whose client is (re)built share that one build.
:meth:`RedisConnections.connection` is the book's decorator.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from redis.asyncio import Redis

from ..core.checks import check_wait
from ..core.keys import check_name
from .config import Config, redis_from_settings

__all__ = ["RedisConnections"]

P = ParamSpec("P")
R = TypeVar("R")


class RedisConnections:
    """The clients of ``config``'s ``redis`` components (Redis in Action §5.4.3)."""

    def __init__(self, config: Config, *, wait: float | None = None, grace: float = 5.0) -> None:
        if not isinstance(config, Config):
            raise TypeError(f"config must be a Config, not {type(config).__name__}")
        self.config = config
        self.wait = None if wait is None else check_wait(wait, "wait")
        self.grace = check_wait(grace, "grace")
        self._clients: dict[str, tuple[str, Redis]] = {}
        self._builds: dict[str, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def get(self, component: str) -> Redis:
        """The client of ``component``: the current one, or one built from changed settings."""
        check_name(component, "component")
        settings = await self.config.get_config("redis", component, wait=self.wait, expect=dict)
        if settings is None:
            raise LookupError(f"no settings stored for redis component {component!r}")
        stamp = json.dumps(settings, sort_keys=True)
        current = self._clients.get(component)
        if current is not None and current[0] == stamp:
            return current[1]
        async with self._builds.setdefault(component, asyncio.Lock()):
            current = self._clients.get(component)
            if current is not None and current[0] == stamp:
                return current[1]  # built by a concurrent caller meanwhile
            client = redis_from_settings(settings)
            self._clients[component] = (stamp, client)
            if current is not None:
                self._retire(current[1])
            return client

    def connection(
        self, component: str
    ) -> Callable[[Callable[Concatenate[Redis, P], Awaitable[R]]], Callable[P, Awaitable[R]]]:
        """Decorate an async function so it gets ``component``'s client as its first argument.

        Redis in Action §5.4.3 (``redis_connection``).
        """
        check_name(component, "component")

        def decorate(
            func: Callable[Concatenate[Redis, P], Awaitable[R]],
        ) -> Callable[P, Awaitable[R]]:
            @functools.wraps(func)
            async def call(*args: P.args, **kwargs: P.kwargs) -> R:
                return await func(await self.get(component), *args, **kwargs)

            return call

        return decorate

    def _retire(self, client: Redis) -> None:
        """Close a replaced client after the grace period (commands on it finish first)."""

        async def close() -> None:
            await asyncio.sleep(self.grace)
            await client.aclose()

        task = asyncio.get_running_loop().create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every client this object built, replaced ones included, now."""
        for task in list(self._closing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        clients = [client for _, client in self._clients.values()]
        self._clients.clear()
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> RedisConnections:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
