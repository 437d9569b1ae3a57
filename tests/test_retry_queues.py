"""Run-twice tests for the task queue, the worker and the sharded list (DESIGN, "Retry safety").

Every scenario runs once through a plain client and once through a client that sends every
script call twice and keeps the second reply (``retrysafe.py``): the caller must see the same
and the keyspace must hold the same. A second kind of fault, a reply lost after the server ran
the step (the client raises ``ConnectionError``), checks that the clean-ups give back by token.
Both topologies, real servers.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import until
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from retrysafe import assert_retry_safe, plain, script_names

from aiorpatterns.core.scripts import script
from aiorpatterns.memory.sharding import ShardedList
from aiorpatterns.queues.taskqueue import QueueCounts, TaskQueue
from aiorpatterns.queues.worker import Worker
from aiorpatterns.testing.pytest_plugin import Endpoint


def counts(ready: int = 0, delayed: int = 0, running: int = 0, dead: int = 0) -> QueueCounts:
    return QueueCounts(ready, delayed, running, dead)


async def take_receipts(client: Any, base: str) -> list[Any]:
    """The receipts kept under ``base`` (masked, sorted), deleted once read.

    Receipt keys differ only by their token, which the keyspace comparison masks: several of
    them would collide there, so the scenario returns them as a sorted list instead.
    """
    found = []
    async for key in client.scan_iter(match=base + ":*", count=1000):
        value = await client.get(key)
        found.append((plain(value), await client.pttl(key) > 0))
        await client.delete(key)
    return sorted(found, key=repr)


# -- task queue ---------------------------------------------------------------------------------


@pytest.mark.retry_safe("queue_put", "queue_inspect")
async def test_put_twice_enqueues_once(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        q = TaskQueue(client, "rput")
        seen: list[Any] = [await q.put("a"), await q.put("b", priority="high")]
        seen.append(await q.put("c", delay=60))
        seen += [await q.put("d", task_id="fixed"), await q.put("other", task_id="fixed")]
        seen.append(await q.counts())
        task = await q.get(timeout=0)
        assert task is not None
        seen.append((task.payload, task.attempts))
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[-2] == counts(ready=3, delayed=1)
    assert seen[-1] == ("b", 1)


@pytest.mark.retry_safe("queue_claim", "queue_ack", "queue_settle", "queue_extend")
async def test_claim_and_settle_twice(redis_client: Any, twice_client: Any) -> None:
    """One claim per get() (one attempt counted), and every settlement answers as it did once:
    ack, extend, retry, dead-letter, release."""

    async def scenario(client: Any) -> Any:
        q = TaskQueue(client, "rclaim", max_attempts=2)
        for payload in ("a", "b"):
            await q.put(payload)
        seen: list[Any] = []
        a = await q.get(timeout=0)
        assert a is not None
        seen += [a.payload, a.attempts, await q.counts()]
        seen += [await q.extend(a, 60), await q.ack(a), await q.counts()]
        b = await q.get(timeout=0)
        assert b is not None
        seen += [b.payload, b.attempts, await q.fail(b, "first", delay=0)]
        b2 = await q.get(timeout=5)
        assert b2 is not None
        seen += [b2.payload, b2.attempts, b2.last_error, await q.counts()]
        seen += [await q.fail(b2, "second"), await q.counts()]  # out of attempts: dead
        await q.put("c")
        c = await q.get(timeout=0)
        assert c is not None
        seen += [c.payload, c.attempts, await q.release(c), await q.counts()]
        c2 = await q.get(timeout=0)
        assert c2 is not None
        seen += [c2.payload, c2.attempts, await q.fail(c2, "no", retry=False)]
        seen += [await q.counts(), await q.get(timeout=0)]
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:6] == ["a", 1, counts(ready=1, running=1), True, True, counts(ready=1)]
    assert seen[6:13] == ["b", 1, "retrying", "b", 2, "first", counts(running=1)]
    assert seen[13:] == [
        *("dead", counts(dead=1), "c", 1, True, counts(ready=1, dead=1)),
        *("c", 1, "dead", counts(dead=2), None),
    ]


@pytest.mark.retry_safe("queue_put", "queue_claim")
async def test_put_many_and_ack_many_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        q = TaskQueue(client, "rmany")
        await q.put_many(["a", "b", "c"])
        await q.put_many(["d"], delay=60)
        got = await q.get_many(5, timeout=0)
        seen: list[Any] = [await q.counts(), [t.payload for t in got]]
        return [*seen, await q.ack_many(got[:2]), await q.counts()]

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [
        counts(running=3, delayed=1),
        ["a", "b", "c"],
        [True, True],
        counts(running=1, delayed=1),
    ]


@pytest.mark.retry_safe("queue_claim", "queue_settle")
async def test_batch_claims_and_handovers_twice(redis_client: Any, twice_client: Any) -> None:
    """A batch claim re-sent returns the same tasks (one attempt each); an ack-and-claim re-sent
    acks once and claims the same next task; a batch's clean-up gives every task back once."""

    async def scenario(client: Any) -> Any:
        q = TaskQueue(client, "rbatch")
        for i in range(4):
            await q.put(i)
        batch = await q.get_many(3, timeout=0)
        seen: list[Any] = [[(t.payload, t.attempts) for t in batch], await q.counts()]
        acked, following = await q.ack_and_get(batch[0])
        assert following is not None
        seen += [acked, following.payload, following.attempts, await q.counts()]
        await q._abandon(batch[1].claim.partition("#")[0], 3)
        seen += [await q.counts()]
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [
        [(0, 1), (1, 1), (2, 1)],
        counts(ready=1, running=3),
        *(True, 3, 1, counts(running=3)),
        counts(ready=2, running=1),
    ]


@pytest.mark.retry_safe("queue_put", "queue_ack", "queue_abort", "queue_settle", "queue_extend")
async def test_results_and_aborts_twice(redis_client: Any, twice_client: Any) -> None:
    """An ack keeps its result once, an abort deletes or marks once (one stream entry), a
    heartbeat hears of an abort, and finishing an aborted task answers as it did once."""

    async def scenario(client: Any) -> Any:
        q = TaskQueue(client, "rresult", result_ttl=60)
        done_id = await q.put({"n": 1})
        task = await q.get(timeout=0)
        assert task is not None
        seen: list[Any] = [await q.ack(task, {"sum": 3}), await q.status(done_id)]
        seen.append(await q.result(done_id, timeout=5))
        queued = await q.put("later", delay=60)
        seen += [await q.abort(queued), await q.status(queued), await q.abort(queued)]
        await q.put("run")
        running = await q.get(timeout=0)
        assert running is not None
        seen += [await q.abort(running.id), await q.status(running.id)]
        seen += [await q.extend(running), await client.xlen(q.aborts_key)]
        seen += [await q.finish_abort(running), await q.status(running.id), await q.counts()]
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:6] == [True, "done", {"sum": 3}, True, "aborted", True]
    assert seen[6:] == [True, "aborting", False, 1, True, "aborted", counts()]


@pytest.mark.retry_safe("queue_claim", "queue_ack")
async def test_claim_of_an_expired_lease_twice(redis_client: Any, twice_client: Any) -> None:
    """A claim that takes back an expired lease (and redelivers it, or dead-letters it once out
    of attempts) does so once; the first holder's late ack is refused while the task runs
    elsewhere."""

    async def scenario(client: Any) -> Any:
        q = TaskQueue(client, "rlease", visibility_timeout=0.2, max_attempts=2)
        await q.put("x")
        first = await q.get(timeout=0)
        assert first is not None
        again = await q.get(timeout=10)  # waits for the deadline, then takes the task back
        assert again is not None
        seen = [again.id == first.id, again.attempts, await q.ack(first), await q.counts()]
        third = await q.get(timeout=10)  # out of attempts: dead-lettered by this claim
        seen += [third, await q.counts(), await q.ack(again)]
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [True, 2, False, counts(running=1), None, counts(dead=1), True]


@pytest.mark.retry_safe("queue_settle", "queue_claim")
async def test_abandon_twice_releases_once_and_refuses_the_late_claim(
    redis_client: Any, twice_client: Any
) -> None:
    """A cancelled get()'s clean-up (abandon by token) gives the task back once, uncounted, and
    its tombstone refuses the same claim re-sent afterwards."""

    async def scenario(client: Any) -> Any:
        q = TaskQueue(client, "rabandon")
        await q.put("x")
        task = await q.get(timeout=0)
        assert task is not None
        await q._abandon(task.claim)
        seen: list[Any] = [await q.counts()]
        late = await script("queue_claim")(
            client, q.script_keys("queue_claim"), [task.claim, 30000, 100, 1]
        )
        seen += [[int(x) for x in late[1:]], await q.counts()]
        again = await q.get(timeout=0)
        assert again is not None
        seen += [again.attempts, await q.ack(again)]
        await q._abandon(uuid.uuid4().hex)  # a claim that never ran: only the tombstone
        return seen

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [counts(ready=1), [-2], counts(ready=1), 1, True]


@pytest.mark.retry_safe("queue_promote")
async def test_promote_twice_answers_the_ids_it_moved(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        q = TaskQueue(client, "rpromote")
        # Due in the order put (so only the first put's wake-up token is pushed, every run).
        ids = {await q.put(n, delay=0.05 + n / 100) for n in range(3)}
        promoted: list[str] = []
        for _ in range(2000):  # until all three are due and moved (each call its own token)
            promoted += await q.promote()
            if len(promoted) >= 3:
                break
            await asyncio.sleep(0.01)
        # How many calls it took depends on timing: compare what the receipts kept, in all.
        kept = await take_receipts(client, q.keys[1])
        in_receipts = sum(reply.count("<token>") for reply, _ in kept)
        expiring = all(expires for _, expires in kept)
        state = await q.counts()
        return [sorted(promoted) == sorted(ids), len(promoted), state, in_receipts, expiring]

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [True, 3, counts(ready=3), 3, True]


@pytest.mark.retry_safe("queue_dead", "queue_inspect")
async def test_dead_letter_maintenance_twice(redis_client: Any, twice_client: Any) -> None:
    async def scenario(client: Any) -> Any:
        q = TaskQueue(client, "rdead", max_attempts=1)
        ids = [await q.put(n) for n in range(4)]
        for _ in ids:
            task = await q.get(timeout=0)
            assert task is not None
            assert await q.fail(task, f"bad {task.payload}") == "dead"
        letters = await q.dead_letters(count=10)
        seen: list[Any] = [[(d.payload, d.reason, d.attempts) for d in letters]]
        seen += [await q.requeue_dead([ids[0], "missing"]), await q.counts()]
        seen += [await q.delete_dead([ids[1]]), await q.requeue_dead(), await q.counts()]
        seen += [await q.delete_dead(), len(await q.dead_letters())]
        return [*seen, await take_receipts(client, q.keys[5])]

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen == [
        [(0, "bad 0", 1), (1, "bad 1", 1), (2, "bad 2", 1), (3, "bad 3", 1)],
        *(1, counts(ready=1, dead=3), 1, 2, counts(ready=3), 0, 0),
        [("1", True), ("1", True), ("2", True)],  # delete_dead() of nothing: no call
    ]


@pytest.mark.retry_safe("queue_put", "queue_claim", "queue_settle")  # acks ride on claims
async def test_worker_through_doubled_scripts_handles_each_task_once(
    redis_client: Any, twice_client: Any
) -> None:
    """The known failure: doubled claims dead-lettered tasks no handler saw. 30 tasks, one
    delivery each: every task handled exactly once, acked, nothing dead or left over."""
    q = TaskQueue(twice_client, "rworker", visibility_timeout=1.0, max_attempts=1)
    handled: collections.Counter[int] = collections.Counter()
    failed_once: set[int] = set()

    async def job(n: int) -> None:
        handled[n] += 1
        await asyncio.sleep(0)

    def flaky(n: int) -> None:
        # Fails its first delivery (max_attempts=1: dead-lettered, a queue_settle), then the
        # dead letter is re-queued below and handled: the retry path runs doubled too.
        if n not in failed_once:
            failed_once.add(n)
            raise RuntimeError("first time")
        handled[n] += 1

    for n in range(30):
        await q.put_call("job", [n])
    await q.put_call("flaky", [100])
    async with Worker(q, {"job": job, "flaky": flaky}, concurrency=5) as worker:
        observer = TaskQueue(redis_client, "rworker")

        async def settled() -> bool:
            c = await observer.counts()
            return c.ready == c.delayed == c.running == 0 and len(handled) == 30

        await until(settled, "every task settled", limit=60)
        c = await observer.counts()
        assert c.dead == 1, f"dead-lettered tasks nobody failed: {c}"
        assert await q.requeue_dead() == 1

        async def flaky_done() -> bool:
            return handled[100] == 1 and (await observer.counts()).total == 0

        await until(flaky_done, "the re-queued task handled", limit=60)
    assert handled == collections.Counter({n: 1 for n in [*range(30), 100]})
    assert (worker.stats.acked, worker.stats.dead, worker.stats.lost) == (31, 1, 0)
    assert await observer.counts() == counts()


# -- a reply lost after the step ran: clean-up by token ---------------------------------------


class _LoseReply:
    """Mixin: the next run of each script named in ``lose`` runs, then its reply is lost."""

    lose: collections.Counter[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = await super().execute_command(*args, **options)  # type: ignore[misc]
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if name.upper() == "EVALSHA":
            sha = args[1].decode() if isinstance(args[1], bytes) else str(args[1])
            script_name = script_names().get(sha, sha)
            if self.lose[script_name] > 0:
                self.lose[script_name] -= 1
                raise RedisConnectionError(f"{script_name}: reply lost (test)")
        return reply


class LosingRedis(_LoseReply, Redis):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lose = collections.Counter()


class LosingCluster(_LoseReply, RedisCluster):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lose = collections.Counter()


@pytest.fixture
async def losing_client(request: pytest.FixtureRequest, redis_client: Any) -> AsyncIterator[Any]:
    """A client on ``redis_client``'s server that loses the replies it is told to lose."""
    topology = request.node.callspec.params["redis_client"]
    fixture = "redis_cluster_server" if topology == "cluster" else "redis_server"
    endpoint: Endpoint = request.getfixturevalue(fixture)
    kind = LosingCluster if topology == "cluster" else LosingRedis
    client = kind.from_url(endpoint.url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_get_whose_claim_reply_is_lost_gives_the_task_back(losing_client: Any) -> None:
    q = TaskQueue(losing_client, "lostclaim")
    await q.put("x")
    losing_client.lose["queue_claim"] = 1
    with pytest.raises(RedisConnectionError):
        await q.get(timeout=0)
    assert await q.counts() == counts(ready=1)
    task = await q.get(timeout=0)
    assert task is not None
    assert task.attempts == 1, "the lost claim counted a delivery"
    assert await q.ack(task)


async def test_worker_give_back_survives_a_failing_release(losing_client: Any) -> None:
    """Past its grace period a handler is cancelled and its task released; a release whose
    reply is lost (it raises) is tried again, never crashes the clean-up, releases once."""
    q = TaskQueue(losing_client, "lostrelease")
    await q.put_call("stuck", [])
    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.sleep(3600)

    worker = Worker(q, {"stuck": stuck}, grace=0)
    await worker.start()
    await asyncio.wait_for(started.wait(), 30)
    losing_client.lose["queue_settle"] = 1
    await worker.aclose()
    assert losing_client.lose["queue_settle"] == 0, "the release never ran"
    assert await q.counts() == counts(ready=1)
    task = await q.get(timeout=0)
    assert task is not None
    assert task.attempts == 1
    assert await q.ack(task)


async def test_handler_cancelled_before_it_starts_gives_its_task_back(redis_client: Any) -> None:
    """A handling task cancelled before its first step never runs its own clean-up: the worker
    releases the task for it."""
    q = TaskQueue(redis_client, "unstarted")
    await q.put_call("never", [])
    worker = Worker(q, {"never": lambda: None})
    task = await q.get(timeout=0)
    assert task is not None
    worker._active += 1
    handling = asyncio.create_task(worker._handle(q, task))
    worker._handling.add(handling)
    handling.add_done_callback(
        lambda done: worker._handled(done, queue=q, task=task)  # as _fetch registers it
    )
    handling.cancel()
    await worker.aclose()
    assert await q.counts() == counts(ready=1)
    again = await q.get(timeout=0)
    assert again is not None
    assert again.attempts == 1
    assert await q.ack(again)


# -- sharded list -------------------------------------------------------------------------------


@pytest.mark.retry_safe("shard_list_push", "shard_list_pop")
async def test_sharded_list_push_and_pop_twice(redis_client: Any, twice_client: Any) -> None:
    """Each push pushes once and each pop pops once, across shard boundaries, at both ends."""

    async def scenario(client: Any) -> Any:
        lst = ShardedList(client, "rlist", chunk_size=3)
        seen: list[Any] = [await lst.rpush(*range(7)), await lst.lpush("a", "b")]
        seen += [await lst.rpush(*range(7, 20)), await lst.llen()]
        seen += [await lst.lpop(), await lst.rpop(), await lst.llen()]
        seen += [await lst.blpop(timeout=1), await lst.brpop(timeout=1)]
        while (item := await lst.lpop()) is not None:
            seen.append(item)
        seen += [await lst.llen(), await lst.rpop(), await lst.blpop(timeout=0)]
        return [*seen, len(await take_receipts(client, lst.meta_key))]

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    expected = [7, 9, 22, 22, "b", "19", 20, "a", "18", *map(str, range(18)), 0, None, None]
    assert seen[:-1] == expected
    assert seen[-1] == 3 + 22  # a receipt per push call and per pop that took an item


@pytest.mark.retry_safe("shard_list_pop", "shard_list_push")
async def test_sharded_list_give_back_by_token_twice(redis_client: Any, twice_client: Any) -> None:
    """A pop given up on (cancelled, or its reply lost) is given back by its token: the item it
    took goes back to its end once; a pop that had not run yet is refused when it arrives."""

    async def scenario(client: Any) -> Any:
        lst = ShardedList(client, "rback", chunk_size=2)
        await lst.rpush("x", "y", "z")
        token = uuid.uuid4().hex
        keys = [lst.meta_key, lst.signal_key, lst._shard(0)]
        popped = await script("shard_list_pop")(client, keys, ["left", 0, token, "pop"])
        seen: list[Any] = [int(popped[0]), await lst.llen()]
        await lst._give_back("left", token)
        await lst._give_back("left", token)  # best_effort's second try: no second push
        seen.append(await lst.llen())
        early = uuid.uuid4().hex
        await lst._give_back("right", early)  # nothing popped yet: refuse the pop to come
        late = await script("shard_list_pop")(client, keys, ["left", 0, early, "pop"])
        seen += [int(late[0]), await lst.llen()]
        while (item := await lst.lpop()) is not None:
            seen.append(item)
        return [*seen, await take_receipts(client, lst.meta_key)]

    seen = await assert_retry_safe(redis_client, twice_client, scenario)
    assert seen[:-1] == [1, 2, 3, 0, 3, "x", "y", "z"]


async def test_sharded_list_pop_whose_reply_is_lost_gives_the_item_back(
    losing_client: Any,
) -> None:
    lst = ShardedList(losing_client, "lostpop", chunk_size=2)
    await lst.rpush("a", "b", "c")
    losing_client.lose["shard_list_pop"] = 1
    with pytest.raises(RedisConnectionError):
        await lst.lpop()
    assert await lst.llen() == 3
    assert [await lst.lpop() for _ in range(4)] == ["a", "b", "c", None]
