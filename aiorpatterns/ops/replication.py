"""Wait until replicas have a master's writes: WAIT, WAITAOF, and the book's marker wait.

Redis in Action §4.2.4 (``wait_for_sync``) adds a token to a ZSET on the master, polls the replica
every millisecond until the token shows up, then polls ``aof_pending_bio_fsync`` for up to a
second. Its first loop is inverted (``while not x != 'up'`` spins while the link is *up*, so it
hangs on a healthy replica and skips the wait on a broken one), the fsync step raises
``KeyError`` when AOF is off, nothing bounds the waits, and stale tokens linger 900 s.

Today the server does this itself. :func:`wait_for_replicas` runs ``WAIT`` and
:func:`wait_for_aof` runs ``WAITAOF`` (Redis >= 7.2, Valkey), each right after a marker write on
the *same connection*: ``WAIT`` only covers writes made on the connection that sends it, and a
pooled client may hand the caller's earlier write and the ``WAIT`` to different connections.
Replication is one ordered stream per master, so once a replica acknowledges the marker it has
every write the master took before it, from any client. On Redis Cluster pass ``key=``: the
marker goes to that key's slot, so the wait runs on the master that owns the key.

:func:`wait_for_sync` is the book's variant for a master and one replica you address directly,
fixed: the marker is the master's replication offset just after the call starts (no key, so it
works on cluster nodes too), the replica is polled with backed-off ``INFO replication`` until it
has processed that offset, a replica that follows no master or another one is reported with
:class:`ReplicaNotAttachedError`, and every step is bounded by ``timeout``.

Keys: ``<prefix>:sync:{<tag>}`` (a STRING marker with a one-minute TTL; ``<tag>`` is the hash
tag of ``key=``, or ``wait``).

Retry safety: the marker is a SET of a constant and WAIT/WAITAOF only wait, so a re-sent step
changes nothing more.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from ..core.checks import (
    AsyncRedis,
    check_client,
    check_count,
    check_flag,
    check_keyspace,
    check_seconds,
)
from ..core.errors import ReplicaNotAttachedError, ReplicationError, SyncTimeoutError
from ..core.keys import DEFAULT_KEYSPACE, Keyspace

__all__ = [
    "AofAcks",
    "supports_waitaof",
    "wait_for_aof",
    "wait_for_replicas",
    "wait_for_sync",
]

#: Lifetime of the marker key (ms): long enough to outlive any wait, short enough to vanish.
_MARKER_TTL_MS = 60_000
#: Extra time (s) the client grants the server past a WAIT's own timeout before giving up.
_GRACE = 2.0
#: Polling of the replica's INFO: first pause and longest pause (s).
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


@dataclass(frozen=True, slots=True)
class AofAcks:
    """What ``WAITAOF`` reports: local AOF fsynced (0 or 1) and replicas that fsynced."""

    local: int
    replicas: int


def _is_cluster(redis: object) -> bool:
    return isinstance(redis, RedisCluster)


def _hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: its ``{tag}`` if it has one, else all of it."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    if "}" in key:
        # Our marker wraps the text in {...}: a '}' inside would cut the tag short.
        raise ValueError(f"key {key!r} has a '}}' outside a hash tag: cannot address its slot")
    return key


def _marker(redis: AsyncRedis, key: object, keyspace: object) -> str:
    keyspace = check_keyspace(keyspace)
    if key is None:
        if _is_cluster(redis):
            raise ValueError("on Redis Cluster pass key=: the key whose master must be waited on")
        return keyspace.key("sync", "wait")
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    return keyspace.key("sync", _hash_tag(key))


def _millis(timeout: float) -> int:
    return max(1, math.ceil(timeout * 1000))


async def _marked(redis: Any, marker: str, command: tuple[object, ...], seconds: float) -> Any:
    """Write ``marker`` then run ``command`` on the same connection; return its reply."""
    for _ in range(3):  # a slot that moves between routing and sending is retried
        pipe = redis.pipeline(transaction=False)
        pipe.set(marker, "1", px=_MARKER_TTL_MS)
        if _is_cluster(redis):
            node = redis.get_node_from_key(marker)
            pipe.execute_command(*command, target_nodes=node)
        else:
            pipe.execute_command(*command)
        # The server answers by its own timeout; ours only catches a server that went silent.
        async with asyncio.timeout(seconds + _GRACE):
            replies = await pipe.execute()
        if not _is_cluster(redis) or redis.get_node_from_key(marker) is node:
            return replies[-1]
    raise ReplicationError(f"the slot of {marker!r} kept moving: retry later")


async def wait_for_replicas(
    redis: AsyncRedis,
    replicas: int,
    timeout: float,  # noqa: ASYNC109 (the server's WAIT timeout, not a client-side one)
    *,
    key: str | None = None,
    keyspace: Keyspace = DEFAULT_KEYSPACE,
) -> int:
    """Wait until ``replicas`` replicas have every write made so far; return how many did.

    Returns as soon as ``replicas`` acknowledged, or after ``timeout`` seconds with the number
    that did (possibly 0: compare, never assume). On Redis Cluster, ``key`` picks the master.
    Redis in Action §4.2.4 (``wait_for_sync``), done with ``WAIT``.
    """
    check_client(redis)
    wanted = check_count(replicas, "replicas")
    seconds = check_seconds(timeout, "timeout")
    assert seconds is not None
    marker = _marker(redis, key, keyspace)
    reply = await _marked(redis, marker, ("WAIT", wanted, _millis(seconds)), seconds)
    return int(reply)


async def wait_for_aof(
    redis: AsyncRedis,
    replicas: int,
    timeout: float,  # noqa: ASYNC109 (the server's WAIT timeout, not a client-side one)
    *,
    local: bool = False,
    key: str | None = None,
    keyspace: Keyspace = DEFAULT_KEYSPACE,
) -> AofAcks:
    """Wait until every write so far is fsynced to the AOF of ``replicas`` replicas (and here).

    ``local=True`` also waits for the master's own AOF (which must be enabled). Needs
    ``WAITAOF`` (Redis >= 7.2, Valkey); :class:`ReplicationError` says so otherwise. Returns
    what was acknowledged when it was enough or ``timeout`` ran out. Redis in Action §4.2.4
    (``aof_pending_bio_fsync``), done with ``WAITAOF``.
    """
    check_client(redis)
    wanted = check_count(replicas, "replicas", minimum=0)
    check_flag(local, "local")
    if not local and wanted == 0:
        raise ValueError("nothing to wait for: ask for replicas >= 1 or local=True")
    seconds = check_seconds(timeout, "timeout")
    assert seconds is not None
    marker = _marker(redis, key, keyspace)
    command = ("WAITAOF", int(local), wanted, _millis(seconds))
    try:
        reply = await _marked(redis, marker, command, seconds)
    except ResponseError as exc:
        message = str(exc)
        if "unknown command" in message.lower():
            raise ReplicationError("WAITAOF needs Redis >= 7.2 or Valkey") from exc
        raise ReplicationError(f"WAITAOF refused: {message}") from exc
    acked_local, acked_replicas = reply
    return AofAcks(int(acked_local), int(acked_replicas))


async def supports_waitaof(redis: AsyncRedis) -> bool:
    """Whether the server knows ``WAITAOF`` (Redis >= 7.2, Valkey).

    Asks with a ``WAITAOF 0 0 1``, which waits for nothing.
    """
    check_client(redis)
    try:
        await redis.execute_command("WAITAOF", 0, 0, 1)
    except ResponseError as exc:
        return "unknown command" not in str(exc).lower()
    return True


def _offset(info: dict[str, Any]) -> int:
    """The replica's processed replication offset, whatever the engine calls it."""
    for field in ("slave_repl_offset", "replica_repl_offset", "master_repl_offset"):
        if field in info:
            return int(info[field])
    return -1


async def wait_for_sync(
    master: AsyncRedis,
    replica: AsyncRedis,
    timeout: float = 5.0,  # noqa: ASYNC109 (bounds the polling, and names the error)
    *,
    fsync: bool = False,
) -> None:
    """Wait until ``replica`` has processed every write ``master`` took before this call.

    ``master`` and ``replica`` are plain clients of the two servers (cluster nodes included).
    With ``fsync``, also wait until the replica has no AOF fsync pending (nothing to wait for
    when its AOF is off). Raises :class:`ReplicaNotAttachedError` if the replica is not one, is
    disconnected, or follows another master, and :class:`SyncTimeoutError` if it is attached
    but still behind after ``timeout`` seconds. Redis in Action §4.2.4 (``wait_for_sync``).
    """
    check_client(master)
    check_client(replica)
    for name, client in (("master", master), ("replica", replica)):
        if _is_cluster(client):
            raise TypeError(f"{name} must be a client of one server, not a RedisCluster")
    seconds = check_seconds(timeout, "timeout")
    assert seconds is not None
    check_flag(fsync, "fsync")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    async with asyncio.timeout(seconds + _GRACE):  # a server that stops answering
        state = await replica.info("replication")
        if state.get("role") != "slave":
            raise ReplicaNotAttachedError(
                f"the replica is not a replica (role: {state.get('role')!r})"
            )
        mine = await master.info("replication")
        target, replid = int(mine["master_repl_offset"]), str(mine["master_replid"])
        pause = _FIRST_PAUSE
        while True:
            link = state.get("master_link_status")
            followed = str(state.get("master_replid"))
            if link == "up" and followed == replid and _offset(state) >= target:
                break
            left = deadline - loop.time()
            if left <= 0:
                if link != "up":
                    raise ReplicaNotAttachedError(
                        f"the replica's link to its master is {link!r} after {seconds} s"
                    )
                if followed != replid:
                    raise ReplicaNotAttachedError(
                        "the replica follows another master (replication id "
                        f"{followed} is not the master's {replid})"
                    )
                raise SyncTimeoutError(
                    f"the replica reached offset {_offset(state)} of {target} in {seconds} s"
                )
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, _LONGEST_PAUSE)
            state = await replica.info("replication")
        if fsync:
            await _wait_fsynced(replica, deadline, seconds)


async def _wait_fsynced(replica: AsyncRedis, deadline: float, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    pause = _FIRST_PAUSE
    while True:
        persistence = await replica.info("persistence")
        if not int(persistence.get("aof_enabled", 0)):
            return  # no AOF: nothing will ever be fsynced, and nothing is pending
        if int(persistence.get("aof_pending_bio_fsync", 0)) == 0:
            return
        left = deadline - loop.time()
        if left <= 0:
            raise SyncTimeoutError(f"the replica still had an AOF fsync pending after {seconds} s")
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_PAUSE)
