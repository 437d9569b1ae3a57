"""Test the streaming API over HTTP (Redis in Action §8.5) with a real client and server.

The book serves its filtered status stream from a threaded HTTP server, one chunk per status,
and has no test of it. Here uvicorn serves :class:`StreamingAPI` (``tests/streaming_http_app.py``)
in a subprocess, and httpx streams from it: each filter delivers exactly the matching statuses
published after the response headers arrived, as one JSON line per chunk; sample honours
``percent`` and seeds with the identifier (else the client address); a client resumes with
``last_id`` or ``Last-Event-ID`` and gets exactly what followed, and is told when the stream was
trimmed past it; idle streams send keep-alive lines; a client that disconnects ends the server's
``XREAD`` (its connection leaves the server's CLIENT LIST) and the server stays healthy; an
``aclose`` or a server shutdown ends the open streams; and bad requests are answered 400/404/
405/413/415 before anything reaches Redis (a server on a Redis that is down answers them, and a
tripwire client in-process proves it for every case). The reading server uses a standalone or a
cluster client, as the test's own client that publishes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import NO_REDIS, until
from redis.asyncio.cluster import RedisCluster
from streaming_http_app import CLIENT_NAME, NETWORK

from aiorpatterns.social.network import Social
from aiorpatterns.social.streaming import SampleFilter, StatusStream
from aiorpatterns.social.streaming_api import StreamingAPI, create_filters, parse_identifier
from aiorpatterns.social.timelines import StatusMessage
from aiorpatterns.testing.pytest_plugin import Endpoint
from aiorpatterns.testing.server import free_port

TESTS = Path(__file__).resolve().parent
LONDON = "-0.51,51.28,0.33,51.69"
END = "redis END @carol"  # the last status of a test: every filter below passes it


# -- the server process ---------------------------------------------------------------------


@dataclass
class Uvicorn:
    """``uvicorn --factory streaming_http_app:create_app`` on a free port, against ``url``."""

    url: str
    topology: str
    log: Path
    extra: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Uvicorn:
        env = {
            **os.environ,
            "AIORP_STREAMING_URL": self.url,
            "AIORP_STREAMING_TOPOLOGY": self.topology,
        }
        command = [sys.executable, "-m", "uvicorn", "--factory", "streaming_http_app:create_app"]
        command += ["--app-dir", str(TESTS), "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--lifespan", "on", "--no-access-log", *self.extra]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        return self

    async def ready(self) -> None:
        """Wait until the server answers (it has bound its port and run the lifespan startup)."""

        async def answers() -> bool:
            assert self.process is not None
            assert self.process.poll() is None, f"uvicorn exited:\n{self.log.read_text()}"
            try:
                async with httpx.AsyncClient(base_url=self.base, timeout=5) as client:
                    return (await client.get("/_test/open")).status_code == 200
            except httpx.TransportError:
                return False

        await until(answers, "uvicorn to answer", limit=60)

    async def open_streams(self, client: httpx.AsyncClient) -> int:
        reply = await client.get(f"{self.base}/_test/open")
        count: int = reply.json()["open"]
        return count

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


class Servers:
    """The module's uvicorn processes, one per topology, started on first use."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: dict[str, Uvicorn] = {}

    def get(self, topology: str, url: str) -> Uvicorn:
        if topology not in self.started:
            log = self.logs / f"{topology}.log"
            self.started[topology] = Uvicorn(url, topology, log).start()
        return self.started[topology]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    found = Servers(tmp_path_factory.mktemp("uvicorn"))
    yield found
    for server in found.started.values():
        server.stop()


@dataclass
class Api:
    """The server of a test's topology, an HTTP client on it, and a network that posts."""

    server: Uvicorn
    http: httpx.AsyncClient
    redis: Any
    social: Social
    stream: StatusStream
    uids: dict[str, int]

    async def post(self, who: str, message: str, **data: Any) -> StatusMessage:
        status_id = await self.social.create_status(self.uids[who], message, **data)
        [status] = [
            s
            for s in await self.social.get_status_messages(self.uids[who], "profile", count=100)
            if s.id == status_id
        ]
        return status


@pytest.fixture
async def api(
    request: pytest.FixtureRequest, redis_client: Any, servers: Servers
) -> AsyncIterator[Api]:
    topology = request.node.callspec.params["redis_client"]
    endpoint: Endpoint = request.getfixturevalue(
        "redis_cluster_server" if topology == "cluster" else "redis_server"
    )
    server = servers.get(topology, endpoint.url)
    await server.ready()
    stream = StatusStream(redis_client, NETWORK)
    social = Social(redis_client, NETWORK, events=stream)
    uids = {login: await social.create_user(login, login.title()) for login in ("alice", "bob")}
    uids["carol"] = await social.create_user("carol", "Carol")
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        yield Api(server, http, redis_client, social, stream, uids)


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    """A server whose Redis is down: anything that reaches Redis is a 503."""
    log = tmp_path_factory.mktemp("uvicorn") / "offline.log"
    server = Uvicorn(f"redis://127.0.0.1:{free_port()}", "offline", log).start()
    yield server
    server.stop()


async def _records(response: httpx.Response, until_message: str = END) -> list[dict[str, Any]]:
    """The JSON lines of a streaming response up to the status with ``until_message``."""
    assert response.status_code == 200, await response.aread()
    assert response.headers["content-type"].startswith("application/x-ndjson")
    got: list[dict[str, Any]] = []
    async for line in response.aiter_lines():
        if not line:
            continue  # a keep-alive
        record = json.loads(line)
        got.append(record)
        if record.get("status", {}).get("message") == until_message:
            return got
    raise AssertionError(f"the stream ended before {until_message!r}: {got}")


def _position(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _events(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["kind"], r["status"]["id"]) for r in records]


async def _traffic(api: Api) -> list[tuple[str, StatusMessage]]:
    """Post and delete a mix of statuses; return the events, in order."""
    done: list[tuple[str, StatusMessage]] = []
    first = await api.post("alice", "hello Redis", lat=51.5, lon=-0.12)
    done.append(("created", first))
    for who, message, data in [
        ("bob", "@alice streams API", {}),
        ("carol", "nothing here", {"lat": 48.86, "lon": 2.35}),
        ("bob", "redis streams, in London", {"lat": 51.6, "lon": 0.1}),
        ("carol", "the streams API is nice", {}),
    ]:
        done.append(("created", await api.post(who, message, **data)))
    assert await api.social.delete_status(api.uids["alice"], first.id)
    done.append(("deleted", first))
    return done


# -- streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("GET", {"track": "redis,streams api"}),
        ("POST", {"track": "redis"}),
        ("GET", {"follow": "alice"}),
        ("POST", {"follow": "2,@carol"}),
        ("GET", {"locations": LONDON}),
        ("POST", {"locations": f"100,-10,110,10,{LONDON}"}),
    ],
    ids=["track", "track-post", "follow", "follow-post", "locations", "locations-post"],
)
async def test_filter_delivers_exactly_the_matching_statuses_after_connecting(
    api: Api, method: str, params: dict[str, str]
) -> None:
    await api.post("alice", "before: redis streams api", lat=51.5, lon=0)  # never delivered
    match = create_filters("filter", {k: [v] for k, v in params.items()})
    request: dict[str, Any] = {"params": params} if method == "GET" else {"data": params}
    async with api.http.stream(method, "/statuses/filter", **request) as response:
        start = response.headers["last-event-id"]
        assert start == await api.stream.last_id()
        done = await _traffic(api)
        done.append(("created", await api.post("alice", END, lat=51.5, lon=0)))
        records = await _records(response)
    assert _events(records) == [(kind, s.id) for kind, s in done if match(s)]
    assert all(_position(r["id"]) > _position(start) for r in records)
    for record in records:
        assert set(record) == {"id", "kind", "status"}
        _, status = next((k, s) for k, s in done if (k, s.id) == _events([record])[0])
        assert record["status"] == {
            "id": status.id,
            "uid": status.uid,
            "login": status.login,
            "message": status.message,
            "posted": status.posted,
            "data": status.data,
        }


async def test_filter_json_path_and_each_chunk_is_one_json_line(api: Api) -> None:
    async with api.http.stream("GET", "/statuses/filter.json?track=redis") as response:
        await api.post("bob", "Redis one")
        await api.post("bob", END)
        chunks = []
        async for chunk in response.aiter_raw():
            if chunk != b"\n":
                chunks.append(chunk)
            if END.encode() in chunk:
                break
    # Transfer-Encoding: chunked, one JSON line per chunk (httpx may join chunks that arrived
    # together, so a read may hold several whole lines, never part of one).
    assert response.headers.get("transfer-encoding") == "chunked"
    lines = b"".join(chunks).split(b"\n")
    assert lines[-1] == b""
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert [json.loads(line)["status"]["message"] for line in lines[:-1]] == ["Redis one", END]


@pytest.mark.parametrize(
    ("query", "seed", "fraction"),
    [
        ("percent=50&identifier=reader-1", "reader-1", 0.5),
        ("percent=30", "127.0.0.1", 0.3),  # no identifier: the client's address seeds it
        ("identifier=x", "x", 0.1),  # the book's default: 10 %
        ("percent=100", "", 1.0),
    ],
)
async def test_sample_delivers_the_seeded_percent(
    api: Api, query: str, seed: str, fraction: float
) -> None:
    match = SampleFilter(fraction, seed=seed)
    async with api.http.stream("GET", f"/statuses/sample?{query}") as response:
        done = [("created", await api.post("bob", f"status {i}")) for i in range(30)]
        while True:  # end on a status the sample passes, whichever it is
            status = await api.post("carol", END)
            done.append(("created", status))
            if match(status):
                break
        records = await _records(response)
    assert _events(records) == [(kind, s.id) for kind, s in done if match(s)]
    assert parse_identifier({}, "127.0.0.1") == "127.0.0.1"


@pytest.mark.parametrize("how", ["last_id", "Last-Event-ID"])
async def test_resume_gets_exactly_the_events_after_the_last_id(api: Api, how: str) -> None:
    async with api.http.stream("GET", "/statuses/sample?percent=100") as response:
        start = response.headers["last-event-id"]
        done = await _traffic(api)
        seen = []
        async for line in response.aiter_lines():
            if line:
                seen.append(json.loads(line))
            if len(seen) == 3:
                break  # disconnect mid-stream
    later = [("created", await api.post("bob", f"later {i}")) for i in range(3)]
    later.append(("created", await api.post("alice", END)))
    # (httpx's params= replaces the URL's query string: the path has none.)
    resume: dict[str, Any] = {"params": {"percent": "100", "last_id": seen[-1]["id"]}}
    if how == "Last-Event-ID":
        resume = {"params": {"percent": "100"}, "headers": {"Last-Event-ID": seen[-1]["id"]}}
    path = "/statuses/sample"
    async with api.http.stream("GET", path, **resume) as response:
        assert response.headers["last-event-id"] == seen[-1]["id"]
        rest = await _records(response)
    assert _events(seen + rest) == [(kind, s.id) for kind, s in done + later]
    # From the position of the first response's headers: everything since it connected.
    everything = {"percent": "100", "last_id": start}
    async with api.http.stream("GET", path, params=everything) as response:
        assert _events(await _records(response)) == _events(seen + rest)


async def test_resume_past_a_trimmed_stream_says_what_was_missed(api: Api) -> None:
    small = StatusStream(api.redis, NETWORK, maxlen=5)  # XADD MAXLEN applies per append
    await api.post("alice", "first")
    first = await api.stream.last_id()
    for i in range(200):
        await small.publish("created", StatusMessage(f"2:{i + 1}", 2, "bob", f"m{i}", 1.0, {}))
    assert await api.stream.missed(first)
    async with api.http.stream("GET", f"/statuses/filter?track=redis&last_id={first}") as r:
        await api.post("carol", END)
        records = await _records(r)
    assert records[0] == {"kind": "missed", "after": first}
    assert _events(records[1:]) == [("created", records[-1]["status"]["id"])]
    # Not trimmed past: no such line.
    newest = await api.stream.last_id()
    async with api.http.stream("GET", f"/statuses/filter?track=redis&last_id={newest}") as r:
        await api.post("carol", END)
        assert [x["kind"] for x in await _records(r)] == ["created"]


async def test_an_idle_stream_sends_keepalive_lines(api: Api) -> None:
    async with api.http.stream("GET", "/statuses/filter?track=nothing") as response:
        await api.post("alice", "not tracked")
        lines = response.aiter_lines()
        assert await anext(lines) == ""  # the non-matching status sent nothing; then a newline


# -- disconnects and shutdown ---------------------------------------------------------------


async def _blocked_readers(redis: Any) -> int:
    """The app's connections blocked in XREAD now, on every node."""
    clients: list[dict[str, str]]
    if isinstance(redis, RedisCluster):
        nodes: Any = await redis.client_list(target_nodes=RedisCluster.ALL_NODES)
        clients = [c for per_node in nodes.values() for c in per_node]
    else:
        clients = await redis.client_list()
    return sum(
        1
        for c in clients
        if c.get("name") == CLIENT_NAME and c.get("cmd") == "xread" and "b" in c.get("flags", "")
    )


async def test_a_client_that_disconnects_ends_the_server_read(api: Api) -> None:
    server = api.server
    await until(lambda: _zero(server.open_streams(api.http)), "earlier tests' streams to end")
    for round_ in range(3):
        async with api.http.stream("GET", "/statuses/filter?track=redis") as response:
            assert response.status_code == 200

            async def reading() -> bool:
                opened = await server.open_streams(api.http) == 1
                return opened and await _blocked_readers(api.redis) >= 1

            await until(reading, "the server to block in XREAD for the client")
        # The client went away mid-stream (httpx closes a connection it did not read to the end).

        async def ended() -> bool:
            return await server.open_streams(api.http) == 0 and not await _blocked_readers(
                api.redis
            )

        await until(ended, f"the server to stop reading Redis (round {round_})")
    async with api.http.stream("GET", "/statuses/filter?follow=bob") as response:
        status = await api.post("bob", END)
        assert _events(await _records(response)) == [("created", status.id)]
    assert server.process is not None
    assert server.process.poll() is None


async def _zero(count: Any) -> bool:
    return bool(await count == 0)


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
async def test_aclose_ends_open_streams_and_the_server_stops_cleanly(
    request: pytest.FixtureRequest, tmp_path: Path, topology: str
) -> None:
    endpoint: Endpoint = request.getfixturevalue(
        "redis_cluster_server" if topology == "cluster" else "redis_server"
    )
    server = Uvicorn(endpoint.url, topology, tmp_path / "uvicorn.log").start()
    try:
        await server.ready()
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            async with (
                http.stream("GET", "/statuses/filter?track=a") as one,
                http.stream("GET", "/statuses/sample") as two,
            ):
                assert await server.open_streams(http) == 2
                closed = await http.post("/_test/close")
                assert closed.json() == {"open": 0}
                for response in (one, two):
                    lines = [line async for line in response.aiter_lines() if line]
                    assert json.loads(lines[-1]) == {"kind": "closing", "reason": "shutdown"}
            refused = await http.get("/statuses/sample")
            assert refused.status_code == 503
            assert "shutting down" in refused.json()["error"]
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        # Uvicorn shuts down, then raises the signal it caught again: killed by SIGTERM.
        assert await asyncio.to_thread(server.process.wait, 60) == -signal.SIGTERM
    finally:
        server.stop()
    log = server.log.read_text()
    assert "Application shutdown complete" in log, log
    assert "Traceback" not in log, log
    assert "destroyed" not in log, log


async def test_server_shutdown_cancels_open_streams(redis_server: Endpoint, tmp_path: Path) -> None:
    """Uvicorn cancels responses still open after --timeout-graceful-shutdown; each one ends."""
    log = tmp_path / "uvicorn.log"
    server = Uvicorn(
        redis_server.url, "standalone", log, extra=("--timeout-graceful-shutdown", "1")
    )
    server.start()
    try:
        await server.ready()
        async with (
            httpx.AsyncClient(base_url=server.base, timeout=30) as http,
            http.stream("GET", "/statuses/filter?track=a") as response,
        ):
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            lines = [line async for line in response.aiter_lines() if line]
        assert json.loads(lines[-1]) == {"kind": "closing", "reason": "shutdown"}
        assert await asyncio.to_thread(server.process.wait, 60) == -signal.SIGTERM
    finally:
        server.stop()
    output = server.log.read_text()
    assert "Application shutdown complete" in output, output
    assert "destroyed but it is pending" not in output, output


# -- bad requests ---------------------------------------------------------------------------

BAD = [
    ("GET", "/statuses/filter", 400, "exactly one of track, follow or locations (got none)"),
    ("GET", "/statuses/filter?track=a&follow=b", 400, "got track and follow"),
    ("GET", "/statuses/filter?track=", 400, "track"),
    ("GET", "/statuses/filter?track=a,,b", 400, "without empty items"),
    ("GET", "/statuses/filter?track=...", 400, "has no words"),
    ("GET", "/statuses/filter?track=a&track=b", 400, "given 2 times"),
    ("GET", "/statuses/filter?trak=a", 400, "unknown parameter 'trak'"),
    ("GET", "/statuses/filter?follow=0", 400, "follow"),
    ("GET", "/statuses/filter?follow=a%20b", 400, "follow"),
    ("GET", "/statuses/filter?follow=99999999999999999999999", 400, "follow"),
    ("GET", "/statuses/filter?locations=1,2,3", 400, "boxes of 4 numbers"),
    ("GET", "/statuses/filter?locations=0,0,1,x", 400, "decimal number"),
    ("GET", "/statuses/filter?locations=0,0,1,nan", 400, "decimal number"),
    ("GET", "/statuses/filter?locations=0,0,200,1", 400, "locations"),
    ("GET", "/statuses/filter?locations=0,1,1,0", 400, "south"),
    ("GET", "/statuses/filter?track=a&last_id=latest", 400, "last_id must be an event id"),
    ("GET", "/statuses/filter?track=a&last_id=1-2-3", 400, "last_id"),
    ("GET", "/statuses/filter?track=a&identifier=", 400, "identifier"),
    ("GET", "/statuses/filter?track=%ff", 400, "cannot be parsed"),
    ("GET", "/statuses/sample?percent=0", 400, "percent must be above 0"),
    ("GET", "/statuses/sample?percent=101", 400, "percent"),
    ("GET", "/statuses/sample?percent=ten", 400, "decimal number"),
    ("GET", "/statuses/sample?percent=inf", 400, "decimal number"),
    ("GET", "/statuses/sample?track=a", 400, "unknown parameter 'track'"),
    ("GET", "/statuses/firehose", 404, "no such stream"),
    ("GET", "/", 404, "no such stream"),
    ("POST", "/statuses/sample", 405, "use GET"),
    ("DELETE", "/statuses/filter", 405, "use GET, POST"),
    ("PUT", "/statuses/filter?track=a", 405, "not allowed"),
]


@pytest.mark.parametrize(("method", "path", "status", "message"), BAD)
async def test_bad_requests_are_refused_before_redis(
    method: str, path: str, status: int, message: str
) -> None:
    """In-process, on a client that fails the test if anything reaches Redis."""
    app = StreamingAPI(StatusStream(NO_REDIS, NETWORK))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        reply = await http.request(method, path)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]
    assert reply.json()["status"] == status
    if status == 405:
        assert reply.headers["allow"] in ("GET", "GET, POST")


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({"content-type": "application/json"}, b'{"track": "a"}', 415, "x-www-form-urlencoded"),
        ({}, b"track=" + b"a" * (70 * 1024), 413, "larger than"),
        ({}, b"track=a&follow=b", 400, "got track and follow"),
        ({}, b"", 400, "got none"),
        ({"last-event-id": "5-0"}, b"track=a&last_id=6-0", 400, "disagree"),
        ({"last-event-id": "nope"}, b"track=a", 400, "last_id must be an event id"),
    ],
)
async def test_bad_post_bodies_are_refused_before_redis(
    headers: dict[str, str], body: bytes, status: int, message: str
) -> None:
    app = StreamingAPI(StatusStream(NO_REDIS, NETWORK))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        reply = await http.post("/statuses/filter", content=body, headers=headers)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]


async def test_a_real_server_refuses_bad_requests_without_redis(offline: Uvicorn) -> None:
    """The same server answers 503 once a request is good enough to reach its (down) Redis."""
    await offline.ready()
    async with httpx.AsyncClient(base_url=offline.base, timeout=30) as http:
        for method, path, status, message in BAD[::3]:
            reply = await http.request(method, path)
            assert reply.status_code == status, reply.text
            assert message in reply.json()["error"]
        reply = await http.post("/statuses/filter", data={"track": "a", "trak": "b"})
        assert reply.status_code == 400
        reply = await http.get("/statuses/filter?track=a")
        assert reply.status_code == 503
        assert "Redis did not answer" in reply.json()["error"]
        reply = await http.post("/statuses/filter", data={"track": "a"})
        assert reply.status_code == 503


def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError, match="StatusStream"):
        StreamingAPI(NO_REDIS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keepalive"):
        StreamingAPI(StatusStream(NO_REDIS), keepalive=0)
    with pytest.raises(TypeError, match="keepalive"):
        StreamingAPI(StatusStream(NO_REDIS), keepalive="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        create_filters("firehose", {})  # type: ignore[arg-type]
    assert repr(StreamingAPI(StatusStream(NO_REDIS, "n"))) == "<StreamingAPI 'aiorp:streaming:{n}'>"


async def test_lifespan_startup_and_shutdown(redis_client: Any) -> None:
    """The ASGI lifespan protocol, spoken directly: shutdown ends an open stream."""
    app = StreamingAPI(StatusStream(redis_client, NETWORK), keepalive=None)
    sent: list[dict[str, Any]] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: Any) -> None:
        sent.append(message)

    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
    await until(lambda: _sent(sent, "lifespan.startup.complete"), "the startup to complete")

    request: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await request.put({"type": "http.request", "body": b"", "more_body": False})
    scope = {"type": "http", "method": "GET", "path": "/statuses/sample", "query_string": b""}
    streaming = asyncio.create_task(app(scope, request.get, send))
    await until(lambda: _opened(app), "the stream to open")
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(lifespan, 30)
    await asyncio.wait_for(streaming, 30)
    kinds = [m["type"] for m in sent]
    assert kinds[-1] == "lifespan.shutdown.complete"
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert json.loads(bodies[-2]["body"]) == {"kind": "closing", "reason": "shutdown"}
    assert bodies[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert app.open_streams == 0


async def test_async_with_closes_open_streams(redis_client: Any) -> None:
    sent: list[dict[str, Any]] = []
    request: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await request.put({"type": "http.request", "body": b"", "more_body": False})

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/statuses/filter",
        "query_string": b"track=a",
    }
    async with StreamingAPI(StatusStream(redis_client, NETWORK)) as app:
        streaming = asyncio.create_task(app(scope, request.get, send))
        await until(lambda: _opened(app), "the stream to open")
    assert streaming.done()
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def _sent(sent: list[dict[str, Any]], kind: str) -> bool:
    return any(m["type"] == kind for m in sent)


async def _opened(app: StreamingAPI) -> bool:
    return app.open_streams == 1
