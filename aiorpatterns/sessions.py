"""Keep login tokens and each user's recently viewed items, updated in one round trip.

Redis in Action §2.1 keeps web sessions in Redis: a HASH from login token to user, a ZSET of
tokens by last activity, a per-token ZSET of the last 25 items viewed, and a ZSET counting views
per item (negated, so the most viewed sort first). §4.5 measures ``update_token`` as five round
trips against the same five commands in one non-transactional pipeline. :class:`Sessions` does
the same work in one Lua script: one round trip like the pipeline, but atomic, timestamped by the
server's clock rather than each web server's, and safe on Redis Cluster because every key of one
session store shares one hash tag.

Keys (``name`` is the store's name, default ``"sessions"``): ``<prefix>:session:{<name>}:login``,
``…:recent``, ``…:viewed`` and one history per token, ``…:viewed:<token>``. The login HASH and the
recent ZSET are single keys in the book as well, so a store lives on one cluster node either way;
use several stores (names) to spread many users over a cluster.
"""

from __future__ import annotations

from typing import Any

from .keys import DEFAULT_KEYSPACE, Keyspace, check_name
from .scripts import script

__all__ = ["Sessions"]

#: How many recently viewed items each token keeps (the book's 25).
HISTORY = 25


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Sessions:
    """A store of login tokens and recently viewed items named ``name`` (Redis in Action §2.1).

    ``history`` is how many items each token remembers. Results are plain ``str`` whether the
    client decodes responses or not; the client is the caller's (a ``Redis``, a ``RedisCluster``
    or an ``AutoPipeline``) and is never closed here.
    """

    kind = "session"

    def __init__(
        self,
        redis: Any,
        name: str = "sessions",
        *,
        history: int = HISTORY,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        check_name(name)
        if redis is None:
            raise TypeError("redis must be a redis.asyncio client, not None")
        if isinstance(history, bool) or not isinstance(history, int):
            raise TypeError(f"history must be an int, not {type(history).__name__}")
        if history < 1:
            raise ValueError(f"history must be at least 1, got {history!r}")
        if not isinstance(keyspace, Keyspace):
            raise TypeError(f"keyspace must be a Keyspace, not {type(keyspace).__name__}")
        self.redis = redis
        self.name = name
        self.history = history
        self.keyspace = keyspace
        self.login_key = keyspace.key(self.kind, name, "login")
        self.recent_key = keyspace.key(self.kind, name, "recent")
        self.viewed_key = keyspace.key(self.kind, name, "viewed")

    def history_key(self, token: str) -> str:
        """The key of ``token``'s recently viewed items (in the store's hash tag)."""
        return self.keyspace.key(self.kind, self.name, "viewed", check_name(token, "token"))

    async def check_token(self, token: str) -> str | None:
        """Return the user logged in with ``token``, or None.

        Redis in Action §2.1, listing 2.1 (``check_token``).
        """
        check_name(token, "token")
        user = await self.redis.hget(self.login_key, token)
        return None if user is None else _text(user)

    async def update_token(self, token: str, user: str, item: str | None = None) -> None:
        """Record that ``user`` is active with ``token`` and, if given, viewed ``item``.

        One round trip, atomic. Redis in Action §2.1 listing 2.2 and §4.5 listings 4.7-4.8
        (``update_token``).
        """
        history = self.history_key(token)
        if not isinstance(user, str):
            raise TypeError(f"user must be a str, not {type(user).__name__}")
        if not user:
            raise ValueError("user must not be empty")
        args: list[object] = [token, user, self.history]
        if item is not None:
            if not isinstance(item, str):
                raise TypeError(f"item must be a str or None, not {type(item).__name__}")
            if not item:
                raise ValueError("item must not be empty (pass None for no item)")
            args.append(item)
        keys = (self.login_key, self.recent_key, self.viewed_key, history)
        await script("session_update")(self.redis, keys, args)

    async def viewed(self, token: str) -> list[str]:
        """Return the items ``token`` viewed most recently, newest first (at most ``history``)."""
        items = await self.redis.zrevrange(self.history_key(token), 0, -1)
        return [_text(i) for i in items]

    async def last_seen(self, token: str) -> float | None:
        """Return when ``token`` was last active (server time, seconds since the epoch), or None."""
        check_name(token, "token")
        score = await self.redis.zscore(self.recent_key, token)
        return None if score is None else float(score)

    def __repr__(self) -> str:
        return f"<Sessions {self.keyspace.tag(self.kind, self.name)!r}>"
