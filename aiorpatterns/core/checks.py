"""The argument checks every pattern makes before anything reaches Redis, and :func:`text`.

A bad argument raises the ``ValueError`` / ``TypeError`` family with a message naming it, before
the first command, so nothing is left half-written. Names of keys are checked by
:func:`aiorpatterns.core.keys.check_name`. :func:`text` is the other side of the boundary: every
reply read as ``str``, whatever the client's ``decode_responses``.
"""

from __future__ import annotations

import inspect
import json
import math
import operator
from typing import Any, Literal, TypeAlias, TypeVar, cast, overload

import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from .autopipeline import AutoPipeline
from .keys import Keyspace, check_name

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_SECONDS",
    "AsyncRedis",
    "check_callable",
    "check_client",
    "check_count",
    "check_flag",
    "check_float",
    "check_int",
    "check_keyspace",
    "check_object",
    "check_seconds",
    "check_text",
    "check_wait",
    "encode_json",
    "stream_entries",
    "text",
    "to_ms",
]

#: Longest duration accepted (about 31.7 years). In milliseconds and added to the server's clock
#: it stays well below 10**14, so Lua still reads and prints it as an exact integer.
MAX_SECONDS = 10**9

#: The range of a Redis integer (signed 64-bit): INCRBY, HINCRBY, ZADD's integers, counts, ids.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


#: What every pattern takes as its client: a ``redis.asyncio`` client, standalone or cluster, or
#: an :class:`~aiorpatterns.AutoPipeline` around either. Patterns never close it.
AsyncRedis: TypeAlias = Redis | RedisCluster | AutoPipeline

_SYNC_CLIENTS = (sync_redis.Redis, sync_redis.RedisCluster)

_T = TypeVar("_T")


def check_client(redis: object) -> AsyncRedis:
    """Return ``redis`` if it is a client the patterns can await; refuse anything else at once.

    A sync ``redis.Redis`` would fail only at the first ``await``, far from the mistake, so it is
    refused here with the class to pass instead. A wrapper whose ``execute_command`` is a
    coroutine function (one that delegates to an asyncio client) passes too.
    """
    if isinstance(redis, Redis | RedisCluster | AutoPipeline):
        return redis
    if inspect.iscoroutinefunction(getattr(redis, "execute_command", None)):
        return cast("AsyncRedis", redis)  # a wrapper that delegates to an asyncio client
    if isinstance(redis, _SYNC_CLIENTS):
        kind = "RedisCluster" if isinstance(redis, sync_redis.RedisCluster) else "Redis"
        raise TypeError(
            f"redis must be an asyncio client, not the synchronous redis.{kind}: "
            f"use `from redis.asyncio import {kind}`"
        )
    raise TypeError(
        "redis must be a redis.asyncio Redis or RedisCluster, or an aiorpatterns.AutoPipeline, "
        f"not {type(redis).__name__}"
    )


def check_keyspace(keyspace: object) -> Keyspace:
    """Return ``keyspace`` if it is a :class:`~aiorpatterns.Keyspace`."""
    if not isinstance(keyspace, Keyspace):
        raise TypeError(f"keyspace must be a Keyspace, not {type(keyspace).__name__}")
    return keyspace


def check_object(redis: object, name: object, keyspace: object) -> tuple[AsyncRedis, str, Keyspace]:
    """Check what every pattern object is made of: a client, a name and a keyspace."""
    return check_client(redis), check_name(name), check_keyspace(keyspace)


def check_int(
    value: object, what: str, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int:
    """Return a whole number in ``[minimum, maximum]`` (an ``int``, never a ``bool``).

    The one range check for every integer that reaches Redis: the default range is Redis's own
    (signed 64-bit), so a number Redis would refuse half-way through a step is refused first.
    """
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    try:
        number = int(operator.index(value))  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if number < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {number}")
    if number > maximum:
        raise ValueError(f"{what} must be at most {maximum}, got {number}")
    return number


def check_count(value: object, what: str, *, minimum: int = 1) -> int:
    """Return a whole number of at least ``minimum`` that fits a Redis integer."""
    return check_int(value, what, minimum=minimum)


def check_float(
    value: object, what: str, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """Return a finite number (``int`` or ``float``, never a ``bool``) as a double.

    The one check for every number that reaches a Redis float (ZADD and ZINCRBY scores,
    INCRBYFLOAT, GEO coordinates): no NaN, no infinity, and an ``int`` too large for a double
    is refused rather than rounded to infinity.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{what} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{what} must be at most {maximum}, got {value!r}")
    return number


def check_flag(value: object, what: str) -> bool:
    """Return a bool option (a truthy string or number is a mistake, not a yes)."""
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {type(value).__name__}")
    return value


def check_callable(value: _T, what: str, *, allow_none: bool = False) -> _T:
    """Return a callback option (``None`` passes when ``allow_none``)."""
    if value is None and allow_none:
        return value
    if not callable(value):
        alternative = " or None" if allow_none else ""
        raise TypeError(f"{what} must be callable{alternative}, not {type(value).__name__}")
    return value


@overload
def check_seconds(value: object, what: str, *, allow_none: Literal[False] = False) -> float: ...
@overload
def check_seconds(value: object, what: str, *, allow_none: bool) -> float | None: ...
def check_seconds(value: object, what: str, *, allow_none: bool = False) -> float | None:
    """Return a duration: a positive finite number of seconds up to :data:`MAX_SECONDS`.

    ``None`` passes when ``allow_none`` (meaning "for ever" to the caller).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive number of seconds, got {value!r}")
    if value > MAX_SECONDS:
        raise ValueError(f"{what} must be at most {MAX_SECONDS} seconds, got {value!r}")
    return float(value)


def check_wait(value: object, what: str = "timeout") -> float:
    """Return how long a call may wait or be delayed: finite seconds >= 0 (0: not at all)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def check_text(value: object, what: str, *, empty: bool = False) -> str:
    """Return ``value`` if it is a ``str`` (non-empty unless ``empty``)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value and not empty:
        raise ValueError(f"{what} must not be empty")
    return value


def text(value: Any) -> str:
    """A reply as ``str``, whatever the client's ``decode_responses``."""
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def to_ms(seconds: float) -> int:
    """Seconds to whole milliseconds, never below 1 (Redis rejects a zero expiry)."""
    return max(1, math.ceil(seconds * 1000))


def encode_json(value: object, what: str = "message") -> str:
    """Return ``value`` as compact JSON text; TypeError/ValueError if it is not JSON.

    JSON, never pickle; NaN and infinities are refused too, since other JSON readers reject them.
    """
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except TypeError as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from None
    except ValueError as exc:  # NaN / infinity, or a circular reference
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


def stream_entries(reply: Any) -> list[Any]:
    """The entries of an ``XREAD``/``XREADGROUP`` reply on one stream (RESP2 list or RESP3 dict)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        values = next(iter(reply.values()))
        return list(values[0] if values and isinstance(values[0], list) else values)
    return list(reply[0][1] or [])
