"""Test the peer rows of the benchmark tables (``benchmarks/peers/``) against real servers.

Each peer row's operation must do what its row says: a lock or semaphore peer acquires and
releases (nothing held afterwards), walrus' autocomplete returns the page walrus itself would
return, a job-queue peer's handlers run the tasks its producers enqueue (arq's in its own uv
environment), and a short contended run writes no key outside ``bench:``. A peer that is not
installed skips with its import error. Speed is never asserted.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from aiorpatterns.testing.pytest_plugin import Endpoint
from benchmarks.autocomplete import NAMES, PAGE, PREFIXES
from benchmarks.runner import BENCH_PREFIX, ClientStats, Job, Target, cleanup

FAR = 3600.0


def _job(target: Target, clients: int = 1, duration: float = 0.3) -> Job:
    return Job("peers", "peer", clients, clients, duration, target)


async def _client(target: Target) -> Any:
    if target.topology == "cluster":
        cluster = RedisCluster.from_url(target.url)
        await cluster.initialize()
        return cluster
    return Redis.from_url(target.url)


async def _outside_bench(target: Target) -> set[bytes]:
    client = await _client(target)
    try:
        return {key async for key in client.scan_iter() if not key.startswith(b"bench:")}
    finally:
        await client.aclose()


async def _run(workload: Any, clients: int, duration: float) -> list[ClientStats]:
    """Drive a workload's clients as the runner does: loop until the deadline, then cancel."""
    stats = [ClientStats() for _ in range(clients)]
    ops = await workload.open(stats)
    try:
        deadline = time.perf_counter() + duration

        async def drive(op: Any) -> None:
            while time.perf_counter() < deadline:
                await op(deadline)

        tasks = [asyncio.create_task(drive(op)) for op in ops]
        _, pending = await asyncio.wait(tasks, timeout=duration)
        for task in pending:
            task.cancel()
        await asyncio.wait(tasks, timeout=15)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        await workload.close()
    return stats


def _coredis(job: Job) -> Any:
    pytest.importorskip("coredis.patterns.lock")
    from benchmarks.peers.coredis_lock import coredis_lock

    return coredis_lock(job)


def _pottery(job: Job) -> Any:
    pytest.importorskip("pottery")
    from benchmarks.peers.pottery_lock import pottery_lock

    return pottery_lock(job)


def _lock_key(name: str) -> str:
    from benchmarks.peers import coredis_lock, pottery_lock

    return {"coredis": coredis_lock.KEY, "pottery": pottery_lock.KEY}[name]


LOCKS: dict[str, Callable[[Job], Any]] = {"coredis": _coredis, "pottery": _pottery}


@pytest.fixture(params=["standalone", "cluster"])
def target(request: pytest.FixtureRequest) -> Target:
    fixture = "redis_server" if request.param == "standalone" else "redis_cluster_server"
    found: Endpoint = request.getfixturevalue(fixture)
    return Target(found.url, request.param)


@pytest.mark.parametrize("name", sorted(LOCKS))
async def test_lock_peer_acquires_and_releases(target: Target, name: str) -> None:
    workload = LOCKS[name](_job(target))
    key = _lock_key(name)
    assert key.startswith(BENCH_PREFIX)
    client = await _client(target)
    st = ClientStats()
    try:
        (op,) = await workload.open([st])
        for _ in range(3):
            await op(time.perf_counter() + FAR)
        assert st.ops == st.tries == 3  # uncontended: one SET NX PX per acquire
        assert not await client.exists(key)  # released
        await client.set(key, "someone else", px=120_000)
        task = asyncio.create_task(op(time.perf_counter() + FAR))
        await asyncio.sleep(0.3)
        assert not task.done()  # held elsewhere: it waits
        assert st.ops == 3
        await client.delete(key)
        await asyncio.wait_for(task, 15)
        assert st.ops == 4
        assert st.tries > 4
        assert not await client.exists(key)
    finally:
        await workload.close()
        await client.aclose()


@pytest.mark.parametrize("name", sorted(LOCKS))
async def test_lock_peer_row_leaves_keys_only_under_bench(target: Target, name: str) -> None:
    before = await _outside_bench(target)
    stats = await _run(LOCKS[name](_job(target, clients=2)), clients=2, duration=0.3)
    assert sum(st.ops for st in stats) > 0
    assert all(st.tries >= st.ops for st in stats)
    assert await _outside_bench(target) <= before
    await cleanup(target)


async def test_py_redis_semaphore_acquires_and_releases(redis_server: Endpoint) -> None:
    pytest.importorskip("redis_semaphore")
    from benchmarks.peers.py_redis_semaphore import NAME, NAMESPACE, py_redis_semaphore

    target = Target(redis_server.url)
    owners = f"{NAMESPACE}:{NAME}:owners"
    client = Redis.from_url(target.url)
    workload = py_redis_semaphore(2, 10)(_job(target))
    st = ClientStats()
    try:
        (op,) = await workload.open([st])
        for _ in range(3):
            await op(time.perf_counter() + FAR)
        assert st.ops == st.tries == 3
        assert await client.zcard(owners) == 0  # released
    finally:
        await workload.close()
        await client.aclose()
    before = await _outside_bench(target)
    stats = await _run(py_redis_semaphore(2, 10)(_job(target, clients=4)), clients=4, duration=0.3)
    assert sum(st.ops for st in stats) > 0
    assert await _outside_bench(target) <= before
    await cleanup(target)


async def test_py_redis_semaphore_refuses_a_cluster(redis_cluster_server: Endpoint) -> None:
    pytest.importorskip("redis_semaphore")
    from benchmarks.peers.py_redis_semaphore import py_redis_semaphore

    workload = py_redis_semaphore(2, 10)(_job(Target(redis_cluster_server.url, "cluster")))
    with pytest.raises(RuntimeError, match="no cluster client"):
        await workload.open([ClientStats()])


def test_walrus_seed_writes_what_store_writes(redis_server: Endpoint) -> None:
    walrus = pytest.importorskip("walrus")
    from benchmarks.peers.walrus_autocomplete import NAMESPACE, seed_sync

    names = [*NAMES[:150], "about", "would"]  # two English stopwords: walrus skips them
    db = walrus.Database.from_url(redis_server.url)
    try:
        seed_sync(db, names)
        seeded = _dump(db, NAMESPACE)
        _delete(db, NAMESPACE)
        stored = walrus.Autocomplete(db, namespace=NAMESPACE)
        for name in names:
            stored.store(name)
        assert _dump(db, NAMESPACE) == seeded
    finally:
        _delete(db, NAMESPACE)
        db.close()


def test_walrus_row_completes_a_page(redis_server: Endpoint) -> None:
    walrus = pytest.importorskip("walrus")
    from benchmarks.peers.walrus_autocomplete import NAMESPACE, walrus_autocomplete

    target = Target(redis_server.url)
    before = asyncio.run(_outside_bench(target))
    workload = walrus_autocomplete(NAMES, PREFIXES, PAGE)(_job(target))
    st = ClientStats()
    db = walrus.Database.from_url(target.url)
    try:
        (op,) = workload.open([st])  # seeds the index: none is there yet
        for _ in range(20):
            op(time.perf_counter() + FAR)
        assert st.ops == st.tries == 20  # every prefix is cut from a name: never an empty page
        # walrus' page is the first names holding the prefix, in order (its scores order
        # words of up to 10 letters alphabetically), stopwords left out.
        ac = walrus.Autocomplete(db, namespace=NAMESPACE)
        for prefix in PREFIXES[:50]:
            page = list(ac.search(prefix, limit=PAGE))
            expected = [n for n in NAMES if n.startswith(prefix) and n not in ac._stopwords]
            assert page == expected[:PAGE]
    finally:
        workload.close()
        _delete(db, NAMESPACE)
        db.close()
    assert asyncio.run(_outside_bench(target)) <= before


def _dump(db: redis.Redis, namespace: str) -> dict[bytes, Any]:
    out: dict[bytes, Any] = {}
    for key in db.scan_iter(match=namespace + ":*"):
        kind = db.type(key)
        out[key] = db.hgetall(key) if kind == b"hash" else db.zrange(key, 0, -1, withscores=True)
    return out


def _delete(db: redis.Redis, namespace: str) -> None:
    keys = list(db.scan_iter(match=namespace + ":*"))
    if keys:
        db.delete(*keys)


#: Job-queue peer rows: name -> (the peer's module, the row's module, its workload factory).
QUEUES = {
    "saq": ("saq", "saq_queue", "saq_queue"),
    "streaq": ("streaq", "streaq_queue", "streaq_queue"),
    "taskiq": ("taskiq_redis", "taskiq_queue", "taskiq_queue"),
}


def _queue_workload(name: str, job: Job) -> Any:
    if name == "arq":
        from benchmarks.peers import arq_queue

        try:
            arq_queue.PEER.environment()
        except Exception as exc:  # no uv, or no PyPI and nothing cached
            pytest.skip(f"arq's environment: {exc}")
        return arq_queue.PEER.workload(job)
    peer, module, factory = QUEUES[name]
    pytest.importorskip(peer)
    return getattr(importlib.import_module(f"benchmarks.peers.{module}"), factory)(job)


def test_queue_prefix_is_the_runners() -> None:
    from benchmarks.peers import QUEUE_PREFIX

    assert QUEUE_PREFIX == BENCH_PREFIX


@pytest.mark.parametrize("name", ["arq", *sorted(QUEUES)])
async def test_queue_peer_row_runs_tasks_and_leaves_keys_only_under_bench(
    redis_server: Endpoint, name: str
) -> None:
    target = Target(redis_server.url)
    duration = 1.2 if name == "arq" else 0.3  # arq polls its queue every 0.5 s
    before = await _outside_bench(target)
    stats = await _run(_queue_workload(name, _job(target, 2, duration)), 2, duration)
    assert sum(st.ops for st in stats) > 0
    for st in stats:
        assert st.ops <= st.tries <= st.ops + 1  # one task in flight per producer
        assert len(st.latencies) == st.ops
        assert all(0 <= x < duration + 1 for x in st.latencies)
    assert await _outside_bench(target) <= before
    await cleanup(target)
