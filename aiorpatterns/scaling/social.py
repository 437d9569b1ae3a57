"""The social network of chapter 8 spread over servers: timelines and follows sharded (§10.3.3).

Redis in Action §10.3.3 keeps users and statuses on one server and spreads the rest:
home and profile timelines over ``KeyShardedConnection('timelines', 8)`` (a timeline's server is
picked by its key), and followers and following over ``KeyDataShardedConnection('followers',
16)``: the two ZSET entries of one follow, ``following:<uid>`` and ``followers:<other>``, live on
the server of the sorted pair ``"<low>:<high>"``, so one MULTI writes both, and a user's
follower list is cut over every server, read back by a merging ``sharded_zrangebyscore``. Its
``follow_user`` then adds the changes to counters on the first server in another step (a crash
in between leaves them wrong for good), and posting fans out through ``syndicate_status``.

:class:`ShardedSocial` keeps that placement and closes its gaps:

- a follow or unfollow is **one Lua step on the pair's server**, which writes both ZSET entries
  *and* the counters: per server a ``counts`` HASH (``following:<uid>``, ``followers:<uid>``),
  summed over the servers by :meth:`ShardedSocial.get_user`, so the counts always agree with
  the lists. The step keeps a receipt, so a re-sent follow still answers True;
- each server's pieces of the follow lists share one hash tag per server
  (``{<name>:edges:<n>}``), so the step runs unchanged when a "server" is a Redis Cluster;
- pages of followers and following are merged with an exclusive ``(score, member)`` cursor
  (:func:`~aiorpatterns.scaling.shards.zrangebyscore_merged`), and posting fans out through
  :func:`~aiorpatterns.scaling.shards.syndicate`, which uses the same cursor;
- the follower's home timeline is changed after the edge: a follow copies the other user's
  latest statuses in and then looks at the edge again (an unfollow that got in between has its
  statuses taken out again); an unfollow takes every status of the other user out of the home
  timeline in one step on the home's server.

Users and statuses are :class:`aiorpatterns.Social`'s, on ``redis``, in its layout; the
timelines hold the same keys as :class:`~aiorpatterns.Social`'s, on the ``timelines`` servers.
What is not atomic across servers: a post writes the status, then its author's timelines, then
the followers' (a cancelled post is finished by :meth:`ShardedSocial.syndicate_status`); a
status fanned out while its author is being unfollowed may reach the old follower's home after
the unfollow cleaned it (the book has the same window; reading on is not affected, and
unfollowing again cleans it). Deleted statuses leave the timelines as they are read, as in
:class:`~aiorpatterns.Social`.

Keys on the ``followers`` server ``n``: ``<prefix>:social:{<name>:edges:<n>}:following:<uid>``
and ``…:followers:<uid>`` (ZSET uid -> follow time), ``…:counts`` (HASH) and its receipts
``…:counts:<token>`` (two minutes).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from ..core.cancellation import shielded
from ..core.checks import AsyncRedis, check_count, encode_json, text
from ..core.keys import DEFAULT_KEYSPACE, Keyspace
from ..core.scripts import script
from ..social.network import Social, SocialUser
from ..social.timelines import (
    FANOUT_BATCH,
    HOME_SIZE,
    StatusMessage,
    decode_status,
    read_timeline,
    status_author,
)
from .shards import ShardedClients, scatter_calls, syndicate, zrangebyscore_merged

__all__ = ["ShardedSocial"]

Timeline = Literal["home", "profile"]
Side = Literal["following", "followers"]


class ShardedSocial:
    """The social network ``name`` with timelines and follows on shard servers (§10.3.3).

    ``redis`` holds the users and statuses, ``timelines`` the home and profile timelines (by
    key), ``followers`` the follow lists (by the pair of users). The clients are the caller's
    and are never closed here. ``home_size`` and ``fanout_batch`` are as for
    :class:`~aiorpatterns.Social`.
    """

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "social",
        *,
        timelines: ShardedClients,
        followers: ShardedClients,
        home_size: int = HOME_SIZE,
        fanout_batch: int = FANOUT_BATCH,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        for value, what in ((timelines, "timelines"), (followers, "followers")):
            if not isinstance(value, ShardedClients):
                raise TypeError(f"{what} must be a ShardedClients, not {type(value).__name__}")
        self.users = Social(
            redis, name, home_size=home_size, fanout_batch=fanout_batch, keyspace=keyspace
        )
        self.redis, self.name, self.keyspace = redis, name, keyspace
        self.timelines, self.followers = timelines, followers

    def __repr__(self) -> str:
        return (
            f"<ShardedSocial {self.name!r} timelines={len(self.timelines)} "
            f"followers={len(self.followers)}>"
        )

    # -- keys -------------------------------------------------------------------------------

    def _edges(self, shard: int, *parts: str) -> str:
        return self.keyspace.key(self.users.kind, f"{self.name}:edges:{shard}", *parts)

    def list_key(self, side: Side, uid: int, shard: int) -> str:
        """The piece on ``followers`` server ``shard`` of ``uid``'s following or followers."""
        if side not in ("following", "followers"):
            raise ValueError(f"side must be 'following' or 'followers', not {side!r}")
        return self._edges(
            check_count(shard, "shard", minimum=0), side, str(check_count(uid, "uid"))
        )

    def timeline_key(self, uid: int, timeline: Timeline = "home") -> str:
        """The home or profile timeline of ``uid`` (on the ``timelines`` server of its key)."""
        return self.users.timeline_key(uid, timeline)

    def _timeline(self, uid: int, timeline: Timeline) -> tuple[AsyncRedis, str]:
        key = self.timeline_key(uid, timeline)
        return self.timelines.client_for(key), key

    # -- users ------------------------------------------------------------------------------

    async def create_user(self, login: str, name: str) -> int:
        """Create a user and return its id (:meth:`aiorpatterns.Social.create_user`)."""
        return await self.users.create_user(login, name)

    async def get_uid(self, login: str) -> int | None:
        """Return the id of the user with ``login`` (any case), or None."""
        return await self.users.get_uid(login)

    async def get_user(self, uid: int) -> SocialUser | None:
        """Return user ``uid``'s record, its follow counts summed over the ``followers`` servers.

        Redis in Action §10.3.3 keeps the counts in the user's HASH, moved by a separate step.
        """
        user = await self.users.get_user(uid)
        if user is None:
            return None
        fields = [f"following:{uid}", f"followers:{uid}"]
        calls = [self._hmget_call(n, fields) for n in range(len(self.followers))]
        counts = (await scatter_calls(calls, timeout=self.followers.timeout)).replies
        following = sum(int(c[0] or 0) for c in counts if c)
        followers = sum(int(c[1] or 0) for c in counts if c)
        return dataclasses.replace(user, following=following, followers=followers)

    def _hmget_call(self, shard: int, fields: list[str]) -> Callable[[], Awaitable[Any]]:
        return lambda: self.followers[shard].hmget(self._edges(shard, "counts"), fields)

    # -- following --------------------------------------------------------------------------

    async def follow_user(self, uid: int, other_uid: int) -> bool:
        """Make ``uid`` follow ``other_uid``; True if it did not already.

        One atomic step on the pair's ``followers`` server writes both lists and both counts;
        then ``other_uid``'s latest ``home_size`` statuses are copied into ``uid``'s home
        timeline. ``LookupError`` if either user does not exist. Shielded: a cancelled call
        completes. Redis in Action §10.3.3 (the sharded ``follow_user``).
        """
        uid, other_uid = await self._pair(uid, other_uid)
        return await shielded(self._follow(uid, other_uid))

    async def unfollow_user(self, uid: int, other_uid: int) -> bool:
        """Make ``uid`` stop following ``other_uid``; True if it was following.

        One atomic step on the pair's server, then every status of ``other_uid`` leaves
        ``uid``'s home timeline (one step on its server). Shielded, as :meth:`follow_user`.
        Redis in Action §8.3.1 (``unfollow_user``) on the sharded layout of §10.3.3.
        """
        uid, other_uid = await self._pair(uid, other_uid)
        return await shielded(self._unfollow(uid, other_uid))

    async def _pair(self, uid: int, other_uid: int) -> tuple[int, int]:
        uid, other_uid = check_count(uid, "uid"), check_count(other_uid, "other_uid")
        if uid == other_uid:
            raise ValueError(f"a user cannot follow itself (uid {uid})")
        for user in (uid, other_uid):
            if not await self.redis.exists(self.users.user_key(user)):
                raise LookupError(f"no user {user}")
        return uid, other_uid

    async def _edge(self, uid: int, other: int, mode: str) -> bool:
        shard = self.followers.shard_for_ids(uid, other)
        keys = [
            self.list_key("following", uid, shard),
            self.list_key("followers", other, shard),
            self._edges(shard, "counts"),
        ]
        token = uuid.uuid4().hex  # one per call: a re-sent step answers the same
        args = [uid, other, mode, token]
        return bool(await script("social_shard_edge")(self.followers[shard], keys, args))

    async def _follow(self, uid: int, other: int) -> bool:
        if not await self._edge(uid, other, "follow"):
            return False
        profile, profile_key = self._timeline(other, "profile")
        size = self.users.home_size
        latest: list[Any] = await profile.zrevrange(profile_key, 0, size - 1, withscores=True)
        if latest:
            home, home_key = self._timeline(uid, "home")
            async with home.pipeline(transaction=False) as pipe:
                pipe.zadd(home_key, {text(status): float(posted) for status, posted in latest})
                pipe.zremrangebyrank(home_key, 0, -self.users.home_size - 1)
                await pipe.execute()
            # An unfollow that ran meanwhile cleaned the home before this copy: clean again.
            shard = self.followers.shard_for_ids(uid, other)
            following = self.list_key("following", uid, shard)
            if await self.followers[shard].zscore(following, other) is None:
                await self._clean_home(uid, other)
        return True

    async def _unfollow(self, uid: int, other: int) -> bool:
        if not await self._edge(uid, other, "unfollow"):
            return False
        await self._clean_home(uid, other)
        return True

    async def _clean_home(self, uid: int, other: int) -> None:
        home, home_key = self._timeline(uid, "home")
        await script("social_shard_unhome")(home, [home_key], [f"{other}:"])

    async def get_following(
        self, uid: int, *, count: int = 100, after: tuple[int, float] | None = None
    ) -> list[tuple[int, float]]:
        """Return the next ``count`` users ``uid`` follows, ``(uid, since)`` oldest first.

        Pass ``after=`` the last pair of a page for the next page. Redis in Action §10.3.3
        (``sharded_zrangebyscore`` over ``following:<uid>``), with an exclusive cursor.
        """
        return await self._page("following", uid, count, after)

    async def get_followers(
        self, uid: int, *, count: int = 100, after: tuple[int, float] | None = None
    ) -> list[tuple[int, float]]:
        """Return the next ``count`` followers of ``uid``, ``(uid, since)`` oldest first."""
        return await self._page("followers", uid, count, after)

    async def _page(
        self, side: Side, uid: int, count: int, after: tuple[int, float] | None
    ) -> list[tuple[int, float]]:
        sources = [(c, self.list_key(side, uid, n)) for n, c in enumerate(self.followers)]
        cursor = None
        if after is not None:
            if not isinstance(after, tuple) or len(after) != 2:
                raise TypeError("after must be None or a (uid, since) pair from the last page")
            cursor = (str(check_count(after[0], "after uid")), after[1])
        page = await zrangebyscore_merged(
            sources, num=count, after=cursor, timeout=self.followers.timeout
        )
        return [(int(member), score) for member, score in page]

    # -- statuses ---------------------------------------------------------------------------

    async def create_status(self, uid: int, message: str, **data: Any) -> str:
        """Write a status and add it to its author's timelines; return its id.

        The record and the post counter change in one step on ``redis``, then the status
        joins the author's profile and home timelines on their servers. ``LookupError`` if
        there is no such user. Shielded: a cancelled call completes. Redis in Action §8.1.2
        on the sharded timelines of §10.3.3.
        """
        uid = check_count(uid, "uid")
        if not isinstance(message, str):
            raise TypeError(f"message must be a str, not {type(message).__name__}")
        payload = encode_json({"message": message, "data": data}, "data")
        token = uuid.uuid4().hex  # one per call: a re-sent post answers the same status id
        return await shielded(self._create(uid, payload, token))

    async def _create(self, uid: int, payload: str, token: str) -> str:
        keys = [self.users.user_key(uid), self.users.statuses_key(uid)]
        reply = await script("social_shard_post")(self.redis, keys, [uid, payload, token])
        if not reply:
            raise LookupError(f"no user {uid}")
        status_id, posted = text(reply[0]), float(text(reply[1]))
        for timeline in ("profile", "home"):
            client, key = self._timeline(uid, timeline)
            async with client.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {status_id: posted})
                if timeline == "home":
                    pipe.zremrangebyrank(key, 0, -self.users.home_size - 1)
                await pipe.execute()
        return status_id

    async def post_status(self, uid: int, message: str, **data: Any) -> str:
        """Post a status and deliver it to every follower's home timeline; return its id.

        :meth:`create_status`, then :meth:`syndicate_status`. Redis in Action §10.3.3
        (``syndicate_status``).
        """
        status_id = await self.create_status(uid, message, **data)
        await self.syndicate_status(status_id)
        return status_id

    async def syndicate_status(self, status_id: str) -> int:
        """Deliver ``status_id`` to the home timeline of every follower of its author.

        Followers are paged over every ``followers`` server with an exclusive cursor and the
        timelines written with one pipeline per ``timelines`` server
        (:func:`~aiorpatterns.scaling.shards.syndicate`). Safe to run again (a cancelled post
        is finished so). Returns how many followers it reached; 0 for a deleted status.
        Redis in Action §10.3.3 (``syndicate_status``).
        """
        status = await self.get_status(status_id)
        if status is None:
            return 0
        return await syndicate(
            self.followers,
            lambda shard: self.list_key("followers", status.uid, shard),
            self.timelines,
            status.id,
            status.posted,
            timeline_key=lambda follower: self.timeline_key(int(follower)),
            batch=self.users.fanout_batch,
            keep=self.users.home_size,
        )

    async def get_status(self, status_id: str) -> StatusMessage | None:
        """Return the status ``status_id``, or None if there is none (deleted)."""
        author = status_author(status_id)
        raw = await self.redis.hget(self.users.statuses_key(author), status_id)
        if raw is None:
            return None
        return decode_status(status_id, raw)

    async def delete_status(self, uid: int, status_id: str) -> bool:
        """Delete ``status_id`` if ``uid`` wrote it; False if not (or no such status).

        The record and the post counter change in one step on ``redis``, then the status
        leaves its author's timelines; followers' homes drop it as they are read. Shielded.
        Redis in Action §8.4 (``delete_status``).
        """
        uid = check_count(uid, "uid")
        if status_author(status_id) != uid:
            return False
        token = uuid.uuid4().hex  # one per call: a re-sent delete answers True again
        return await shielded(self._delete(uid, status_id, token))

    async def _delete(self, uid: int, status_id: str, token: str) -> bool:
        keys = [self.users.user_key(uid), self.users.statuses_key(uid)]
        if not int(await script("social_shard_delete")(self.redis, keys, [status_id, token])):
            return False
        for timeline in ("profile", "home"):
            client, key = self._timeline(uid, timeline)
            await client.zrem(key, status_id)
        return True

    async def get_status_messages(
        self, uid: int, timeline: Timeline = "home", *, page: int = 1, count: int = 30
    ) -> list[StatusMessage]:
        """Return page ``page`` (from 1) of ``uid``'s home or profile timeline, newest first.

        The timeline is read on its server and the statuses on ``redis``. Redis in Action
        §8.2 (``get_status_messages``) on the sharded timelines of §10.3.3.
        """
        client, key = self._timeline(uid, timeline)
        return await read_timeline(client, key, self.redis, self.users.statuses_key, page, count)
