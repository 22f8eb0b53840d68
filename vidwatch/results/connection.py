"""Redis connections, configured once, and Redis errors translated into the project's tree.

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

import redis

from vidwatch.config import RedisConfig
from vidwatch.errors import ResultsError, ResultsUnavailable

SOCKET_TIMEOUT_S = 10.0

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


def connect(config: RedisConfig, *, socket_timeout_s: float = SOCKET_TIMEOUT_S) -> redis.Redis:
    """A client with string responses; commands time out instead of hanging."""
    return redis.Redis.from_url(
        config.url.get_secret_value(),
        decode_responses=True,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=5.0,
        health_check_interval=30,
    )


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
