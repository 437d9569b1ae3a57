"""Home and profile timelines: paging, fan-out, clean-up and refill with exclusive cursors.

The timeline half of :class:`aiorpatterns.Social` (Redis in Action §8.2-§8.4): reading a page of
a home or profile timeline (skipping deleted statuses), fanning a status out to every follower's
home timeline, removing a deleted one from them, and refilling a home timeline from the users
it follows. Long jobs run in batches that each return a cursor, a plain ``str`` to pass to the
next call (fit for a job queue): an *exclusive* ``(score, member)`` position, so a batch never
repeats the previous one's last member and the job ends even when more than a batch of members
share one score (the book's inclusive score cursor re-processes the boundary member and then
loops for ever). Keys are described in :mod:`aiorpatterns.social.network`.
Every step is safe to repeat: the page script only reads, a fan-out or refill batch adds the
same members with the same scores and trims again (the home copy checks its follow's version),
and a clean-up removes what is gone; the batch loops stop between batches when cancelled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..core.cancellation import cancelling, honour_cancel
from ..core.checks import (
    INT64_MAX,
    AsyncRedis,
    check_count,
    check_flag,
    check_float,
    check_int,
    text,
)
from ..core.keys import Keyspace
from ..core.scripts import script

__all__ = ["StatusMessage"]

#: How many statuses a home timeline keeps (the book's HOME_TIMELINE_SIZE).
HOME_SIZE = 1000
#: Followers written per fan-out batch (the book's POSTS_PER_PASS).
FANOUT_BATCH = 1000
#: Followed users read per refill batch (the book's REFILL_USERS_STEP).
REFILL_BATCH = 50
#: Largest home_size / fanout_batch: the scripts do arithmetic on them in Lua, whose numbers
#: are doubles (exact integers up to 2**53; beyond, Redis refuses the result as an integer).
MAX_LUA_COUNT = 2**53

Timeline = Literal["home", "profile"]
_STATUS_ID = re.compile(r"([1-9][0-9]*):([1-9][0-9]*)")
_LIST_ID = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")
_CURSOR = re.compile(r"(\S+) (\S+)")


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """One status; ``data`` holds the extra fields given to :meth:`Social.post_status`."""

    id: str
    uid: int
    login: str
    message: str
    posted: float
    data: dict[str, Any]


def _uid(value: object, what: str = "uid") -> int:
    return check_count(value, what)


def _status_id(value: object) -> tuple[str, int]:
    if not isinstance(value, str):
        raise TypeError(f"status_id must be a str, not {type(value).__name__}")
    match = _STATUS_ID.fullmatch(value)
    if match is None:
        raise ValueError(f"status_id must be an id returned by post_status, got {value!r}")
    check_count(int(match.group(2)), "status_id's number")
    return value, check_count(int(match.group(1)), "status_id's uid")


def status_author(status_id: object) -> int:
    """Return the author's uid of a status id ``"<uid>:<n>"``; ``ValueError`` if it is not one."""
    return _status_id(status_id)[1]


def _list_id(value: object) -> tuple[str, int, str]:
    if not isinstance(value, str):
        raise TypeError(f"list_id must be a str, not {type(value).__name__}")
    match = _LIST_ID.fullmatch(value)
    if match is None:
        raise ValueError(f"list_id must be an id returned by create_list, got {value!r}")
    check_count(int(match.group(2)), "list_id's number")
    return value, check_count(int(match.group(1)), "list_id's uid"), match.group(2)


def _cursor(value: object) -> tuple[str, str]:
    if value is None:
        return "", ""
    if not isinstance(value, str):
        raise TypeError(f"cursor must be a str or None, not {type(value).__name__}")
    match = _CURSOR.fullmatch(value)
    if match is None:
        raise ValueError(f"cursor must be one returned by this class, got {value!r}")
    try:
        score = float(match.group(1))
    except ValueError:
        raise ValueError(f"cursor must be one returned by this class, got {value!r}") from None
    check_float(score, "cursor's score")
    return match.group(1), match.group(2)


def _timeline(value: object) -> Timeline:
    if not isinstance(value, str):
        raise TypeError(f"timeline must be 'home' or 'profile', not {type(value).__name__}")
    if value == "home":
        return "home"
    if value == "profile":
        return "profile"
    raise ValueError(f"timeline must be 'home' or 'profile', got {value!r}")


class Timelines:
    """The timeline operations :class:`aiorpatterns.Social` is built on (not used alone)."""

    kind = "social"
    redis: AsyncRedis
    name: str
    keyspace: Keyspace
    home_size: int
    fanout_batch: int

    # -- keys -------------------------------------------------------------------------------

    def _key(self, uid: int, *parts: str) -> str:
        return self.keyspace.key(self.kind, f"{self.name}:{uid}", *parts)

    def user_key(self, uid: int) -> str:
        """The HASH of user ``uid``: login, name, counters, signup time."""
        return self._key(_uid(uid), "user")

    def statuses_key(self, uid: int) -> str:
        """The HASH of ``uid``'s statuses: status id -> JSON record."""
        return self._key(_uid(uid), "statuses")

    def timeline_key(self, uid: int, timeline: Timeline = "home") -> str:
        """The ZSET (status id -> posted) of ``uid``'s home or profile timeline."""
        return self._key(_uid(uid), _timeline(timeline))

    def following_key(self, uid: int) -> str:
        """The ZSET of the users ``uid`` follows (uid -> follow time)."""
        return self._key(_uid(uid), "following")

    def followers_key(self, uid: int) -> str:
        """The ZSET of ``uid``'s followers (uid -> follow time)."""
        return self._key(_uid(uid), "followers")

    def _edges_key(self, uid: int, side: str) -> str:
        return self._key(uid, "edges", side)

    def _list_key(self, list_id: str, *parts: str) -> str:
        _, owner, n = _list_id(list_id)
        return self._key(owner, "list", n, *parts)

    def _target(self, member: str, lists: bool) -> str:
        """The timeline a fan-out writes for one follower (a user, or a list)."""
        return self._list_key(member, "statuses") if lists else self._key(int(member), "home")

    async def fan_out(
        self, status_id: str, *, cursor: str | None = None, lists: bool = False
    ) -> str | None:
        """Deliver ``status_id`` to one batch of its author's followers; return the next cursor.

        None when every follower has it (or the status was deleted meanwhile). Followers are
        read after the exclusive ``cursor``, so each is written once even when many share one
        follow time. Home timelines stay capped at ``home_size``. With ``lists=True`` the batch
        is of the user lists the author is in, and their timelines. Redis in Action §8.4
        (``syndicate_status``, ``syndicate_status_list``).
        """
        status_id, author = _status_id(status_id)
        page = await self._page(author, status_id, cursor, present=True, lists=lists)
        if not page:
            return None
        posted = await self.redis.zscore(self._key(author, "profile"), status_id)
        if posted is None:  # deleted between the two reads
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            for follower, _ in page:
                home = self._target(follower, lists)
                pipe.zadd(home, {status_id: float(posted)})
                pipe.zremrangebyrank(home, 0, -self.home_size - 1)
            await pipe.execute()
        return self._next(page)

    async def fan_out_all(self, status_id: str) -> None:
        """Run :meth:`fan_out` batches until every follower and list has ``status_id``.

        Cancelled, it stops between batches (a cancel redis-py swallowed included); running it
        again for the same status finishes the job (each batch is safe to repeat).
        """
        current, cancels = cancelling()
        for lists in (False, True):
            cursor = await self.fan_out(status_id, lists=lists)
            while cursor is not None:
                honour_cancel(current, cancels)  # every batch: a swallowed cancel would go on
                cursor = await self.fan_out(status_id, cursor=cursor, lists=lists)

    async def clean_timelines(
        self, status_id: str, *, cursor: str | None = None, lists: bool = False
    ) -> str | None:
        """Remove a deleted ``status_id`` from one batch of followers' homes; return the cursor.

        None when done (or when the status still exists: nothing is removed then). With
        ``lists=True``, from the timelines of the lists its author is in. Redis in Action §8.4
        (``clean_timelines``), with an exclusive cursor.
        """
        status_id, author = _status_id(status_id)
        page = await self._page(author, status_id, cursor, present=False, lists=lists)
        if not page:
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            for follower, _ in page:
                pipe.zrem(self._target(follower, lists), status_id)
            await pipe.execute()
        return self._next(page)

    async def clean_timelines_all(self, status_id: str) -> None:
        """Run :meth:`clean_timelines` batches until no timeline has ``status_id``."""
        current, cancels = cancelling()
        for lists in (False, True):
            cursor = await self.clean_timelines(status_id, lists=lists)
            while cursor is not None:
                honour_cancel(current, cancels)
                cursor = await self.clean_timelines(status_id, cursor=cursor, lists=lists)

    async def _page(
        self, author: int, status_id: str, cursor: str | None, *, present: bool, lists: bool
    ) -> list[tuple[str, str]]:
        check_flag(lists, "lists")
        score, member = _cursor(cursor)
        source = self._key(author, "listed" if lists else "followers")
        keys = [source, self._key(author, "statuses")]
        args = [score, member, self.fanout_batch, status_id, "1" if present else "0"]
        flat = await script("social_page")(self.redis, keys, args)
        return [(text(flat[i]), text(flat[i + 1])) for i in range(0, len(flat), 2)]

    def _next(self, page: list[tuple[str, str]]) -> str | None:
        if len(page) < self.fanout_batch:
            return None
        member, score = page[-1]
        return f"{score} {member}"

    # -- timelines --------------------------------------------------------------------------

    async def get_status_messages(
        self, uid: int, timeline: Timeline = "home", *, page: int = 1, count: int = 30
    ) -> list[StatusMessage]:
        """Return page ``page`` (from 1) of ``uid``'s home or profile timeline, newest first.

        Statuses deleted since they reached the timeline are removed from it as they are met,
        and the page reads on, so it is short only at the end of the timeline. Redis in Action
        §8.2 (``get_status_messages``).
        """
        return await self._read(self.timeline_key(uid, timeline), page, count)

    async def _read(self, key: str, page: int, count: int) -> list[StatusMessage]:
        return await read_timeline(self.redis, key, self.redis, self.statuses_key, page, count)

    async def refill_timeline(self, uid: int, *, cursor: str | None = None) -> str | None:
        """Refill ``uid``'s home timeline from one batch of followed users; return the cursor.

        Each followed user's latest ``home_size`` statuses are merged in (through the same
        guarded step as a follow, so a concurrent unfollow wins) and the timeline is capped.
        Use it after unfollows have thinned the timeline. None when done. Redis in Action §8.3
        exercise (``refill_timeline``), with an exclusive cursor.
        """
        uid = _uid(uid)
        score, member = _cursor(cursor)
        following = self._key(uid, "following")
        # The statuses guard is a key that never holds the id: the page is read unconditionally.
        keys = [following, self._key(uid, "statuses")]
        args = [score, member, REFILL_BATCH, "0:0", "0"]
        flat = await script("social_page")(self.redis, keys, args)
        page = [(text(flat[i]), text(flat[i + 1])) for i in range(0, len(flat), 2)]
        if not page:
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            for other, _ in page:
                pipe.zrevrange(self._key(int(other), "profile"), 0, self.home_size - 1, True)
                pipe.hget(self._edges_key(uid, "out"), other)
            replies = await pipe.execute()
        copy = script("social_home_copy")
        keys = [self._edges_key(uid, "out"), following, self._key(uid, "home")]
        for (other, _), statuses, version in zip(page, replies[::2], replies[1::2], strict=True):
            if statuses and version is not None:
                flat_statuses = [x for s, p in statuses for x in (text(s), repr(float(p)))]
                await copy(self.redis, keys, [other, text(version), self.home_size, *flat_statuses])
        if len(page) < REFILL_BATCH:
            return None
        member, score = page[-1]
        return f"{score} {member}"

    async def refill_timeline_all(self, uid: int) -> None:
        """Run :meth:`refill_timeline` batches over everyone ``uid`` follows."""
        current, cancels = cancelling()
        cursor = await self.refill_timeline(uid)
        while cursor is not None:
            honour_cancel(current, cancels)
            cursor = await self.refill_timeline(uid, cursor=cursor)


async def read_timeline(
    timeline: AsyncRedis,
    key: str,
    records: AsyncRedis,
    statuses_key: Callable[[int], str],
    page: int,
    count: int,
) -> list[StatusMessage]:
    """Return page ``page`` of the timeline ZSET ``key`` on ``timeline``, newest first.

    The statuses are read from ``records`` (``statuses_key(author)`` is an author's HASH), so
    the timeline and the records may live on different servers (Redis in Action §10.3.3).
    Statuses deleted since they reached the timeline are removed from it as they are met, and
    the page reads on. Redis in Action §8.2 (``get_status_messages``).
    """
    count = check_count(count, "count")
    # The page's last rank, page * count - 1, must be a Redis integer.
    start = (check_int(page, "page", minimum=1, maximum=(INT64_MAX + 1) // count) - 1) * count
    current, cancels = cancelling()
    while True:
        honour_cancel(current, cancels)
        ids = [text(i) for i in await timeline.zrevrange(key, start, start + count - 1)]
        if not ids:
            return []
        async with records.pipeline(transaction=False) as pipe:
            for status_id in ids:
                pipe.hget(statuses_key(_status_id(status_id)[1]), status_id)
            found = await pipe.execute()
        gone = [i for i, record in zip(ids, found, strict=True) if record is None]
        if not gone:
            return [decode_status(i, r) for i, r in zip(ids, found, strict=True)]
        # A status id is never reused, so a missing record is gone for good.
        await timeline.zrem(key, *gone)


def decode_status(status_id: str, raw: bytes | str) -> StatusMessage:
    """Return the :class:`StatusMessage` of a status's stored JSON record."""
    record = json.loads(text(raw))
    return StatusMessage(
        id=status_id,
        uid=int(status_id.split(":", 1)[0]),
        login=str(record["login"]),
        message=str(record["message"]),
        posted=float(record["posted"]),
        data=dict(record["data"]),
    )
