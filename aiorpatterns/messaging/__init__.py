"""Messaging: per-recipient inboxes, group chats, fan-out streams and file distribution.

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
from .files import (
    DailyCountryAggregate,
    FileDistribution,
    SentFile,
    readblocks,
    readblocks_gz,
    readlines,
)
from .inbox import (
    Inbox,
    InboxCounts,
    InboxMessage,
)

__all__ = [
    "ChatBatch",
    "Chats",
    "DailyCountryAggregate",
    "Fanout",
    "FanoutConsumer",
    "FanoutEntry",
    "FanoutGroup",
    "FileDistribution",
    "Inbox",
    "InboxCounts",
    "InboxMessage",
    "Message",
    "SentFile",
    "readblocks",
    "readblocks_gz",
    "readlines",
]
