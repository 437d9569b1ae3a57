"""The per-client wake-up channel on real servers: one blocked connection for many waiters.

Each test runs on a standalone server and on a 3-master cluster. Grants are pushed by hand here,
as ``_waitqueue.lua`` pushes them; the lease tests cover the scripts' side.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import blocked_clients, until
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from aiorpatterns.core import wakeup
from aiorpatterns.core.wakeup import (
    channel_id,
    deliver,
    latch_wait,
    signal_wait,
    stream_wait,
    wake_channel,
)
from aiorpatterns.testing.pytest_plugin import Endpoint

QUEUE = "aiorp:lock:{wake-test}:queue"


def registered(redis: Any, queue: str) -> bool:
    loop = wakeup._LOOPS.get(asyncio.get_running_loop())
    listeners = loop.listeners.get(redis, {}) if loop is not None else {}
    return any(k == queue or k.startswith(queue + ":") for k in listeners)


async def test_a_thousand_waiters_share_one_blocked_connection(redis_client: Any) -> None:
    channel = wake_channel(redis_client, QUEUE)
    tokens = [f"t{i}" for i in range(1000)]
    for token in tokens:
        channel.expect(token)
    waits = [asyncio.create_task(channel.wait(token, 60)) for token in tokens]

    async def one_blocked() -> bool:
        return await blocked_clients(redis_client) == 1

    await until(one_blocked, "the dispatcher to block")
    assert channel.waiting == 1000
    for start in range(0, 1000, 100):
        await redis_client.rpush(
            channel.key, *(f"{t} {i}" for i, t in enumerate(tokens) if start <= i < start + 100)
        )
    grants = await asyncio.gather(*waits)
    assert grants == [str(i) for i in range(1000)]
    for token in tokens:
        channel.forget(token)

    async def idle() -> bool:
        return not registered(redis_client, QUEUE) and await blocked_clients(redis_client) == 0

    await until(idle, "the idle channel to stop and leave the registry", limit=60)
    assert await redis_client.exists(channel.key) == 0


async def test_a_grant_named_in_a_reply_wakes_without_the_server(redis_client: Any) -> None:
    channel = wake_channel(redis_client, QUEUE)
    channel.expect("mine")
    assert deliver(redis_client, QUEUE, "mine", "7")
    assert await channel.wait("mine", 60) == "7"
    assert not deliver(redis_client, QUEUE, "stranger", "8")
    assert not deliver(redis_client, "aiorp:lock:{other}:queue", "mine", "9")
    channel.forget("mine")


async def test_a_grant_nobody_waits_for_is_dropped(redis_client: Any) -> None:
    channel = wake_channel(redis_client, QUEUE)
    channel.expect("late")
    channel.expect("waiting")
    channel.forget("late")  # it gave up; its clean-up step gives such a grant back
    await redis_client.rpush(channel.key, "late 1", "waiting 2")
    assert await channel.wait("waiting", 60) == "2"
    channel.forget("waiting")


async def test_no_grant_in_time_answers_none(redis_client: Any) -> None:
    channel = wake_channel(redis_client, QUEUE)
    channel.expect("patient")
    assert await channel.wait("patient", 0.05) is None
    await redis_client.rpush(channel.key, "patient 3")  # late, still taken up: it waits again
    assert await channel.wait("patient", 60) == "3"
    channel.forget("patient")


async def test_clients_of_one_loop_share_the_channel(redis_client: Any, new_client: Any) -> None:
    """One id per event loop: a grant reaches its waiter whichever client's dispatcher pops it."""
    other = await new_client()
    assert channel_id(other) == channel_id(redis_client)
    mine, theirs = wake_channel(redis_client, QUEUE), wake_channel(other, QUEUE)
    assert mine is not theirs  # a dispatcher per client object
    assert mine.key == theirs.key
    assert mine.key.startswith(QUEUE + ":wake:")  # same hash tag: one slot with the queue
    mine.expect("a")
    theirs.expect("b")
    assert deliver(other, QUEUE, "a", "3")  # a release on the other client wakes it locally
    await redis_client.rpush(mine.key, "b 1")
    assert await asyncio.gather(mine.wait("a", 60), theirs.wait("b", 60)) == ["3", "1"]
    mine.forget("a")
    theirs.forget("b")


async def test_a_stopped_dispatcher_costs_latency_only(redis_client: Any) -> None:
    channel = wake_channel(redis_client, QUEUE)
    channel.expect("survivor")
    first = asyncio.create_task(channel.wait("survivor", 0.5))

    async def dispatcher_blocked() -> bool:
        return await blocked_clients(redis_client) == 1

    await until(dispatcher_blocked, "the dispatcher to block")
    dispatcher = channel._dispatcher
    assert dispatcher is not None
    dispatcher.cancel()  # as if it had stopped for good
    await asyncio.wait((dispatcher,))
    assert channel._dispatcher is None
    await redis_client.rpush(channel.key, "survivor 4")
    assert await first is None  # nobody listened: the slice ran out
    assert await channel.wait("survivor", 60) == "4"  # the next wait listens again
    channel.forget("survivor")


async def test_a_failed_dispatcher_fails_the_waits(redis_server: Endpoint) -> None:
    """Standalone, no retries (``from_url``'s default): the cluster client always retries."""
    client = Redis.from_url(redis_server.url)
    try:
        channel = wake_channel(client, QUEUE)
        channel.expect("unlucky")
        waiting = asyncio.create_task(channel.wait("unlucky", 60))

        async def dispatcher_blocked() -> bool:
            return await blocked_clients(client) == 1

        await until(dispatcher_blocked, "the dispatcher to block")
        [victim] = [c for c in await client.client_list() if "b" in c["flags"]]
        await client.client_kill_filter(_id=victim["id"])
        with pytest.raises(RedisConnectionError):  # as its own BLPOP would have raised
            await asyncio.wait_for(waiting, 30)
        channel.forget("unlucky")
    finally:
        await client.aclose()


SIGNALS = "aiorp:queue:{wake-test}:signal"


async def test_a_thousand_signal_waiters_share_one_blocked_connection(redis_client: Any) -> None:
    waits = [asyncio.create_task(signal_wait(redis_client, SIGNALS, 60)) for _ in range(1000)]

    async def one_blocked() -> bool:
        return await blocked_clients(redis_client) == 1

    await until(one_blocked, "the dispatcher to block")
    for _ in range(10):
        await redis_client.rpush(SIGNALS, *["1"] * 100)
    assert all(await asyncio.gather(*waits))

    async def idle() -> bool:
        return not registered(redis_client, SIGNALS) and await blocked_clients(redis_client) == 0

    await until(idle, "the idle channel to stop and leave the registry", limit=60)
    assert await redis_client.llen(SIGNALS) == 0


async def test_one_signal_wakes_one_waiter(redis_client: Any) -> None:
    first = asyncio.create_task(signal_wait(redis_client, SIGNALS, 60))
    second = asyncio.create_task(signal_wait(redis_client, SIGNALS, 0.5))

    async def blocked() -> bool:
        return await blocked_clients(redis_client) == 1

    await until(blocked, "the dispatcher to block")
    await redis_client.rpush(SIGNALS, "1")
    assert await first is True  # the longest waiting
    assert await second is False


async def test_a_signal_nobody_waits_for_is_given_back(redis_client: Any) -> None:
    assert await signal_wait(redis_client, SIGNALS, 0.05) is False
    await redis_client.rpush(SIGNALS, "1")  # the dispatcher may still be blocked: it gives it back

    async def back() -> bool:
        return not registered(redis_client, SIGNALS) and await redis_client.llen(SIGNALS) == 1

    await until(back, "the signal to stay for another waiter")


LATCH = "aiorp:page:{wake-test}:ready"


async def test_a_latch_wakes_every_waiter_and_stays_set(redis_client: Any) -> None:
    waits = [asyncio.create_task(latch_wait(redis_client, LATCH, 60)) for _ in range(200)]

    async def one_blocked() -> bool:
        return await blocked_clients(redis_client) == 1

    await until(one_blocked, "the dispatcher to block")
    await redis_client.rpush(LATCH, "1")
    assert all(await asyncio.gather(*waits))
    assert await latch_wait(redis_client, LATCH, 60) is True  # set: a late waiter passes too
    assert await redis_client.lrange(LATCH, 0, -1) == [b"1"]  # rotated, never consumed
    await redis_client.delete(LATCH)
    assert await latch_wait(redis_client, LATCH, 0.05) is False


STREAM = "aiorp:chat:{wake-test}:signal"


async def test_a_stream_entry_wakes_the_waiters_it_passes(redis_client: Any) -> None:
    await redis_client.xadd(STREAM, {"id": 3}, id="3-0")
    behind = [asyncio.create_task(stream_wait(redis_client, STREAM, 4, 60)) for _ in range(100)]
    ahead = asyncio.create_task(stream_wait(redis_client, STREAM, 5, 0.5))
    # A position below the newest entry passes at once, as its own XREAD would have.
    assert await stream_wait(redis_client, STREAM, 2, 60) is True

    async def one_blocked() -> bool:
        return await blocked_clients(redis_client) == 1

    await until(one_blocked, "the dispatcher to block")
    await redis_client.xadd(STREAM, {"id": 5}, id="5-0")
    assert all(await asyncio.gather(*behind))
    assert await ahead is False  # 5 is not above 5

    async def idle() -> bool:
        return not registered(redis_client, STREAM) and await blocked_clients(redis_client) == 0

    await until(idle, "the idle channel to stop and leave the registry", limit=60)
