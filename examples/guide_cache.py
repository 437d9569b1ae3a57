"""The caching guide's examples: a cached function behind a web handler, tags, soft TTLs and
one computation per key across callers (beyond Redis in Action §2.3-2.4), on a Redis server this
script starts itself.

Run: ``uv run python examples/guide_cache.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from redis.asyncio import Redis

from aiorpatterns import Cache
from aiorpatterns.testing.server import RedisServer

#: The "database" the examples read, and how often they read it.
USERS = {1: {"id": 1, "name": "Ann", "team": "red"}, 2: {"id": 2, "name": "Bob", "team": "red"}}
DB_READS: list[int] = []


# --8<-- [start:handler]
def make_app(redis: Redis) -> Any:
    """A plain ASGI app: GET /users/<id> answers the user as JSON, cached for 5 minutes."""
    cache = Cache(redis, "users", ttl=300, soft_ttl=240)

    @cache.cached(key="user:{user_id}", tags=("user:{user_id}",))
    async def load_user(user_id: int) -> dict[str, Any] | None:
        DB_READS.append(user_id)
        await asyncio.sleep(0.05)  # the database's round trip
        return USERS.get(user_id)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        user_id = int(scope["path"].rsplit("/", 1)[-1])
        user = await load_user(user_id)
        status, body = (200, user) if user is not None else (404, {"error": "no such user"})
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    app.cache = cache  # type: ignore[attr-defined]
    return app


# --8<-- [end:handler]


async def get(app: Any, path: str) -> tuple[int, Any]:
    """Call the ASGI app as a server would; its status and JSON body."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": path}, None, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


# --8<-- [start:stampede]
async def stampede_example(redis: Redis) -> None:
    """100 requests for one cold user at once: the database is read once."""
    app = make_app(redis)
    replies = await asyncio.gather(*(get(app, "/users/1") for _ in range(100)))
    assert replies == [(200, USERS[1])] * 100
    assert DB_READS == [1]
    stats = app.cache.stats
    assert (stats.computes, stats.hits + stats.waits) == (1, 99)


# --8<-- [end:stampede]


# --8<-- [start:tags]
async def tags_example(redis: Redis) -> None:
    """Invalidate by tag after a write: every entry computed under it is a miss at once."""
    cache = Cache(redis, "teams")

    @cache.cached(key="team:{team}", tags=("team:{team}",))
    async def members(team: str) -> list[str]:
        return sorted(u["name"] for u in USERS.values() if u["team"] == team)

    assert await members("red") == ["Ann", "Bob"]
    USERS[3] = {"id": 3, "name": "Cy", "team": "red"}  # a write to the database...
    await cache.invalidate("team:red")  # ...then one HINCRBY, however many entries
    assert await members("red") == ["Ann", "Bob", "Cy"]


# --8<-- [end:tags]


# --8<-- [start:plain]
async def plain_example(redis: Redis) -> None:
    """get/set/delete and their batch forms, with a TTL per write."""
    cache = Cache(redis, "plain", ttl=60)
    await cache.set("greeting", {"text": "hello"}, ttl=10)
    assert await cache.get("greeting") == {"text": "hello"}
    await cache.set_many({"a": 1, "b": 2})
    assert await cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert await cache.delete("a")
    assert await cache.get("a", default="gone") == "gone"


# --8<-- [end:plain]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await stampede_example(redis)
            await tags_example(redis)
            await plain_example(redis)
        finally:
            await redis.aclose()
    print("cache guide: every example ran")


if __name__ == "__main__":
    asyncio.run(main())
