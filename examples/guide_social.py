"""The social network guide's examples: users, follows, timelines, lists, the streaming API
(Redis in Action §8), on a Redis server this script starts itself.

Run: ``uv run python examples/guide_social.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import Social, StatusStream, TrackFilter
from aiorpatterns.testing.server import RedisServer


# --8<-- [start:network]
async def network_example(redis: Redis) -> None:
    """Users follow each other; a status reaches every follower's home timeline."""
    social = Social(redis, "site")
    ann = await social.create_user("ann", "Ann")
    bob = await social.create_user("bob", "Bob")
    assert await social.follow_user(bob, ann)  # bob follows ann
    status = await social.post_status(ann, "hello, followers")
    [home] = await social.get_status_messages(bob)  # bob's home timeline
    assert (home.id, home.login, home.message) == (status, "ann", "hello, followers")
    user = await social.get_user(ann)
    assert user is not None
    assert (user.followers, user.posts) == (1, 1)

    best = await social.create_list(bob, "best")  # a user list: a timeline of chosen users
    await social.follow_user_list(best, ann)
    assert [m.id for m in await social.get_list_messages(best)] == [status]

    assert await social.delete_status(ann, status)
    assert await social.get_status_messages(bob) == []


# --8<-- [end:network]


# --8<-- [start:streaming]
async def streaming_example(redis: Redis) -> None:
    """Status events on a Stream, read through a filter, resumable from the last id seen."""
    stream = StatusStream(redis, "news", maxlen=10_000)
    social = Social(redis, "news", events=stream)
    ann = await social.create_user("ann", "Ann")
    start = await stream.last_id()
    await social.post_status(ann, "Redis 8 is out")
    await social.post_status(ann, "lunch")
    seen = [e async for e in stream.events(TrackFilter("redis"), last_id=start, timeout=0)]
    assert [(e.kind, e.status.message) for e in seen] == [("created", "Redis 8 is out")]


# --8<-- [end:streaming]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await network_example(redis)
            await streaming_example(redis)
        finally:
            await redis.aclose()
    print("social: ok")


if __name__ == "__main__":
    asyncio.run(main())
