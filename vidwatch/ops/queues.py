"""RabbitMQ queue depths (ready messages and consumers), asked with a passive declare."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from amqp.exceptions import NotFound

from vidwatch.broker import connected
from vidwatch.tasks.app import QUEUES

CACHE_S = 5.0
CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class QueueDepth:
    name: str
    messages: int
    consumers: int
    exists: bool = True


def queue_depths(broker_url: str, names: tuple[str, ...] = QUEUES) -> dict[str, QueueDepth]:
    """Depth of each queue; a queue nobody declared yet counts as empty. Raises on broker errors."""
    out: dict[str, QueueDepth] = {}
    with connected(broker_url, CONNECT_TIMEOUT_S) as conn:
        for name in names:
            channel = conn.channel()
            try:
                _, messages, consumers = channel.queue_declare(queue=name, passive=True)
                out[name] = QueueDepth(name, int(messages), int(consumers))
            except NotFound:
                out[name] = QueueDepth(name, 0, 0, exists=False)
            finally:
                if channel.is_open:  # NotFound has the broker close the channel itself
                    channel.close()
    return out


class QueueProbe:
    """:func:`queue_depths`, cached for a few seconds (pages and scrapes may ask often)."""

    def __init__(self, broker_url: str, cache_s: float = CACHE_S) -> None:
        self.broker_url = broker_url
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, QueueDepth] | str] | None = None

    def __call__(self) -> dict[str, QueueDepth] | str:
        """The depths, or why the broker could not be asked."""
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.cache_s:
                return self._cached[1]
            try:
                result: dict[str, QueueDepth] | str = queue_depths(self.broker_url)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                result = f"broker unreachable: {type(exc).__name__}: {exc}"
            self._cached = (time.monotonic(), result)
            return result
