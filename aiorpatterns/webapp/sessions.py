"""Keep login tokens, recently viewed items, shopping carts and item popularity in Redis.

Redis in Action §2.1 keeps web sessions in Redis: a HASH from login token to user, a ZSET of
tokens by last activity, a per-token ZSET of the last 25 items viewed, and a ZSET counting views
per item (negated, so the most viewed sort first). §4.5 measures ``update_token`` as five round
trips against the same five commands in one non-transactional pipeline. :class:`Sessions` does
the same work in one Lua script: one round trip like the pipeline, but atomic, timestamped by the
server's clock rather than each web server's, and safe on Redis Cluster because every key of one
session store shares one hash tag.

§2.1-§2.2 trim the oldest sessions above a limit (``clean_sessions``, ``clean_full_sessions``):
the book reads the oldest tokens and deletes them in separate commands, so a user active in
between is logged out. :meth:`Sessions.clean_sessions` deletes a token only if it was not seen
again since it was read (checked per token in Lua), with its history and its cart. The cart
(§2.2 ``add_to_cart``) removes an item at a count of 0 or less (the book calls ``hrem``, which
does not exist), and is only written for a live session, so it never outlives it. §2.5 ranks
items by views and rescales the counts (``rescale_viewed``) in one step.

Keys (``name`` is the store's name, default ``"sessions"``): ``<prefix>:session:{<name>}:login``,
``…:recent``, ``…:viewed`` and, per token, ``…:viewed:<token>`` and ``…:cart:<token>``. The login
HASH and the recent ZSET are single keys in the book as well, so a store lives on one cluster
node either way; use several stores (names) to spread many users over a cluster.

Retry safety: a view, a clean-up batch and a rescale carry a token made per call, and a second
run of the same call finds its receipt (``…:login:<call>``, kept two minutes) and answers the
first run's reply without counting or multiplying again; the other writes set the same values.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..core.checks import (
    AsyncRedis,
    check_client,
    check_count,
    check_float,
    check_int,
    check_keyspace,
    text,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script

__all__ = ["Sessions"]

#: How many recently viewed items each token keeps (the book's 25).
HISTORY = 25
#: How many tokens one clean-up step removes at most (the book's 100).
CLEAN_BATCH = 100
#: How many items :meth:`Sessions.rescale_viewed` keeps (the book's 20,000).
KEEP_VIEWED = 20_000


class Sessions:
    """A store of login tokens and recently viewed items named ``name`` (Redis in Action §2.1).

    ``history`` is how many items each token remembers. Results are plain ``str`` whether the
    client decodes responses or not; the client is the caller's (a ``Redis``, a ``RedisCluster``
    or an ``AutoPipeline``) and is never closed here.
    """

    kind = "session"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "sessions",
        *,
        history: int = HISTORY,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        history = check_count(history, "history")
        check_keyspace(keyspace)
        self.name = name
        self.history = history
        self.keyspace = keyspace
        self.login_key = keyspace.key(self.kind, name, "login")
        self.recent_key = keyspace.key(self.kind, name, "recent")
        self.viewed_key = keyspace.key(self.kind, name, "viewed")

    def history_key(self, token: str) -> str:
        """The key of ``token``'s recently viewed items (in the store's hash tag)."""
        return self.keyspace.key(self.kind, self.name, "viewed", check_name(token, "token"))

    def cart_key(self, token: str) -> str:
        """The key of ``token``'s shopping cart (in the store's hash tag)."""
        return self.keyspace.key(self.kind, self.name, "cart", check_name(token, "token"))

    async def check_token(self, token: str) -> str | None:
        """Return the user logged in with ``token``, or None.

        Redis in Action §2.1, listing 2.1 (``check_token``).
        """
        check_name(token, "token")
        user = await self.redis.hget(self.login_key, token)
        return None if user is None else text(user)

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
            args += [item, secrets.token_hex(16)]
        keys = (self.login_key, self.recent_key, self.viewed_key, history)
        await script("session_update")(self.redis, keys, args)

    async def viewed(self, token: str) -> list[str]:
        """Return the items ``token`` viewed most recently, newest first (at most ``history``)."""
        items = await self.redis.zrevrange(self.history_key(token), 0, -1)
        return [text(i) for i in items]

    async def last_seen(self, token: str) -> float | None:
        """Return when ``token`` was last active (server time, seconds since the epoch), or None."""
        check_name(token, "token")
        score = await self.redis.zscore(self.recent_key, token)
        return None if score is None else float(score)

    async def clean_sessions(self, *, limit: int, batch: int = CLEAN_BATCH) -> int:
        """Remove the oldest tokens until at most ``limit`` remain; return how many went.

        Each removed token loses its login, its history and its cart. A token seen again
        (``update_token``) between the read of the oldest tokens and their removal is kept: the
        check and the delete are one Lua step per batch. Returns once the store is within the
        limit, or when a whole batch was refreshed meanwhile (call again later). Redis in Action
        §2.1 (``clean_sessions``) and §2.2 (``clean_full_sessions``), one pass of their loops.
        """
        limit = check_count(limit, "limit", minimum=0)
        batch = check_count(batch, "batch")
        removed = 0
        while True:
            size = int(await self.redis.zcard(self.recent_key))
            if size <= limit:
                return removed
            oldest: Any = await self.redis.zrange(
                self.recent_key, 0, min(size - limit, batch) - 1, withscores=True
            )
            keys = [self.login_key, self.recent_key]
            args: list[object] = [secrets.token_hex(16), limit]
            for member, seen in oldest:
                token = text(member)
                keys += [self.history_key(token), self.cart_key(token)]
                args += [token, repr(float(seen))]
            if not oldest:
                return removed
            gone = int(await script("session_clean")(self.redis, keys, args))
            removed += gone
            if gone == 0:
                return removed

    async def add_to_cart(self, token: str, item: str, *, count: int) -> bool:
        """Set how many of ``item`` ``token``'s cart holds; ``count`` <= 0 removes the item.

        False (and nothing written) if the token has no session: a cart never outlives its
        session. Redis in Action §2.2 (``add_to_cart``; its ``hrem`` is HDEL here).
        """
        keys = [self.recent_key, self.cart_key(token)]
        if not isinstance(item, str):
            raise TypeError(f"item must be a str, not {type(item).__name__}")
        if not item:
            raise ValueError("item must not be empty")
        count = check_int(count, "count")
        return bool(await script("cart_update")(self.redis, keys, [token, item, count]))

    async def cart(self, token: str) -> dict[str, int]:
        """Return ``token``'s cart: item -> count (empty if none)."""
        key = self.cart_key(token)
        items = await self.redis.hgetall(key)
        return {text(item): int(count) for item, count in items.items()}

    async def rank(self, item: str) -> int | None:
        """Return ``item``'s popularity rank (0 = most viewed), or None if it is not ranked.

        Redis in Action §2.5 (the ZRANK in ``can_cache``).
        """
        if not isinstance(item, str):
            raise TypeError(f"item must be a str, not {type(item).__name__}")
        rank: Any = await self.redis.zrank(self.viewed_key, item)
        return None if rank is None else int(rank)

    async def rescale_viewed(self, *, keep: int = KEEP_VIEWED, factor: float = 0.5) -> int:
        """Keep the ``keep`` most viewed items and multiply their counts by ``factor``.

        One atomic step; returns how many items remain. Run it periodically (the book: every
        5 minutes) so old popularity fades. Redis in Action §2.5 (``rescale_viewed``).
        """
        keep = check_count(keep, "keep")
        factor = check_float(factor, "factor", maximum=1.0)
        if factor <= 0:
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
        keys = [self.viewed_key, self.login_key]
        args = [keep, repr(factor), secrets.token_hex(16)]
        return int(await script("session_rescale")(self.redis, keys, args))

    def __repr__(self) -> str:
        return f"<Sessions {self.keyspace.tag(self.kind, self.name)!r}>"
