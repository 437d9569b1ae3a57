"""aiorpatterns: the patterns of *Redis in Action*, async-native on redis.asyncio.

Every class takes your ``redis.asyncio`` client (``Redis``, ``RedisCluster`` or an
:class:`AutoPipeline` around either) first, and never closes it. See the README's pattern table
for the book section behind each one.
"""

from __future__ import annotations

from . import (
    ads,
    autocomplete,
    autopipeline,
    chat,
    errors,
    fanout,
    inbox,
    jobs,
    keys,
    locks,
    messaging,
    queues,
    search,
    semaphores,
    sessions,
    workers,
)
from .ads import (
    AdIndex,
    Targeting,
    cpa_to_ecpm,
    cpc_to_ecpm,
)
from .autocomplete import (
    Autocomplete,
    RecentContacts,
    prefix_range,
)
from .autopipeline import (
    AutoPipeline,
    AutoPipelineStats,
)
from .chat import (
    ChatBatch,
    Chats,
)
from .errors import (
    AcquireTimeoutError,
    AiorpatternsError,
    LeaseLostError,
    NotOwnedError,
    ScriptError,
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
from .jobs import (
    JobIndex,
    JobLevelIndex,
    JobYearsIndex,
)
from .keys import (
    Keyspace,
)
from .locks import (
    Lock,
)
from .messaging import (
    Message,
)
from .queues import (
    DeadLetter,
    QueueCounts,
    Task,
    TaskQueue,
)
from .search import (
    ParsedQuery,
    SearchIndex,
    SearchResult,
    parse_query,
    string_to_score,
    string_to_score_generic,
    tokenize,
    zadd_string,
)
from .semaphores import (
    FairSemaphore,
    Semaphore,
)
from .sessions import (
    Sessions,
)
from .workers import (
    Worker,
    WorkerStats,
)

__all__ = [
    "AcquireTimeoutError",
    "AdIndex",
    "AiorpatternsError",
    "AutoPipeline",
    "AutoPipelineStats",
    "Autocomplete",
    "ChatBatch",
    "Chats",
    "DeadLetter",
    "FairSemaphore",
    "Fanout",
    "FanoutConsumer",
    "FanoutEntry",
    "FanoutGroup",
    "Inbox",
    "InboxCounts",
    "InboxMessage",
    "JobIndex",
    "JobLevelIndex",
    "JobYearsIndex",
    "Keyspace",
    "LeaseLostError",
    "Lock",
    "Message",
    "NotOwnedError",
    "ParsedQuery",
    "QueueCounts",
    "RecentContacts",
    "ScriptError",
    "SearchIndex",
    "SearchResult",
    "Semaphore",
    "Sessions",
    "Targeting",
    "Task",
    "TaskQueue",
    "Worker",
    "WorkerStats",
    "cpa_to_ecpm",
    "cpc_to_ecpm",
    "parse_query",
    "prefix_range",
    "string_to_score",
    "string_to_score_generic",
    "tokenize",
    "zadd_string",
]

#: Modules whose ``__all__`` must be re-exported here (a test keeps this true).
PUBLIC_MODULES = (
    ads,
    autocomplete,
    autopipeline,
    chat,
    errors,
    fanout,
    inbox,
    jobs,
    keys,
    locks,
    messaging,
    queues,
    search,
    semaphores,
    sessions,
    workers,
)
