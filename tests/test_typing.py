"""The API as the type checker sees it, and the client check every pattern makes at construction.

A user's file that uses the API correctly passes ``mypy --strict``; one with the usual mistakes
(a misspelt option, a sync client, not a client at all) is reported on each mistaken line. At
run time, every public pattern class refuses a sync ``redis.Redis`` and any other object when it
is made, before a command could be sent.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

import aiorpatterns
from aiorpatterns import IpLocations, ShardedClients

REPO = Path(__file__).resolve().parent.parent

GOOD = """
    from __future__ import annotations

    import redis.asyncio as aioredis

    from aiorpatterns import (
        AutoPipeline,
        FairSemaphore,
        Inbox,
        InboxMessage,
        Lock,
        ReentryError,
        Semaphore,
        TaskQueue,
    )


    async def main() -> None:
        r = aioredis.Redis(decode_responses=True)
        cluster = aioredis.RedisCluster(host="127.0.0.1", port=7000)
        async with Lock(r, "cart:42", timeout=5, acquire_timeout=1, auto_renew=True) as lock:
            fence: int | None = lock.fence
            print(fence)
        Lock(cluster, "cart:43", acquire_timeout=None)
        async with Semaphore(r, "api", limit=2, acquire_timeout=1.5, timeout=30):
            pass
        fair = FairSemaphore(r, "api", limit=2, on_lost=lambda lease: None)
        held: bool = await fair.acquire(blocking=False)
        print(held)
        queue = TaskQueue(r, "jobs")
        task_id: str = await queue.put_call("send_email", ["a@b"], {"urgent": True},
                                            priority="high", delay=1.0)
        raw_id: str = await queue.put_raw('["f", [], {}]', task_id="t1", max_attempts=2)
        print(task_id, raw_id)
        ap = AutoPipeline(r, max_batch=100)
        inbox = Inbox(ap, "alice", visibility_timeout=10)
        await inbox.send({"hi": 1}, sender="bob")
        message: InboxMessage | None = await inbox.receive(timeout=1)
        if message is not None:
            await inbox.ack(message)
        try:
            await lock.acquire()
        except ReentryError:
            pass
        await ap.aclose()
        await r.aclose()
"""

# Each mistake sits on its own line, marked by a trailing "# mistake".
BAD = """
    from __future__ import annotations

    import redis
    import redis.asyncio as aioredis

    from aiorpatterns import Lock, Semaphore, TaskQueue


    async def main() -> None:
        r = aioredis.Redis()
        queue = TaskQueue(r, "jobs")
        Lock(r, "x", timout=5)  # mistake
        Semaphore(r, "s", limit=2, aquire_timeout=1)  # mistake
        await queue.put_call("f", priorty="high")  # mistake
        await queue.put_raw("[]", dela=1)  # mistake
        Lock(42, "x")  # mistake
        Lock(redis.Redis(), "x")  # mistake
        Semaphore(r, "s")  # mistake
        Lock(r, "x", timeout=5)
"""


def run_mypy(path: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on one user file, with the package found from the repository."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def test_correct_use_passes_mypy_strict(tmp_path: Path) -> None:
    """A user's file that uses Lock, Semaphore, TaskQueue, Inbox and AutoPipeline type-checks."""
    result = run_mypy(write(tmp_path, "good_use.py", GOOD))
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_mistake_is_reported_on_its_line(tmp_path: Path) -> None:
    """Misspelt options, a sync client, a non-client, a missing limit: each line is flagged."""
    path = write(tmp_path, "bad_use.py", BAD)
    lines = path.read_text().splitlines()
    expected = {n for n, line in enumerate(lines, 1) if line.endswith("# mistake")}
    assert len(expected) == 7
    result = run_mypy(path)
    assert result.returncode == 1, result.stdout + result.stderr
    reported = {int(n) for n in re.findall(r"bad_use\.py:(\d+): error:", result.stdout)}
    assert reported == expected, result.stdout
    for word in ("timout", "aquire_timeout", "priorty", "dela"):
        assert f'"{word}"' in result.stdout, result.stdout
    assert 'incompatible type "redis.client.Redis"' in result.stdout  # the sync client
    assert 'Missing named argument "limit"' in result.stdout


# -- run time: the client check at construction --------------------------------------------------


def _constructors() -> list[type[Any]]:
    """Every class of ``aiorpatterns.__all__`` whose first parameter is ``redis``."""
    found = []
    for name in aiorpatterns.__all__:
        obj = getattr(aiorpatterns, name)
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        params = list(inspect.signature(obj).parameters)
        if params and params[0] == "redis":
            found.append(obj)
    return found


CONSTRUCTORS = _constructors()

#: Valid values of the required parameters besides the client (so only the client is wrong).
REQUIRED: dict[str, Any] = {
    "name": "thing",
    "recipient": "alice",
    "context": "ctx",
    "limit": 2,
    "total_elements": 100,
    "directory": ".",
    "callback": lambda *args: None,
    "channel": "logs",
    "timelines": ShardedClients([aioredis.Redis()]),
    "followers": ShardedClients([aioredis.Redis()]),
    "locations": IpLocations(aioredis.Redis()),
}


def _make(cls: type[Any], client: object) -> Any:
    args: list[Any] = [client]
    kwargs: dict[str, Any] = {}
    for param in list(inspect.signature(cls).parameters.values())[1:]:
        if param.default is not inspect.Parameter.empty:
            continue
        value = REQUIRED[param.name]  # a KeyError here: add the new required parameter above
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[param.name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


def test_the_client_classes_are_all_found() -> None:
    names = {cls.__name__ for cls in CONSTRUCTORS}
    assert {"Lock", "Semaphore", "FairSemaphore", "TaskQueue", "Inbox", "Social"} <= names
    assert len(CONSTRUCTORS) >= 30


@pytest.mark.parametrize("cls", CONSTRUCTORS, ids=lambda cls: cls.__name__)
def test_a_sync_client_is_refused_at_construction(cls: type[Any]) -> None:
    sync = redis.Redis()  # never connects: construction must refuse it first
    try:
        with pytest.raises(TypeError, match=r"synchronous redis\.Redis.*redis\.asyncio"):
            _make(cls, sync)
    finally:
        sync.close()


@pytest.mark.parametrize("cls", CONSTRUCTORS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("client", [object(), None, 42], ids=["object", "None", "int"])
def test_a_non_client_is_refused_at_construction(cls: type[Any], client: object) -> None:
    with pytest.raises(TypeError, match=r"redis must be a redis\.asyncio Redis or RedisCluster"):
        _make(cls, client)
