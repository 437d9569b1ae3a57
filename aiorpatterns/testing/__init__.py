"""Real servers for tests (standalone and Redis Cluster) and the pytest plugin behind them."""

from __future__ import annotations

from .server import (
    ClusterServer,
    RedisServer,
    ServerNotFoundError,
    find_server_binary,
    server_version,
)

__all__ = [
    "ClusterServer",
    "RedisServer",
    "ServerNotFoundError",
    "find_server_binary",
    "server_version",
]
