"""Decode replies the way the book's Python 2 compared them with ``str``.

Shared by the ports of Redis in Action §6.2 and §11.2, whose releases compare tokens.
"""

from __future__ import annotations

from collections.abc import Callable

OnTry = Callable[[], object] | None


def text(value: object) -> object:
    """Return ``value`` as ``str`` if it is ``bytes``, else unchanged.

    Python 2 compared ``bytes`` replies with ``str`` identifiers directly; on Python 3 the reply
    must be decoded first, with ``decode_responses`` on or off.
    """
    return value.decode() if isinstance(value, bytes) else value
