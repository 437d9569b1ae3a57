"""Run-twice tests: a client that sends every script call twice, and a keyspace comparison.

redis-py's ``Retry`` (and the cluster client, on MOVED/ASK and connection errors) re-sends an
``EVALSHA`` whose reply was lost, with the same arguments. :class:`TwiceRedis` and
:class:`TwiceCluster` make that certain: every ``EVALSHA``/``EVAL`` runs twice and the caller keeps
the second reply. :func:`assert_retry_safe` runs one scenario through a plain client and through a
doubling one, and compares what the caller saw and what the keyspace holds afterwards: a script
that is safe to run twice leaves the state of one run (DESIGN, "Retry safety").

A test marks the scripts it proves with ``@pytest.mark.retry_safe("name", ...)``; the
``twice_client`` fixture then checks that each of them really ran twice, and
``test_retry_inventory.py`` checks that every writing script has such a test.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from aiorpatterns.core.scripts import script, scripts_by_name

_DOUBLED = frozenset({"EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO"})


@cache
def script_names() -> dict[str, str]:
    """Every registered script by its SHA1 (includes excluded)."""
    return {script(n).sha: n for n in scripts_by_name() if not n.startswith("_")}


class _Twice:
    """Mixin: every script call is sent twice; the caller gets the second reply."""

    doubled: Counter[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if name.upper() in _DOUBLED:
            # A failure of the first send is what the caller would see (no retry follows an
            # error reply); a success is followed by the retry whose reply the caller keeps.
            await super().execute_command(*args, **options)  # type: ignore[misc]
            sha = args[1].decode() if isinstance(args[1], bytes) else str(args[1])
            self.doubled[script_names().get(sha, sha)] += 1
        return await super().execute_command(*args, **options)  # type: ignore[misc]


class TwiceRedis(_Twice, Redis):
    """A standalone client that sends every script call twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.doubled = Counter()


class TwiceCluster(_Twice, RedisCluster):
    """A cluster client that sends every script call twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.doubled = Counter()


_TOKEN = re.compile(r"\b[0-9a-f]{32}\b|\b[0-9a-f]{16,}\b")
_STREAM_ID = re.compile(r"\b\d{10,}-\d+\b")
_BIG = re.compile(r"\b\d{10,}(\.\d+)?\b")
#: A big number in exponent form: Valkey's shortest round-trip doubles print a time as
#: '1.796456536398182e+9' where Redis prints '1796456536.3981819' (masked before _TOKEN, whose
#: hex digits would otherwise take '796456536398182e').
_BIG_EXP = re.compile(r"\b\d(\.\d+)?e\+?(9|[1-9]\d+)\b")


def plain(value: Any) -> Any:
    """A reply or a result with what differs between two runs masked: tokens, times, ids."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        value = _BIG_EXP.sub("<n>", value)
        return _BIG.sub("<n>", _STREAM_ID.sub("<id>", _TOKEN.sub("<token>", value)))
    if isinstance(value, float) and math.isfinite(value) and abs(value) >= 1e9:
        return "<n>"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**9:
        return "<n>"
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=repr)
    return value


async def snapshot(client: Any, match: str = "aiorp:*") -> dict[str, Any]:
    """What the keyspace holds: each key's type, whether it expires, and its content, masked.

    Keys whose names differ only in a masked token (receipts, wake lists) share one masked
    name: their entries are kept side by side, sorted, so none hides another.
    """
    found: dict[str, list[Any]] = {}
    async for raw in client.scan_iter(match=match, count=1000):
        key = raw.decode() if isinstance(raw, bytes) else raw
        kind = await client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        content = await _content(client, key, kind)
        if content is None:
            continue  # gone between SCAN and the read: expired
        expires = await client.pttl(key) > 0
        found.setdefault(plain(key), []).append((kind, expires, plain(content)))
    return {key: sorted(entries, key=repr) for key, entries in found.items()}


async def _content(client: Any, key: str, kind: str) -> Any:
    if kind == "string":
        return await client.get(key)
    if kind == "list":
        return await client.lrange(key, 0, -1)
    if kind == "hash":
        return sorted((plain(k), plain(v)) for k, v in (await client.hgetall(key)).items())
    if kind == "set":
        return sorted(plain(v) for v in await client.smembers(key))
    if kind == "zset":
        return [(plain(m), plain(s)) for m, s in await client.zrange(key, 0, -1, withscores=True)]
    if kind == "stream":
        return [plain(fields) for _, fields in await client.xrange(key)]
    return None  # "none": expired meanwhile


async def assert_retry_safe(
    client: Any,
    twice: Any,
    scenario: Callable[[Any], Awaitable[Any]],
    *,
    same: Callable[[Any], Any] = plain,
    match: str = "aiorp:*",
) -> Any:
    """Run ``scenario`` once normally and once with every script doubled; compare both.

    ``scenario(client)`` builds its objects on the client it is given and returns what its
    caller saw; ``same`` masks what may differ between two honest runs (default :func:`plain`).
    Between the runs every key under ``match`` is deleted. Returns the single run's result.
    """
    once = await scenario(client)
    state_once = await snapshot(client, match)
    await _clear(client, match)
    doubled = await scenario(twice)
    state_twice = await snapshot(client, match)
    assert twice.doubled, "the scenario ran no script"
    assert same(doubled) == same(once), (
        f"the caller saw something else when scripts ran twice: {doubled!r}, once {once!r}"
    )
    assert state_twice == state_once, _diff(state_once, state_twice)
    return once


async def _clear(client: Any, match: str) -> None:
    keys = [key async for key in client.scan_iter(match=match, count=1000)]
    for key in keys:
        await client.unlink(key)


def _diff(once: dict[str, Any], twice: dict[str, Any]) -> str:
    lines = ["the keyspace differs after running every script twice:"]
    for key in sorted(set(once) | set(twice)):
        if once.get(key) != twice.get(key):
            lines.append(
                f"  {key}: once {once.get(key)!r}\n  {' ' * len(key)}  twice {twice.get(key)!r}"
            )
    return "\n".join(lines)
