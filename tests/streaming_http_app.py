"""The app ``tests/test_streaming_http.py`` serves with uvicorn in a subprocess.

``uvicorn --factory streaming_http_app:create_app --app-dir tests``: a :class:`StreamingAPI`
on the stream :data:`NETWORK` of the Redis at ``$AIORP_STREAMING_URL``, whose topology is
``$AIORP_STREAMING_TOPOLOGY``: ``standalone``, ``cluster`` or ``offline`` (a standalone
client that does not retry), with keep-alives every ``$AIORP_STREAMING_KEEPALIVE`` seconds.
Two test-only routes beside it: ``GET /_test/open`` answers ``{"open": <open streams>}`` and
``POST /_test/close`` runs :meth:`StreamingAPI.aclose`, as a server's shutdown would.
"""

from __future__ import annotations

import json
import os
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from aiorpatterns.social.streaming import StatusStream
from aiorpatterns.social.streaming_api import StreamingAPI

NETWORK = "httpnet"
#: The name of the app's Redis connections (CLIENT LIST tells them from the test's own).
CLIENT_NAME = "aiorp-streaming-http"


def _client() -> Any:
    url = os.environ["AIORP_STREAMING_URL"]
    topology = os.environ.get("AIORP_STREAMING_TOPOLOGY", "standalone")
    if topology == "cluster":
        return RedisCluster.from_url(url, client_name=CLIENT_NAME)
    if topology == "offline":
        return Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2)
    return Redis.from_url(url, client_name=CLIENT_NAME)


async def _reply(send: Any, status: int, body: object) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def create_app() -> Any:
    """The streaming API, and the two test-only routes (``uvicorn --factory``)."""
    api = StreamingAPI(
        StatusStream(_client(), NETWORK),
        keepalive=float(os.environ.get("AIORP_STREAMING_KEEPALIVE", "0.5")),
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_test/open":
            await _reply(send, 200, {"open": api.open_streams})
        elif scope["type"] == "http" and scope["path"] == "/_test/close":
            await api.aclose()
            await _reply(send, 200, {"open": api.open_streams})
        else:
            await api(scope, receive, send)

    return app
