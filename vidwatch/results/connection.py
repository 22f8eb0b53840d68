"""Redis connections, configured once, and Redis errors translated into the project's tree.

:func:`connect` picks the client from ``[redis] mode``:

- ``standalone``: ``redis.Redis`` at ``url``;
- ``cluster``: ``redis.cluster.RedisCluster`` seeded from ``url`` (it discovers the other nodes and
  follows MOVED/ASK redirections and fail-overs);
- ``sentinel``: ``Sentinel(sentinels).master_for(service)``: every new connection asks the sentinels
  where the primary is, and a connection to a demoted primary (``READONLY``) is dropped and retried
  against the new one.

Callers use the one command API whatever the mode (a ``RedisCluster`` offers the same commands,
routed by key slot).

Code that calls Redis wraps the calls in :func:`redis_errors`; what escapes is a
:class:`~vidwatch.errors.ResultsUnavailable` (transient: retry later) or a
:class:`~vidwatch.errors.ResultsError` (permanent), chained to redis's exception::

    with redis_errors(f"ledger: claim {video_id}"):
        client.set(key, owner, nx=True)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import unquote, urlparse

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.connection import SSLConnection
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from vidwatch.config import RedisConfig
from vidwatch.errors import ConfigError, ResultsError, ResultsUnavailable

SOCKET_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
SENTINEL_TIMEOUT_S = 2.0
# Cluster and Sentinel: a command that meets a connection error (the primary died) is retried with
# backoff for about 15 s (0.2, 0.4 … 2 s, 12 tries), longer than a fail-over with the sentinels'
# or the cluster's node timeout at a few seconds; beyond that the caller sees a ConnectionError,
# which is transient for vidwatch (retried by the task or the daemon's loop, never a failed video).
FAILOVER_RETRIES = 12
FAILOVER_BACKOFF = (0.1, 2.0)  # base, cap (s)
# Redis errors another attempt may not hit: the server is unreachable, loading its data set,
# a replica that refuses writes during a fail-over, or slow to answer.
TRANSIENT_REDIS_ERRORS: tuple[type[redis.RedisError], ...] = (
    redis.ConnectionError,  # includes BusyLoadingError
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.BusyLoadingError,
)

Entry = tuple[str, dict[str, str]]  # one stream entry: (id, fields)

P = ParamSpec("P")
R = TypeVar("R")


def failover_retry() -> Retry:
    """The retry policy of cluster and sentinel clients (connection and timeout errors, with backoff).

    >>> failover_retry().get_retries()
    12
    """
    base, cap = FAILOVER_BACKOFF
    return Retry(ExponentialBackoff(base=base, cap=cap), FAILOVER_RETRIES)


class PrimaryConnection(SentinelManagedConnection):
    """A connection to the service's primary that asks the sentinels where it is on every (re)connect.

    redis-py 8 reconnects a dropped connection on its send path through ``connect_check_health``,
    which ``SentinelManagedConnection`` does not override: after a fail-over it would retry the
    dead primary's address until its retries ran out, while the sentinels already name the new one.
    """

    def _connect(self) -> Any:
        if self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        return super()._connect()


class PrimarySSLConnection(PrimaryConnection, SSLConnection):
    """:class:`PrimaryConnection` over TLS (``rediss://``)."""


class SentinelPrimaryClient(redis.Redis):
    """The primary's client in sentinel mode; closing it also closes its connections to the sentinels."""

    def close(self) -> None:
        super().close()
        manager = getattr(getattr(self, "connection_pool", None), "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            sentinel.close()


def connect(config: RedisConfig, *, socket_timeout_s: float = SOCKET_TIMEOUT_S) -> redis.Redis:
    """A client with string responses; commands time out instead of hanging."""
    url = config.url.get_secret_value()
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "health_check_interval": 30,
    }
    if config.mode == "cluster":
        cluster = RedisCluster.from_url(url, retry=failover_retry(), **options)
        return cast(redis.Redis, cluster)  # the same command API, routed by slot
    if config.mode == "sentinel":
        return _sentinel_primary(config, url, options)
    return redis.Redis.from_url(url, **options)


def scan_step(client: redis.Redis, cursor: int, *, slot_of: str, match: str, count: int) -> tuple[int, list[str]]:
    """One ``SCAN`` step (next cursor, names) over the node that holds ``slot_of``'s slot: the one Redis, or
    in a cluster the primary of that slot (whose cursor means nothing to the others). For keys that share
    a hash tag (the ``{prefix}`` slot); ``scan_iter`` walks every primary for the others."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(slot_of)
        cursors, found = client.scan(cursor, match=match, count=count, target_nodes=node)
        return int(next(iter(cursors.values()), 0)), [str(name) for name in found]
    next_cursor, found = client.scan(cursor, match=match, count=count)
    return int(next_cursor), [str(name) for name in found]


def sentinel_addresses(config: RedisConfig) -> list[tuple[str, int]]:
    """``[redis] sentinels`` as (host, port) pairs.

    >>> sentinel_addresses(RedisConfig(mode="sentinel", sentinels=["10.0.0.5:26379", "[::1]:26380"], service="m"))
    [('10.0.0.5', 26379), ('::1', 26380)]
    """
    pairs = []
    for address in config.sentinels:
        host, _, port = address.rpartition(":")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def _sentinel_primary(config: RedisConfig, url: str, options: dict[str, Any]) -> redis.Redis:
    """The primary for ``service``; credentials, database and TLS come from ``url``."""
    parsed = urlparse(url)
    sentinel = Sentinel(
        sentinel_addresses(config),
        socket_timeout=SENTINEL_TIMEOUT_S,
        socket_connect_timeout=SENTINEL_TIMEOUT_S,
    )
    primary_options = dict(options)
    primary_options["db"] = int(parsed.path.lstrip("/") or 0) if parsed.scheme != "unix" else 0
    if parsed.password:
        primary_options["password"] = unquote(parsed.password)
    if parsed.username:
        primary_options["username"] = unquote(parsed.username)
    primary_options["connection_class"] = PrimarySSLConnection if parsed.scheme == "rediss" else PrimaryConnection
    if not config.service:
        raise ConfigError("redis.service: sentinel mode needs the primary's name")
    return sentinel.master_for(config.service, redis_class=SentinelPrimaryClient, retry=failover_retry(),
                               **primary_options)


def translate_redis_error(exc: redis.RedisError, what: str = "redis") -> ResultsError:
    """The project's error for a Redis error (not raised; the caller raises it ``from exc``).

    >>> type(translate_redis_error(redis.ConnectionError("refused"))).__name__
    'ResultsUnavailable'
    >>> str(translate_redis_error(redis.ResponseError("WRONGTYPE"), "records: get abc"))
    'records: get abc: WRONGTYPE'
    """
    if isinstance(exc, TRANSIENT_REDIS_ERRORS):
        return ResultsUnavailable(f"{what}: Redis unavailable: {exc}")
    return ResultsError(f"{what}: {exc}")


@contextmanager
def redis_errors(what: str = "redis") -> Iterator[None]:
    """Turn Redis errors raised inside the block into :class:`ResultsUnavailable` / :class:`ResultsError`.

    >>> with redis_errors("demo"):
    ...     raise redis.TimeoutError("Timeout reading from socket")
    Traceback (most recent call last):
    ...
    vidwatch.errors.ResultsUnavailable: demo: Redis unavailable: Timeout reading from socket
    """
    try:
        yield
    except redis.RedisError as exc:
        raise translate_redis_error(exc, what) from exc


def translates_redis_errors(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator form of :func:`redis_errors`."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with redis_errors(what):
                return func(*args, **kwargs)

        return wrapper

    return decorate


# Replies of a ``decode_responses=True`` client (what :func:`connect` makes), typed once here:
# redis-py types every reply as bytes-or-str (and optional) whatever the client's settings.


def entries(reply: Any) -> list[Entry]:
    """An XRANGE / XREVRANGE reply."""
    return cast(list[Entry], reply or [])


def stream_reads(reply: Any) -> list[tuple[str, list[Entry]]]:
    """An XREAD / XREADGROUP reply: (stream, entries) pairs."""
    return cast(list[tuple[str, list[Entry]]], reply or [])


def scored(reply: Any) -> list[tuple[str, float]]:
    """A ZRANGE… WITHSCORES reply: (member, score) pairs."""
    return cast(list[tuple[str, float]], reply or [])


def fields(reply: Any) -> dict[str, str]:
    """An HGETALL reply (``{}`` when the key does not exist)."""
    return cast(dict[str, str], reply or {})
