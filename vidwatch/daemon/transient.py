"""Placeholder until the error tree lands: what the daemon treats as "Redis is away, try later"."""

from __future__ import annotations

import redis

TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
