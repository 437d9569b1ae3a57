"""Scaling out: client-side sharding over several servers and scatter-gather search (Redis in
Action §10).
"""

from __future__ import annotations

from .shards import (
    ScatterResult,
    ShardedClients,
    sharded_from_config,
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

__all__ = [
    "ScatterResult",
    "ShardedClients",
    "ShardedSearch",
    "ShardedSearchResult",
    "sharded_from_config",
    "sharded_zrangebyscore",
    "syndicate",
    "to_numeric_key",
    "to_string_key",
    "zrangebyscore_merged",
]
