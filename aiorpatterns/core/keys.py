"""Key names: every key is ``<prefix>:<kind>:{<object>}[:<part>]``.

One :class:`Keyspace` builds every key of the package. All keys of one object share the Redis
Cluster hash tag ``{<object>}``, so every script and transaction over them runs on one node, and
nothing is ever written outside ``<prefix>:`` (a Redis ACL user limited to ``~<prefix>:*`` can run
every pattern). Redis in Action §1.1 ("key naming") and §9/§10 (sharding) motivate the layout; the
book itself mixes namespaces, which this class exists to prevent.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Keyspace"]


def check_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it is a usable object name, else raise ``TypeError``/``ValueError``."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    if "}" in value:
        # Redis ends a hash tag at the first '}': a '}' inside the name would split one
        # object's keys over several slots on a cluster.
        raise ValueError(f"{what} must not contain '}}': {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Keyspace:
    """Build key names under ``prefix`` (default ``"aiorp"``), one hash tag per object.

    >>> ks = Keyspace("app")
    >>> ks.key("lock", "cart:42")
    'app:lock:{cart:42}'
    >>> ks.key("lock", "cart:42", "fence")
    'app:lock:{cart:42}:fence'
    """

    prefix: str = "aiorp"

    def __post_init__(self) -> None:
        check_name(self.prefix, "prefix")
        if "{" in self.prefix or ":" in self.prefix[-1:]:
            raise ValueError(f"prefix must not contain '{{' or end with ':': {self.prefix!r}")

    def tag(self, kind: str, obj: str) -> str:
        """Return ``<prefix>:<kind>:{<obj>}``, the base every key of the object starts with."""
        check_name(kind, "kind")
        if "{" in kind or ":" in kind:
            raise ValueError(f"kind must not contain '{{' or ':': {kind!r}")
        return f"{self.prefix}:{kind}:{{{check_name(obj)}}}"

    def key(self, kind: str, obj: str, *parts: str) -> str:
        """Return the key of ``obj`` (or of one of its parts) for a pattern ``kind``."""
        base = self.tag(kind, obj)
        for part in parts:
            check_name(part, "key part")
        return ":".join((base, *parts))

    @property
    def pattern(self) -> str:
        """Glob matching every key of this keyspace, and no other (for SCAN and ACL ``~`` rules).

        Glob characters in the prefix are escaped: ``app*`` must not also match ``apple:…``.
        """
        return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in self.prefix) + ":*"


_GLOB_SPECIAL = frozenset("\\*?[]")

DEFAULT_KEYSPACE = Keyspace()
