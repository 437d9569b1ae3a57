"""A cache for your own functions' results: cache-aside without stampedes, tags, soft TTLs.

Redis in Action §2.3-2.4 caches whole pages and database rows (see
:mod:`aiorpatterns.webapp.caching`); the cache most async code wants first is one for its own
functions' results. A :class:`Cache` is one namespace of such results:

- ``get``/``set``/``delete``/``get_many``/``set_many``, values through a serializer (JSON by
  default; never pickle), each entry under its own hash tag, so entries spread over a cluster;
- :meth:`Cache.get_or_compute` and the :meth:`Cache.cached` decorator: cache-aside with a
  **single flight across processes** (:mod:`aiorpatterns.cache.flight`): of the callers that
  miss, one computes and the others wait for its value through the client's wake-up channel;
- **TTL with jitter** (entries written together do not expire together), and an optional
  **soft TTL**: past it the value is stale, exactly one caller refreshes it and every other
  caller is served the stale value meanwhile (a refresh that fails serves the stale value too);
- **tags**: an entry may carry tags, and ``invalidate(tag)`` makes every entry computed under
  the tag's current generation invalid at once: one ``HINCRBY``, O(1) however many entries,
  on a cluster too (the generations of a namespace live in one hash; see ``entries.py``);
- ``None`` cached only when asked (``cache_none``), errors of the classes you name cached for a
  short ``error_ttl`` (re-raised to every caller as that class);
- :class:`CacheStats`: hits, stale, misses, waits and computes, per :class:`Cache` object.

Keys: ``<prefix>:cache:{<name>:<key>}`` (the entry), with ``:claim``, ``:ready`` and ``:fresh``
beside it; ``<prefix>:cache:{<name>}:tags`` (the tag generations).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, Self, TypeVar

from redis.asyncio.cluster import RedisCluster

from ..core.autopipeline import AutoPipeline
from ..core.cancellation import observe
from ..core.checks import (
    check_callable,
    check_client,
    check_count,
    check_float,
    check_keyspace,
    check_seconds,
    text,
    to_ms,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from ..core.serializers import JSON, Serializer, check_serializer
from .decorator import cached
from .entries import ERROR, VALUE, Entry, check_tags, decode, encode, encode_error, generations
from .flight import Flight, flight_keys
from .near import NearCache

__all__ = ["Cache", "CacheStats", "CachedError"]

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: How long an entry lives by default (the book's page cache keeps pages 5 minutes).
DEFAULT_TTL = 300.0
#: How long one caller may compute a missing value before another takes over.
DEFAULT_LEASE = 10.0
#: How long a cached error is kept by default.
DEFAULT_ERROR_TTL = 5.0
#: Most entries one set_many / get_many pipeline carries.
_BATCH = 500
_MISSING: Any = object()


@dataclass
class CacheStats:
    """What one :class:`Cache` object served (counts since it was made)."""

    #: Fresh values read from Redis.
    hits: int = 0
    #: Values past their soft TTL served while another caller refreshed them.
    stale: int = 0
    #: Reads that found no usable value (missing, expired or invalidated by a tag).
    misses: int = 0
    #: Calls that waited for another caller (of this process, or of any process through
    #: Redis) instead of computing.
    waits: int = 0
    #: Calls of the origin (the computing function) made by this object's callers.
    computes: int = 0
    #: Hits served by the near cache, without a round trip (counted in ``hits`` too).
    near_hits: int = 0


#: What a follower gets when the caller it followed was cancelled: look again.
_RETRY: Any = object()


class _Shared:
    """One key's lookup in flight in this process: its outcome, and a stale entry it found
    (futures made only once a second caller follows it: a lone caller pays nothing)."""

    __slots__ = ("_done", "_stale")

    def __init__(self) -> None:
        self._done: asyncio.Future[Any] | None = None
        self._stale: asyncio.Future[Entry] | None = None

    def futures(self) -> tuple[asyncio.Future[Any], asyncio.Future[Entry]]:
        """The outcome and the stale entry, as futures a follower waits on."""
        loop = asyncio.get_running_loop()
        if self._done is None:
            self._done = loop.create_future()
            self._done.add_done_callback(observe)  # followers cancelled meanwhile read nothing
        if self._stale is None:
            self._stale = loop.create_future()
        return self._done, self._stale

    def serve_stale(self, entry: Entry) -> None:
        if self._stale is None:
            self._stale = asyncio.get_running_loop().create_future()
        if not self._stale.done():
            self._stale.set_result(entry)

    def finish(self, value: Any = None, error: BaseException | None = None) -> None:
        """Hand the outcome to the followers, if any."""
        if self._done is None or self._done.done():
            return
        if error is not None:
            self._done.set_exception(error)
        else:
            self._done.set_result(value)


class CachedError(Exception):
    """A cached error of a class the caller did not name: its class name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


@dataclass(frozen=True, slots=True)
class Policy:
    """How one call caches: checked once, when a decorator is made or a call starts."""

    ttl: float
    soft_ttl: float | None
    jitter: float
    cache_none: bool
    errors: tuple[type[BaseException], ...]
    error_ttl: float

    def ttl_ms(self) -> int:
        """This write's TTL: ``ttl`` less up to ``jitter`` of it, so entries expire apart."""
        return to_ms(self.ttl * (1 - self.jitter * random.random()))

    @property
    def soft_ms(self) -> int:
        return to_ms(self.soft_ttl) if self.soft_ttl is not None else 0


def _check_key(key: object) -> str:
    return check_name(key, "key")


def _check_errors(errors: object) -> tuple[type[BaseException], ...]:
    found = tuple(errors) if isinstance(errors, Iterable) else (errors,)
    for cls in found:
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise TypeError(f"cache_errors must be Exception classes, not {cls!r}")
    return found


def _is_cluster(redis: Any) -> bool:
    client = redis.client if isinstance(redis, AutoPipeline) else redis
    return isinstance(client, RedisCluster)


class Cache:
    """One namespace of cached values on ``redis`` (see the module docstring).

    ``ttl`` (seconds) is how long an entry lives, less up to ``jitter`` of it (a fraction, 0.1
    by default); ``soft_ttl`` (below ``ttl``, default none) when it turns stale and one caller
    refreshes it; ``lease`` how long one caller may compute before another takes over;
    ``cache_none`` whether a ``None`` result is cached. Each may be overridden per call or per
    decorated function. ``serializer``: any object with ``dumps(value) -> str`` and
    ``loads(text)`` (:class:`~aiorpatterns.JsonSerializer` by default). ``near``: keep up to
    that many entries in this process too, served without a round trip and dropped when the
    server says they changed (:mod:`aiorpatterns.cache.near`); close the cache with
    :meth:`aclose` (or ``async with``) to stop its tracking connections.
    """

    kind = "cache"

    def __init__(
        self,
        redis: Any,
        name: str = "cache",
        *,
        ttl: float = DEFAULT_TTL,
        soft_ttl: float | None = None,
        jitter: float = 0.1,
        lease: float = DEFAULT_LEASE,
        cache_none: bool = False,
        serializer: Serializer = JSON,
        near: int | None = None,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        self.name = check_name(name)
        if ":" in name:
            raise ValueError(f"a cache name must not contain ':': {name!r}")
        self.keyspace = check_keyspace(keyspace)
        self.serializer = check_serializer(serializer)
        self.lease = check_seconds(lease, "lease")
        self.default = self._policy(ttl, soft_ttl, jitter, cache_none, (), DEFAULT_ERROR_TTL)
        self.tags_key = keyspace.key(self.kind, name, "tags")
        self._head = keyspace.tag(self.kind, f"{name}:")[:-1]  # "<prefix>:cache:{<name>:"
        self.stats = CacheStats()
        #: The lookup in flight per entry key, shared by this process' callers.
        self._inflight: dict[str, _Shared] = {}
        self.near: NearCache | None = None
        if near is not None:
            size = check_count(near, "near")
            prefix = keyspace.tag(self.kind, name)[:-1]  # "<prefix>:cache:{<name>"
            self.near = NearCache(self.redis, prefix, self.tags_key, size)

    async def aclose(self) -> None:
        """Stop the near cache's tracking (if any); the client stays open (it is yours)."""
        if self.near is not None:
            await self.near.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<Cache {self.name!r} ttl={self.default.ttl}>"

    def key(self, key: str) -> str:
        """The Redis key of entry ``key`` (its own hash tag)."""
        return self._entry_key(key)

    def _entry_key(self, key: object) -> str:
        # Keyspace.key(kind, f"{name}:{key}"), without its checks of the parts known good.
        if type(key) is not str or not key or "}" in key:
            _check_key(key)
        return f"{self._head}{key}}}"

    def policy(
        self,
        *,
        ttl: float | None = None,
        soft_ttl: float | None = _MISSING,
        jitter: float | None = None,
        cache_none: bool | None = None,
        cache_errors: Iterable[type[BaseException]] = (),
        error_ttl: float = DEFAULT_ERROR_TTL,
    ) -> Policy:
        """This cache's defaults with the given overrides, checked (bad values raise here)."""
        d = self.default
        return self._policy(
            d.ttl if ttl is None else ttl,
            d.soft_ttl if soft_ttl is _MISSING else soft_ttl,
            d.jitter if jitter is None else jitter,
            d.cache_none if cache_none is None else cache_none,
            cache_errors,
            error_ttl,
        )

    @staticmethod
    def _policy(
        ttl: object,
        soft_ttl: object,
        jitter: object,
        cache_none: object,
        errors: object,
        error_ttl: object,
    ) -> Policy:
        hard = check_seconds(ttl, "ttl")
        soft = check_seconds(soft_ttl, "soft_ttl", allow_none=True)
        if soft is not None and soft >= hard:
            raise ValueError(f"soft_ttl ({soft}) must be below ttl ({hard})")
        if not isinstance(cache_none, bool):
            raise TypeError(f"cache_none must be a bool, not {type(cache_none).__name__}")
        return Policy(
            ttl=hard,
            soft_ttl=soft,
            jitter=check_float(jitter, "jitter", minimum=0.0, maximum=0.9),
            cache_none=cache_none,
            errors=_check_errors(errors),
            error_ttl=check_seconds(error_ttl, "error_ttl"),
        )

    def cached(
        self,
        *,
        key: str | None = None,
        tags: Iterable[str] = (),
        ttl: float | None = None,
        soft_ttl: float | None = _MISSING,
        jitter: float | None = None,
        cache_none: bool | None = None,
        cache_errors: Iterable[type[BaseException]] = (),
        error_ttl: float = DEFAULT_ERROR_TTL,
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        """Decorate an async function so its results are cached here, one flight per key.

        ``key`` and ``tags`` are templates formatted with the call's arguments by name
        (``key="user:{user_id}"``); the rest overrides this cache's policy (:meth:`policy`).
        The wrapper has ``invalidate(*args, **kwargs)`` (drop that call's entry) and
        ``key_for(*args, **kwargs)``. See :mod:`aiorpatterns.cache.decorator`.
        """
        policy = self.policy(
            ttl=ttl,
            soft_ttl=soft_ttl,
            jitter=jitter,
            cache_none=cache_none,
            cache_errors=cache_errors,
            error_ttl=error_ttl,
        )
        return cached(self, policy, key=key, tags=tags)

    # -- plain reads and writes --------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """The value cached under ``key``, or ``default``; a cached error is raised."""
        entry, _ = await self._read(self._entry_key(key), self.default)
        if entry is None:
            self.stats.misses += 1
            return default
        self.stats.hits += 1
        return self._value(entry, ())

    async def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | None = None,
        soft_ttl: float | None = _MISSING,
        tags: Iterable[str] = (),
    ) -> None:
        """Cache ``value`` under ``key`` (it wins over a computation in flight for ``key``)."""
        policy, stored = await self._entries({key: value}, ttl, soft_ttl, tags)
        name = self.key(key)
        self._forget(name)
        await self._store(name, stored[key], policy)

    async def delete(self, key: str) -> bool:
        """Drop ``key``'s entry (a computation in flight stores nothing); whether there was one."""
        keys = flight_keys(self.key(key))
        self._forget(keys[0])
        args = [_token(), "drop", "", 0, 0, to_ms(self.lease)]
        return int(await script("cache_store")(self.redis, keys, args)) == 1

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present and valid (errors left out)."""
        names = list(dict.fromkeys(_check_key(k) for k in keys))
        found: dict[str, Any] = {}
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in batch:
                    pipe.get(self.key(name))
                replies = await pipe.execute()
            entries = {n: decode(r) for n, r in zip(batch, replies, strict=True) if r is not None}
            tags = sorted({t for e in entries.values() if e is not None for t in e.tags})
            gens = await self._generations(tags)
            for name, entry in entries.items():
                if entry is not None and entry.kind == VALUE and entry.valid(gens):
                    found[name] = self.serializer.loads(entry.payload)
        self.stats.hits += len(found)
        self.stats.misses += len(names) - len(found)
        return found

    async def set_many(
        self,
        values: Mapping[str, Any],
        *,
        ttl: float | None = None,
        soft_ttl: float | None = _MISSING,
        tags: Iterable[str] = (),
    ) -> None:
        """Cache every value of ``values`` (all serialised first: a bad one writes nothing)."""
        policy, stored = await self._entries(values, ttl, soft_ttl, tags)
        store = script("cache_store")
        if _is_cluster(self.redis):
            await store.load(self.redis)  # a cluster pipeline does not load scripts itself
        items = list(stored.items())
        for key, _ in items:
            self._forget(self.key(key))
        for start in range(0, len(items), _BATCH):
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, entry in items[start : start + _BATCH]:
                    store.queue(pipe, flight_keys(self.key(key)), self._set_args(entry, policy))
                await pipe.execute()

    async def invalidate(self, *tags: str) -> None:
        """Make every entry carrying one of ``tags`` invalid now (one ``HINCRBY`` per tag).

        Entries computed before are never served again; a computation in flight under an old
        generation stores an entry that is already invalid.
        """
        names = check_tags(tags)
        if not names:
            return
        if self.near is not None:
            self.near.forget_tagged()
        async with self.redis.pipeline(transaction=False) as pipe:
            for tag in names:
                pipe.hincrby(self.tags_key, tag, 1)
            await pipe.execute()

    # -- cache-aside, one flight -------------------------------------------------------------

    async def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        *,
        tags: Iterable[str] = (),
        policy: Policy | None = None,
    ) -> T:
        """``key``'s value: cached, or ``await compute()`` by one caller across processes.

        Of concurrent callers that miss, one computes and the others wait for its value (a
        computer that crashes or hangs costs its ``lease``; one that fails or is cancelled
        hands on at once). ``policy`` (from :meth:`policy`) overrides this cache's defaults.
        The callers of one process share one lookup per key (one read, one claim, one wait: a
        burst of callers costs one connection): the first one looks up, the others follow
        its outcome (or are served the stale entry it found); if it is cancelled, they look
        again (one of them leads then).
        """
        check_callable(compute, "compute")
        policy = self.default if policy is None else policy
        names = check_tags(tags) if tags else ()
        name = self._entry_key(key)
        if self.near is not None and (kept := self.near.lookup(name)) is not None:
            self.stats.near_hits += 1
            self.stats.hits += 1
            return self._value(kept, policy.errors)  # type: ignore[no-any-return]
        while True:
            shared = self._inflight.get(name)
            if shared is None:
                return await self._lead(name, compute, names, policy)
            found = await self._follow(shared, policy)
            if found is not _RETRY:
                return found  # type: ignore[no-any-return]

    async def _lead(
        self, name: str, compute: Callable[[], Awaitable[T]], tags: tuple[str, ...], policy: Policy
    ) -> T:
        """Look ``name`` up for every caller of this process that asks meanwhile (they follow):
        read it; if it is missing or stale, claim, wait or compute (see flight.py)."""
        shared = self._inflight[name] = _Shared()
        try:
            entry, fresh = await self._read(name, policy)
            if entry is not None and fresh:
                self.stats.hits += 1
                value = self._value(entry, policy.errors)
            else:
                if entry is not None:
                    shared.serve_stale(entry)  # this process' other callers need not wait
                keys = flight_keys(name)
                soft = policy.soft_ttl is not None
                flight = Flight(self.redis, keys, to_ms(self.lease), soft=soft)
                value = await self._fly(flight, compute, tags, policy)
        except asyncio.CancelledError:
            shared.finish(_RETRY)  # the followers go on without this caller
            raise
        except BaseException as exc:
            shared.finish(error=exc)
            raise
        else:
            shared.finish(value)
            return value  # type: ignore[no-any-return]
        finally:
            if self._inflight.get(name) is shared:
                del self._inflight[name]

    async def _follow(self, shared: _Shared, policy: Policy) -> Any:
        """Share a lookup of this process already in flight for the key (one Redis flight
        per key and process, whatever the number of callers): its value or error, the stale
        entry it found while it refreshes it, or :data:`_RETRY` if its caller was cancelled."""
        done, stale = shared.futures()
        await asyncio.wait((done, stale), return_when=asyncio.FIRST_COMPLETED)
        if done.done():
            found = done.result()
            if found is not _RETRY:
                self.stats.waits += 1
            return found
        self.stats.stale += 1
        return self._value(stale.result(), policy.errors)

    async def _fly(
        self,
        flight: Flight,
        compute: Callable[[], Awaitable[T]],
        tags: tuple[str, ...],
        policy: Policy,
    ) -> T:
        """Claim, wait or be served, until this caller has a value (see flight.py)."""
        reject = ""
        waited = False
        while True:
            state, reply = await flight.claim(reject)
            if state in ("hit", "stale"):
                entry = await self._valid(reply)
                if entry is None:  # invalidated by a tag since it was stored: a miss
                    reject = text(reply).partition("|")[0]
                    continue
                if state == "stale":
                    self.stats.stale += 1
                else:
                    self.stats.hits += 1
                return self._value(entry, policy.errors)  # type: ignore[no-any-return]
            if state == "claimed" or state == "refresh":
                stale = await self._valid(reply) if state == "refresh" else None
                if stale is None:
                    self.stats.misses += 1
                return await self._compute(flight, compute, tags, policy, stale)
            if not waited:
                waited = True
                self.stats.waits += 1
            await flight.wait(reply)

    async def _compute(
        self,
        flight: Flight,
        compute: Callable[[], Awaitable[T]],
        tags: tuple[str, ...],
        policy: Policy,
        stale: Entry | None,
    ) -> T:
        """Compute under the claim, then store the value (or the error) and wake the waiters."""
        try:
            gens = await self._generations(tags)  # before computing: a later bump invalidates
        except BaseException:
            await flight.release()
            raise
        self.stats.computes += 1
        try:
            value = await _call(compute)
        except policy.errors as exc:
            entry = encode(ERROR, encode_error(exc), gens)
            await flight.fill(entry, to_ms(policy.error_ttl))
            raise
        except Exception as exc:
            await flight.release()
            if stale is None or stale.kind != VALUE:
                raise
            log.warning(
                "cache %r: refreshing %s failed, serving it stale: %r",
                self.name,
                flight.keys[0],
                exc,
            )
            self.stats.stale += 1
            return self._value(stale, policy.errors)  # type: ignore[no-any-return]
        except BaseException:
            await flight.release()
            raise
        if value is None and not policy.cache_none:
            await flight.release()
            return value  # type: ignore[return-value]  # None, not cached, as asked
        try:
            payload = self.serializer.dumps(value)
        except BaseException:
            await flight.release()
            raise
        soft = policy.soft_ms
        await flight.fill(encode(VALUE, payload, gens, soft > 0), policy.ttl_ms(), soft)
        return value  # type: ignore[no-any-return]

    # -- mechanics ---------------------------------------------------------------------------

    async def _read(self, key: str, policy: Policy) -> tuple[Entry | None, bool]:
        """The entry (valid, or None) and whether it is fresh: from the near cache, else in one
        read (two with tags). An entry written with a soft TTL is fresh while its mark lives,
        which is read beside it when the policy has a soft TTL or a near cache may keep it."""
        near = self.near
        if near is not None:
            kept = near.lookup(key)
            if kept is not None:
                self.stats.near_hits += 1
                return kept, True
            mark = near.mark()
        if near is None and policy.soft_ttl is None:
            stored, flag = await self.redis.get(key), None
        else:
            stored, flag = await self.redis.execute_command("MGET", key, f"{key}:fresh")
        entry = await self._valid(stored)
        if entry is None:
            return None, False
        fresh = not entry.soft or flag is not None  # (the flag is read whenever it matters)
        if near is not None and fresh:
            near.keep(key, entry, policy.ttl, mark)
        return entry, fresh or policy.soft_ttl is None

    async def _valid(self, stored: object) -> Entry | None:
        """The entry of ``stored`` if it is one and none of its tags was invalidated since."""
        if stored is None:
            return None
        entry = decode(stored)
        if entry is None:
            log.warning("cache %r: a value that is not a cache entry was ignored", self.name)
            return None
        if entry.tags and not entry.valid(await self._generations(list(entry.tags))):
            return None
        return entry

    async def _generations(self, tags: Sequence[str]) -> dict[str, int]:
        if not tags:
            return {}
        return generations(tags, await self.redis.hmget(self.tags_key, list(tags)))

    async def _entries(
        self, values: Mapping[str, Any], ttl: float | None, soft_ttl: Any, tags: Iterable[str]
    ) -> tuple[Policy, dict[str, str]]:
        """The policy and each value's entry, every key and value checked before any write."""
        policy = self.policy(ttl=ttl, soft_ttl=soft_ttl)
        names = check_tags(tags)
        payloads = {_check_key(k): self.serializer.dumps(v) for k, v in values.items()}
        gens = await self._generations(names)
        soft = policy.soft_ttl is not None
        return policy, {k: encode(VALUE, p, gens, soft) for k, p in payloads.items()}

    def _forget(self, key: str) -> None:
        if self.near is not None:
            self.near.forget(key)

    def _set_args(self, entry: str, policy: Policy) -> list[object]:
        return [_token(), "set", entry, policy.ttl_ms(), policy.soft_ms, to_ms(self.lease)]

    async def _store(self, key: str, entry: str, policy: Policy) -> None:
        await script("cache_store")(self.redis, flight_keys(key), self._set_args(entry, policy))

    def _value(self, entry: Entry, allowed: tuple[type[BaseException], ...]) -> Any:
        """The entry's value, or its cached error raised (as its class, if ``allowed``)."""
        if entry.kind == VALUE:
            return self.serializer.loads(entry.payload)
        raise _revive(entry.payload, allowed)


def _token() -> str:
    return secrets.token_hex(16)


def _revive(payload: str, allowed: tuple[type[BaseException], ...]) -> BaseException:
    """The cached error of ``payload``: its own class if ``allowed`` names it, else CachedError."""
    record = json.loads(payload)
    name, message = str(record.get("t", "")), str(record.get("m", ""))
    for cls in allowed:
        if f"{cls.__module__}.{cls.__qualname__}" == name:
            try:
                return cls(message)
            except Exception:
                break
    return CachedError(name, message)


async def _call(compute: Callable[[], Any]) -> Any:
    result = compute()
    if inspect.isawaitable(result):
        result = await result
    return result
