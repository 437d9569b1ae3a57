"""Scaling out: client-side sharding over several servers and scatter-gather search (Redis in
Action §10), and the social network of chapter 8 over shard servers (§10.3.3).
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
from .social import (
    ShardedSocial,
)

__all__ = [
    "ScatterResult",
    "ShardedClients",
    "ShardedSearch",
    "ShardedSearchResult",
    "ShardedSocial",
    "sharded_from_config",
    "sharded_zrangebyscore",
    "syndicate",
    "to_numeric_key",
    "to_string_key",
    "zrangebyscore_merged",
]
