"""Find the jobs a candidate is qualified for: by skills, by skill levels, by years of experience.

Redis in Action §7.4 first checks one job at a time (§7.4.1: SDIFF of the job's skills and the
candidate's), then turns the problem around like a search (§7.4.2): one SET of jobs per skill, a
ZSET of how many skills each job requires, and per candidate a ``ZUNIONSTORE`` over the
candidate's skills that counts, per job, the skills the candidate has; a job whose count reaches
its requirement qualifies. The chapter's exercises extend that to skill levels (a job requiring
level ``l`` is posted under every level from ``l`` up) and to years of experience (a ZSET per
skill, job -> years).

Each variant is its own index class with the same methods: :class:`JobIndex` (skills),
:class:`JobLevelIndex` and :class:`JobYearsIndex`. Unlike the book's, re-indexing a job replaces
its requirements (no stale postings), :meth:`~JobIndex.remove_job` exists, a skill listed twice
counts once (with its highest requirement), every step is one atomic script, and every key,
temporary ones included, shares the index's hash tag, so an index works on Redis Cluster.
Every step is safe to re-send: indexing writes the same state again, a search's scratch keys
are named before the call and deleted by it, and a removal keeps its reply as a receipt under a
token made per call.

Keys (``name`` is the index's name; ``<kind>`` is ``jobs``, ``job_levels`` or ``job_years``):
``<prefix>:<kind>:{<name>}:job:<job>`` (HASH skill -> requirement), ``…:req`` (ZSET job ->
number of skills), ``…:all`` (SET of jobs), postings ``…:skill:<skill>`` (SET of jobs, or for years
a ZSET job -> years) or ``…:level:<level>:<skill>`` (SET), scratch keys ``…:tmp:<uuid>``
that the search script deletes before it returns, and receipts ``…:req:<token>`` (expire).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ..core.checks import AsyncRedis, check_client, check_count, check_int, check_keyspace, text
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from .index import check_number

__all__ = ["JobIndex", "JobLevelIndex", "JobYearsIndex"]

#: Most skills one job or one candidate may list: each is a key of one script call.
MAX_SKILLS: Final = 1000
#: The highest skill level by default: 0 beginner, 1 intermediate, 2 expert (the book's
#: ``SKILL_LEVEL_LIMIT``).
MAX_LEVEL: Final = 2

#: The largest ``max_level`` a :class:`JobLevelIndex` accepts.
MAX_LEVEL_LIMIT: Final = 100

_RETRIES: Final = 100


class JobIndex:
    """Jobs indexed by the skills they require (Redis in Action §7.4).

    Results are plain ``str`` whether the client decodes responses or not; the client is the
    caller's and is never closed here.
    """

    kind = "jobs"
    _postings_kind = "set"

    def __init__(
        self, redis: AsyncRedis, name: str = "jobs", *, keyspace: Keyspace = DEFAULT_KEYSPACE
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        check_keyspace(keyspace)
        self.name = name
        self.keyspace = keyspace
        self.req_key = keyspace.key(self.kind, name, "req")
        self.all_key = keyspace.key(self.kind, name, "all")

    # -- keys --

    def job_key(self, job: str) -> str:
        """The HASH of what job ``job`` requires (skill -> requirement)."""
        return self.keyspace.key(self.kind, self.name, "job", check_name(job, "job"))

    def skill_key(self, skill: str) -> str:
        """The posting of ``skill``: the jobs that require it."""
        return self.keyspace.key(self.kind, self.name, "skill", check_name(skill, "skill"))

    def _temp_key(self) -> str:
        return self.keyspace.key(self.kind, self.name, "tmp", uuid.uuid4().hex)

    # -- what each variant defines --

    def _check(self, skills: object, what: str) -> dict[str, str]:
        """Validate requirements or qualifications; return skill -> requirement (as text)."""
        if isinstance(skills, str | bytes) or not isinstance(skills, Iterable):
            raise TypeError(f"{what} must be a collection of skill names")
        return {check_name(s, "skill"): "0" for s in _limited(skills, what)}

    def _postings(self, requirements: Mapping[str, str]) -> list[tuple[str, str]]:
        """The postings a job with these requirements sits in, with its score in each."""
        return [(self.skill_key(s), "0") for s in requirements]

    def _candidate(self, qualifications: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
        """The search mode, the candidate's postings and their arguments."""
        return "sets", [self.skill_key(s) for s in qualifications], []

    @staticmethod
    def _meets(required: str, has: str) -> bool:
        return True

    # -- operations --

    async def index_job(self, job: str, skills: Iterable[str]) -> None:
        """Index job ``job`` as requiring ``skills``, replacing what it required before.

        Redis in Action §7.4.1 (``add_job``) and §7.4.2 (``index_job``).
        """
        check_name(job, "job")
        requirements = self._check(skills, "skills")
        if not requirements:
            raise ValueError("a job must require at least one skill")
        await self._replace(job, requirements)

    async def remove_job(self, job: str) -> bool:
        """Remove job ``job`` from the index; return whether it was indexed."""
        check_name(job, "job")
        return await self._replace(job, {})

    async def _replace(self, job: str, requirements: Mapping[str, str]) -> bool:
        postings = self._postings(requirements)
        new_keys = [key for key, _ in postings]
        scores = [score for _, score in postings]
        pairs = [item for pair in requirements.items() for item in pair]
        old: dict[str, str] = {}  # a first guess; the script answers with the record if wrong
        token = uuid.uuid4().hex  # one per call: a retried removal finds its receipt
        for _ in range(_RETRIES):
            old_keys = [key for key, _ in self._postings(old)]
            keys = [self.job_key(job), self.req_key, self.all_key, *old_keys, *new_keys]
            args: list[object] = [job, self._postings_kind, len(old_keys), len(new_keys)]
            args += [len(old), len(requirements), token, *scores]
            args += [item for pair in old.items() for item in pair]
            args += pairs
            reply = await script("jobs_index")(self.redis, keys, args)
            if not isinstance(reply, list):
                return bool(reply)
            flat = [text(v) for v in reply]
            old = dict(zip(flat[::2], flat[1::2], strict=True))
        raise RuntimeError(f"job {job!r} kept changing while it was being re-indexed")

    async def requirements(self, job: str) -> dict[str, str]:
        """Return what job ``job`` requires: skill -> requirement, as text ("0" for skills)."""
        raw = await self.redis.hgetall(self.job_key(job))
        return {text(k): text(v) for k, v in raw.items()}

    async def jobs(self) -> set[str]:
        """Return the ids of every indexed job."""
        return {text(j) for j in await self.redis.smembers(self.all_key)}

    async def is_qualified(self, job: str, qualifications: Any) -> bool:
        """Return whether a candidate with ``qualifications`` meets every requirement of ``job``.

        An unknown job qualifies nobody. Redis in Action §7.4.1 (``is_qualified``), which stores
        the candidate's skills in a temporary SET for an SDIFF; one HGETALL of the job's
        requirements does here.
        """
        check_name(job, "job")
        has = self._check(qualifications, "qualifications")
        required = await self.requirements(job)
        return bool(required) and all(
            skill in has and self._meets(need, has[skill]) for skill, need in required.items()
        )

    async def find_jobs(self, qualifications: Any) -> list[str]:
        """Return the jobs a candidate with ``qualifications`` is qualified for, sorted by id.

        Redis in Action §7.4.2 (``find_jobs``), in one script: a ``ZUNIONSTORE`` counts the
        skills met per job, a ``ZINTERSTORE`` with the requirement counts keeps the jobs whose
        every skill is met.
        """
        has = self._check(qualifications, "qualifications")
        if not has:
            return []
        mode, postings, args = self._candidate(has)
        keys = [self.req_key, self.all_key, self._temp_key(), self._temp_key(), *postings]
        reply = await script("jobs_find")(self.redis, keys, [mode, *args])
        return sorted(text(j) for j in reply)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.keyspace.tag(self.kind, self.name)!r}>"


class JobLevelIndex(JobIndex):
    """Jobs indexed by skill and minimum level (Redis in Action §7.4, exercise: skill levels).

    Levels are whole numbers from 0 to ``max_level`` (default 2, the book's
    ``SKILL_LEVEL_LIMIT``); higher levels count as ``max_level``, as in the book. Keep
    ``max_level`` fixed for the life of an index: a job's postings are derived from it. Skills
    and levels are given as ``(skill, level)`` pairs or a mapping.
    """

    kind = "job_levels"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "jobs",
        *,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
        max_level: int = MAX_LEVEL,
    ) -> None:
        super().__init__(redis, name, keyspace=keyspace)
        # A job sits in one posting per level above its own: MAX_LEVEL_LIMIT bounds them.
        self.max_level = check_int(max_level, "max_level", minimum=0, maximum=MAX_LEVEL_LIMIT)

    def level_key(self, skill: str, level: int) -> str:
        """The posting of the jobs that need ``skill`` at ``level`` or below."""
        skill = check_name(skill, "skill")
        return self.keyspace.key(
            self.kind, self.name, "level", str(check_count(level, "level", minimum=0)), skill
        )

    def _check(self, skills: object, what: str) -> dict[str, str]:
        best: dict[str, int] = {}
        for skill, level in _pairs(skills, what):
            value = min(check_count(level, f"level of {skill!r}", minimum=0), self.max_level)
            best[skill] = max(value, best.get(skill, 0))
        return {skill: str(level) for skill, level in best.items()}

    def _postings(self, requirements: Mapping[str, str]) -> list[tuple[str, str]]:
        return [
            (self.level_key(skill, level), "0")
            for skill, need in requirements.items()
            for level in range(int(need), self.max_level + 1)
        ]

    def _candidate(self, qualifications: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
        return "sets", [self.level_key(s, int(lvl)) for s, lvl in qualifications.items()], []

    @staticmethod
    def _meets(required: str, has: str) -> bool:
        return int(has) >= int(required)

    async def index_job(self, job: str, skills: Any) -> None:
        """Index job ``job`` as requiring each skill at a minimum level, replacing the old ones.

        Redis in Action §7.4 exercise (``index_job_levels``): the job is posted under every
        level from the required one up to ``max_level``.
        """
        await super().index_job(job, skills)

    async def find_jobs(self, qualifications: Any) -> list[str]:
        """Return the jobs a candidate with these ``(skill, level)`` pairs qualifies for.

        Redis in Action §7.4 exercise (``search_job_levels``): the candidate's level of a skill
        is one posting, holding every job needing that level or less.
        """
        return await super().find_jobs(qualifications)


class JobYearsIndex(JobIndex):
    """Jobs indexed by skill and minimum years of experience (Redis in Action §7.4, exercise).

    Years are non-negative ints or floats, given as ``(skill, years)`` pairs or a mapping.
    """

    kind = "job_years"
    _postings_kind = "zset"

    def _check(self, skills: object, what: str) -> dict[str, str]:
        best: dict[str, float] = {}
        for skill, years in _pairs(skills, what):
            # abs: -0.0 passes the minimum, and '-' .. '-0.0' is no weight Redis would read
            value = abs(float(check_number(years, f"years of {skill!r}", minimum=0)))
            best[skill] = max(value, best.get(skill, -math.inf))
        return {skill: repr(years) for skill, years in best.items()}

    def _postings(self, requirements: Mapping[str, str]) -> list[tuple[str, str]]:
        return [(self.skill_key(skill), need) for skill, need in requirements.items()]

    def _candidate(self, qualifications: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
        return "years", [self.skill_key(s) for s in qualifications], list(qualifications.values())

    @staticmethod
    def _meets(required: str, has: str) -> bool:
        return float(has) >= float(required)

    async def index_job(self, job: str, skills: Any) -> None:
        """Index job ``job`` as requiring years of each skill, replacing the old requirements.

        Redis in Action §7.4 exercise (``index_job_years``): one ZSET per skill, job -> years.
        """
        await super().index_job(job, skills)

    async def find_jobs(self, qualifications: Any) -> list[str]:
        """Return the jobs a candidate with these ``(skill, years)`` pairs qualifies for.

        Redis in Action §7.4 exercise (``search_job_years``): per skill, the jobs needing no
        more years than the candidate has count 1; the counts must reach each job's number of
        skills.
        """
        return await super().find_jobs(qualifications)


def _limited(items: Iterable[Any], what: str) -> list[Any]:
    listed = list(items)
    if len(listed) > MAX_SKILLS:
        raise ValueError(f"{what} may list at most {MAX_SKILLS} skills")
    return listed


def _pairs(skills: object, what: str) -> list[tuple[str, object]]:
    """``(skill, value)`` pairs from a mapping or an iterable of pairs, skill names checked."""
    if isinstance(skills, Mapping):
        items: Iterable[Any] = skills.items()
    elif isinstance(skills, str | bytes) or not isinstance(skills, Iterable):
        raise TypeError(f"{what} must be a mapping or a collection of (skill, value) pairs")
    else:
        items = skills
    pairs = []
    for item in _limited(items, what):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(f"{what} must hold (skill, value) pairs, got {item!r}")
        pairs.append((check_name(item[0], "skill"), item[1]))
    return pairs
