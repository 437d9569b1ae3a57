"""Post articles, vote on them, and page through them by score, time or group.

Redis in Action §1.3 builds a small Reddit: an article scores its posting time plus 432 points
per vote (a day's worth of seconds for 200 votes), each user votes once, voting closes after a
week, and pages are read by score or by time, for the whole site or a group. The book's version
has gaps this one closes:

- a vote is one Lua step (voter record, vote count, score): the book's three commands can record
  a vote and crash before counting it, and an unknown article raises ``TypeError``
  (``None < cutoff``); here it is :attr:`Vote.MISSING`;
- down-votes (the §1.4 exercise) and changing one's vote, still one vote per user;
- a page is one round trip (the book makes one HGETALL per article);
- a group's ordered cache is built, and given its expiry, in the same step that reads it: the
  book's EXISTS, ZINTERSTORE, EXPIRE can leave a cache that never expires, and let concurrent
  readers rebuild it at once; adding or removing an article drops the group's cache;
- times are the Redis server's clock, not each web server's.

Keys (``name`` is the site's name, default ``"articles"``), all under the tag ``{<name>}``:
``<prefix>:article:{<name>}:seq`` (id counter), ``…:posts`` (HASH id → JSON title, link, poster),
``…:votes`` and ``…:downvotes`` (HASH id → count), ``…:score`` and ``…:time`` (ZSET id → score /
posting time), ``…:voters:<id>`` (HASH user → direction, expires when voting closes),
``…:group:<group>`` (SET of ids) and ``…:cache:<order>:<group>`` (cached ZSET). A site
therefore lives on one Redis Cluster node: use several sites (names) to spread the load.

Retry safety: a post is written under the id taken before it, so a second run finds it and
changes nothing; a vote carries a token made per call, and a second run finds the vote's receipt
(``…:voters:<id>:<call>``, kept two minutes) and answers as the first did.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from ..core.checks import (
    INT64_MAX,
    AsyncRedis,
    check_count,
    check_int,
    check_object,
    check_seconds,
    check_text,
    text,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script

__all__ = ["Article", "Articles", "Vote"]

#: How long an article takes votes (the book's one week).
ONE_WEEK = 7 * 86400.0
#: How much one vote moves the score (the book's 432: 200 votes make a day).
VOTE_SCORE = 432.0
#: Articles per page (the book's 25).
PAGE_SIZE = 25
#: How long a group's ordered cache lives (the book's 60 seconds).
GROUP_TTL = 60.0

Order = Literal["score", "time"]
_ORDERS: tuple[Order, ...] = ("score", "time")


class Vote(Enum):
    """The outcome of :meth:`Articles.article_vote`; ``VOTED`` and ``CHANGED`` are truthy."""

    VOTED = "voted"
    #: The user had voted the other way; that vote is replaced (the count moves by two).
    CHANGED = "changed"
    #: The user had already voted this way: nothing changed.
    ALREADY = "already"
    #: The article is older than the voting window.
    CLOSED = "closed"
    #: No such article.
    MISSING = "missing"

    def __bool__(self) -> bool:
        return self in (Vote.VOTED, Vote.CHANGED)


@dataclass(frozen=True, slots=True)
class Article:
    """One article with its votes; ``posted`` is the server's clock (Unix seconds)."""

    id: str
    title: str
    link: str
    poster: str
    posted: float
    votes: int
    downvotes: int
    score: float


def _order(value: object) -> Order:
    if not isinstance(value, str):
        raise TypeError(f"order must be 'score' or 'time', not {type(value).__name__}")
    if value == "score":
        return "score"
    if value == "time":
        return "time"
    raise ValueError(f"order must be 'score' or 'time', got {value!r}")


def _article_id(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"article must be a str id, not {type(value).__name__}")
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"article must be an id returned by post_article, got {value!r}")
    return value


class Articles:
    """A site of articles named ``name`` (Redis in Action §1.3).

    ``vote_window`` (seconds) is how long an article takes votes, ``vote_score`` how much a vote
    moves its score, ``page_size`` how many articles a page holds and ``group_ttl`` (seconds)
    how long a group's ordered cache lives. The client is the caller's and is never closed here.
    """

    kind = "article"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "articles",
        *,
        vote_window: float = ONE_WEEK,
        vote_score: float = VOTE_SCORE,
        page_size: int = PAGE_SIZE,
        group_ttl: float = GROUP_TTL,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis, self.name, self.keyspace = check_object(redis, name, keyspace)
        self.vote_window = check_seconds(vote_window, "vote_window")
        self.vote_score = check_seconds(vote_score, "vote_score")
        self.page_size = check_count(page_size, "page_size")
        self.group_ttl = check_seconds(group_ttl, "group_ttl")
        self.seq_key = self._key("seq")
        self.posts_key = self._key("posts")
        self.votes_key = self._key("votes")
        self.downvotes_key = self._key("downvotes")
        self.score_key = self._key("score")
        self.time_key = self._key("time")

    def _key(self, *parts: str) -> str:
        return self.keyspace.key(self.kind, self.name, *parts)

    def voters_key(self, article: str) -> str:
        """The HASH of who voted on ``article`` and which way (expires when voting closes)."""
        return self._key("voters", _article_id(article))

    def group_key(self, group: str) -> str:
        """The SET of the ids of the articles in ``group``."""
        return self._key("group", check_name(group, "group"))

    def group_cache_key(self, group: str, order: Order = "score") -> str:
        """The cached ZSET of ``group``'s articles ordered by ``order`` (it expires)."""
        return self._key("cache", _order(order), check_name(group, "group"))

    def _order_key(self, order: Order) -> str:
        return self.score_key if order == "score" else self.time_key

    async def post_article(self, user: str, *, title: str, link: str) -> str:
        """Publish an article by ``user`` and return its id; the poster's vote is counted.

        Redis in Action §1.3.2 (``post_article``). An id is taken first (INCR), then the
        article is written in one step: a cancelled post at worst skips an id.
        """
        meta = json.dumps(
            {
                "title": check_text(title, "title"),
                "link": check_text(link, "link", empty=True),
                "poster": check_name(user, "user"),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        article = str(int(await self.redis.incr(self.seq_key)))
        keys = [
            self.posts_key,
            self.votes_key,
            self.downvotes_key,
            self.score_key,
            self.time_key,
            self.voters_key(article),
        ]
        args = [article, meta, user, self.vote_window, self.vote_score]
        await script("article_post")(self.redis, keys, args)
        return article

    async def article_vote(self, user: str, article: str, *, down: bool = False) -> Vote:
        """Vote for ``article`` as ``user`` (against it with ``down=True``); return the outcome.

        One vote per user per article while voting is open; voting the other way replaces the
        earlier vote. The voter record, the count and the score change in one atomic step.
        Redis in Action §1.3.1 (``article_vote``) and the §1.4 down-vote exercise.
        """
        check_name(user, "user")
        if not isinstance(down, bool):
            raise TypeError(f"down must be a bool, not {type(down).__name__}")
        keys = [
            self.votes_key,
            self.downvotes_key,
            self.score_key,
            self.time_key,
            self.voters_key(article),
        ]
        direction = "-1" if down else "1"
        args = [article, user, direction, self.vote_window, self.vote_score, secrets.token_hex(16)]
        return Vote(text(await script("article_vote")(self.redis, keys, args)))

    async def get_article(self, article: str) -> Article | None:
        """Return ``article`` with its votes and score, or None if there is no such article."""
        _article_id(article)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.posts_key, article)
            pipe.hget(self.votes_key, article)
            pipe.hget(self.downvotes_key, article)
            pipe.zscore(self.score_key, article)
            pipe.zscore(self.time_key, article)
            meta, up, down, score, posted = await pipe.execute()
        if meta is None:
            return None
        return _article(article, meta, up or 0, down or 0, score or 0, posted or 0)

    async def get_articles(self, *, page: int = 1, order: Order = "score") -> list[Article]:
        """Return page ``page`` (from 1) of all articles, highest score or newest first.

        One round trip. Redis in Action §1.3.2 (``get_articles``).
        """
        start, stop = self._page(page)
        keys = self._page_keys(self._order_key(_order(order)))
        return _articles(await script("article_page")(self.redis, keys, [start, stop]))

    async def get_group_articles(
        self, group: str, *, page: int = 1, order: Order = "score"
    ) -> list[Article]:
        """Return page ``page`` (from 1) of ``group``'s articles, highest score or newest first.

        The group's order is cached for ``group_ttl`` seconds, built in the same atomic step
        that reads the page. Redis in Action §1.3.3 (``get_group_articles``).
        """
        order = _order(order)
        keys = self._page_keys(self.group_cache_key(group, order))
        keys += [self.group_key(group), self._order_key(order)]
        start, stop = self._page(page)
        ttl_ms = max(1, round(self.group_ttl * 1000))
        return _articles(await script("article_page")(self.redis, keys, [start, stop, ttl_ms]))

    async def add_remove_groups(
        self, article: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> bool:
        """Add ``article`` to the groups ``add`` and remove it from ``remove``, atomically.

        False (and nothing changes) if there is no such article. Each changed group's cached
        order is dropped. Redis in Action §1.3.3 (``add_remove_groups``).
        """
        _article_id(article)
        changes: dict[str, str] = {}
        for what, groups in (("add", add), ("remove", remove)):
            if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence):
                raise TypeError(f"{what} must be a sequence of group names, not a single value")
            for group in groups:
                check_name(group, "group")
                if changes.get(group, what) != what:
                    raise ValueError(f"group {group!r} is both added and removed")
                changes[group] = what
        if not changes:
            return True
        keys = [self.time_key]
        for group in changes:
            keys += [self.group_key(group)]
            keys += [self.group_cache_key(group, o) for o in _ORDERS]
        args = [article, *changes.values()]
        return bool(await script("article_groups")(self.redis, keys, args))

    async def group_members(self, group: str) -> set[str]:
        """Return the ids of the articles in ``group``."""
        return {text(m) for m in await self.redis.smembers(self.group_key(group))}

    def _page(self, page: object) -> tuple[int, int]:
        # The last rank of the page must fit a Redis integer too.
        number = check_int(page, "page", minimum=1, maximum=INT64_MAX // self.page_size)
        start = (number - 1) * self.page_size
        return start, start + self.page_size - 1

    def _page_keys(self, source: str) -> list[str]:
        return [
            source,
            self.posts_key,
            self.votes_key,
            self.downvotes_key,
            self.score_key,
            self.time_key,
        ]

    def __repr__(self) -> str:
        return f"<Articles {self.keyspace.tag(self.kind, self.name)!r}>"


def _number(value: bytes | str | float) -> float:
    return float(text(value)) if isinstance(value, (bytes, str)) else float(value)


def _article(
    article: str, meta: bytes | str, up: Any, down: Any, score: Any, posted: Any
) -> Article:
    data = json.loads(text(meta))
    return Article(
        id=article,
        title=str(data["title"]),
        link=str(data["link"]),
        poster=str(data["poster"]),
        posted=_number(posted),
        votes=int(_number(up)),
        downvotes=int(_number(down)),
        score=_number(score),
    )


def _articles(flat: list[Any]) -> list[Article]:
    return [
        _article(text(flat[i]), flat[i + 1], flat[i + 2], flat[i + 3], flat[i + 4], flat[i + 5])
        for i in range(0, len(flat), 6)
    ]
