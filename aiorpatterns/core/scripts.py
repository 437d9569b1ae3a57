"""Lua script registry: ``<family>/lua/<name>.lua`` files run by EVALSHA, reloaded on NOSCRIPT.

Each file starts with a header that lists its ``KEYS`` (``-- KEYS[1] name``, whose first word
names the key: :attr:`Script.key_names`; ``-- KEYS[3..8]`` a fixed run, ``-- KEYS[9..]`` any
number more: one key per word, location or skill), ``ARGV`` and return value. A line
``-- @include <name>`` inlines ``_<name>.lua`` (shared local functions), so a helper such as
the FIFO wait queue is written once.

Scripts run through redis-py's ``AsyncScript`` mechanics: EVALSHA first, SCRIPT LOAD and retry
when the server answers NOSCRIPT (after a restart or a ``SCRIPT FLUSH``), on a plain client, a
``RedisCluster`` (routed by the first key; SCRIPT LOAD reaches every primary) or a pipeline.
Every key a script touches is passed in ``KEYS``, so all of them share one hash slot on Redis
Cluster; the exceptions are keys named after a declared key they extend (same tag, same slot):
a waiter's wake list (``_waitqueue.lua``) and a step's receipt (``_once.lua``).

Every script that writes is safe to run twice with the same arguments, as redis-py's ``Retry``
and the cluster client do after a lost reply: the second run recognises the first from the data
(a token already holding, an item already gone) or from the step's receipt, leaves the state of
one run and answers as the first did. ``tests/test_retry_inventory.py`` checks that every writing
script has a test that runs it twice. Redis in Action §11.1 (``script_load``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from .checks import AsyncRedis

__all__ = ["Script", "script"]

_INCLUDE = re.compile(r"^-- @include (\w+)\s*$", re.MULTILINE)
_KEY_LINE = re.compile(r"^-- KEYS\[(\d+)(?:\.\.(\d+))?\]", re.MULTILINE)
_NAMED_KEY = re.compile(r"^-- KEYS\[(\d+)\] (\w+)", re.MULTILINE)
_OPEN_KEYS = re.compile(r"^-- KEYS\[[^\]]*\.\.(?!\d+\])", re.MULTILINE)
#: Clients that queue commands rather than run them: ``Script.__call__`` leaves them to redis-py.
_PIPELINES = (Pipeline, ClusterPipeline)


@dataclass(eq=False)
class Script:
    """One Lua script, callable on any redis.asyncio client: ``await s(client, keys, args)``."""

    name: str
    source: str = field(repr=False)
    nkeys: int
    variadic: bool = False
    #: The names of its single keys as its header gives them, in ``KEYS`` order (so a caller
    #: holding a family's keys by name passes each script only the keys it touches).
    key_names: tuple[str, ...] = ()
    _impl: AsyncScript = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Bytes, so AsyncScript hashes it without asking a client for an encoder.
        self._impl = AsyncScript(None, self.source.encode())  # type: ignore[arg-type]

    @property
    def sha(self) -> str:
        return str(self._impl.sha)

    async def __call__(
        self, client: AsyncRedis, keys: Sequence[str], args: Sequence[object] = ()
    ) -> Any:
        """Run the script (EVALSHA, loading it on NOSCRIPT) and return its raw reply.

        EVALSHA goes straight through ``execute_command``: ``AsyncScript.__call__`` re-imports
        the pipeline classes and rebuilds its arguments on every call, a cost every pattern
        would pay on every step. Pipelines keep ``AsyncScript``'s handling (see :meth:`queue`).
        """
        self._check_keys(keys)
        if isinstance(client, _PIPELINES):
            return await self._impl(keys=keys, args=args, client=client)  # type: ignore[arg-type]
        command: tuple[Any, ...] = ("EVALSHA", self.sha, len(keys), *keys, *args)
        try:
            return await client.execute_command(*command)
        except NoScriptError:  # a restarted or flushed server: load it (every primary), again
            await client.script_load(self.source)
            return await client.execute_command(*command)

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[object] = ()) -> None:
        """Queue the script on a pipeline; a standalone pipeline loads it before EXEC.

        On a cluster pipeline call :meth:`load` once beforehand.
        """
        self._check_keys(keys)
        if isinstance(pipe, Pipeline):
            pipe.scripts.add(self._impl)  # type: ignore[arg-type]
        # Not pipe.evalsha(): redis-py's ClusterPipeline blocks that method outright, though
        # it routes EVALSHA by its keys like any other command.
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    async def load(self, client: AsyncRedis) -> None:
        """SCRIPT LOAD on the server (every primary of a cluster)."""
        await client.script_load(self.source)

    def _check_keys(self, keys: Sequence[str]) -> None:
        if len(keys) < self.nkeys or (len(keys) > self.nkeys and not self.variadic):
            more = " or more" if self.variadic else ""
            raise TypeError(f"script {self.name} takes {self.nkeys}{more} keys, got {len(keys)}")


@cache
def scripts_by_name() -> dict[str, Traversable]:
    """Every Lua file of the package by name: each family keeps its scripts in its ``lua/``.

    Names are unique across families (``lock_acquire``, ``_once``), so a script or an include
    is found by its name alone, wherever its family keeps it.
    """
    found: dict[str, Traversable] = {}
    for family in resources.files("aiorpatterns").iterdir():
        folder = family.joinpath("lua")
        if not folder.is_dir():
            continue
        for file in folder.iterdir():
            if file.name.endswith(".lua"):
                name = file.name.removesuffix(".lua")
                if name in found:
                    raise RuntimeError(f"two Lua scripts named {name!r}: {family.name} and another")
                found[name] = file
    return found


def _read(name: str) -> str:
    try:
        return scripts_by_name()[name].read_text()
    except KeyError:
        raise FileNotFoundError(f"no Lua script named {name!r} in any family's lua/") from None


def _expand(source: str) -> str:
    """Inline ``-- @include`` lines, including those inside included files."""
    while _INCLUDE.search(source):
        source = _INCLUDE.sub(lambda m: _read(f"_{m.group(1)}"), source)
    return source


@cache
def script(name: str) -> Script:
    """Return the registered script ``<name>.lua`` of any family (loaded once per process)."""
    raw = _read(name)
    nkeys = max((int(last or first) for first, last in _KEY_LINE.findall(raw)), default=0)
    variadic = _OPEN_KEYS.search(raw) is not None
    named = sorted((int(i), key) for i, key in _NAMED_KEY.findall(raw))
    return Script(
        name=name,
        source=_expand(raw),
        nkeys=nkeys,
        variadic=variadic,
        key_names=tuple(key for _, key in named),
    )
