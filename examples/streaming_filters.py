"""Two filtered readers of a social network's status stream, on a server this script starts.

Run: ``uv run python examples/streaming_filters.py``. Users post and delete statuses through
:class:`aiorpatterns.social.network.Social` with ``events=`` a
:class:`aiorpatterns.social.streaming.StatusStream`; one reader tracks the word "redis", the other
follows bob or anything posted inside a box around London. The second reader disconnects half-way
and resumes from the last event id it saw, missing nothing (Redis in Action §8.5, on a Redis
Stream instead of pub/sub). The script prints what each reader got and exits by itself.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns.social.network import Social
from aiorpatterns.social.streaming import (
    FollowFilter,
    LocationFilter,
    StatusEvent,
    StatusStream,
    TrackFilter,
)
from aiorpatterns.testing.server import RedisServer

LONDON = (-0.51, 51.28, 0.33, 51.69)  # (west, south, east, north)


def show(reader: str, event: StatusEvent) -> None:
    status = event.status
    print(f"{reader}: {event.kind} {status.id} @{status.login}: {status.message}")


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            stream = StatusStream(redis, "demo", maxlen=1000)
            social = Social(redis, "demo", events=stream)
            alice = await social.create_user("alice", "Alice")
            bob = await social.create_user("bob", "Bob")
            start = await stream.last_id()

            first = await social.post_status(alice, "Learning Redis streams", lat=51.5, lon=-0.12)
            await social.post_status(bob, "Lunch time")
            await social.post_status(alice, "Paris is lovely", lat=48.86, lon=2.35)

            # Reader 2 reads what is there, then "disconnects", remembering the last id it saw.
            nearby = FollowFilter(bob) | LocationFilter(LONDON)
            seen = [e async for e in stream.events(nearby, last_id=start, timeout=0)]
            for event in seen:
                show("follow-bob-or-london", event)
            print(f"follow-bob-or-london: disconnected after {seen[-1].id}")

            await social.post_status(bob, "REDIS, the database")
            await social.delete_status(alice, first)

            async for event in stream.events(TrackFilter("redis"), last_id=start, timeout=0):
                show("track-redis", event)
            async for event in stream.events(nearby, last_id=seen[-1].id, timeout=0):
                show("follow-bob-or-london (resumed)", event)
        finally:
            await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
