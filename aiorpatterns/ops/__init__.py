"""Operations: logs, counters and statistics, configuration, IP-to-city lookup, resumable log
processing and replication waits (Redis in Action §4.1-§4.3, §5).
"""

from __future__ import annotations

from .config import (
    Config,
    redis_from_config,
    redis_from_settings,
)
from .connections import (
    RedisConnections,
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
from .geoip import (
    City,
    CityTable,
    IpLocations,
    IpRange,
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
from .replication import (
    AofAcks,
    supports_waitaof,
    wait_for_aof,
    wait_for_replicas,
    wait_for_sync,
)

__all__ = [
    "PRECISIONS",
    "SEVERITIES",
    "AccessTimer",
    "AofAcks",
    "City",
    "CityTable",
    "CommonLog",
    "CommonMessages",
    "Config",
    "Counters",
    "IpLocations",
    "IpRange",
    "LogEntry",
    "LogProcessor",
    "LogProgress",
    "RecentLog",
    "RedisConnections",
    "Sample",
    "Statistics",
    "Stats",
    "process_logs",
    "redis_from_config",
    "redis_from_settings",
    "slowest",
    "supports_waitaof",
    "wait_for_aof",
    "wait_for_replicas",
    "wait_for_sync",
]
