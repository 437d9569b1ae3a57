"""A small social network: users, statuses, followers and fanned-out home timelines.

Redis in Action chapter 8 builds a Twitter: users (§8.1.1), statuses (§8.1.2), home and profile
timelines (§8.2), followers and following lists (§8.3), and posting and deleting with fan-out
to every follower's home timeline (§8.4). The book's version has gaps this one closes:

- a login is claimed with one atomic step (no lock), case-insensitively (``str.casefold``),
  and a taken login raises ``ValueError``; no user id is consumed by a failed claim;
- posting writes the status, the author's profile timeline, the author's own home timeline and
  the post counter in one Lua step, with every key in ``KEYS``: the book's three steps can leave
  an orphan status, and its Lua ``create_status`` writes a key it does not declare;
- fan-out pages followers with an *exclusive* ``(score, member)`` cursor: the book's inclusive
  score cursor re-processes the boundary follower, and loops for ever when more than a batch of
  followers share one follow time. :meth:`Social.fan_out` does one batch and returns the cursor
  to resume from (a plain ``str``, fit for a job queue), :meth:`Social.fan_out_all` runs them all;
- follow and unfollow run one atomic step per user, ordered by a per-pair version, so each
  user's ZSET and counter always agree, concurrent follow/unfollow calls of one pair leave both
  sides agreeing, and a crash leaves at worst a stale home timeline entry (calling again
  repairs it). An unfollow removes *every* status of the other user from the home timeline;
- a timeline page skips deleted statuses and removes them from the timeline as it reads, then
  reads on, so pages come back full while there is something to show;
- deleting is one atomic step on the author's keys, only by the author; followers' home
  timelines are cleaned lazily by reads and by :meth:`Social.clean_timelines` (same cursor).

Every step is safe to run twice (redis-py's ``Retry`` and the cluster client re-send a script
whose reply was lost): the steps that take an id or move a counter (claiming a login, posting,
deleting, the follower's side of a follow, creating a list) keep a receipt under a token made
once per call, the followed user's side recognises its own version, and the rest write the same
values again.

User lists (the §8.3 exercises, row 44) follow users the way a user does, with the same
steps, and get new statuses by the same fan-out; :meth:`Social.refill_timeline` refills a home
timeline after unfollows. For the streaming API of §8.5 (row 45), pass ``events=`` a
:class:`aiorpatterns.social.streaming.StatusStream`: creating and deleting a status then append
an event to it, right after the status step (a separate step: see
:mod:`aiorpatterns.social.streaming`).
The timeline operations (pages, fan-out, clean-up, refill) are inherited from
:class:`aiorpatterns.social.timelines.Timelines`.

Keys, for a network ``name`` (default ``"social"``): ``<prefix>:social:{<name>}:logins`` (HASH
folded login -> uid) and ``…:{<name>}:seq`` (user id counter) on the network's tag; everything
else under the user's own tag ``{<name>:<uid>}``: ``…:user`` (HASH), ``…:statuses`` (HASH
status id -> JSON), ``…:profile`` and ``…:home`` (ZSET status id -> posted), ``…:following``
and ``…:followers`` (ZSET uid -> follow time), ``…:edges:out`` and ``…:edges:in`` (HASH uid ->
version of the pair), ``…:listed`` (ZSET list id -> time) and ``…:edges:listed``, ``…:lists``
(ZSET of the user's list numbers) and, per list ``n``, ``…:list:<n>`` (HASH), ``…:list:<n>:in``
(ZSET uid -> time), ``…:list:<n>:edges`` and ``…:list:<n>:statuses`` (its timeline). A list id
is ``"<owner>/<n>"``. A status id is ``"<uid>:<n>"``: it names its author, so a status lives
with its author's keys, and fan-out writes under each follower's tag (other cluster nodes), one
pipelined command pair per follower.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..core.cancellation import shielded
from ..core.checks import AsyncRedis, check_int, check_object, encode_json, text
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script
from .streaming import StatusStream
from .timelines import (
    FANOUT_BATCH,
    HOME_SIZE,
    MAX_LUA_COUNT,
    StatusMessage,
    Timelines,
    _list_id,
    _status_id,
    _uid,
    decode_status,
)

__all__ = ["Social", "SocialUser", "UserList"]


@dataclass(frozen=True, slots=True)
class SocialUser:
    """A user's record; ``signup`` is the server's clock (Unix seconds)."""

    id: int
    login: str
    name: str
    followers: int
    following: int
    posts: int
    signup: float


@dataclass(frozen=True, slots=True)
class UserList:
    """A list of users whose statuses make a timeline; ``uid`` is its owner."""

    id: str
    uid: int
    name: str
    following: int
    created: float


class Social(Timelines):
    """The social network ``name`` (Redis in Action chapter 8).

    ``home_size`` is how many statuses a home timeline keeps, ``fanout_batch`` how many
    followers one :meth:`fan_out` / :meth:`clean_timelines` call handles. With ``events``, a
    :class:`~aiorpatterns.social.streaming.StatusStream`, every status created or deleted is
    announced on it (Redis in Action §8.5). The client is the caller's and is never closed here.
    """

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "social",
        *,
        home_size: int = HOME_SIZE,
        fanout_batch: int = FANOUT_BATCH,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
        events: StatusStream | None = None,
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        if events is not None and not isinstance(events, StatusStream):
            raise TypeError(f"events must be a StatusStream or None, not {type(events).__name__}")
        self.events = events
        self.home_size = check_int(home_size, "home_size", minimum=1, maximum=MAX_LUA_COUNT)
        self.fanout_batch = check_int(
            fanout_batch, "fanout_batch", minimum=1, maximum=MAX_LUA_COUNT
        )
        self.logins_key = keyspace.key(self.kind, name, "logins")
        self.seq_key = keyspace.key(self.kind, name, "seq")

    # -- users ------------------------------------------------------------------------------

    async def create_user(self, login: str, name: str) -> int:
        """Create a user and return its id; ``ValueError`` if the login is taken.

        Logins are unique case-insensitively. The login is claimed (and the id taken) in one
        atomic step, then the user's record is written; both run shielded, so a cancelled call
        still creates the user. Redis in Action §8.1.1 (``create_user``).
        """
        check_name(login, "login")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        return await shielded(self._create_user(login, name))

    async def _create_user(self, login: str, name: str) -> int:
        claim = script("social_user_claim")
        token = uuid.uuid4().hex  # one per call: a re-sent claim answers the same id
        keys = [self.logins_key, self.seq_key]
        uid = int(await claim(self.redis, keys, [login.casefold(), token]))
        if not uid:
            raise ValueError(f"login {login!r} is taken")
        await script("social_user_create")(self.redis, [self._key(uid, "user")], [uid, login, name])
        return uid

    async def get_uid(self, login: str) -> int | None:
        """Return the id of the user with ``login`` (any case), or None."""
        folded = check_name(login, "login").casefold()
        uid = await self.redis.hget(self.logins_key, folded)
        return None if uid is None else int(uid)

    async def get_user(self, uid: int) -> SocialUser | None:
        """Return user ``uid``'s record, or None if there is no such user."""
        key = self.user_key(uid)  # checked before the client is touched
        raw = await self.redis.hgetall(key)
        if not raw:
            return None
        record = {text(k): text(v) for k, v in raw.items()}
        return SocialUser(
            id=int(record["id"]),
            login=record["login"],
            name=record["name"],
            followers=int(record["followers"]),
            following=int(record["following"]),
            posts=int(record["posts"]),
            signup=float(record["signup"]),
        )

    # -- statuses ---------------------------------------------------------------------------

    async def create_status(self, uid: int, message: str, **data: Any) -> str:
        """Write a status without fanning it out; return its id (``"<uid>:<n>"``).

        The record, the author's profile and home timelines and post counter change in one
        atomic step. ``LookupError`` if there is no such user. Redis in Action §8.1.2. With
        ``events``, a ``created`` event is appended next; both steps are shielded then, so a
        cancelled call still announces its status (Redis in Action §8.5).
        """
        uid = _uid(uid)
        if not isinstance(message, str):
            raise TypeError(f"message must be a str, not {type(message).__name__}")
        payload = encode_json({"message": message, "data": data}, "data")
        token = uuid.uuid4().hex  # one per call: a re-sent post answers the same status id
        if self.events is not None:
            return await shielded(self._create_announced(uid, message, data, payload, token))
        return await self._create(uid, payload, token)

    async def _create_announced(
        self, uid: int, message: str, data: dict[str, Any], payload: str, token: str
    ) -> str:
        reply = await self._post(uid, payload, token)
        status_id, posted = text(reply[0]), float(text(reply[1]))
        # A login never changes, so reading it after the step gives the record's login.
        login = text(await self.redis.hget(self._key(uid, "user"), "login"))
        status = StatusMessage(status_id, uid, login, message, posted, dict(data))
        assert self.events is not None
        await self.events.publish("created", status)
        return status_id

    async def _create(self, uid: int, payload: str, token: str) -> str:
        return text((await self._post(uid, payload, token))[0])

    async def _post(self, uid: int, payload: str, token: str) -> Any:
        keys = [
            self._key(uid, "user"),
            self._key(uid, "statuses"),
            self._key(uid, "profile"),
            self._key(uid, "home"),
        ]
        args = [uid, payload, self.home_size, token]
        reply = await script("social_post")(self.redis, keys, args)
        if not reply:
            raise LookupError(f"no user {uid}")
        return reply

    async def post_status(self, uid: int, message: str, **data: Any) -> str:
        """Post a status and fan it out to every follower's home timeline; return its id.

        The status is written in one atomic step (:meth:`create_status`), then
        :meth:`fan_out_all` delivers it. A call cancelled during the fan-out leaves the status
        posted and some followers without it in their home timelines; a fan-out is resumable:
        :meth:`fan_out_all` of the status id (the author's profile timeline lists every status,
        also one whose post was cancelled before its id came back) delivers it to the rest, and
        every batch is safe to repeat. To deliver reliably, call :meth:`create_status` and run
        :meth:`fan_out` batches from a job queue, passing the cursor on. Redis in Action §8.4
        (``post_status``, ``syndicate_status``).
        """
        status_id = await self.create_status(uid, message, **data)
        await self.fan_out_all(status_id)
        return status_id

    async def delete_status(self, uid: int, status_id: str) -> bool:
        """Delete ``status_id`` if ``uid`` wrote it; False if not (or no such status).

        The record, its profile and own home entries and the post counter change in one atomic
        step. Followers' home timelines drop the id as they are read, or with
        :meth:`clean_timelines`. Redis in Action §8.4 (``delete_status``). With ``events``, the
        record is read first and a ``deleted`` event carrying it is appended after the step,
        all shielded (Redis in Action §8.5).
        """
        uid = _uid(uid)
        status_id, author = _status_id(status_id)
        if author != uid:
            return False
        token = uuid.uuid4().hex  # one per call: a re-sent delete answers True again
        if self.events is not None:
            return await shielded(self._delete_announced(uid, status_id, token))
        return await self._delete(uid, status_id, token)

    async def _delete_announced(self, uid: int, status_id: str, token: str) -> bool:
        # The record never changes once written, so the copy read here is the one deleted.
        raw = await self.redis.hget(self.statuses_key(uid), status_id)
        if raw is None or not await self._delete(uid, status_id, token):
            return False
        assert self.events is not None
        await self.events.publish("deleted", decode_status(status_id, raw))
        return True

    async def _delete(self, uid: int, status_id: str, token: str) -> bool:
        keys = [
            self._key(uid, "user"),
            self._key(uid, "statuses"),
            self._key(uid, "profile"),
            self._key(uid, "home"),
        ]
        return bool(await script("social_delete")(self.redis, keys, [status_id, token]))

    # -- following --------------------------------------------------------------------------

    async def follow_user(self, uid: int, other_uid: int) -> bool:
        """Make ``uid`` follow ``other_uid``; True if it did not already.

        Copies ``other_uid``'s latest ``home_size`` statuses into ``uid``'s home timeline.
        ``LookupError`` if either user does not exist. Three atomic steps, each on one user's
        keys and shielded (a cancelled call completes): the follower's side, the followed
        user's side (applied only if no later call for the pair got there first), the home
        copy (only if the follow is still the latest call). Calling again repairs a crash
        between them. Redis in Action §8.3.1 (``follow_user``).
        """
        uid, other_uid = self._pair(uid, other_uid)
        return await shielded(self._follow(uid, other_uid, "follow"))

    async def unfollow_user(self, uid: int, other_uid: int) -> bool:
        """Make ``uid`` stop following ``other_uid``; True if it was following.

        Every status of ``other_uid`` leaves ``uid``'s home timeline in the same atomic step as
        the following list and counter; then the followed user's side changes. Shielded, as
        :meth:`follow_user`. Redis in Action §8.3.1 (``unfollow_user``).
        """
        uid, other_uid = self._pair(uid, other_uid)
        return await shielded(self._follow(uid, other_uid, "unfollow"))

    def _pair(self, uid: int, other_uid: int) -> tuple[int, int]:
        uid, other_uid = _uid(uid), _uid(other_uid, "other_uid")
        if uid == other_uid:
            raise ValueError(f"a user cannot follow itself (uid {uid})")
        return uid, other_uid

    async def _follow(self, uid: int, other: int, mode: str) -> bool:
        out = [
            self._key(uid, "user"),
            self._key(uid, "following"),
            self._edges_key(uid, "out"),
            self._key(uid, "home"),
        ]
        into = [
            self._key(other, "user"),
            self._key(other, "followers"),
            self._edges_key(other, "in"),
            self._key(other, "profile"),
        ]
        changed = await self._edge(out, str(uid), other, into, "followers", mode)
        if changed is None:
            raise LookupError(f"no user {uid}")
        return changed

    async def _edge(
        self, out: list[str], member: str, other: int, into: list[str], counter: str, mode: str
    ) -> bool | None:
        """Change one follow edge: the follower's side, the other's side, the timeline copy.

        ``out`` are the follower's keys (record, following ZSET, versions, timeline), ``into``
        the followed user's (record, followers ZSET, versions, profile). None if the follower
        does not exist.
        """
        if not await self.redis.exists(into[0]):
            raise LookupError(f"no user {other}")
        token = uuid.uuid4().hex  # one per call: a re-sent step answers the same version
        reply = await script("social_follow_out")(self.redis, out, [other, mode, token])
        if not reply:
            return None
        changed, version, since = int(reply[0]), int(reply[1]), text(reply[2])
        args = [member, mode, version, since or "0", self.home_size, counter]
        applied = await script("social_follow_in")(self.redis, into, args)
        if mode == "follow" and int(applied[0]) and len(applied) > 1:
            statuses = [text(x) for x in applied[1:]]
            await script("social_home_copy")(
                self.redis, [out[2], out[1], out[3]], [other, version, self.home_size, *statuses]
            )
        return bool(changed)

    # -- user lists -------------------------------------------------------------------------

    async def create_list(self, uid: int, name: str) -> str:
        """Create a list of users owned by ``uid``; return its id (``"<uid>/<n>"``).

        ``LookupError`` if there is no such user. Redis in Action §8.3 exercise
        (``create_user_list``).
        """
        uid = _uid(uid)
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        create = script("social_list_create")
        token = uuid.uuid4().hex  # one per call: a re-sent step does not make a second list
        while True:
            n = int(await self.redis.hget(self._key(uid, "user"), "list_seq") or 0) + 1
            list_id = f"{uid}/{n}"
            keys = [self._key(uid, "user"), self._list_key(list_id), self._key(uid, "lists")]
            done = await create(self.redis, keys, [n, name, token])
            if done is None:
                raise LookupError(f"no user {uid}")
            if int(done):
                return list_id

    async def get_list(self, list_id: str) -> UserList | None:
        """Return the list ``list_id``, or None if there is no such list."""
        key = self._list_key(list_id)  # checked before the client is touched
        raw = await self.redis.hgetall(key)
        if not raw:
            return None
        record = {text(k): text(v) for k, v in raw.items()}
        return UserList(
            id=list_id,
            uid=_list_id(list_id)[1],
            name=record["name"],
            following=int(record["following"]),
            created=float(record["created"]),
        )

    async def get_lists(self, uid: int) -> list[str]:
        """Return the ids of the lists ``uid`` owns, oldest first."""
        uid = _uid(uid)
        return [f"{uid}/{text(n)}" for n in await self.redis.zrange(self._key(uid, "lists"), 0, -1)]

    async def follow_user_list(self, list_id: str, other_uid: int) -> bool:
        """Add ``other_uid`` to the list ``list_id``; True if it was not in it already.

        The list's timeline gets ``other_uid``'s latest ``home_size`` statuses, and new ones
        by fan-out. The same three shielded steps as :meth:`follow_user`; the followed user's
        ``listed`` counter moves with its listed-by ZSET. Redis in Action §8.3 exercise
        (``follow_user_list``).
        """
        _list_id(list_id)
        return await shielded(self._list_edge(list_id, _uid(other_uid, "other_uid"), "follow"))

    async def unfollow_user_list(self, list_id: str, other_uid: int) -> bool:
        """Remove ``other_uid`` from the list ``list_id``, and its statuses from the list's
        timeline; True if it was in it. Redis in Action §8.3 exercise (``unfollow_user_list``).
        """
        _list_id(list_id)
        return await shielded(self._list_edge(list_id, _uid(other_uid, "other_uid"), "unfollow"))

    async def _list_edge(self, list_id: str, other: int, mode: str) -> bool:
        out = [
            self._list_key(list_id),
            self._list_key(list_id, "in"),
            self._list_key(list_id, "edges"),
            self._list_key(list_id, "statuses"),
        ]
        into = [
            self._key(other, "user"),
            self._key(other, "listed"),
            self._edges_key(other, "listed"),
            self._key(other, "profile"),
        ]
        changed = await self._edge(out, list_id, other, into, "listed", mode)
        if changed is None:
            raise LookupError(f"no list {list_id}")
        return changed

    async def get_list_messages(
        self, list_id: str, *, page: int = 1, count: int = 30
    ) -> list[StatusMessage]:
        """Return page ``page`` (from 1) of the list's timeline, newest first.

        Deleted statuses are skipped and removed, as in :meth:`get_status_messages`.
        """
        return await self._read(self._list_key(list_id, "statuses"), page, count)

    def __repr__(self) -> str:
        return f"<Social {self.keyspace.tag(self.kind, self.name)!r}>"
