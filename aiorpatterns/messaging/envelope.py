"""The message record the inbox and the chat share, and its JSON envelope.

Redis in Action §6.5 replaces PUBLISH/SUBSCRIBE, which loses every message a disconnected
subscriber misses, with messages that wait in Redis until their reader pulls them: a LIST per
recipient (§6.5.1, :class:`~aiorpatterns.Inbox`) and a ZSET per group chat (§6.5.2,
:class:`~aiorpatterns.Chats`). This module holds what those two share.

A message is stored as the book's JSON envelope ``{"id", "ts", "sender", "message"}``. The Lua
script that assigns the id also writes the envelope, by concatenating the JSON texts it is given,
so the message itself is never decoded and re-encoded in Lua (cjson would round large numbers to
14 digits). ``ts`` is the Redis server's clock in milliseconds, so messages from many machines
compare by one clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..core.checks import text

__all__ = ["Message"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message: its id (increasing per chat or inbox), sender, send time and JSON value.

    ``sent_at`` is the Redis server's clock (Unix seconds, millisecond precision).
    """

    id: int
    sender: str
    sent_at: float
    message: Any


def parse_envelope(raw: bytes | str) -> Message:
    """Decode an envelope written by a ``chat_*`` or ``inbox_*`` script."""
    record = json.loads(text(raw))
    return Message(
        id=int(record["id"]),
        sender=str(record["sender"]),
        sent_at=int(record["ts"]) / 1000,
        message=record["message"],
    )
