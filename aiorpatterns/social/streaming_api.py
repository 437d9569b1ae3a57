"""Serve a :class:`~aiorpatterns.social.streaming.StatusStream` over HTTP: the streaming API.

Redis in Action §8.5 serves its filtered status stream from a threaded ``BaseHTTPServer``:
``GET /statuses/sample.json`` and ``POST /statuses/filter.json`` answer ``200`` with a chunked
body, one JSON status per chunk, for as long as the client stays. ``parse_identifier`` takes the
client's ``identifier`` from the query, ``process_filters`` reads the filter from the form body
and ``create_filters`` builds it. The book's version needs Python 2 (``cgi``, ``wfile.write(str)``),
never reaches its ``follow`` filter (``FILTERS`` spells it ``'filter'``), answers a missing
filter with ``401``, and a client that reconnects has lost what was published meanwhile.

:class:`StreamingAPI` is a plain ASGI 3 application (no web framework: serve it with uvicorn,
hypercorn, or mount it in any ASGI app). Routes:

- ``GET`` or ``POST /statuses/filter`` (or ``/statuses/filter.json``): exactly one of
  ``track`` (comma-separated phrases, :class:`~aiorpatterns.social.streaming.TrackFilter`),
  ``follow`` (comma-separated user ids or logins,
  :class:`~aiorpatterns.social.streaming.FollowFilter`) or ``locations`` (comma-separated
  numbers, four per box, ``west,south,east,north``,
  :class:`~aiorpatterns.social.streaming.LocationFilter`); a ``POST`` may send them as an
  ``application/x-www-form-urlencoded`` body, as the book's clients do.
- ``GET /statuses/sample`` (or ``.json``): ``percent`` (default 10, up to 100) of the statuses,
  a :class:`~aiorpatterns.social.streaming.SampleFilter` seeded with the client's identifier
  (:func:`parse_identifier`), so a client that reconnects gets the same sample.
- Every route: ``identifier`` (default: the client's address), and ``last_id`` or the
  ``Last-Event-ID`` header to resume after an event id.

Every parameter is checked before the first Redis command: a bad or missing one is a ``400``
with a JSON body ``{"error": "..."}`` naming it, an unknown path ``404``, another method
``405``; a Redis that does not answer while the stream is being opened is a ``503``.

The ``200`` response is newline-delimited JSON (``application/x-ndjson``), one line per chunk:

- an event: ``{"id": "<entry id>", "kind": "created" | "deleted", "status": {"id", "uid",
  "login", "message", "posted", "data"}}``; pass its ``id`` back as ``last_id`` to resume;
- ``{"kind": "missed", "after": "<last_id>"}``, first, when the stream was trimmed past
  ``last_id`` (:meth:`StatusStream.missed`): some events in between are gone;
- ``{"kind": "closing", "reason": "shutdown" | "error"}``, last, when the server ends the stream;
- an empty line, a keep-alive, after ``keepalive`` seconds without a line.

The response's ``Last-Event-ID`` header is where the stream starts: a client that disconnects
before its first event resumes from there and misses nothing. The position is pinned before the
response starts, so every status published after the client has the headers reaches it.

Each response reads Redis in its own task beside one that watches for ``http.disconnect``: a
client that goes away ends the read at once (the ``XREAD BLOCK`` is cancelled). :meth:`aclose`
(and the ASGI lifespan's ``shutdown``) ends every open response with a ``closing`` line. Uvicorn
sends the lifespan shutdown only after open responses have ended, so run it with
``--timeout-graceful-shutdown`` (uvicorn then cancels them, and each ends its read at once) or
call :meth:`aclose` before stopping a ``uvicorn.Server`` you run yourself.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qs

from redis.exceptions import RedisError

from ..core.checks import check_float, encode_json
from .streaming import (
    Filter,
    FollowFilter,
    LocationFilter,
    SampleFilter,
    StatusEvent,
    StatusStream,
    TrackFilter,
    _check_last_id,
)

__all__ = ["StreamingAPI", "create_filters", "parse_identifier"]

log = logging.getLogger(__name__)

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

#: Seconds without a line after which a response sends a keep-alive newline.
KEEPALIVE = 15.0
#: Largest ``POST`` body read (bytes); a larger one is a ``413``.
MAX_BODY = 64 * 1024
#: Most phrases, users or boxes one filter takes (Twitter's streaming API limits).
MAX_TRACK = 400
MAX_FOLLOW = 5000
MAX_BOXES = 25
#: Longest ``identifier`` accepted.
MAX_IDENTIFIER = 256
#: The book's default sample.
DEFAULT_PERCENT = 10.0
#: Longest a response waits to write its ``closing`` line to a client that does not read.
CLOSE_WRITE_TIMEOUT = 5.0

_Method = Literal["filter", "sample"]
_ROUTES: dict[str, _Method] = {
    "/statuses/filter": "filter",
    "/statuses/filter.json": "filter",
    "/statuses/sample": "sample",
    "/statuses/sample.json": "sample",
}
_ALLOWED: dict[_Method, tuple[str, ...]] = {"filter": ("GET", "POST"), "sample": ("GET",)}
_FILTERS = ("track", "follow", "locations")
_PARAMETERS: dict[_Method, frozenset[str]] = {
    "filter": frozenset({*_FILTERS, "identifier", "last_id"}),
    "sample": frozenset({"percent", "identifier", "last_id"}),
}
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_UID = re.compile(r"[0-9]+")

Params = Mapping[str, list[str]]


class _HTTPError(Exception):
    """A request answered with an error status before the stream starts."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class _Ended(Exception):
    """Raised by a response's task to end the response, with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _number(value: str, what: str) -> float:
    if not _NUMBER.fullmatch(value.strip()):
        raise ValueError(f"{what} must be a decimal number, got {value!r}")
    return float(value)


def _single(params: Params, name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ValueError(f"parameter {name!r} is given {len(values)} times; give it once")
    return values[0]


def _items(value: str, what: str, limit: int) -> list[str]:
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise ValueError(
            f"{what} must be a comma-separated list without empty items, got {value!r}"
        )
    if len(items) > limit:
        raise ValueError(f"{what} takes at most {limit} items, got {len(items)}")
    return items


def parse_identifier(params: Params, client: str | None = None) -> str:
    """Return the client's identifier: the ``identifier`` parameter, else its address.

    The identifier seeds the sample filter, so a client that reconnects (from the same address,
    or with the same ``identifier``) gets the same sample. Behind a proxy every client has the
    proxy's address: clients there should send ``identifier``. Redis in Action §8.5
    (``parse_identifier``, where a request without one is refused).
    """
    identifier = _single(params, "identifier")
    if identifier is None:
        return client or ""
    if not identifier or len(identifier) > MAX_IDENTIFIER:
        raise ValueError(
            f"identifier must be 1 to {MAX_IDENTIFIER} characters, got {len(identifier)}"
        )
    return identifier


def create_filters(
    method: Literal["filter", "sample"], params: Params, identifier: str = ""
) -> Filter:
    """Return the filter a request asks for; ValueError naming the parameter if it cannot.

    ``method="sample"`` takes ``percent`` (default 10, ``0 < percent <= 100``) and samples with
    ``identifier`` as the seed; ``method="filter"`` takes exactly one of ``track``, ``follow``
    and ``locations``, each a comma-separated list. Unknown parameters are refused, so a typo
    is not silently a different stream. Redis in Action §8.5 (``create_filters``).
    """
    if method not in _PARAMETERS:
        raise ValueError(f"method must be 'filter' or 'sample', got {method!r}")
    unknown = sorted(set(params) - _PARAMETERS[method])
    if unknown:
        expected = ", ".join(sorted(_PARAMETERS[method]))
        raise ValueError(f"unknown parameter {unknown[0]!r} for {method}; expected: {expected}")
    if method == "sample":
        raw = _single(params, "percent")
        percent = DEFAULT_PERCENT if raw is None else _number(raw, "percent")
        if not 0 < percent <= 100:
            raise ValueError(f"percent must be above 0 and at most 100, got {raw!r}")
        return SampleFilter(percent / 100, seed=identifier)
    given = [name for name in _FILTERS if name in params]
    if len(given) != 1:
        which = "none" if not given else " and ".join(given)
        raise ValueError(f"give exactly one of track, follow or locations (got {which})")
    name = given[0]
    value = _single(params, name) or ""
    try:
        if name == "track":
            return TrackFilter(*_items(value, "track", MAX_TRACK))
        if name == "follow":
            users: list[int | str] = []
            for item in _items(value, "follow", MAX_FOLLOW):
                users.append(int(item) if _UID.fullmatch(item) else item)
            return FollowFilter(*users)
        numbers = [
            _number(n, "each of locations") for n in _items(value, "locations", 4 * MAX_BOXES)
        ]
        if len(numbers) % 4:
            raise ValueError(
                f"locations must be boxes of 4 numbers (west,south,east,north), got {len(numbers)}"
            )
        return LocationFilter(*(numbers[i : i + 4] for i in range(0, len(numbers), 4)))
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(name) else f"{name}: {message}") from None


@dataclass(frozen=True, slots=True)
class _Request:
    match: Filter
    last_id: str


def _event_line(event: StatusEvent) -> bytes:
    status = event.status
    record = {
        "id": event.id,
        "kind": event.kind,
        "status": {
            "id": status.id,
            "uid": status.uid,
            "login": status.login,
            "message": status.message,
            "posted": status.posted,
            "data": status.data,
        },
    }
    return _line(record)


def _line(record: object) -> bytes:
    return (encode_json(record, "event") + "\n").encode()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _query(raw: bytes, where: str) -> dict[str, list[str]]:
    try:
        parsed = parse_qs(
            raw.decode("latin-1"),
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=64,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise _HTTPError(400, f"the {where} cannot be parsed: {exc}") from None
    return parsed


class StreamingAPI:
    """The streaming API of a social network as an ASGI 3 application.

    ``stream`` is the network's :class:`~aiorpatterns.social.streaming.StatusStream` (its
    client is the caller's and is never closed here); ``keepalive`` is the seconds of silence
    after which a response sends an empty line (``None``: never). Serve it with any ASGI
    server, e.g. ``uvicorn --timeout-graceful-shutdown 5 mymodule:app``. Redis in Action §8.5
    (``StreamingAPIServer``, ``StreamingAPIRequestHandler``, ``process_filters``).
    """

    def __init__(self, stream: StatusStream, *, keepalive: float | None = KEEPALIVE) -> None:
        if not isinstance(stream, StatusStream):
            raise TypeError(f"stream must be a StatusStream, not {type(stream).__name__}")
        self.stream = stream
        self.keepalive = (
            None if keepalive is None else check_float(keepalive, "keepalive", minimum=0.001)
        )
        # One entry per open response: the event that asks it to end, and the future it sets
        # once it has ended.
        self._open: dict[asyncio.Event, asyncio.Future[None]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<StreamingAPI {self.stream.key!r}>"

    @property
    def open_streams(self) -> int:
        """How many responses are streaming now."""
        return len(self._open)

    async def aclose(self) -> None:
        """End every open response (with a ``closing`` line) and refuse new ones with ``503``.

        Returns once every open response has ended. The lifespan's ``startup`` (a server that
        starts again) accepts requests anew.
        """
        self._closed = True
        for ending in self._open:
            ending.set()
        if self._open:
            await asyncio.wait(list(self._open.values()))

    async def __aenter__(self) -> StreamingAPI:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection: ``http`` requests and the ``lifespan`` protocol."""
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1003})
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._closed = False
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            request = await self._parse(scope, receive)
            if self._closed:
                raise _HTTPError(503, "the server is shutting down")
            try:
                start = await self.stream.last_id() if request.last_id == "$" else request.last_id
                missed = request.last_id != "$" and await self.stream.missed(request.last_id)
            except RedisError as exc:
                raise _HTTPError(503, f"Redis did not answer: {exc}") from None
        except _HTTPError as exc:
            await _error(send, exc)
            return
        headers = [
            (b"content-type", b"application/x-ndjson; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),  # nginx: pass chunks on as they come
            (b"last-event-id", start.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if missed:
            await _chunk(send, _line({"kind": "missed", "after": request.last_id}))
        await self._serve(request.match, start, receive, send)

    async def _parse(self, scope: Scope, receive: Receive) -> _Request:
        method = _ROUTES.get(scope.get("path", ""))
        if method is None:
            raise _HTTPError(404, f"no such stream: {scope.get('path')!r}")
        verb = scope.get("method", "GET")
        if verb not in _ALLOWED[method]:
            allowed = ", ".join(_ALLOWED[method])
            raise _HTTPError(
                405, f"{verb} is not allowed here; use {allowed}", (("allow", allowed),)
            )
        params = _query(scope.get("query_string", b""), "query string")
        if verb == "POST":
            for name, values in (await self._form(scope, receive)).items():
                params.setdefault(name, []).extend(values)
        try:
            identifier = parse_identifier(params, (scope.get("client") or (None,))[0])
            last_id = _single(params, "last_id")
            header = _header(scope, b"last-event-id")
            if last_id is not None and header is not None and last_id != header:
                raise ValueError(
                    f"last_id {last_id!r} and the Last-Event-ID header {header!r} disagree"
                )
            resume = last_id if last_id is not None else header
            if resume is not None:
                try:
                    _check_last_id(resume)
                except ValueError:
                    raise ValueError(
                        f"last_id must be an event id like '1700000000000-0' or '0', got {resume!r}"
                    ) from None
            match = create_filters(method, params, identifier)
        except ValueError as exc:
            raise _HTTPError(400, str(exc)) from None
        return _Request(match, "$" if resume is None else resume)

    async def _form(self, scope: Scope, receive: Receive) -> dict[str, list[str]]:
        kind = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if kind not in ("", "application/x-www-form-urlencoded"):
            raise _HTTPError(
                415, f"send the parameters as application/x-www-form-urlencoded, not {kind}"
            )
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _HTTPError(400, "the client went away before its request body ended")
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                raise _HTTPError(413, f"the request body is larger than {MAX_BODY} bytes")
            if not message.get("more_body", False):
                break
        return _query(bytes(body), "request body")

    async def _serve(self, match: Filter, start: str, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        ending = asyncio.Event()
        ended: asyncio.Future[None] = loop.create_future()
        self._open[ending] = ended
        if self._closed:
            ending.set()
        lock = asyncio.Lock()  # the reader and the keep-alive both write
        wrote = asyncio.Event()

        async def write(data: bytes) -> None:
            async with lock:
                await _chunk(send, data)
            wrote.set()

        async def pump() -> None:
            try:
                async for event in self.stream.events(match, last_id=start):
                    await write(_event_line(event))
            except RedisError as exc:
                log.warning("%r: ending a response: Redis failed: %s", self, exc)
                raise _Ended("error") from None
            except OSError:  # a server that raises on a write to a closed connection
                raise _Ended("disconnect") from None

        async def keepalive(every: float) -> None:
            while True:
                wrote.clear()
                try:
                    async with asyncio.timeout(every):
                        await wrote.wait()
                except TimeoutError:
                    await write(b"\n")

        async def disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            raise _Ended("disconnect")

        async def shutdown() -> None:
            await ending.wait()
            raise _Ended("shutdown")

        reason = "shutdown"
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(pump())
                    group.create_task(disconnect())
                    group.create_task(shutdown())
                    if self.keepalive is not None:
                        group.create_task(keepalive(self.keepalive))
            except* _Ended as stop:
                reason = next(e.reason for e in stop.exceptions if isinstance(e, _Ended))
        except asyncio.CancelledError:  # the server cancelled the request (its shutdown)
            await _finish(send, "shutdown")
            raise
        finally:
            del self._open[ending]
            ended.set_result(None)
        if reason != "disconnect":
            await _finish(send, reason)


async def _chunk(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _finish(send: Send, reason: str) -> None:
    """Write the ``closing`` line and end the body, giving up on a client that does not read."""
    try:
        async with asyncio.timeout(CLOSE_WRITE_TIMEOUT):
            await _chunk(send, _line({"kind": "closing", "reason": reason}))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except (TimeoutError, OSError):
        pass


async def _error(send: Send, error: _HTTPError) -> None:
    body = _line({"error": error.message, "status": error.status})
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in error.headers),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
