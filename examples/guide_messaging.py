"""The messaging guide's examples: an inbox, a group chat, fan-out streams (Redis in Action §6.5,
§6.6), on a Redis server this script starts itself.

Run: ``uv run python examples/guide_messaging.py``. The docs include the code between the
``--8<--`` markers, so the guide shows exactly what this script runs.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aiorpatterns import Chats, Fanout, Inbox
from aiorpatterns.testing.server import RedisServer


# --8<-- [start:inbox]
async def inbox_example(redis: Redis) -> None:
    """One recipient: a message is held while it is handled, then acknowledged."""
    inbox = Inbox(redis, "alice", visibility_timeout=30)
    await inbox.send({"text": "lunch?"}, sender="bob")
    message = await inbox.receive(timeout=1)
    assert message is not None
    assert message.sender == "bob"
    assert message.message == {"text": "lunch?"}
    assert await inbox.ack(message)  # not acknowledged in 30 s: delivered again
    counts = await inbox.counts()
    assert (counts.waiting, counts.held) == (0, 0)


# --8<-- [end:inbox]


# --8<-- [start:chat]
async def chat_example(redis: Redis) -> None:
    """A group chat: each member pulls the messages it has not seen yet."""
    chats = Chats(redis)
    chat_id = await chats.create("ann", ["bob", "eve"], "welcome!")
    await chats.send(chat_id, "bob", "hi all")
    batch = await chats.fetch(chat_id, "eve")
    assert [m.message for m in batch.messages] == ["welcome!", "hi all"]
    assert await chats.ack(batch)  # eve has read through the last message
    assert (await chats.fetch(chat_id, "eve")).messages == ()
    await chats.leave(chat_id, "eve")
    assert sorted(await chats.members(chat_id)) == ["ann", "bob"]


# --8<-- [end:chat]


# --8<-- [start:fanout]
async def fanout_example(redis: Redis) -> None:
    """One stream, many reader groups; each group sees every entry once."""
    logs = Fanout(redis, "logs", maxlen=10_000)
    await logs.create_group("archiver")
    await logs.create_group("alerts")
    await logs.publish_many([{"line": 1}, {"line": 2}])
    for group in ("archiver", "alerts"):
        reader = logs.consumer(group, "reader-1")
        entries = await reader.read(timeout=1)
        assert [e.payload for e in entries] == [{"line": 1}, {"line": 2}]
        assert await reader.ack(entries) == 2
        await reader.aclose()


# --8<-- [end:fanout]


async def main() -> None:
    with RedisServer() as server:
        redis = Redis.from_url(server.url)
        try:
            await inbox_example(redis)
            await chat_example(redis)
            await fanout_example(redis)
        finally:
            await redis.aclose()
    print("messaging: ok")


if __name__ == "__main__":
    asyncio.run(main())
