"""Test JobIndex, JobLevelIndex and JobYearsIndex: who is qualified for which job.

Redis in Action §7.4 and its exercises. Searches are compared with a brute-force check of every
job against the candidate, after random sequences of indexing, re-indexing and removal, on a
standalone server and a cluster (and with ``decode_responses`` on and off for the book's tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from helpers import NO_REDIS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiorpatterns.search.jobs import (
    MAX_LEVEL_LIMIT,
    MAX_SKILLS,
    JobIndex,
    JobLevelIndex,
    JobYearsIndex,
)

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def keys_of(index: JobIndex) -> list[str]:
    pattern = f"{index.keyspace.tag(index.kind, index.name)}:*"
    return [text(k) async for k in index.redis.scan_iter(match=pattern, count=1000)]


# -- the book's tests ---------------------------------------------------------------------------


async def test_is_qualified_for_job(redis_client_text: Any) -> None:
    """Book ch07 test_is_qualified_for_job."""
    jobs = JobIndex(redis_client_text)
    await jobs.index_job("test", ["q1", "q2", "q3"])
    assert await jobs.is_qualified("test", ["q1", "q3", "q2"])
    assert not await jobs.is_qualified("test", ["q1", "q2"])
    assert not await jobs.is_qualified("unknown", ["q1"])


async def test_index_and_find_jobs(redis_client_text: Any) -> None:
    """Book ch07 test_index_and_find_jobs."""
    jobs = JobIndex(redis_client_text)
    await jobs.index_job("test1", ["q1", "q2", "q3"])
    await jobs.index_job("test2", ["q1", "q3", "q4"])
    await jobs.index_job("test3", ["q1", "q3", "q5"])
    assert await jobs.find_jobs(["q1"]) == []
    assert await jobs.find_jobs(["q1", "q3", "q4"]) == ["test2"]
    assert await jobs.find_jobs(["q1", "q3", "q5"]) == ["test3"]
    assert await jobs.find_jobs(["q1", "q2", "q3", "q4", "q5"]) == ["test1", "test2", "test3"]


_LEVEL_CASES = [
    ([("q1", 0)], []),
    ([("q1", 1)], ["job1"]),
    ([("q1", 2)], ["job1"]),
    ([("q2", 1)], []),
    ([("q2", 2)], []),
    ([("q1", 0), ("q2", 1)], []),
    ([("q1", 0), ("q2", 2)], ["job2"]),
    ([("q1", 1), ("q2", 1)], ["job1"]),
    ([("q1", 1), ("q2", 2)], ["job1", "job2"]),
]


async def test_index_and_find_jobs_levels(redis_client_text: Any) -> None:
    """Book ch07 test_index_and_find_jobs_levels."""
    jobs = JobLevelIndex(redis_client_text)
    await jobs.index_job("job1", [("q1", 1)])
    await jobs.index_job("job2", [("q1", 0), ("q2", 2)])
    for candidate, expected in _LEVEL_CASES:
        assert await jobs.find_jobs(candidate) == expected, candidate
        for job in ("job1", "job2"):
            assert await jobs.is_qualified(job, candidate) == (job in expected)


async def test_index_and_find_jobs_years(redis_client_text: Any) -> None:
    """Book ch07 test_index_and_find_jobs_years."""
    jobs = JobYearsIndex(redis_client_text)
    await jobs.index_job("job1", [("q1", 1)])
    await jobs.index_job("job2", [("q1", 0), ("q2", 2)])
    for candidate, expected in _LEVEL_CASES:
        assert await jobs.find_jobs(candidate) == expected, candidate
        for job in ("job1", "job2"):
            assert await jobs.is_qualified(job, candidate) == (job in expected)


# -- brute force ----------------------------------------------------------------------------------

_SKILLS = ["py", "go", "sql", "lua", "c:1", "é"]
_JOBS = ["j1", "j2", "j3", "J", "10", "9"]


def qualifies(variant: str, required: dict[str, float], has: dict[str, float]) -> bool:
    return all(
        skill in has and (variant == "skills" or has[skill] >= need)
        for skill, need in required.items()
    )


def requirement(variant: str, value: float) -> float:
    return 0 if variant == "skills" else value


def make_index(client: Any, variant: str) -> JobIndex:
    name = f"j{uuid.uuid4().hex[:8]}"
    if variant == "skills":
        return JobIndex(client, name)
    if variant == "levels":
        return JobLevelIndex(client, name, max_level=3)
    return JobYearsIndex(client, name)


def as_argument(variant: str, pairs: list[tuple[str, float]]) -> Any:
    return [skill for skill, _ in pairs] if variant == "skills" else pairs


def merged(variant: str, pairs: list[tuple[str, float]]) -> dict[str, float]:
    """What the index keeps of a list of pairs: each skill once, at its highest value."""
    out: dict[str, float] = {}
    for skill, value in pairs:
        value = requirement(variant, min(value, 3) if variant == "levels" else value)
        out[skill] = max(value, out.get(skill, value))
    return out


_PAIRS = st.lists(
    st.tuples(st.sampled_from(_SKILLS), st.sampled_from([0, 1, 2, 3, 4, 0.5, 2.25])),
    max_size=4,
)
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["index", "index", "index", "remove"]), st.sampled_from(_JOBS), _PAIRS
    ),
    max_size=12,
)


@SETTINGS
@given(
    variant=st.sampled_from(["skills", "levels", "years"]),
    ops=_OPS,
    candidates=st.lists(_PAIRS, min_size=1, max_size=4),
)
async def test_search_equals_brute_force(
    redis_client_text: Any,
    variant: str,
    ops: list[tuple[str, str, list[tuple[str, float]]]],
    candidates: list[list[tuple[str, float]]],
) -> None:
    index = make_index(redis_client_text, variant)

    def usable(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
        return [(s, int(v)) for s, v in pairs] if variant == "levels" else pairs

    jobs: dict[str, dict[str, float]] = {}
    for op, job, pairs in ops:
        if op == "remove":
            assert await index.remove_job(job) == (job in jobs)
            jobs.pop(job, None)
        elif pairs:
            await index.index_job(job, as_argument(variant, usable(pairs)))
            jobs[job] = merged(variant, usable(pairs))
    indexed = await index.jobs()
    assert indexed == set(jobs)
    assert all(type(j) is str for j in indexed)
    for job in jobs:
        for skill, need in (await index.requirements(job)).items():
            assert type(skill) is type(need) is str
    for pairs in candidates:
        has = merged(variant, usable(pairs))
        expected = sorted(j for j, required in jobs.items() if qualifies(variant, required, has))
        found = await index.find_jobs(as_argument(variant, usable(pairs)))
        assert found == expected
        assert all(type(j) is str for j in found)
        for job in _JOBS:
            assert await index.is_qualified(job, as_argument(variant, usable(pairs))) == (
                job in expected
            )
    await assert_no_stale_postings(index, jobs)


async def assert_no_stale_postings(index: JobIndex, jobs: dict[str, dict[str, float]]) -> None:
    """Every posting holds exactly the jobs whose requirements put them there."""
    r = index.redis
    expected: dict[str, dict[str, float]] = {}
    for job, required in jobs.items():
        for skill, need in required.items():
            if isinstance(index, JobLevelIndex):
                for level in range(int(need), index.max_level + 1):
                    expected.setdefault(index.level_key(skill, level), {})[job] = 0
            else:
                expected.setdefault(index.skill_key(skill), {})[job] = need
    keys = await keys_of(index)
    postings = {k for k in keys if ":skill:" in k or ":level:" in k}
    assert postings == set(expected)
    for key, members in expected.items():
        if isinstance(index, JobYearsIndex):
            got = {text(m): s for m, s in await r.zrange(key, 0, -1, withscores=True)}
            assert got == members
        else:
            assert {text(m) for m in await r.smembers(key)} == set(members)
    req = {text(m): s for m, s in await r.zrange(index.req_key, 0, -1, withscores=True)}
    assert req == {job: len(required) for job, required in jobs.items()}
    assert {k for k in keys if ":job:" in k} == {index.job_key(j) for j in jobs}
    assert not [k for k in keys if ":tmp:" in k]


async def test_reindexing_replaces_requirements(redis_client: Any) -> None:
    jobs = JobYearsIndex(redis_client)
    await jobs.index_job("j", {"py": 5, "go": 1})
    assert await jobs.requirements("j") == {"py": "5.0", "go": "1.0"}
    await jobs.index_job("j", [("sql", 2), ("sql", 3)])  # a repeated skill keeps the highest
    assert await jobs.requirements("j") == {"sql": "3.0"}
    assert await jobs.find_jobs({"py": 9, "go": 9}) == []
    assert await jobs.find_jobs({"sql": 3}) == ["j"]
    assert await jobs.find_jobs({"sql": 2.99}) == []
    await assert_no_stale_postings(jobs, {"j": {"sql": 3.0}})


async def test_levels_above_the_limit_count_as_the_limit(redis_client: Any) -> None:
    jobs = JobLevelIndex(redis_client)  # max_level 2, as the book
    await jobs.index_job("senior", {"py": 7})
    assert await jobs.requirements("senior") == {"py": "2"}
    assert await jobs.find_jobs({"py": 2}) == ["senior"]
    assert await jobs.find_jobs({"py": 99}) == ["senior"]
    assert await jobs.find_jobs({"py": 1}) == []


async def test_concurrent_reindexing_of_one_job_stays_consistent(redis_client: Any) -> None:
    jobs = JobLevelIndex(redis_client)
    choices = [{"py": 1, "go": 2}, {"sql": 0}, {"py": 2, "lua": 1, "c": 0}, {"go": 0}]

    async def writer(k: int) -> None:
        for i in range(12):
            await jobs.index_job("job", choices[(k + i) % len(choices)])

    await asyncio.gather(*(writer(k) for k in range(6)))
    final = {s: int(v) for s, v in (await jobs.requirements("job")).items()}
    assert final in choices
    await assert_no_stale_postings(jobs, {"job": dict(final)})


async def test_many_skills(redis_client: Any) -> None:
    jobs = JobIndex(redis_client)
    skills = [f"s{i}" for i in range(MAX_SKILLS)]
    await jobs.index_job("big", skills)
    assert await jobs.find_jobs(skills) == ["big"]
    assert await jobs.find_jobs(skills[:-1]) == []
    await jobs.index_job("big", ["one"])
    await assert_no_stale_postings(jobs, {"big": {"one": 0}})


# -- bad input -------------------------------------------------------------------------------


async def test_bad_arguments_raise_before_touching_redis() -> None:
    client = NO_REDIS  # any command sent through it fails the test
    skills, levels, years = JobIndex(client), JobLevelIndex(client), JobYearsIndex(client)
    bad_calls: list[tuple[type[Exception], Any]] = [
        (TypeError, lambda: skills.index_job(1, ["py"])),
        (ValueError, lambda: skills.index_job("", ["py"])),
        (ValueError, lambda: skills.index_job("a}", ["py"])),
        (TypeError, lambda: skills.index_job("j", "py")),
        (TypeError, lambda: skills.index_job("j", None)),
        (ValueError, lambda: skills.index_job("j", [])),
        (ValueError, lambda: skills.index_job("j", [""])),
        (TypeError, lambda: skills.index_job("j", [1])),
        (ValueError, lambda: skills.index_job("j", [f"s{i}" for i in range(MAX_SKILLS + 1)])),
        (TypeError, lambda: skills.find_jobs("py")),
        (TypeError, lambda: skills.is_qualified("j", b"py")),
        (TypeError, lambda: skills.remove_job(None)),
        (ValueError, lambda: levels.index_job("j", [("py", -1)])),
        (TypeError, lambda: levels.index_job("j", [("py", 1.5)])),
        (TypeError, lambda: levels.index_job("j", [("py", True)])),
        (TypeError, lambda: levels.index_job("j", ["py"])),
        (TypeError, lambda: levels.index_job("j", [("py", 1, 2)])),
        (TypeError, lambda: levels.find_jobs([("py", "1")])),
        (ValueError, lambda: years.index_job("j", {"py": -0.5})),
        (ValueError, lambda: years.index_job("j", {"py": float("nan")})),
        (ValueError, lambda: years.find_jobs({"py": float("inf")})),
        (TypeError, lambda: years.find_jobs({"py": "3"})),
        (TypeError, lambda: years.find_jobs({1: 3})),
    ]
    for error, call in bad_calls:
        with pytest.raises(error):
            await call()
    for bad_skill, error in (("", ValueError), ("a}", ValueError), (None, TypeError)):
        with pytest.raises(error, match=r"^skill"):
            levels.level_key(bad_skill, 1)  # type: ignore[arg-type]
        with pytest.raises(error, match=r"^skill"):
            skills.skill_key(bad_skill)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^level"):
        levels.level_key("py", -1)
    with pytest.raises(TypeError):
        JobIndex(None)
    with pytest.raises(ValueError, match="max_level"):
        JobLevelIndex(NO_REDIS, max_level=-1)
    with pytest.raises(ValueError, match="max_level"):
        JobLevelIndex(NO_REDIS, max_level=10**6)


async def test_numbers_are_range_checked_before_redis() -> None:
    """Years, levels and limits are checked before anything reaches Redis."""
    levels, years = JobLevelIndex(NO_REDIS), JobYearsIndex(NO_REDIS)
    bad_calls: list[tuple[type[Exception], str, Any]] = [
        (ValueError, "years", lambda: years.index_job("j", {"py": 10**400})),
        (ValueError, "years", lambda: years.index_job("j", {"py": 5e-324})),
        (ValueError, "years", lambda: years.find_jobs({"py": -1})),
        (TypeError, "years", lambda: years.find_jobs({"py": True})),
        (ValueError, "level", lambda: levels.index_job("j", {"py": -(2**70)})),
        (TypeError, "level", lambda: levels.find_jobs({"py": 1.0})),
    ]
    for error, named, call in bad_calls:
        with pytest.raises(error, match=named):
            await call()
    with pytest.raises(ValueError, match="max_level"):
        JobLevelIndex(NO_REDIS, max_level=MAX_LEVEL_LIMIT + 1)
    with pytest.raises(TypeError, match="max_level"):
        JobLevelIndex(NO_REDIS, max_level=True)


async def test_negative_zero_years_count_as_zero(redis_client: Any) -> None:
    jobs = JobYearsIndex(redis_client)
    await jobs.index_job("j", {"py": -0.0})
    assert await jobs.requirements("j") == {"py": "0.0"}
    assert await jobs.find_jobs({"py": -0.0}) == ["j"]


async def test_empty_candidates_find_nothing(redis_client: Any) -> None:
    jobs = JobYearsIndex(redis_client)
    await jobs.index_job("j", {"py": 0})
    assert await jobs.find_jobs({}) == []
    assert await jobs.find_jobs({"py": 0}) == ["j"]
    assert not await jobs.is_qualified("j", [])
    assert repr(jobs) == "<JobYearsIndex 'aiorp:job_years:{jobs}'>"


async def test_variants_do_not_share_keys(redis_client: Any) -> None:
    plain, by_level = JobIndex(redis_client, "x"), JobLevelIndex(redis_client, "x")
    await plain.index_job("j", ["py"])
    await by_level.index_job("j", {"py": 2})
    assert await plain.find_jobs(["py"]) == ["j"]
    assert await by_level.find_jobs({"py": 1}) == []
    assert await by_level.find_jobs({"py": 2}) == ["j"]


async def test_cancelled_calls_leave_a_consistent_index(redis_client: Any) -> None:
    """Cancel indexing, removal and searches at every await point, one after another."""
    jobs = JobLevelIndex(redis_client)
    await jobs.index_job("keep", {"py": 1})
    for steps in range(10):
        for make in (
            lambda: jobs.index_job("x", {"py": 2, "go": 0}),
            lambda: jobs.index_job("x", {"sql": 1}),
            lambda: jobs.find_jobs({"py": 2, "go": 1}),
            lambda: jobs.remove_job("x"),
        ):
            task = asyncio.ensure_future(make())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await asyncio.sleep(0.05)  # let a script that was already sent finish
    state = {"keep": {"py": 1.0}}
    if x := await jobs.requirements("x"):
        state["x"] = {skill: float(level) for skill, level in x.items()}
    await assert_no_stale_postings(jobs, state)
