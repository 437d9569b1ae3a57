"""The streaming API over HTTP: uvicorn serves a social network's status stream, httpx reads it.

Run: ``uv run python examples/streaming_http.py`` (uvicorn and httpx are dev dependencies; the
library itself needs neither). The script starts a Redis server and, in the same process, a
``uvicorn.Server`` serving :class:`aiorpatterns.social.streaming_api.StreamingAPI` on a free port.
A client tracks the word "redis" over HTTP (one JSON line per status), disconnects after the
first status, and reconnects with ``Last-Event-ID``: it gets what was posted meanwhile, nothing
twice (Redis in Action §8.5, on a Redis Stream instead of pub/sub). Then the app closes its
open streams and uvicorn stops. The script prints what the client got and exits by itself.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import uvicorn
from redis.asyncio import Redis

from aiorpatterns.social.network import Social
from aiorpatterns.social.streaming import StatusStream
from aiorpatterns.social.streaming_api import StreamingAPI
from aiorpatterns.testing.server import RedisServer, free_port


# --8<-- [start:serve]
async def serve(app: StreamingAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Start uvicorn in this process; return once it accepts connections."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
        await asyncio.sleep(0.01)
    return server, task


# --8<-- [end:serve]


def show(record: dict[str, Any]) -> None:
    if record["kind"] in ("created", "deleted"):
        status = record["status"]
        print(f"client: {record['kind']} {status['id']} @{status['login']}: {status['message']}")
    else:
        print(f"client: notice {record}")


# --8<-- [start:client]
async def track_and_resume(http: httpx.AsyncClient, social: Social, alice: int, bob: int) -> None:
    """Track "redis", disconnect after the first status, resume with Last-Event-ID."""
    track = {"track": "redis"}
    async with http.stream("GET", "/statuses/filter", params=track) as response:
        # The headers are here: every status posted from now on reaches us.
        print(f"client: connected, HTTP {response.status_code}")
        first = await social.post_status(alice, "Learning Redis streams")
        async for line in response.aiter_lines():
            if line:  # an empty line is a keep-alive
                record = json.loads(line)
                show(record)
                last_id = record["id"]
                break
    print(f"client: disconnected after {last_id}")

    await social.post_status(bob, "Lunch time")  # not tracked
    await social.post_status(bob, "REDIS, the database")
    await social.delete_status(alice, first)

    resume = {"Last-Event-ID": last_id}
    async with http.stream("GET", "/statuses/filter", params=track, headers=resume) as response:
        print(f"client: resumed after {response.headers['last-event-id']}")
        received = 0
        async for line in response.aiter_lines():
            if line:
                show(json.loads(line))
                received += 1
            if received == 2:  # the REDIS status and the delete: nothing twice
                break


# --8<-- [end:client]


async def main() -> None:
    with RedisServer() as redis_server:
        redis = Redis.from_url(redis_server.url)
        try:
            stream = StatusStream(redis, "demo", maxlen=1000)
            social = Social(redis, "demo", events=stream)
            alice = await social.create_user("alice", "Alice")
            bob = await social.create_user("bob", "Bob")
            app = StreamingAPI(stream, keepalive=5)
            port = free_port()
            server, serving = await serve(app, port)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                await track_and_resume(http, social, alice, bob)
                # Shut down: end the open streams (each gets a "closing" line), then uvicorn.
                async with http.stream("GET", "/statuses/sample", params={"percent": 50}) as s:
                    await app.aclose()
                    async for line in s.aiter_lines():
                        if line:
                            show(json.loads(line))
                refused = await http.get("/statuses/sample")
                print(
                    f"client: after aclose, HTTP {refused.status_code}: {refused.json()['error']}"
                )
            server.should_exit = True
            await serving
        finally:
            await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
