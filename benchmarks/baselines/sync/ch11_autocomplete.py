"""Port the ch11 Lua autocomplete, sync: ``autocomplete_on_prefix`` (L331) and its script (L341).

Redis in Action §11.3.1, listing 11.10: the ch06 markers (``find_prefix_range``), with every
step after them in one script (ZADD both, ZRANK x2, ZREM, ZRANGE): one EVALSHA per call, no
WATCH, nothing retries. The script text is the asyncio port's (:data:`AUTOCOMPLETE_LUA`). The
book's ``script_load`` (EVALSHA, EVAL on NOSCRIPT) is :class:`.scripting.LoadedScript`: one
EVALSHA per call once the script is loaded.
"""

from __future__ import annotations

import uuid
from typing import Any

from .._util import OnTry, text
from ..ch06_autocomplete import find_prefix_range
from ..ch11_autocomplete import AUTOCOMPLETE_LUA
from .scripting import LoadedScript

__all__ = ["autocomplete_on_prefix", "load"]

_autocomplete_on_prefix_lua = LoadedScript(AUTOCOMPLETE_LUA)


def autocomplete_on_prefix(
    conn: Any, guild: str, prefix: str, *, key_prefix: str = "", on_try: OnTry = None
) -> list[str]:
    """Complete ``prefix`` over the guild with one EVALSHA of the marker script."""
    start, end = find_prefix_range(prefix)
    identifier = str(uuid.uuid4())
    if on_try is not None:
        on_try()
    items = _autocomplete_on_prefix_lua(
        conn, keys=[key_prefix + "members:" + guild], args=[start + identifier, end + identifier]
    )
    return [t for t in (str(text(item)) for item in items) if "{" not in t]


def load(conn: Any) -> None:
    """SCRIPT LOAD the script, so timed runs never pay for NOSCRIPT."""
    conn.script_load(AUTOCOMPLETE_LUA)
