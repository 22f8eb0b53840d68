"""Consume a results stream as one member of a consumer group, at least once, surviving crashes.

Example (not run: blocks until Ctrl-C)::

    consumer = StreamConsumer(client, "vidwatch:summaries", group="archiver", consumer="host-1")
    consumer.run(lambda entry_id, fields: archive(fields))

What it guarantees (see ``docs/consumers.md``):

- the group is created on first use (idempotently; ``start="$"`` reads new entries only,
  ``start="0"`` the whole stream);
- an entry is acknowledged only after the handler returned; a handler that raises leaves it
  pending, and so does a consumer that dies (killed, crashed, host lost);
- pending entries idle for ``claim_idle_ms`` are taken over with ``XAUTOCLAIM`` by whichever
  member polls next (another consumer, or this one for its own failed entries), so no entry
  is lost; after ``max_deliveries`` attempts an entry is handed to ``on_dead`` and acknowledged;
- a consumer restarted under the same name first finishes its own pending entries.

Handlers must be idempotent: "at least once" means an entry handled just before a crash,
but not yet acknowledged, is handled again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from vidwatch.results.connection import stream_reads

logger = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, str]], object]

DEFAULT_CLAIM_IDLE_MS = 60_000
MAX_CLAIM_INTERVAL_S = 10.0


def ensure_group(client: redis.Redis, stream: str, group: str, *, start: str = "$") -> bool:
    """Create ``group`` on ``stream`` (and the stream) unless it exists; True when created."""
    try:
        client.xgroup_create(stream, group, id=start, mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise
    return True


@dataclass
class PollResult:
    handled: int = 0  # handler returned: acknowledged
    failed: int = 0  # handler raised: left pending for a later attempt
    claimed: int = 0  # taken over from an idle consumer (or from our own earlier failure)
    dead: int = 0  # past max_deliveries: handed to on_dead and acknowledged


class StreamConsumer:
    """One named member of a consumer group on one stream."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        *,
        group: str,
        consumer: str,
        start: str = "$",
        count: int = 10,
        block_ms: int = 1000,
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        max_deliveries: int | None = None,
        on_dead: Handler | None = None,
    ) -> None:
        if count < 1 or block_ms < 0 or claim_idle_ms < 1:
            raise ValueError(f"expected count >= 1, block_ms >= 0, claim_idle_ms >= 1, got {count}, "
                             f"{block_ms}, {claim_idle_ms}")
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.start = start
        self.count = count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.on_dead = on_dead
        self._claim_cursor = "0-0"
        self._claim_every_s = min(claim_idle_ms / 2000, MAX_CLAIM_INTERVAL_S)
        self._next_claim = 0.0
        self._own_pending_done = False
        self._own_cursor = "0-0"
        self._group_ready = False

    def ensure_group(self) -> None:
        ensure_group(self.client, self.stream, self.group, start=self.start)
        self._group_ready = True

    def poll(self, handler: Handler, *, block: bool = True) -> PollResult:
        """One round: own pending entries (first round only), idle ones of others, then new ones (blocking)."""
        if not self._group_ready:
            self.ensure_group()
        result = PollResult()
        if not self._own_pending_done:
            entries = self._read(self._own_cursor, block=False)
            self._own_pending_done = len(entries) < self.count
            if entries:
                self._own_cursor = entries[-1][0]
            self._handle(entries, handler, result)
            if entries:
                return result
        if time.monotonic() >= self._next_claim:
            claimed = self._claim()
            result.claimed = len(claimed)
            self._handle(self._retire_dead(claimed, result), handler, result)
            if claimed:
                return result
            self._next_claim = time.monotonic() + self._claim_every_s
        self._handle(self._read(">", block=block), handler, result)
        return result

    def run(
        self,
        handler: Handler,
        *,
        stop: Callable[[], bool] = lambda: False,
        idle_timeout_s: float | None = None,
    ) -> None:
        """Poll until ``stop()`` is true, or until ``idle_timeout_s`` passed without an entry."""
        idle_since = time.monotonic()
        while not stop():
            outcome = self.poll(handler)
            if outcome.handled or outcome.failed or outcome.claimed:
                idle_since = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return

    def pending(self) -> int:
        """Entries delivered to the group's members and not yet acknowledged."""
        return int(self.client.xpending(self.stream, self.group)["pending"])

    # ------------------------------------------------------------------ internals
    def _read(self, from_id: str, *, block: bool) -> list[tuple[str, dict[str, str]]]:
        try:
            response = self.client.xreadgroup(
                self.group, self.consumer, {self.stream: from_id}, count=self.count,
                block=self.block_ms if block and from_id == ">" else None,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            logger.warning("consumer %s/%s: group missing on %s; creating it", self.group, self.consumer, self.stream)
            self.ensure_group()
            return []
        return [entry for _, batch in stream_reads(response) for entry in batch]

    def _claim(self) -> list[tuple[str, dict[str, str]]]:
        reply = self.client.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=self._claim_cursor, count=self.count
        )
        self._claim_cursor = str(reply[0])
        claimed = list(reply[1])
        if claimed:
            logger.info("consumer %s/%s: took over %d idle entries of %s", self.group, self.consumer,
                        len(claimed), self.stream)
        return claimed

    def _retire_dead(
        self, claimed: list[tuple[str, dict[str, str]]], result: PollResult
    ) -> list[tuple[str, dict[str, str]]]:
        """Entries past ``max_deliveries`` go to ``on_dead`` and are acknowledged; the rest are returned."""
        if self.max_deliveries is None or not claimed:
            return claimed
        pipe = self.client.pipeline(transaction=False)
        for entry_id, _ in claimed:
            pipe.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
        keep = []
        for (entry_id, fields), info in zip(claimed, pipe.execute(), strict=True):
            deliveries = int(info[0]["times_delivered"]) if info else 0
            if deliveries <= self.max_deliveries:
                keep.append((entry_id, fields))
                continue
            logger.error("consumer %s/%s: %s %s failed %d times; giving up on it", self.group, self.consumer,
                         self.stream, entry_id, deliveries - 1)
            if self.on_dead is not None:
                self.on_dead(entry_id, fields or {})
            self.client.xack(self.stream, self.group, entry_id)
            result.dead += 1
        return keep

    def _handle(self, entries: list[tuple[str, dict[str, str]]], handler: Handler, result: PollResult) -> None:
        for entry_id, fields in entries:
            if not fields:  # trimmed away while pending: nothing left to handle
                self.client.xack(self.stream, self.group, entry_id)
                continue
            try:
                handler(entry_id, fields)
            except Exception as exc:  # noqa: BLE001 - the entry stays pending and is retried after claim_idle_ms
                logger.warning("consumer %s/%s: handler failed on %s %s (left pending, retried later): %r",
                               self.group, self.consumer, self.stream, entry_id, exc)
                result.failed += 1
                continue
            self.client.xack(self.stream, self.group, entry_id)
            result.handled += 1
