"""What the messaging patterns share: the message record, its JSON envelope and the call helpers.

Redis in Action §6.5 replaces PUBLISH/SUBSCRIBE, which loses every message a disconnected
subscriber misses, with messages that wait in Redis until their reader pulls them: a LIST per
recipient (§6.5.1, :class:`~aiorpatterns.Inbox`) and a ZSET per group chat (§6.5.2,
:class:`~aiorpatterns.Chats`); §6.6 distributes log files to many readers over the chat
(:class:`~aiorpatterns.Fanout`, on Redis Streams). This module holds what the first two share.

A message is stored as the book's JSON envelope ``{"id", "ts", "sender", "message"}``. The Lua
script that assigns the id also writes the envelope, by concatenating the JSON texts it is given,
so the message itself is never decoded and re-encoded in Lua (cjson would round large numbers to
14 digits). ``ts`` is the Redis server's clock in milliseconds, so messages from many machines
compare by one clock.

The classes themselves live in :mod:`~aiorpatterns.chat`, :mod:`~aiorpatterns.inbox` and
:mod:`~aiorpatterns.fanout`; ``from aiorpatterns.messaging import Chats, Inbox, Fanout`` works too
(they are loaded on first use, since those modules import this one).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .checks import text

if TYPE_CHECKING:
    from .chat import ChatBatch, Chats
    from .fanout import Fanout, FanoutConsumer, FanoutEntry, FanoutGroup
    from .inbox import Inbox, InboxCounts, InboxMessage

__all__ = [
    "ChatBatch",
    "Chats",
    "Fanout",
    "FanoutConsumer",
    "FanoutEntry",
    "FanoutGroup",
    "Inbox",
    "InboxCounts",
    "InboxMessage",
    "Message",
]

#: Where each messaging class lives (those modules import this one, so they load lazily).
_HOMES = {
    "ChatBatch": "chat",
    "Chats": "chat",
    "Fanout": "fanout",
    "FanoutConsumer": "fanout",
    "FanoutEntry": "fanout",
    "FanoutGroup": "fanout",
    "Inbox": "inbox",
    "InboxCounts": "inbox",
    "InboxMessage": "inbox",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __package__), name)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Message:
    """One message: its id (increasing per chat or inbox), sender, send time and JSON value.

    ``sent_at`` is the Redis server's clock (Unix seconds, millisecond precision).
    """

    id: int
    sender: str
    sent_at: float
    message: Any


def encode_json(value: object, what: str = "message") -> str:
    """Return ``value`` as compact JSON text; TypeError/ValueError if it is not JSON.

    JSON, never pickle (DESIGN "Payloads"); NaN and infinities are refused too, since other JSON
    readers reject them.
    """
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except TypeError as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from None
    except ValueError as exc:  # NaN / infinity, or a circular reference
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


def parse_envelope(raw: bytes | str) -> Message:
    """Decode an envelope written by a ``chat_*`` or ``inbox_*`` script."""
    record = json.loads(text(raw))
    return Message(
        id=int(record["id"]),
        sender=str(record["sender"]),
        sent_at=int(record["ts"]) / 1000,
        message=record["message"],
    )
