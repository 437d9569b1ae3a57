"""Messaging: per-recipient inboxes, group chats and fan-out streams.

Redis in Action §6.5 and §6.6.
"""

from __future__ import annotations

from .chat import (
    ChatBatch,
    Chats,
)
from .envelope import (
    Message,
)
from .fanout import (
    Fanout,
    FanoutConsumer,
    FanoutEntry,
    FanoutGroup,
)
from .inbox import (
    Inbox,
    InboxCounts,
    InboxMessage,
)

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
