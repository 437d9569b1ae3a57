"""What a cache entry looks like in Redis: ``<version>|<soft>|<tags>|<kind><payload>``.

- ``version``: 16 random hex digits, new on every write, so a caller that found an entry
  invalid can name exactly that entry to the claim step (``cache_claim.lua``'s ``reject``);
- ``soft``: ``1`` if it was written with a soft TTL (it is fresh while its ``:fresh`` mark
  lives), else ``0``;
- ``tags``: ``name=generation`` pairs joined by ``,`` (empty for none): the generation each of
  the entry's tags had when its value was computed. A tag is invalidated by bumping its
  generation (one ``HINCRBY``), which makes every entry computed under the old one invalid at
  once, however many there are and wherever they live on a cluster;
- ``kind``: ``v`` a value, ``e`` a cached error (``{"t": "module.Qualname", "m": message}``);
- ``payload``: the serializer's text.

Redis in Action §2.3-2.4 stores pages and rows bare; the header is what a stampede-free,
taggable cache needs, read with the value in the same ``GET``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..core.checks import text

__all__ = ["Entry", "check_tag", "decode", "encode"]

VALUE, ERROR = "v", "e"
#: What the stored form separates tags with (so no tag may hold them).
_FORBIDDEN = frozenset("|,=")


def check_tag(value: object) -> str:
    """Return ``value`` if it is a usable tag name, else raise TypeError/ValueError."""
    if not isinstance(value, str):
        raise TypeError(f"a tag must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError("a tag must not be empty")
    bad = _FORBIDDEN.intersection(value)
    if bad:
        raise ValueError(f"a tag must not contain {sorted(bad)}: {value!r}")
    return value


def check_tags(tags: Iterable[object]) -> tuple[str, ...]:
    """Every tag of ``tags`` checked, duplicates dropped, in their first order."""
    if isinstance(tags, str | bytes):
        raise TypeError("tags must be a collection of str, not a single str")
    return tuple(dict.fromkeys(check_tag(t) for t in tags))


@dataclass(frozen=True, slots=True)
class Entry:
    """A decoded entry: its version, its tags' generations, its kind and its payload text."""

    version: str
    soft: bool
    tags: Mapping[str, int]
    kind: str
    payload: str

    def valid(self, generations: Mapping[str, int]) -> bool:
        """Whether every tag still has the generation the value was computed under."""
        return all(generations.get(tag, 0) == gen for tag, gen in self.tags.items())


def encode(kind: str, payload: str, generations: Mapping[str, int], soft: bool = False) -> str:
    """The stored form of a value (``kind`` :data:`VALUE`) or an error (:data:`ERROR`)."""
    tags = ",".join(f"{tag}={gen}" for tag, gen in generations.items())
    return f"{secrets.token_hex(8)}|{int(soft)}|{tags}|{kind}{payload}"


def encode_error(exc: BaseException) -> str:
    """The payload of a cached error: its class's qualified name and its message."""
    cls = type(exc)
    return json.dumps({"t": f"{cls.__module__}.{cls.__qualname__}", "m": str(exc)})


def decode(stored: object) -> Entry | None:
    """The entry of a stored value (``str`` or ``bytes``), or None if this is not an entry."""
    parts = text(stored).split("|", 3)
    if len(parts) != 4 or parts[1] not in ("0", "1") or not parts[3] or parts[3][0] not in "ve":
        return None
    version, soft, spec, body = parts
    tags: dict[str, int] = {}
    for pair in filter(None, spec.split(",")):
        tag, _, gen = pair.partition("=")
        if not gen.lstrip("-").isdigit():
            return None
        tags[tag] = int(gen)
    return Entry(version, soft == "1", tags, body[0], body[1:])


def generations(tags: Sequence[str], reply: Sequence[object]) -> dict[str, int]:
    """Each tag's generation from an ``HMGET`` reply (a tag never invalidated is at 0)."""
    return {
        tag: int(text(gen)) if gen is not None else 0 for tag, gen in zip(tags, reply, strict=True)
    }
