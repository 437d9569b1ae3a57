"""Memory: compact encodings, sharded structures, unique visitors and packed locations (Redis in
Action §9, §11.4).
"""

from __future__ import annotations

from .encodings import (
    COMPACT_ENCODINGS,
    CompactLimits,
    compact_limits,
    encoding,
    is_compact,
    listpack_bytes,
    memory_usage,
)
from .locations import (
    DEFAULT_COUNTRIES,
    DEFAULT_STATES,
    Location,
    LocationCounts,
    Locations,
)
from .sharding import (
    ShardedHash,
    ShardedList,
    ShardedSet,
    shard_of,
)
from .visitors import (
    HLL_STANDARD_ERROR,
    UniqueVisitors,
    expected_size,
    visitor_id,
)

__all__ = [
    "COMPACT_ENCODINGS",
    "DEFAULT_COUNTRIES",
    "DEFAULT_STATES",
    "HLL_STANDARD_ERROR",
    "CompactLimits",
    "Location",
    "LocationCounts",
    "Locations",
    "ShardedHash",
    "ShardedList",
    "ShardedSet",
    "UniqueVisitors",
    "compact_limits",
    "encoding",
    "expected_size",
    "is_compact",
    "listpack_bytes",
    "memory_usage",
    "shard_of",
    "visitor_id",
]
