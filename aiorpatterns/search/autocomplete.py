"""Complete names by prefix: each user's recent contacts, and a large set of members.

Redis in Action §6.1 builds two autocompleters. §6.1.1 keeps each user's 100 most recent
contacts in a LIST (LREM, LPUSH, LTRIM in one MULTI) and filters the whole list on the client:
:class:`RecentContacts` does the same update in one Lua script (one atomic round trip, also on
Redis Cluster and through an :class:`~aiorpatterns.AutoPipeline`), with optional case folding.

§6.1.2 completes prefixes over a guild's members, a ZSET whose scores are all 0 so that it
sorts by name: it inserts two marker members around the prefix, reads between them inside a
WATCH transaction and removes them again; §11.3.1 moves the same steps into a Lua script. Every
read is then a write: markers invalidate the other readers' WATCH (retry storms), leak forever
when a client dies between the insert and the removal, shrink other readers' pages, cannot run
on a replica, and the ``a``-``z`` alphabet the markers rely on breaks upper case, digits, ``{``
and every non-ASCII name. :class:`Autocomplete` asks for the same page with
one read-only command, ``ZRANGE key [<prefix> (<successor> BYLEX LIMIT 0 <limit>``, whose bounds
are computed on the UTF-8 bytes of the prefix (:func:`prefix_range`), so it is correct for any
Unicode name: UTF-8 byte order is code point order, and the successor increments the last byte
that can be incremented (UTF-8 never contains ``0xff``), which covers prefixes ending in the
highest code points (U+FFFF, U+10FFFF) as well.

With ``casefold=True`` a member is stored as ``casefold(name) + "\\0" + name``: the range is taken
on the folded part, the reply keeps each name's own spelling, and names that differ only in
case stay distinct members (``join("Ann")`` and ``join("ann")`` are two names; ``leave`` removes
the exact spelling). Names must not contain NUL then.

Keys: ``<prefix>:autocomplete:{<name>}`` (one ZSET per :class:`Autocomplete`) and
``<prefix>:contacts:{<user>}:<name>`` (one LIST per user, each in its own hash tag, so users
spread over a cluster).

Retry safety: :meth:`RecentContacts.add` carries a token made per call; a second run of the same
call finds its receipt (``…:contacts:{<user>}:<name>:<call>``, kept two minutes) and answers as
the first did. The other writes are single idempotent commands.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from ..core.checks import (
    INT64_MAX,
    AsyncRedis,
    check_client,
    check_count,
    check_flag,
    check_keyspace,
    text,
)
from ..core.keys import DEFAULT_KEYSPACE, Keyspace, check_name
from ..core.scripts import script

__all__ = ["Autocomplete", "RecentContacts", "prefix_range"]

#: How many contacts each user keeps (the book's 100).
CONTACTS = 100
#: How many names :meth:`Autocomplete.complete` returns by default (the book's page of 10).
PAGE = 10

_SEP = "\0"


def prefix_range(prefix: bytes) -> tuple[bytes, bytes]:
    """Return the ``BYLEX`` bounds of every member that starts with the bytes ``prefix``.

    The lower bound is ``[prefix`` (inclusive); the upper bound is ``(`` and the smallest byte
    string greater than every string that starts with ``prefix``: drop trailing ``0xff`` bytes and
    add one to the last byte left (``+`` if none is left). The empty prefix gives ``-`` and ``+``,
    every member. Redis in Action §6.1.2 (``find_prefix_range``), without its ``a``-``z`` alphabet.

    >>> prefix_range("ab".encode())
    (b'[ab', b'(ac')
    >>> prefix_range("\\U0010ffff".encode())
    (b'[\\xf4\\x8f\\xbf\\xbf', b'(\\xf4\\x8f\\xbf\\xc0')
    """
    if not isinstance(prefix, bytes):
        raise TypeError(f"prefix must be bytes, not {type(prefix).__name__}")
    return _range(prefix)


def _range(prefix: bytes) -> tuple[bytes, bytes]:
    if not prefix:
        return b"-", b"+"
    head = prefix.rstrip(b"\xff")
    if not head:
        return b"[" + prefix, b"+"
    return b"[" + prefix, b"(" + head[:-1] + bytes((head[-1] + 1,))


def _check_text(value: object, what: str, *, empty: bool = False) -> str:
    """Return ``value`` if it is a str that UTF-8 can encode, else raise naming ``what``."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value and not empty:
        raise ValueError(f"{what} must not be empty")
    _encode(value, what)
    return value


def _encode(value: str, what: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode text (lone surrogate): {value!r}") from None


class Autocomplete:
    """Complete prefixes over a set of names named ``name``, read-only (§6.1.2, §11.3.1).

    Redis in Action §6.1.2 keeps a guild's members in a ZSET of equal scores and completes a
    prefix between two marker members it writes and removes; here :meth:`complete` is a single
    ``ZRANGE … BYLEX`` read over the prefix's byte range: no writes, no WATCH, nothing to leak,
    and it runs on a replica. Names are any non-empty Unicode text; results are ``str`` in
    code point order (``casefold=True``: by folded name, then spelling), identical whether the
    client decodes responses or not. The client is the caller's and is never closed here.
    """

    kind = "autocomplete"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "members",
        *,
        casefold: bool = False,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        self.name = name
        self.casefold = check_flag(casefold, "casefold")
        self.keyspace = check_keyspace(keyspace)
        self.key = keyspace.key(self.kind, name)

    def _member(self, value: object) -> bytes:
        name = _check_text(value, "name")
        if not self.casefold:
            return name.encode()
        if _SEP in name:
            raise ValueError(f"name must not contain NUL when casefold=True: {name!r}")
        return (name.casefold() + _SEP + name).encode()

    def _members(self, names: Iterable[object]) -> list[bytes]:
        return list(dict.fromkeys(self._member(name) for name in names))

    def _bounds(self, value: object) -> tuple[bytes, bytes] | None:
        if not isinstance(value, str):
            raise TypeError(f"prefix must be a str, not {type(value).__name__}")
        prefix = value
        if self.casefold:
            prefix = prefix.casefold()
            if _SEP in prefix:  # no folded name holds a NUL: nothing can match
                return None
        return _range(_encode(prefix, "prefix"))

    def _display(self, member: Any) -> str:
        name = text(member)
        return name.partition(_SEP)[2] if self.casefold else name

    async def join(self, *names: str) -> int:
        """Add ``names``; return how many were not members yet.

        Redis in Action §6.1.2 (``join_guild``).
        """
        members = self._members(names)
        if not members:
            return 0
        added: Any = await self.redis.zadd(self.key, dict.fromkeys(members, 0))
        return int(added)

    async def leave(self, *names: str) -> int:
        """Remove ``names``; return how many were members.

        Redis in Action §6.1.2 (``leave_guild``).
        """
        members = self._members(names)
        if not members:
            return 0
        return int(await self.redis.zrem(self.key, *members))

    async def complete(self, prefix: str, *, limit: int = PAGE) -> list[str]:
        """Return the first ``limit`` names that start with ``prefix``, in order.

        One read-only ``ZRANGE … BYLEX LIMIT``; the empty prefix gives the first names. Redis in
        Action §6.1.2 (``autocomplete_on_prefix``), and §11.3.1 (its Lua version).
        """
        bounds = self._bounds(prefix)
        if type(limit) is not int or not 1 <= limit <= INT64_MAX:
            limit = check_count(limit, "limit")
        if bounds is None:
            return []
        # execute_command rather than zrange(): on a hot path, skip redis-py's re-packing of
        # keyword arguments into the same command.
        members = await self.redis.execute_command(
            "ZRANGE", self.key, *bounds, "BYLEX", "LIMIT", 0, limit
        )
        if self.casefold:
            return [self._display(m) for m in members]
        return [m.decode() if type(m) is bytes else str(m) for m in members]

    async def count(self, prefix: str = "") -> int:
        """Return how many names start with ``prefix`` (every name for ``""``).

        One read-only ``ZLEXCOUNT``. Redis in Action §6.1.2 (the guild ZSET).
        """
        bounds = self._bounds(prefix)
        if bounds is None:
            return 0
        return int(await self.redis.zlexcount(self.key, *bounds))

    def __repr__(self) -> str:
        return f"<Autocomplete {self.key!r}{' casefold' if self.casefold else ''}>"


class RecentContacts:
    """Keep each user's ``size`` most recent contacts, newest first, completed by prefix (§6.1.1).

    Redis in Action §6.1.1 keeps a capped LIST per user and filters it on the client. Adding a
    contact (or moving it back to the front) is one atomic Lua step; :meth:`complete` reads the
    list once and filters it here, by exact prefix or, with ``casefold=True``, by
    ``contact.casefold().startswith(prefix.casefold())`` (the book's errata lower-cases). Results
    are ``str`` whether the client decodes responses or not; the client is never closed here.
    """

    kind = "contacts"

    def __init__(
        self,
        redis: AsyncRedis,
        name: str = "recent",
        *,
        size: int = CONTACTS,
        casefold: bool = False,
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis = check_client(redis)
        check_name(name)
        self.name = name
        self.size = check_count(size, "size")
        self.casefold = check_flag(casefold, "casefold")
        self.keyspace = check_keyspace(keyspace)

    def list_key(self, user: str) -> str:
        """Return the key of ``user``'s list (in ``user``'s own hash tag).

        Redis in Action §6.1.1 keeps one ``recent:<user>`` LIST per user.
        """
        return self.keyspace.key(self.kind, check_name(user, "user"), self.name)

    async def add(self, user: str, contact: str) -> bool:
        """Put ``contact`` first in ``user``'s list; return True if it was not in the list.

        One atomic script (LREM, LPUSH, LTRIM). Redis in Action §6.1.1 (``add_update_contact``).
        """
        key = self.list_key(user)
        raw = _check_text(contact, "contact").encode()
        args = (raw, self.size, secrets.token_hex(16))
        added = await script("autocomplete_contact_add")(self.redis, (key,), args)
        return bool(int(added))

    async def remove(self, user: str, contact: str) -> bool:
        """Remove ``contact`` from ``user``'s list; return True if it was there.

        Redis in Action §6.1.1 (``remove_contact``).
        """
        key = self.list_key(user)
        raw: Any = _check_text(contact, "contact").encode()
        return bool(await self.redis.lrem(key, 0, raw))

    async def contacts(self, user: str) -> list[str]:
        """Return ``user``'s contacts, most recent first.

        One LRANGE. Redis in Action §6.1.1 (the ``recent:<user>`` LIST).
        """
        key = self.list_key(user)
        return [text(c) for c in await self.redis.lrange(key, 0, -1)]

    async def complete(self, user: str, prefix: str, *, limit: int | None = None) -> list[str]:
        """Return ``user``'s contacts that start with ``prefix``, most recent first.

        At most ``limit`` of them (``None``: all). Redis in Action §6.1.1
        (``fetch_autocomplete_list``).
        """
        key = self.list_key(user)
        match = _check_text(prefix, "prefix", empty=True)
        if self.casefold:
            match = match.casefold()
        if limit is not None:
            limit = check_count(limit, "limit")
        found: list[str] = []
        for raw in await self.redis.lrange(key, 0, -1):
            contact = text(raw)
            if (contact.casefold() if self.casefold else contact).startswith(match):
                found.append(contact)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def __repr__(self) -> str:
        return f"<RecentContacts {self.keyspace.prefix}:{self.kind}:{{…}}:{self.name}>"
