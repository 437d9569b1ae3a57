"""Sessions that expire on their own: per-token logins with a TTL, viewed items in a LIST.

Redis in Action §2.1 keeps every login in one HASH and every token's activity in one ZSET, so
old sessions leave only when a sweeper (``clean_sessions``) deletes them; the chapter's
exercise answers (ch02 "reducing memory use with LISTs", ch03 "using expiration") instead keep
a login per token as a STRING with its own expiry (``SETEX login:<token>``), the recently viewed
items as a capped LIST (``LREM`` + ``RPUSH`` + ``LTRIM``) and the cart with the same TTL, so a
session disappears by itself when it has been idle for the TTL. :class:`ExpiringSessions` is
that form, beside :class:`~aiorpatterns.webapp.Sessions` (the chapter's, with its clean-up):

- one visit is one Lua step (``session_touch.lua``): the login renewed, the item moved to the
  head of the LIST (newest first, at most ``history``), the LIST and the cart given the TTL;
- a cart is written only for a live session and takes the login's remaining TTL;
- each token's keys share one hash tag, ``<prefix>:usession:{<name>:<token>}:login`` /
  ``…:viewed`` / ``…:cart``, so sessions spread over a cluster (the chapter's form lives on
  one node).

What it gives up against :class:`~aiorpatterns.webapp.Sessions`: no "most recent sessions"
index (nothing to rank or limit the live sessions by) and no item popularity ZSET (§2.5).
"""

from __future__ import annotations

from ..core.checks import AsyncRedis, check_client, check_count, check_int, check_keyspace, text
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script

__all__ = ["ExpiringSessions"]

#: How long an idle session lives (the exercise answer's 30 days).
SESSION_TTL = 30 * 86400
#: How many recently viewed items each token keeps (the book's 25).
HISTORY = 25


def _item(item: object, what: str = "item") -> str:
    if not isinstance(item, str):
        raise TypeError(f"{what} must be a str, not {type(item).__name__}")
    if not item:
        raise ValueError(f"{what} must not be empty")
    return item


class ExpiringSessions:
    """Login tokens that expire ``ttl`` seconds after their last visit (see the module doc)."""

    kind = "usession"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "sessions",
        *,
        ttl: int = SESSION_TTL,
        history: int = HISTORY,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        self.name = check_name(name)
        self.ttl = check_count(ttl, "ttl")
        self.history = check_count(history, "history")
        self.keyspace = check_keyspace(keyspace)

    def keys(self, token: str) -> list[str]:
        """``token``'s login, viewed-items and cart keys (one hash tag per token)."""
        obj = f"{self.name}:{check_name(token, 'token')}"
        return [self.keyspace.key(self.kind, obj, part) for part in ("login", "viewed", "cart")]

    async def update_token(self, token: str, user: str, item: str | None = None) -> None:
        """Record that ``user`` is active with ``token`` (its TTL starts again) and, if given,
        viewed ``item``. One round trip, atomic."""
        keys = self.keys(token)
        user = _item(user, "user")
        viewed = "" if item is None else _item(item)
        await script("session_touch")(self.redis, keys, [user, self.ttl, self.history, viewed])

    async def check_token(self, token: str) -> str | None:
        """The user logged in with ``token``, or None once the session expired."""
        user = await self.redis.get(self.keys(token)[0])
        return None if user is None else text(user)

    async def viewed(self, token: str) -> list[str]:
        """The items ``token`` viewed most recently, newest first (at most ``history``)."""
        return [text(i) for i in await self.redis.lrange(self.keys(token)[1], 0, -1)]

    async def ttl_of(self, token: str) -> int | None:
        """Seconds ``token``'s session has left, or None if it has none."""
        left = int(await self.redis.ttl(self.keys(token)[0]))
        return None if left < 0 else left

    async def add_to_cart(self, token: str, item: str, *, count: int) -> bool:
        """Set how many of ``item`` the cart holds (<= 0 removes it); False if no live session."""
        login, _, cart = self.keys(token)
        args = [_item(item), check_int(count, "count")]
        return bool(await script("session_cart")(self.redis, [login, cart], args))

    async def cart(self, token: str) -> dict[str, int]:
        """``token``'s cart: item -> count (empty if none)."""
        items = await self.redis.hgetall(self.keys(token)[2])
        return {text(item): int(count) for item, count in items.items()}

    async def logout(self, token: str) -> bool:
        """End ``token``'s session now (its login, history and cart); whether it had one."""
        return bool(await self.redis.delete(*self.keys(token)))

    def __repr__(self) -> str:
        return f"<ExpiringSessions {self.name!r} ttl={self.ttl}>"
