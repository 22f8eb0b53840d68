"""The broker at vidwatch's boundary: "does it answer", one connection check, and its errors translated.

kombu, amqp and socket errors, and a publish the broker refused (nack), become
:class:`~vidwatch.errors.PublishError` (retryable), chained with ``from exc``::

    with broker_errors(f"publish: video {video_id}"):
        app.send_task(...)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from amqp.exceptions import AMQPError, MessageNacked
from kombu import Connection
from kombu.exceptions import KombuError

from vidwatch.errors import PublishError

CONNECT_TIMEOUT_S = 3.0

# What a broker that is down, restarting, refusing us or too slow raises through kombu/py-amqp.
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, AMQPError, OSError, TimeoutError)


@contextmanager
def broker_errors(what: str = "broker") -> Iterator[None]:
    """Turn broker errors raised inside the block into :class:`PublishError` (retryable).

    >>> with broker_errors("publish: video abc"):
    ...     raise ConnectionRefusedError(111, "Connection refused")
    Traceback (most recent call last):
    ...
    vidwatch.errors.PublishError: publish: video abc: broker did not answer: [Errno 111] Connection refused
    """
    try:
        yield
    except MessageNacked as exc:  # not among py-amqp's AMQPError: the broker answered "no"
        raise PublishError(f"{what}: the broker refused the message (nack)") from exc
    except BROKER_ERRORS as exc:
        raise PublishError(f"{what}: broker did not answer: {exc}") from exc


@contextmanager
def connected(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Connection]:
    """A kombu connection to ``url`` that is open (one attempt, bounded by ``timeout_s``); closed after."""
    with Connection(url, connect_timeout=timeout_s) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout_s)
        yield conn


def broker_check(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> tuple[bool, str]:
    """(answers, why): ``(True, "connected")`` or ``(False, "unreachable: <error>")``."""
    try:
        with connected(url, timeout_s):
            return True, "connected"
    except Exception as exc:  # noqa: BLE001 - any failure means "does not answer"
        return False, f"unreachable: {type(exc).__name__}: {exc}"


def broker_answers(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    """True when a connection to ``url`` opens within ``timeout_s``."""
    return broker_check(url, timeout_s)[0]
