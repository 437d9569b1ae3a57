"""Compact encodings: what a key is stored as, what it costs, and when it stays compact.

Redis in Action §9.1 shrinks memory by keeping LISTs, HASHes and ZSETs short enough for the
ziplist encoding and SETs of integers small enough for the intset, and checks the result with
``DEBUG OBJECT``. Since Redis 7.0 ``DEBUG`` is disabled by default (``enable-debug-command no``)
and the names changed (``ziplist`` became ``listpack``), so this module does the same the modern
way:

- :func:`encoding` is ``OBJECT ENCODING`` (``listpack``, ``quicklist``, ``intset``,
  ``hashtable``, ``skiplist``, ...; ``ziplist``/``linkedlist`` only on Redis < 7);
- :func:`memory_usage` is ``MEMORY USAGE`` (bytes, where ``DEBUG OBJECT``'s ``serializedlength``
  was not a memory size);
- :func:`compact_limits` reads the thresholds with ``CONFIG GET`` under their ``*-max-listpack-*``
  names (Redis 7.0; the ``*-max-ziplist-*`` names remain aliases and are read on older servers),
  on every node of a cluster, which must agree;
- :meth:`CompactLimits.stays_compact` says whether a value of a given count and largest element
  would stay in a compact encoding under those limits.

Which encodings exist depends on the server: Redis 7.0 stores small HASHes and ZSETs as
``listpack`` but every LIST as a ``quicklist`` (a linked list of listpack nodes) and non-integer
SETs as a ``hashtable``; Redis 7.2 and Valkey add ``listpack`` LISTs (one node) and ``listpack``
SETs (``set-max-listpack-*``), which is how :attr:`CompactLimits.listpack_lists` tells them apart.

Keys are the caller's own (any key of any type); no :class:`~aiorpatterns.core.keys.Keyspace` is
involved. Bad arguments raise ``TypeError``/``ValueError`` before anything reaches Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from redis.asyncio.cluster import RedisCluster

from ..core.checks import AsyncRedis, check_client, check_count, check_flag, text
from ..core.errors import LimitsMismatchError

__all__ = [
    "COMPACT_ENCODINGS",
    "CompactLimits",
    "compact_limits",
    "encoding",
    "is_compact",
    "listpack_bytes",
    "memory_usage",
]

Kind = Literal["list", "hash", "zset", "set"]
_KINDS = ("list", "hash", "zset", "set")

#: The encoding names of a compact value, old and new.
COMPACT_ENCODINGS = frozenset({"listpack", "ziplist", "intset"})

#: Byte limits of one list node for ``list-max-listpack-size`` -1 .. -5.
_NODE_BYTES = (4096, 8192, 16384, 32768, 65536)
#: What a node holding a count limit (positive ``list-max-listpack-size``) may weigh at most.
_SIZE_SAFETY_LIMIT = 8192
#: A listpack's header (total bytes, element count) and its end byte.
_LISTPACK_OVERHEAD = 7

#: Setting of each :class:`CompactLimits` field: its name, then the alias older servers use.
_SETTINGS: dict[str, tuple[str, ...]] = {
    "list_max_listpack_size": ("list-max-listpack-size", "list-max-ziplist-size"),
    "hash_max_listpack_entries": ("hash-max-listpack-entries", "hash-max-ziplist-entries"),
    "hash_max_listpack_value": ("hash-max-listpack-value", "hash-max-ziplist-value"),
    "zset_max_listpack_entries": ("zset-max-listpack-entries", "zset-max-ziplist-entries"),
    "zset_max_listpack_value": ("zset-max-listpack-value", "zset-max-ziplist-value"),
    "set_max_intset_entries": ("set-max-intset-entries",),
    "set_max_listpack_entries": ("set-max-listpack-entries",),
    "set_max_listpack_value": ("set-max-listpack-value",),
}
#: Settings a server may lack (added in Redis 7.2, with listpack lists and sets).
_OPTIONAL = frozenset({"set_max_listpack_entries", "set_max_listpack_value"})


def _check_key(key: object) -> str | bytes:
    if not isinstance(key, str | bytes):
        raise TypeError(f"key must be a str or bytes, not {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    return key


async def encoding(redis: AsyncRedis, key: str | bytes) -> str | None:
    """Return the encoding of ``key`` (``OBJECT ENCODING``), or None if it does not exist.

    Redis in Action §9.1.1 read it from ``DEBUG OBJECT``, which Redis 7 disables by default.
    """
    check_client(redis)
    _check_key(key)
    reply = await redis.execute_command("OBJECT", "ENCODING", key)
    return None if reply is None else text(reply)


async def memory_usage(
    redis: AsyncRedis, key: str | bytes, *, samples: int | None = None
) -> int | None:
    """Return the bytes ``key`` and its value use (``MEMORY USAGE``), or None if it is absent.

    ``samples`` is how many nested elements to sample for an aggregate (Redis' default: 5;
    0 = all of them). Redis in Action §9.1.1 looked at ``serializedlength``, the size of the
    value's dump, not its memory.
    """
    check_client(redis)
    _check_key(key)
    args: tuple[Any, ...] = ()
    if samples is not None:
        args = ("SAMPLES", check_count(samples, "samples", minimum=0))
    reply = await redis.execute_command("MEMORY", "USAGE", key, *args)
    return None if reply is None else int(reply)


def is_compact(name: str | None) -> bool:
    """Whether an :func:`encoding` reply names a compact encoding (listpack, ziplist, intset)."""
    return name in COMPACT_ENCODINGS


def _entry_bytes(size: int) -> int:
    """The most bytes one listpack entry of a ``size``-byte string takes (header, data, back)."""
    header = 1 if size < 64 else 2 if size < 4096 else 5
    body = header + size
    back = 1 if body < 128 else 2 if body < 16384 else 3 if body < 2097152 else 4
    return body + (back if body < 268435456 else 5)


def listpack_bytes(count: int, max_size: int) -> int:
    """An upper bound of the bytes of a listpack of ``count`` strings of at most ``max_size``.

    Elements that look like integers are stored smaller, so the real size can only be lower.
    """
    count = check_count(count, "count", minimum=0)
    max_size = check_count(max_size, "max_size", minimum=0)
    return _LISTPACK_OVERHEAD + count * _entry_bytes(max_size)


@dataclass(frozen=True, slots=True)
class CompactLimits:
    """The thresholds below which Redis keeps a value in a compact encoding (``CONFIG GET``).

    ``list_max_listpack_size`` is per list node: a positive count of elements, or -1 .. -5 for
    4, 8, 16, 32 or 64 KB. The ``set_max_listpack_*`` limits are None on servers without
    listpack sets (before Redis 7.2).
    """

    list_max_listpack_size: int
    hash_max_listpack_entries: int
    hash_max_listpack_value: int
    zset_max_listpack_entries: int
    zset_max_listpack_value: int
    set_max_intset_entries: int
    set_max_listpack_entries: int | None = None
    set_max_listpack_value: int | None = None

    @property
    def listpack_lists(self) -> bool:
        """Whether short LISTs are plain listpacks (Redis 7.2+, Valkey), not 1-node quicklists.

        Redis 7.2 added listpack LISTs and listpack SETs together; this reads the second.
        """
        return self.set_max_listpack_entries is not None

    def list_node_fits(self, count: int, max_size: int) -> bool:
        """Whether ``count`` elements of at most ``max_size`` bytes fit in one list node.

        Conservative: True means they do; False means they may not (see :func:`listpack_bytes`).
        """
        size = listpack_bytes(count, max_size)
        fill = self.list_max_listpack_size
        if fill < 0:
            return size <= _NODE_BYTES[min(-fill, len(_NODE_BYTES)) - 1]
        return count <= max(fill, 1) and size <= _SIZE_SAFETY_LIMIT

    def stays_compact(
        self, kind: Kind, *, count: int, max_size: int, integers: bool = False
    ) -> bool:
        """Whether a ``kind`` value of ``count`` elements stays in a compact encoding.

        ``max_size`` is the byte length of its longest element (of a HASH: field or value; of a
        ZSET: member). ``integers`` says every SET member is a 64-bit integer in canonical
        decimal form (the intset). Values are assumed built the usual way, a few elements per
        command; a LIST "stays compact" when it fits one listpack node (encoded ``listpack`` on
        Redis 7.2+, a one-node ``quicklist`` on 7.0), and for it the answer is conservative.
        Redis in Action §9.1.1 (the ziplist and intset limits).
        """
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}, not {kind!r}")
        count = check_count(count, "count", minimum=0)
        max_size = check_count(max_size, "max_size", minimum=0)
        check_flag(integers, "integers")
        if kind == "list":
            return self.list_node_fits(count, max_size)
        if kind == "hash":
            return count <= self.hash_max_listpack_entries and (
                count == 0 or max_size <= self.hash_max_listpack_value
            )
        if kind == "zset":
            return count <= self.zset_max_listpack_entries and (
                count == 0 or max_size <= self.zset_max_listpack_value
            )
        if integers and count <= self.set_max_intset_entries:
            return True
        if integers or self.set_max_listpack_entries is None:
            # An intset that outgrows its limit becomes a hashtable, even where listpack sets
            # exist; without listpack sets every other SET is a hashtable.
            return False
        value = self.set_max_listpack_value
        return count <= self.set_max_listpack_entries and (
            count == 0 or value is None or max_size <= value
        )


def _parse(reply: Mapping[Any, Any]) -> dict[str, str]:
    return {text(name): text(value) for name, value in reply.items() if value is not None}


def _pick(config: Mapping[str, str]) -> dict[str, str | None]:
    picked: dict[str, str | None] = {}
    for attribute, names in _SETTINGS.items():
        picked[attribute] = next((config[n] for n in names if n in config), None)
    return picked


def _limits(picked: Mapping[str, str | None]) -> CompactLimits:
    values: dict[str, int | None] = {}
    for field in fields(CompactLimits):
        raw = picked[field.name]
        if raw is None and field.name not in _OPTIONAL:
            raise LookupError(f"the server has no {_SETTINGS[field.name][0]} setting")
        values[field.name] = None if raw is None else int(raw)
    return CompactLimits(**values)  # type: ignore[arg-type]


async def compact_limits(redis: AsyncRedis) -> CompactLimits:
    """Read the compact-encoding limits of the server (``CONFIG GET *-max-*``).

    On a cluster every node is asked and they must agree, else :class:`LimitsMismatchError`
    names the settings that differ and each node's value. Redis in Action §9.1.1 (the
    ``*-max-ziplist-*`` and ``set-max-intset-entries`` options).
    """
    check_client(redis)
    pattern = "*-max-*"
    if not isinstance(redis, RedisCluster):
        client: Any = redis  # redis-py leaves Redis.execute_command untyped
        return _limits(_pick(_parse(await client.execute_command("CONFIG GET", pattern))))
    by_node: dict[str, dict[str, str | None]] = {}
    for node in redis.get_nodes():
        reply = await redis.execute_command("CONFIG GET", pattern, target_nodes=node)
        by_node[node.name] = _pick(_parse(reply))
    if not by_node:
        raise LookupError("the cluster client knows no nodes")
    differences = {
        attribute: {node: picked[attribute] for node, picked in by_node.items()}
        for attribute in _SETTINGS
        if len({picked[attribute] for picked in by_node.values()}) > 1
    }
    if differences:
        raise LimitsMismatchError(differences)
    return _limits(next(iter(by_node.values())))
