"""Redis connections, configured once."""

from __future__ import annotations

import redis

from vidwatch.config import RedisConfig

SOCKET_TIMEOUT_S = 10.0


def connect(config: RedisConfig, *, socket_timeout_s: float = SOCKET_TIMEOUT_S) -> redis.Redis:
    """A client with string responses; commands time out instead of hanging."""
    return redis.Redis.from_url(
        config.url.get_secret_value(),
        decode_responses=True,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=5.0,
        health_check_interval=30,
    )
