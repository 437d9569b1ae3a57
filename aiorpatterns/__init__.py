"""aiorpatterns: the patterns of *Redis in Action*, async-native on redis.asyncio.

Every class takes your ``redis.asyncio`` client (``Redis``, ``RedisCluster`` or an
:class:`AutoPipeline` around either) first, and never closes it. See the README's pattern table
for the book section behind each one.
"""

from __future__ import annotations

from .cache.store import (
    Cache,
    CachedError,
    CacheStats,
)
from .coordination.locks import (
    Lock,
)
from .coordination.ratelimit import (
    Rate,
    RateDecision,
    RateLimiter,
    RateStrategy,
)
from .coordination.rwlock import (
    ReadLease,
    ReadWriteLock,
    WriteLease,
)
from .coordination.semaphores import (
    FairSemaphore,
    Semaphore,
)
from .core.autopipeline import (
    AutoPipeline,
    AutoPipelineStats,
)
from .core.errors import (
    AcquireTimeoutError,
    AiorpatternsError,
    LeaseLostError,
    LimitsMismatchError,
    NotOwnedError,
    ProgressConflictError,
    ReentryError,
    ReplicaNotAttachedError,
    ReplicationError,
    ScriptError,
    ShardsUnavailableError,
    SyncTimeoutError,
    TaskAbortedError,
    TaskFailedError,
)
from .core.keys import (
    Keyspace,
)
from .core.scripts import (
    Script,
    script,
)
from .core.serializers import JsonSerializer, MsgspecJSON, Serializer
from .memory.encodings import (
    COMPACT_ENCODINGS,
    CompactLimits,
    compact_limits,
    encoding,
    is_compact,
    listpack_bytes,
    memory_usage,
)
from .memory.locations import (
    DEFAULT_COUNTRIES,
    DEFAULT_STATES,
    Location,
    LocationCounts,
    Locations,
)
from .memory.sharding import (
    ShardedHash,
    ShardedList,
    ShardedSet,
    shard_of,
)
from .memory.visitors import (
    HLL_STANDARD_ERROR,
    UniqueVisitors,
    expected_size,
    visitor_id,
)
from .messaging.chat import (
    ChatBatch,
    Chats,
)
from .messaging.envelope import (
    Message,
)
from .messaging.fanout import (
    Fanout,
    FanoutConsumer,
    FanoutEntry,
    FanoutGroup,
)
from .messaging.files import (
    DailyCountryAggregate,
    FileDistribution,
    SentFile,
    readblocks,
    readblocks_gz,
    readlines,
)
from .messaging.inbox import (
    Inbox,
    InboxCounts,
    InboxMessage,
)
from .ops.config import (
    Config,
    redis_from_config,
    redis_from_settings,
)
from .ops.connections import (
    RedisConnections,
)
from .ops.counters import (
    PRECISIONS,
    AccessTimer,
    Counters,
    Sample,
    Statistics,
    Stats,
    slowest,
)
from .ops.geoip import (
    City,
    CityTable,
    IpLocations,
    IpRange,
)
from .ops.logfiles import (
    LogProcessor,
    LogProgress,
    process_logs,
)
from .ops.logs import (
    SEVERITIES,
    CommonLog,
    CommonMessages,
    LogEntry,
    RecentLog,
)
from .ops.replication import (
    AofAcks,
    supports_waitaof,
    wait_for_aof,
    wait_for_replicas,
    wait_for_sync,
)
from .queues.context import TaskContext
from .queues.periodic import (
    Cron,
    Periodic,
    Scheduler,
)
from .queues.taskqueue import (
    DeadLetter,
    QueueCounts,
    Task,
    TaskQueue,
    TaskStatus,
)
from .queues.worker import (
    Worker,
    WorkerStats,
)
from .scaling.shards import (
    ScatterResult,
    ShardedClients,
    sharded_from_config,
    sharded_zrangebyscore,
    syndicate,
    zrangebyscore_merged,
)
from .scaling.shardsearch import (
    ShardedSearch,
    ShardedSearchResult,
    to_numeric_key,
    to_string_key,
)
from .scaling.social import (
    ShardedSocial,
)
from .search.ads import (
    AdIndex,
    Targeting,
    cpa_to_ecpm,
    cpc_to_ecpm,
)
from .search.autocomplete import (
    Autocomplete,
    RecentContacts,
    prefix_range,
)
from .search.index import (
    ParsedQuery,
    SearchIndex,
    SearchResult,
    parse_query,
    string_to_score,
    string_to_score_generic,
    tokenize,
    zadd_string,
)
from .search.jobs import (
    JobIndex,
    JobLevelIndex,
    JobYearsIndex,
)
from .social.network import (
    Social,
    SocialUser,
    UserList,
)
from .social.streaming import (
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
from .social.streaming_api import (
    StreamingAPI,
    create_filters,
    parse_identifier,
)
from .social.timelines import (
    StatusMessage,
)
from .testing.server import (
    ClusterServer,
    RedisServer,
    ServerNotFoundError,
    find_server_binary,
    server_version,
)
from .webapp.articles import (
    Article,
    Articles,
    Vote,
)
from .webapp.caching import (
    PageCache,
    RowCache,
    RowCacheWorker,
    book_can_cache,
)
from .webapp.expiring import (
    ExpiringSessions,
)
from .webapp.market import (
    Listing,
    Market,
    Purchase,
)
from .webapp.sessions import (
    Sessions,
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
    "Cache",
    "CacheStats",
    "CachedError",
    "ChatBatch",
    "Chats",
    "City",
    "CityTable",
    "ClusterServer",
    "CommonLog",
    "CommonMessages",
    "CompactLimits",
    "Config",
    "Counters",
    "Cron",
    "DailyCountryAggregate",
    "DeadLetter",
    "ExpiringSessions",
    "FairSemaphore",
    "Fanout",
    "FanoutConsumer",
    "FanoutEntry",
    "FanoutGroup",
    "FileDistribution",
    "FollowFilter",
    "Inbox",
    "InboxCounts",
    "InboxMessage",
    "IpLocations",
    "IpRange",
    "JobIndex",
    "JobLevelIndex",
    "JobYearsIndex",
    "JsonSerializer",
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
    "MsgspecJSON",
    "NotFilter",
    "NotOwnedError",
    "PageCache",
    "ParsedQuery",
    "Periodic",
    "ProgressConflictError",
    "Purchase",
    "QueueCounts",
    "Rate",
    "RateDecision",
    "RateLimiter",
    "RateStrategy",
    "ReadLease",
    "ReadWriteLock",
    "RecentContacts",
    "RecentLog",
    "RedisConnections",
    "RedisServer",
    "ReentryError",
    "ReplicaNotAttachedError",
    "ReplicationError",
    "RowCache",
    "RowCacheWorker",
    "Sample",
    "SampleFilter",
    "ScatterResult",
    "Scheduler",
    "Script",
    "ScriptError",
    "SearchIndex",
    "SearchResult",
    "Semaphore",
    "SentFile",
    "Serializer",
    "ServerNotFoundError",
    "Sessions",
    "ShardedClients",
    "ShardedHash",
    "ShardedList",
    "ShardedSearch",
    "ShardedSearchResult",
    "ShardedSet",
    "ShardedSocial",
    "ShardsUnavailableError",
    "Social",
    "SocialUser",
    "Statistics",
    "Stats",
    "StatusEvent",
    "StatusFilter",
    "StatusMessage",
    "StatusStream",
    "StreamingAPI",
    "SyncTimeoutError",
    "Targeting",
    "Task",
    "TaskAbortedError",
    "TaskContext",
    "TaskFailedError",
    "TaskQueue",
    "TaskStatus",
    "TrackFilter",
    "UniqueVisitors",
    "UserList",
    "Vote",
    "Worker",
    "WorkerStats",
    "WriteLease",
    "book_can_cache",
    "compact_limits",
    "cpa_to_ecpm",
    "cpc_to_ecpm",
    "create_filters",
    "encoding",
    "expected_size",
    "find_server_binary",
    "is_compact",
    "listpack_bytes",
    "memory_usage",
    "parse_identifier",
    "parse_query",
    "prefix_range",
    "process_logs",
    "readblocks",
    "readblocks_gz",
    "readlines",
    "redis_from_config",
    "redis_from_settings",
    "script",
    "server_version",
    "shard_of",
    "sharded_from_config",
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
