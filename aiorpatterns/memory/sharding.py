"""Sharded structures: a HASH or a SET spread over small ones, a LIST spread over small lists.

Redis in Action §9.2.1 packs many small values into hashes of about ``shard_size`` fields so
each stays in the compact encoding; §11.4 spreads one logical list over many small LISTs with
Lua. Here the shard of a key is a stable CRC-32 (the same in every process, unlike ``hash()``),
each hash shard is its own cluster object (shards spread over slots), and every key of one
sharded list shares one hash tag, with every key a script touches declared in ``KEYS``.

Retries: each push and pop call carries a token made here, and the script keeps its reply under
it (``_once.lua``), so a call re-sent after a lost reply answers the same and pushes or pops
nothing more. A pop that is cancelled or fails is given back by its token: the server answers
what that pop took (or refuses it for good if it has not run yet), and the item is pushed back.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import Iterable
from typing import Any, Literal

from ..core.cancellation import best_effort, cancelling, honour_cancel, observe, shielded
from ..core.checks import AsyncRedis, check_count, check_object, check_wait, text
from ..core.keys import DEFAULT_KEYSPACE, Keyspace
from ..core.scripts import script
from ..core.waiting import MAX_WAIT_SLICE, blocking_cap
from ..core.wakeup import signal_wait

__all__ = ["ShardedHash", "ShardedList", "ShardedSet", "shard_of"]

Side = Literal["left", "right"]
#: Where a :class:`ShardedHash` puts a key: by CRC-32, or as the book's ``shard_key`` does.
Placement = Literal["crc32", "book"]
_SIGNAL_MS = 5000


def _field(key: object) -> str:
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise TypeError(f"key must be a str or int, not {type(key).__name__}")
    return key if isinstance(key, str) else str(key)


def _check_value(value: object) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"value must be a str, int or float, not {type(value).__name__}")
    return value


def _shard_count(total_elements: object, shard_size: int) -> int:
    """``ceil(2 * total_elements / shard_size)`` shards, at least one (Redis in Action §9.2.1)."""
    total = check_count(total_elements, "total_elements")
    return max(1, -(-2 * total // shard_size))


def shard_of(key: str | int, *, shards: int) -> int:
    """Return the shard of ``key``: CRC-32 of its UTF-8 text modulo ``shards``.

    Redis in Action §9.2.1 (``shard_key``), with a hash that is stable across processes.
    """
    field = _field(key)
    return zlib.crc32(field.encode()) % check_count(shards, "shards")


class ShardedHash:
    """A HASH named ``name`` spread over ``ceil(2 * total_elements / shard_size)`` small hashes.

    Redis in Action §9.2.1 (``shard_hset``/``shard_hget``). The shard count is fixed by
    ``total_elements``: changing it moves keys, so keep it constant for one hash.
    ``placement="book"`` is the book's ``shard_key`` exactly: a numeric key (an ``int`` or a
    string of digits) goes to shard ``key // shard_size``, so sequential ids fill one small hash
    after another (as many shards as the ids need), any other key to its CRC-32 shard;
    ``"crc32"`` (the default) spreads every key by its CRC-32.
    """

    kind = "shash"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        total_elements: int,
        shard_size: int = 512,
        placement: Placement = "crc32",
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        self.shard_size = check_count(shard_size, "shard_size")
        self.shards = _shard_count(total_elements, self.shard_size)
        if placement not in ("crc32", "book"):
            raise ValueError(f"placement must be 'crc32' or 'book', not {placement!r}")
        self.placement = placement

    def shard_number(self, key: str | int) -> int:
        """The shard of ``key`` (see the class docstring for the two placements)."""
        field = _field(key)
        if self.placement == "book" and field.isascii() and field.isdigit():
            return int(field) // self.shard_size
        return shard_of(field, shards=self.shards)

    def shard_key(self, key: str | int) -> str:
        """Return the Redis key of the shard holding ``key`` (its own hash tag)."""
        return self.keyspace.key(self.kind, f"{self.name}:{self.shard_number(key)}")

    async def set(self, key: str | int, value: str | int | float) -> bool:
        """Set ``key`` to ``value``; True if the key is new. Redis in Action §9.2.1."""
        shard = self.shard_key(key)
        return bool(await self.redis.hset(shard, _field(key), _check_value(value)))

    async def get(self, key: str | int) -> str | None:
        """Return the value of ``key``, or None. Redis in Action §9.2.1."""
        shard, field = self.shard_key(key), _field(key)
        value = await self.redis.hget(shard, field)
        return None if value is None else text(value)

    async def set_many(self, items: Iterable[tuple[str | int, str | int | float]]) -> int:
        """Set every ``(key, value)`` pair; return how many keys were new.

        All pairs are checked before anything is written, then one pipeline sends one
        ``HSET`` per shard (each shard's fields at once). Not atomic across shards; setting
        the same pairs again leaves the same state. Redis in Action §9.2.1 (the sharded
        ``import_cities_to_redis``).
        """
        if isinstance(items, str | bytes) or not isinstance(items, Iterable):
            raise TypeError("items must be an iterable of (key, value) pairs")
        by_shard: dict[str, dict[Any, Any]] = {}
        for pair in items:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError("items must be (key, value) pairs")
            key, value = pair
            _check_value(value)
            by_shard.setdefault(self.shard_key(key), {})[_field(key)] = value
        if not by_shard:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard, mapping in by_shard.items():
                pipe.hset(shard, mapping=mapping)
            return sum(int(n) for n in await pipe.execute())


class ShardedSet:
    """A SET named ``name`` spread over ``ceil(2 * total_elements / shard_size)`` small sets.

    Redis in Action §9.2.1 (``shard_sadd``): a member's shard is the CRC-32 of ``"x"`` and its
    text (the book's prefix, so numeric members spread instead of filling one shard after
    another), and each small set of integers stays an intset. Each shard is its own cluster
    object. ``SADD`` and ``SREM`` of the same member twice leave the state of once.
    """

    kind = "sset"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        total_elements: int,
        shard_size: int = 512,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        self.shards = _shard_count(total_elements, check_count(shard_size, "shard_size"))

    def shard_key(self, member: str | int) -> str:
        """The Redis key of the small set holding ``member`` (its own hash tag)."""
        number = shard_of("x" + _field(member), shards=self.shards)
        return self.keyspace.key(self.kind, f"{self.name}:{number}")

    async def sadd(self, member: str | int) -> bool:
        """Add ``member``; True if it is new. Redis in Action §9.2.1 (``shard_sadd``)."""
        return bool(await self.redis.sadd(self.shard_key(member), _field(member)))

    async def sismember(self, member: str | int) -> bool:
        """Whether ``member`` is in the set."""
        return bool(await self.redis.sismember(self.shard_key(member), _field(member)))

    async def srem(self, member: str | int) -> bool:
        """Remove ``member``; True if it was there."""
        return bool(await self.redis.srem(self.shard_key(member), _field(member)))

    async def scard(self) -> int:
        """How many members, over every shard (one ``SCARD`` each, concurrently)."""
        keys = [self.keyspace.key(self.kind, f"{self.name}:{n}") for n in range(self.shards)]
        return sum(await asyncio.gather(*(self.redis.scard(k) for k in keys)))


class ShardedList:
    """A LIST named ``name`` spread over LISTs of at most ``chunk_size`` items.

    Redis in Action §11.4. ``meta`` holds the end shards and the exact length; blocking pops wait
    on a wake-up list for at most a slice, then re-check (no DUMMY values in the data).
    A cancelled pop gives its item back to the end it came from; pushes are shielded.
    """

    kind = "slist"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str,
        *,
        chunk_size: int = 512,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        self.chunk_size = check_count(chunk_size, "chunk_size")
        self.meta_key = keyspace.key(self.kind, name, "meta")
        self.signal_key = keyspace.key(self.kind, name, "signal")
        self._ends = [0, 0]

    def _shard(self, number: int) -> str:
        return self.keyspace.key(self.kind, self.name, str(number))

    async def lpush(self, *items: str | int | float) -> int:
        """Push items on the left; return the length. Redis in Action §11.4."""
        return await shielded(self._push("left", self._items(items)))

    async def rpush(self, *items: str | int | float) -> int:
        """Push items on the right; return the length. Redis in Action §11.4."""
        return await shielded(self._push("right", self._items(items)))

    @staticmethod
    def _items(items: tuple[object, ...]) -> list[object]:
        if not items:
            raise ValueError("items: push at least one item")
        for item in items:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise TypeError(f"items must be str, int or float, not {type(item).__name__}")
        return list(items)

    async def _push(self, side: Side, items: list[object], token: str | None = None) -> int:
        """Push ``items``, in as many calls as the declared shards need.

        Each call that pushes has its own token, ``<token>.<n>`` for the n-th call that pushed:
        a re-sent call finds its receipt, and so does a whole push repeated with the same
        ``token`` (a give-back tried again), which then pushes each item once.
        """
        base = uuid.uuid4().hex if token is None else token
        calls = 0
        step = -1 if side == "left" else 1
        length = 0
        while items:
            guess = self._ends[0 if side == "left" else 1]
            need = len(items) // self.chunk_size + 2
            keys = [self.meta_key, self.signal_key]
            keys += [self._shard(guess + step * k) for k in range(need)]
            args = [side, guess, self.chunk_size, _SIGNAL_MS, f"{base}.{calls}", *items]
            pushed, first, last, length = (
                int(x) for x in await script("shard_list_push")(self.redis, keys, args)
            )
            self._ends = [first, last]
            if pushed > 0:
                del items[:pushed]
                calls += 1
        return length

    async def llen(self) -> int:
        """Return the exact number of items. Redis in Action §11.4 (``sharded_llen``)."""
        return int(await self.redis.hget(self.meta_key, "count") or 0)

    async def lpop(self) -> str | None:
        """Pop the leftmost item, or None. Redis in Action §11.4."""
        return await self._pop("left")

    async def rpop(self) -> str | None:
        """Pop the rightmost item, or None. Redis in Action §11.4."""
        return await self._pop("right")

    async def _pop(self, side: Side) -> str | None:
        token = uuid.uuid4().hex
        step = asyncio.ensure_future(self._pop_step(side, token))
        try:
            return await asyncio.shield(step)
        except BaseException:
            # Cancelled, or the pop's reply never came (it may have run): give back by token.
            step.add_done_callback(observe)  # its outcome is the give-back's now
            await best_effort(lambda: self._give_back(side, token))
            raise

    async def _give_back(self, side: Side, token: str) -> None:
        """Push back what the pop with ``token`` took, if it took anything, exactly once.

        The server answers that pop's receipt, or leaves one saying "nothing" so the pop, if it
        is still on its way, takes nothing. The push back is keyed by the same token, so trying
        this again (best_effort's second try) pushes the item once.
        """
        keys = [self.meta_key, self.signal_key, self._shard(0)]
        reply = await script("shard_list_pop")(self.redis, keys, [side, 0, token, "abandon"])
        if int(reply[0]) == 1:
            await self._push(side, [text(reply[1])], token=f"{token}:back")

    async def _pop_step(self, side: Side, token: str) -> str | None:
        while True:
            guess = self._ends[0 if side == "left" else 1]
            keys = [self.meta_key, self.signal_key, self._shard(guess)]
            args = [side, guess, token, "pop"]
            reply = await script("shard_list_pop")(self.redis, keys, args)
            code = int(reply[0])
            if code == 1:
                self._ends = [int(reply[2]), int(reply[3])]
                return text(reply[1])
            self._ends = [int(reply[1]), int(reply[2])]
            if code == 0:
                return None

    async def blpop(self, *, timeout: float | None = None) -> str | None:  # noqa: ASYNC109
        """Pop the leftmost item, waiting up to ``timeout`` seconds (None: forever).

        Redis in Action §11.4 (``sharded_blpop``), without sentinel values.
        """
        return await self._bpop("left", timeout)

    async def brpop(self, *, timeout: float | None = None) -> str | None:  # noqa: ASYNC109
        """Pop the rightmost item, waiting up to ``timeout`` seconds (None: forever).

        Redis in Action §11.4 (``sharded_brpop``).
        """
        return await self._bpop("right", timeout)

    async def _bpop(self, side: Side, timeout: float | None) -> str | None:  # noqa: ASYNC109
        if timeout is not None:
            timeout = check_wait(timeout, "timeout")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        cap = blocking_cap(self.redis)
        current, cancels = cancelling()
        while True:
            item = await self._pop(side)
            if item is not None:
                return item
            honour_cancel(current, cancels)
            pause = MAX_WAIT_SLICE if cap is None else min(cap, MAX_WAIT_SLICE)
            if deadline is not None:
                left = deadline - loop.time()
                if left < 0.001:
                    return None
                pause = min(pause, left)
            await signal_wait(self.redis, self.signal_key, pause)  # shared: core/wakeup.py
            honour_cancel(current, cancels)
