"""aiorpatterns: the patterns of *Redis in Action*, async-native on redis.asyncio.

Every class takes your ``redis.asyncio`` client (``Redis``, ``RedisCluster`` or an
:class:`AutoPipeline` around either) first, and never closes it. See the README's pattern table
for the book section behind each one.
"""

from __future__ import annotations

from .ads import (
    AdIndex,
    Targeting,
    cpa_to_ecpm,
    cpc_to_ecpm,
)
from .articles import (
    Article,
    Articles,
    Vote,
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
from .caching import (
    PageCache,
    RowCache,
    RowCacheWorker,
)
from .chat import (
    ChatBatch,
    Chats,
)
from .config import (
    Config,
    redis_from_config,
)
from .counters import (
    PRECISIONS,
    AccessTimer,
    Counters,
    Sample,
    Statistics,
    Stats,
    slowest,
)
from .encodings import (
    COMPACT_ENCODINGS,
    CompactLimits,
    compact_limits,
    encoding,
    is_compact,
    listpack_bytes,
    memory_usage,
)
from .errors import (
    AcquireTimeoutError,
    AiorpatternsError,
    LeaseLostError,
    LimitsMismatchError,
    NotOwnedError,
    ProgressConflictError,
    ReplicaNotAttachedError,
    ReplicationError,
    ScriptError,
    ShardsUnavailableError,
    SyncTimeoutError,
)
from .fanout import (
    Fanout,
    FanoutConsumer,
    FanoutEntry,
    FanoutGroup,
)
from .geoip import (
    City,
    IpLocations,
    IpRange,
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
from .locations import (
    DEFAULT_COUNTRIES,
    DEFAULT_STATES,
    Location,
    LocationCounts,
    Locations,
)
from .locks import (
    Lock,
)
from .logfiles import (
    LogProcessor,
    LogProgress,
    process_logs,
)
from .logs import (
    SEVERITIES,
    CommonLog,
    CommonMessages,
    LogEntry,
    RecentLog,
)
from .market import (
    Listing,
    Market,
    Purchase,
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
from .replication import (
    AofAcks,
    supports_waitaof,
    wait_for_aof,
    wait_for_replicas,
    wait_for_sync,
)
from .scripts import (
    Script,
    script,
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
from .server import (
    ClusterServer,
    RedisServer,
    ServerNotFoundError,
    find_server_binary,
    server_version,
)
from .sessions import (
    Sessions,
)
from .sharding import (
    ShardedHash,
    ShardedList,
    shard_of,
)
from .shards import (
    ScatterResult,
    ShardedClients,
    sharded_zrangebyscore,
    syndicate,
    zrangebyscore_merged,
)
from .shardsearch import (
    ShardedSearch,
    ShardedSearchResult,
    to_numeric_key,
    to_string_key,
)
from .social import (
    Social,
    SocialUser,
    UserList,
)
from .streaming import (
    AllOfFilter,
    AnyOfFilter,
    FollowFilter,
    LocationFilter,
    NotFilter,
    SampleFilter,
    StatusEvent,
    StatusFilter,
    StatusStream,
    TrackFilter,
)
from .timelines import (
    StatusMessage,
)
from .visitors import (
    HLL_STANDARD_ERROR,
    UniqueVisitors,
    expected_size,
    visitor_id,
)
from .workers import (
    Worker,
    WorkerStats,
)

__all__ = [
    "COMPACT_ENCODINGS",
    "DEFAULT_COUNTRIES",
    "DEFAULT_STATES",
    "HLL_STANDARD_ERROR",
    "PRECISIONS",
    "SEVERITIES",
    "AccessTimer",
    "AcquireTimeoutError",
    "AdIndex",
    "AiorpatternsError",
    "AllOfFilter",
    "AnyOfFilter",
    "AofAcks",
    "Article",
    "Articles",
    "AutoPipeline",
    "AutoPipelineStats",
    "Autocomplete",
    "ChatBatch",
    "Chats",
    "City",
    "ClusterServer",
    "CommonLog",
    "CommonMessages",
    "CompactLimits",
    "Config",
    "Counters",
    "DeadLetter",
    "FairSemaphore",
    "Fanout",
    "FanoutConsumer",
    "FanoutEntry",
    "FanoutGroup",
    "FollowFilter",
    "Inbox",
    "InboxCounts",
    "InboxMessage",
    "IpLocations",
    "IpRange",
    "JobIndex",
    "JobLevelIndex",
    "JobYearsIndex",
    "Keyspace",
    "LeaseLostError",
    "LimitsMismatchError",
    "Listing",
    "Location",
    "LocationCounts",
    "LocationFilter",
    "Locations",
    "Lock",
    "LogEntry",
    "LogProcessor",
    "LogProgress",
    "Market",
    "Message",
    "NotFilter",
    "NotOwnedError",
    "PageCache",
    "ParsedQuery",
    "ProgressConflictError",
    "Purchase",
    "QueueCounts",
    "RecentContacts",
    "RecentLog",
    "RedisServer",
    "ReplicaNotAttachedError",
    "ReplicationError",
    "RowCache",
    "RowCacheWorker",
    "Sample",
    "SampleFilter",
    "ScatterResult",
    "Script",
    "ScriptError",
    "SearchIndex",
    "SearchResult",
    "Semaphore",
    "ServerNotFoundError",
    "Sessions",
    "ShardedClients",
    "ShardedHash",
    "ShardedList",
    "ShardedSearch",
    "ShardedSearchResult",
    "ShardsUnavailableError",
    "Social",
    "SocialUser",
    "Statistics",
    "Stats",
    "StatusEvent",
    "StatusFilter",
    "StatusMessage",
    "StatusStream",
    "SyncTimeoutError",
    "Targeting",
    "Task",
    "TaskQueue",
    "TrackFilter",
    "UniqueVisitors",
    "UserList",
    "Vote",
    "Worker",
    "WorkerStats",
    "compact_limits",
    "cpa_to_ecpm",
    "cpc_to_ecpm",
    "encoding",
    "expected_size",
    "find_server_binary",
    "is_compact",
    "listpack_bytes",
    "memory_usage",
    "parse_query",
    "prefix_range",
    "process_logs",
    "redis_from_config",
    "script",
    "server_version",
    "shard_of",
    "sharded_zrangebyscore",
    "slowest",
    "string_to_score",
    "string_to_score_generic",
    "supports_waitaof",
    "syndicate",
    "to_numeric_key",
    "to_string_key",
    "tokenize",
    "visitor_id",
    "wait_for_aof",
    "wait_for_replicas",
    "wait_for_sync",
    "zadd_string",
    "zrangebyscore_merged",
]
