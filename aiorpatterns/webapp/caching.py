"""Cache rendered pages and database rows in Redis, without stampedes or double refreshes.

Redis in Action §2.3 caches whole pages: ``cache_request`` looks a page up by a hash of the
request and, on a miss, renders it and stores it for 5 minutes; §2.5 (``can_cache``) narrows that
to item pages among the most viewed. :class:`PageCache` caches every request unless its
``should_cache`` predicate says otherwise; :func:`book_can_cache` is the book's rule as such a
predicate. The book's version keys pages by Python's ``hash()``, which is salted per process
(every web server gets its own keys), lets every caller that misses render the page at once (a
stampede), never caches an empty page, and caches text only. :class:`PageCache` keys pages by a
SHA-256 digest, lets one caller render a missing page while the others wait for it (bounded,
woken by a signal list rather than polling, the waiters of one client sharing one blocked
connection: the single flight of :mod:`aiorpatterns.cache.flight`, which
:class:`~aiorpatterns.Cache` uses too), and caches empty pages and ``bytes`` pages too.

§2.4 caches database rows as JSON, refreshed every ``delay`` seconds by ``cache_rows`` workers.
The book's workers all refresh the same due row (no claim), raise ``TypeError`` when the two
ZSETs diverge, and unschedule a row in three commands. :class:`RowCache` claims a due row for
one worker under a lease, unschedules in one step, and drops diverged entries;
:class:`RowCacheWorker` is the refresh loop, with ``aclose()`` and ``async with``.

Keys: a page lives under its own hash tag, ``<prefix>:page:{<name>:<digest>}`` (its content)
with ``…:claim``, ``…:ready`` and ``…:fresh`` (unused: pages have no soft TTL) beside it, so
pages spread over a cluster. The content is a type
marker, ``s`` (text, stored as is) or ``b`` (bytes, stored base64 so that a client made with
``decode_responses=True`` reads them back intact), then the page. (0.1 stored bare text under
``…:cache:…``; the new kind means a process of either version never reads the other's pages.)
A row cache lives under one tag, ``<prefix>:rows:{<name>}:delay`` / ``…:schedule`` /
``…:claims`` / ``…:data`` / ``…:wake``, so one row cache lives on one cluster node (use several
names to spread them).

Retry safety: every step carries the caller's token, so a step sent twice recognises its first
run (a page claim already held by the token, a row claim's receipt, a finish whose claim is
gone); a clean-up whose step's reply was lost gives the claim back by token alone.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import inspect
import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar, cast, overload
from urllib.parse import parse_qs, urlparse

from redis.exceptions import RedisError

from ..cache.flight import Flight, flight_keys
from ..core.cancellation import best_effort, cancelling, honour_cancel, observe
from ..core.checks import (
    MAX_SECONDS,
    AsyncRedis,
    check_callable,
    check_client,
    check_count,
    check_float,
    check_keyspace,
    check_object,
    check_seconds,
    encode_json,
    text,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from ..core.waiting import Backoff
from .sessions import Sessions

__all__ = ["PageCache", "RowCache", "RowCacheWorker", "book_can_cache"]

log = logging.getLogger(__name__)

#: How long a page stays cached (the book's 5 minutes).
PAGE_TTL = 300.0
#: How many of the most viewed items get their pages cached under the book's rule (its 10,000).
TOP_ITEMS = 10_000
#: The longest one blocking wait lasts before re-checking (below redis-py's socket timeouts).
_MAX_BLOCK = 1.0
#: The shortest blocking wait (a BLPOP/BLMOVE timeout of 0 would block forever).
_MIN_BLOCK = 0.01

#: A page: text, or bytes (gzipped HTML, an image). Returned as the type the callback returned.
PageT = TypeVar("PageT", str, bytes)
PageCallback = Callable[[str], "Awaitable[PageT] | PageT"]
#: Whether a request's page is cached: a function or coroutine function returning ``bool``.
ShouldCache = Callable[[str], "Awaitable[bool] | bool"]
RowFetch = Callable[[str], Any]
T = TypeVar("T")

#: The type marker in front of a cached page: text as is, bytes base64 (see the module docstring).
_TEXT, _BYTES = "s", "b"


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _request(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"request must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError("request must not be empty")
    return value


def request_digest(request: str) -> str:
    """Return the stable key digest of ``request`` (SHA-256, the same in every process)."""
    return hashlib.sha256(_request(request).encode()).hexdigest()


def extract_item_id(request: str) -> str | None:
    """Return the ``item`` query parameter of ``request`` (a URL), or None."""
    query = parse_qs(urlparse(_request(request)).query, keep_blank_values=True)
    values = query.get("item")
    return values[0] if values and values[0] else None


def is_dynamic(request: str) -> bool:
    """Return whether ``request`` carries the ``_`` cache-busting parameter."""
    return "_" in parse_qs(urlparse(_request(request)).query, keep_blank_values=True)


def book_can_cache(sessions: Sessions, *, top: int = TOP_ITEMS) -> Callable[[str], Awaitable[bool]]:
    """Return the book's rule as a ``should_cache`` for :class:`PageCache`: popular items only.

    The predicate caches a request's page only if the request is an item page (an ``item``
    query parameter) without the ``_`` cache-busting parameter, and the item ranks among the
    ``top`` most viewed of ``sessions`` (one ZRANK per request). Views are counted by
    :meth:`Sessions.update_token <aiorpatterns.webapp.sessions.Sessions.update_token>` and aged
    by :meth:`~aiorpatterns.webapp.sessions.Sessions.rescale_viewed`, which someone must run
    periodically; every other page (a home page, ``/product``) is rendered on every request.
    Redis in Action §2.5 (``can_cache``): ``PageCache(redis, should_cache=book_can_cache(s))``.
    """
    if not isinstance(sessions, Sessions):
        raise TypeError(f"sessions must be a Sessions, not {type(sessions).__name__}")
    top = check_count(top, "top")

    async def can_cache(request: str) -> bool:
        item = extract_item_id(request)
        if item is None or is_dynamic(request):
            return False
        rank = await sessions.rank(item)
        return rank is not None and rank < top

    can_cache.__qualname__ = f"book_can_cache(top={top})"
    return can_cache


async def _settle(step: Awaitable[T]) -> T:
    """Run ``step`` to its end even if the caller is cancelled meanwhile, then re-raise.

    Unlike ``shielded``, a cancelled caller waits for the step (one round trip) before it gets
    ``CancelledError``: a worker closed while it stores or hands back a row returns from
    ``aclose()`` only once the row is no longer claimed.
    """
    done = asyncio.ensure_future(step)
    done.add_done_callback(observe)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        if not done.done():
            await asyncio.wait([done])
        raise


async def _clean_up(step: Callable[[], Awaitable[object]]) -> None:
    """``best_effort(step)``, over before a caller cancelled meanwhile gets its cancel."""
    await _settle(best_effort(step))


async def _call(function: Callable[[str], Any], argument: str) -> Any:
    result = function(argument)
    if inspect.isawaitable(result):
        result = await result
    return result


class PageCache:
    """A cache of rendered pages named ``name`` (Redis in Action §2.3, §2.5).

    :meth:`cache_request` returns a request's page from the cache, or renders it with the
    caller's callback and caches it for ``ttl`` seconds. A page is a ``str`` or ``bytes``
    (gzipped HTML, an image) and comes back as the type the callback returned, whatever the
    client's ``decode_responses``.

    Which pages are cached is ``should_cache(request)``'s answer (a function or coroutine
    function returning ``bool``). **By default (``None``) every request's page is cached**, as
    a user of a page cache expects. A page is keyed by the request string alone, so a page that
    differs per visitor (a cart, a greeting) must be left out by ``should_cache`` or told apart
    in the request. The book caches only item pages among the most viewed (§2.5); pass
    ``should_cache=book_can_cache(sessions)`` for that rule.

    ``claim_timeout`` is how long one caller may take to render a missing page before another
    takes over; ``wait`` how long the others wait for it before rendering it themselves,
    uncached (default: ``claim_timeout``).
    """

    kind = "page"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "pages",
        *,
        should_cache: ShouldCache | None = None,
        ttl: float = PAGE_TTL,
        claim_timeout: float = 10.0,
        wait: float | None = None,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        check_callable(should_cache, "should_cache", allow_none=True)
        check_keyspace(keyspace)
        self.name = name
        self.should_cache = should_cache
        self.ttl = check_seconds(ttl, "ttl")
        self.claim_timeout = check_seconds(claim_timeout, "claim_timeout")
        self.wait = self.claim_timeout if wait is None else check_seconds(wait, "wait")
        self.keyspace = keyspace

    def page_key(self, request: str) -> str:
        """The key of ``request``'s cached page (its own hash tag)."""
        return self.keyspace.key(self.kind, f"{self.name}:{request_digest(request)}")

    async def can_cache(self, request: str) -> bool:
        """Return whether ``request``'s page is cached: ``should_cache(request)``, else True.

        Redis in Action §2.5 (``can_cache``); the book's rule is :func:`book_can_cache`.
        """
        _request(request)
        if self.should_cache is None:
            return True
        answer = await _call(self.should_cache, request)
        if not isinstance(answer, bool):
            raise TypeError(f"should_cache must return a bool, not {type(answer).__name__}")
        return answer

    @overload
    async def cache_request(
        self, request: str, callback: Callable[[str], Awaitable[PageT]]
    ) -> PageT: ...
    @overload
    async def cache_request(self, request: str, callback: Callable[[str], PageT]) -> PageT: ...
    async def cache_request(self, request: str, callback: PageCallback[PageT]) -> PageT:
        """Return ``request``'s page: cached, or rendered by ``callback(request)`` and cached.

        ``callback`` is a function or coroutine function returning ``str`` or ``bytes`` (anything
        else raises ``TypeError`` and caches nothing); a cached page comes back as the type it
        was rendered as. A request ``should_cache`` refuses is rendered and not cached. Of
        concurrent callers that miss, one renders the page and the others wait for it (up to
        ``wait`` seconds, then render it themselves, uncached); a caller whose render fails or
        is cancelled hands the claim on at once. Redis in Action §2.3 (``cache_request``).
        """
        check_callable(callback, "callback")
        key = self.page_key(request)
        if not await self.can_cache(request):
            return cast("PageT", _page(await _call(callback, request)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        flight = Flight(self.redis, flight_keys(key), _ms(self.claim_timeout))
        task, before = cancelling()
        while True:
            state, reply = await flight.claim()
            if state == "hit":
                page = self._decode(key, reply)
                if page is None:  # not ours to read (logged): serve a fresh render
                    return cast("PageT", _page(await _call(callback, request)))
                return cast("PageT", page)
            if state == "claimed":
                return cast("PageT", await self._render(flight, request, callback))
            honour_cancel(task, before)
            left = deadline - loop.time()
            if left <= 0:
                # The renderer is too slow.
                return cast("PageT", _page(await _call(callback, request)))
            await flight.wait(reply, left)

    async def _render(
        self, flight: Flight, request: str, callback: Callable[[str], Any]
    ) -> str | bytes:
        try:
            content = _page(await _call(callback, request))
        except BaseException:
            await flight.release()
            raise
        # Shielded: a caller cancelled now gets its CancelledError, and the page is still stored
        # and the waiters woken. A fill that fails twice only costs the waiters a render of
        # their own after the claim expires.
        await flight.fill(_encode(content), _ms(self.ttl))
        return content

    def _decode(self, key: str, stored: str | bytes) -> str | bytes | None:
        """The page stored at ``key``, or None (logged) if it is not a page this class wrote."""
        page = _decode(stored)
        if page is None:
            log.warning("page cache %r: %s holds no page written by PageCache", self.name, key)
        return page

    async def get_page(self, request: str) -> str | bytes | None:
        """Return ``request``'s cached page (``str`` or ``bytes``, as rendered), or None."""
        key = self.page_key(request)
        value = await self.redis.get(key)
        return None if value is None else self._decode(key, value)

    async def invalidate(self, request: str) -> bool:
        """Drop ``request``'s cached page; return whether there was one."""
        return bool(await self.redis.delete(self.page_key(request)))

    def __repr__(self) -> str:
        return f"<PageCache {self.name!r}>"


def _page(content: object) -> str | bytes:
    if not isinstance(content, str | bytes):
        raise TypeError(f"the callback must return a str or bytes, not {type(content).__name__}")
    return content


def _encode(page: str | bytes) -> str | bytes:
    """The stored form of ``page``: its type marker, then the text, or the bytes in base64."""
    if isinstance(page, bytes):
        return _BYTES.encode() + base64.b64encode(page)
    return _TEXT + page


def _decode(stored: str | bytes) -> str | bytes | None:
    """The page of a stored value (from a decoding client or not), or None if it is no page."""
    marker = text(stored[:1])
    if marker == _TEXT:
        return text(stored[1:])
    if marker == _BYTES:
        try:
            return base64.b64decode(stored[1:], validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


class RowCache:
    """A cache of database rows named ``name``, refreshed on a schedule (Redis in Action §2.4).

    Rows are cached as JSON. :meth:`schedule_row_cache` says how often a row is refreshed;
    :class:`RowCacheWorker` (or :meth:`cache_rows`, one step) does the refreshing.
    """

    kind = "rows"

    def __init__(
        self, redis: AsyncRedis, name: str = "rows", *, keyspace: Keyspace = DEFAULT_KEYSPACE
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        self.delay_key = keyspace.key(self.kind, name, "delay")
        self.schedule_key = keyspace.key(self.kind, name, "schedule")
        self.claims_key = keyspace.key(self.kind, name, "claims")
        self.data_key = keyspace.key(self.kind, name, "data")
        self.wake_key = keyspace.key(self.kind, name, "wake")

    @property
    def _keys(self) -> list[str]:
        return [self.delay_key, self.schedule_key, self.claims_key, self.data_key]

    async def schedule_row_cache(self, row: str, *, delay: float) -> bool:
        """Cache ``row`` now and every ``delay`` seconds; ``delay`` <= 0 stops and drops it.

        Returns True if the row is scheduled, False if it was removed (in one step with its
        cached copy). Redis in Action §2.4 (``schedule_row_cache``).
        """
        check_name(row, "row")
        delay = check_float(delay, "delay", maximum=MAX_SECONDS)
        keys = [*self._keys, self.wake_key]
        args = [row, repr(max(delay, 0.0)), _ms(60.0)]
        return bool(await script("cache_row_schedule")(self.redis, keys, args))

    async def get_row(self, row: str) -> Any:
        """Return ``row``'s cached copy (decoded JSON), or None if it is not cached."""
        check_name(row, "row")
        value = await self.redis.hget(self.data_key, row)
        return None if value is None else json.loads(text(value))

    async def cache_rows(
        self, fetch: RowFetch, *, lease: float = 30.0, retry: float = 1.0
    ) -> str | None:
        """Refresh the next due row with ``fetch(row)``; return the row, or None if none is due.

        ``fetch`` (a function or coroutine function) returns the row as a JSON-serialisable
        value, or None if the row no longer exists (it is then unscheduled). The row is claimed
        for ``lease`` seconds, so no other worker refreshes it meanwhile; if ``fetch`` raises,
        the row is due again after ``retry`` seconds (at most its delay). Redis in Action §2.4
        (``cache_rows``, one turn of its loop).
        """
        outcome, _ = await self._refresh(fetch, lease=lease, retry=retry)
        return outcome

    async def _refresh(
        self, fetch: RowFetch, *, lease: float, retry: float
    ) -> tuple[str | None, float | None]:
        """One claim and refresh: (row, None), or (None, seconds until the next due row)."""
        check_callable(fetch, "fetch")
        lease, retry = check_seconds(lease, "lease"), check_seconds(retry, "retry")
        token = secrets.token_hex(16)
        reply = await self._claim(token, lease)
        if text(reply[0]) != "claimed":
            wait = float(text(reply[1]))
            return None, None if wait < 0 else wait
        row = text(reply[1])
        try:
            value = await _call(fetch, row)
            payload = None if value is None else encode_json(value, "the fetched row")
        except asyncio.CancelledError:
            await _clean_up(lambda: self._finish(row, token, "release"))
            raise
        except Exception:
            log.exception("fetching row %r of %r failed; retrying in %ss", row, self.name, retry)
            await _clean_up(lambda: self._finish(row, token, "retry", retry=retry))
            return row, None
        # Settled: once fetched, the row is stored even if the caller is cancelled meanwhile,
        # and a cancelled caller (a worker being closed) returns only once it is.
        if payload is None:
            await _settle(self._store(row, token, "drop"))
        else:
            await _settle(self._store(row, token, "store", payload))
        return row, None

    async def _store(self, row: str, token: str, mode: str, payload: str = "") -> None:
        """Finish a fetched row; if that fails, give the claim back rather than hold it."""
        try:
            await self._finish(row, token, mode, payload)
        except BaseException:
            await best_effort(lambda: self._finish(row, token, "release"))
            raise

    async def _claim(self, token: str, lease: float) -> Any:
        """Run the claim shielded: a caller cancelled or failing meanwhile gives a won claim back.

        A cancelled caller returns once the claim is given back (see :func:`_settle`).
        """
        step = asyncio.ensure_future(
            script("cache_row_claim")(self.redis, self._keys, [token, repr(lease)])
        )
        step.add_done_callback(observe)
        try:
            return await asyncio.shield(step)
        except BaseException:
            await _clean_up(lambda: self._release_if_claimed(step, token))
            raise

    async def _release_if_claimed(self, step: asyncio.Future[Any], token: str) -> None:
        """Release the claim if its reply said "claimed", or by token if the reply never came."""
        try:
            reply = await step
        except Exception:
            # The claim may have run on the server: its receipt names the row (cache_row_store).
            await self._finish("", token, "release")
            return
        if text(reply[0]) == "claimed":
            await self._finish(text(reply[1]), token, "release")

    async def _finish(
        self, row: str, token: str, mode: str, payload: str = "", *, retry: float = 0.0
    ) -> None:
        args = [row, token, mode, payload, repr(retry)]
        await script("cache_row_store")(self.redis, self._keys, args)

    async def wait_for_work(self, seconds: float) -> None:
        """Block until a row is scheduled or ``seconds`` pass (bounded, then re-check)."""
        await self.redis.blpop([self.wake_key], max(min(seconds, _MAX_BLOCK), _MIN_BLOCK))

    def __repr__(self) -> str:
        return f"<RowCache {self.keyspace.tag(self.kind, self.name)!r}>"


class RowCacheWorker:
    """Refresh the due rows of a :class:`RowCache` until closed (Redis in Action §2.4).

    ``async with RowCacheWorker(rows, fetch):`` runs the loop in a task; :meth:`aclose` stops
    it. Any number of workers can share one cache: each due row is claimed by one of them for
    ``lease`` seconds. A worker cancelled or closed mid-refresh hands its row back at once.
    """

    def __init__(
        self,
        rows: RowCache,
        fetch: RowFetch,
        *,
        lease: float = 30.0,
        retry: float = 1.0,
        idle: float = _MAX_BLOCK,
    ) -> None:
        if not isinstance(rows, RowCache):
            raise TypeError(f"rows must be a RowCache, not {type(rows).__name__}")
        check_callable(fetch, "fetch")
        self.rows = rows
        self.fetch = fetch
        self.lease = check_seconds(lease, "lease")
        self.retry = check_seconds(retry, "retry")
        self.idle = check_seconds(idle, "idle")
        #: How many rows this worker refreshed (or tried to).
        self.refreshed = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop in a task of the running event loop."""
        if self._task is not None:
            raise RuntimeError("the worker was already started")
        self._task = asyncio.create_task(self.run(), name=f"row-cache-worker {self.rows.name}")

    async def run(self) -> None:
        """Refresh due rows until cancelled; Redis errors are logged and retried with backoff."""
        backoff = Backoff()
        task, before = cancelling()
        while True:
            honour_cancel(task, before)
            try:
                row, wait = await self.rows._refresh(self.fetch, lease=self.lease, retry=self.retry)
                backoff.reset()
                if row is not None:
                    self.refreshed += 1
                    continue
                await self.rows.wait_for_work(self.idle if wait is None else min(wait, self.idle))
            except (RedisError, OSError):
                log.exception("row cache worker for %r: Redis failed", self.rows.name)
                await backoff.sleep()

    async def aclose(self) -> None:
        """Stop the loop; a row being refreshed is handed back. Safe to call twice."""
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<RowCacheWorker {self.rows.name!r} refreshed={self.refreshed}>"
