"""``GET /metrics``: Prometheus text.

Counters and histograms come from the events stream, read incrementally from where
the last scrape stopped (so a scrape costs what happened since the previous one), and
from the daemon's own publishes. Gauges are computed at scrape time from Redis, the
broker (cached) and the daemon's status. Counters are cluster-wide (every daemon's and
worker's events) and start at zero when this daemon starts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import redis
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vidwatch.ops.queues import QueueDepth
from vidwatch.ops.snapshot import in_flight, live_workers, throughput
from vidwatch.results.connection import entries
from vidwatch.results.keys import Keys
from vidwatch.results.lag import group_lags
from vidwatch.results.records import State
from vidwatch.status import DaemonStatus
from vidwatch.tasks.app import QUEUES

logger = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

EVENTS_PER_SCRAPE = 20_000
_BATCH = 1000


class Metrics:
    """The registry behind /metrics, fed by :meth:`scrape` and :meth:`timed`."""

    def __init__(self, client: redis.Redis, keys: Keys, status: Callable[[], DaemonStatus],
                 queues: Callable[[], dict[str, QueueDepth] | str]) -> None:
        self.client = client
        self.keys = keys
        disable_created_metrics()  # process-wide: no *_created series beside each counter
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter("vidwatch_events", "Lifecycle events seen on the events stream", ["type"],
                              registry=self.registry)
        self.failures = Counter("vidwatch_failures", "Videos failed, by stage and reason", ["stage", "reason"],
                                registry=self.registry)
        self.frames = Counter("vidwatch_frames_analyzed", "Frames analysed by the workers", ["engine"],
                              registry=self.registry)
        self.normalize_seconds = Histogram(
            "vidwatch_normalize_seconds", "Wall time of one normalization (remux or transcode)",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600), registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "vidwatch_publish_seconds", "Time from publish to the broker's confirm",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=self.registry,
        )
        self.analysis_fps = Histogram(
            "vidwatch_analysis_frames_per_second", "Analysed frames per second of wall time, per video",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000), registry=self.registry,
        )
        self.batch_fill = Histogram(
            "vidwatch_engine_batch_fill", "Frames per engine call ÷ [engine] batch, per video (1.0: always full)",
            buckets=(0.125, 0.25, 0.5, 0.75, 0.9, 1.0), registry=self.registry,
        )
        self.registry.register(_Gauges(client, keys, status, queues))
        self._lock = threading.Lock()
        self._last_id = self._stream_end()

    def _stream_end(self) -> str:
        try:
            newest = self.client.xrevrange(self.keys.events, count=1)
        except redis.RedisError:
            return "0-0"
        return str(newest[0][0]) if newest else "0-0"

    def scrape(self) -> bytes:
        with self._lock:
            try:
                self._read_events()
            except redis.RedisError as exc:  # the gauges report Redis as down; counters catch up later
                logger.debug("metrics: cannot read events: %s", exc)
            return generate_latest(self.registry)

    def _read_events(self) -> None:
        read = 0
        while read < EVENTS_PER_SCRAPE:
            batch = entries(self.client.xrange(self.keys.events, min=f"({self._last_id}", count=_BATCH))
            for entry_id, fields in batch:
                self._count(fields)
                self._last_id = entry_id
            read += len(batch)
            if len(batch) < _BATCH:
                return

    def _count(self, fields: dict[str, str]) -> None:
        kind = fields.get("type", "")
        self.events.labels(kind).inc()
        if kind == "failed":
            self.failures.labels(*self._failure_of(fields)).inc()
            return
        if kind not in ("normalized", "done"):
            return
        try:
            detail = json.loads(fields.get("detail") or "{}")
        except ValueError:
            return
        if not isinstance(detail, dict):
            return
        if kind == "normalized" and isinstance(detail.get("seconds"), int | float):
            self.normalize_seconds.observe(detail["seconds"])
        fps, wall_s = detail.get("fps"), detail.get("wall_s")
        if kind == "done" and isinstance(fps, int | float) and isinstance(wall_s, int | float) and fps >= 0:
            self.frames.labels(str(detail.get("engine", "")) or "unknown").inc(max(0, round(fps * wall_s)))
            self.analysis_fps.observe(fps)
            if isinstance(detail.get("batch_fill"), int | float):
                self.batch_fill.observe(detail["batch_fill"])

    def _failure_of(self, event: dict[str, str]) -> tuple[str, str]:
        """(stage, reason) labels of a ``failed`` event: its own fields, else its video record's."""
        stage, reason = event.get("failure_stage"), event.get("failure_kind")
        if not (stage and reason):
            key = self.keys.video(event.get("video_id", ""))
            stored = cast(list[str | None], self.client.hmget(key, ["failure_stage", "failure_kind"]))
            stage, reason = stored[0] or stage, stored[1] or reason
        return stage or "other", reason or "other"

    def publish_confirmed(self, seconds: float) -> None:
        """:class:`vidwatch.status.PublishMetrics`: one publish confirmed after ``seconds``."""
        self.publish_seconds.observe(seconds)


class _Gauges(Collector):
    def __init__(self, client: redis.Redis, keys: Keys, status: Callable[[], DaemonStatus],
                 queues: Callable[[], dict[str, QueueDepth] | str]) -> None:
        self.client = client
        self.keys = keys
        self.status = status
        self.queues = queues

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._daemon()
        yield from self._queues()
        try:
            yield from self._redis()
        except redis.RedisError:
            up = GaugeMetricFamily("vidwatch_redis_up", "Redis answered this scrape")
            up.add_metric([], 0)
            yield up

    def _daemon(self) -> Iterator[Metric]:
        status = self.status()
        for name, text, value in (
            ("settling", "Files waiting to settle", status.settling),
            ("claiming", "Settled files being fingerprinted, probed and claimed", status.claiming),
            ("videos_in_progress", "Videos this daemon is normalizing or publishing", status.videos_in_progress),
            ("publish_retries", "Videos waiting for the broker to confirm", status.publish_retries),
        ):
            gauge = GaugeMetricFamily(f"vidwatch_daemon_{name}", text)
            gauge.add_metric([], float(value))
            yield gauge
        pollers = status.pollers
        if pollers:
            seconds = GaugeMetricFamily("vidwatch_poll_pass_seconds", "Duration of a root's last polling pass",
                                        labels=["root"])
            stats = GaugeMetricFamily("vidwatch_poll_pass_folder_stats", "Folders stat()ed in the last pass",
                                      labels=["root"])
            for root, info in pollers.items():
                seconds.add_metric([root], info.seconds)
                stats.add_metric([root], float(info.folder_stats))
            yield seconds
            yield stats
        observers = GaugeMetricFamily(
            "vidwatch_observer_alive", "A root's observer is alive (1) or not", labels=["root"]
        )
        for root, alive in status.observers.items():
            observers.add_metric([root], 1.0 if alive else 0.0)
        for root in status.root_errors:
            observers.add_metric([root], 0.0)
        yield observers
        age = GaugeMetricFamily("vidwatch_daemon_loop_age_seconds", "Seconds since the main loop last ticked")
        age.add_metric([], status.loop_age_s)
        yield age
        yield from _normalize_metrics(status.normalize)

    def _queues(self) -> Iterator[Metric]:
        depths = self.queues()
        up = GaugeMetricFamily("vidwatch_broker_up", "The broker answered (cached a few seconds)")
        up.add_metric([], 0.0 if isinstance(depths, str) else 1.0)
        yield up
        if isinstance(depths, str):
            return
        messages = GaugeMetricFamily("vidwatch_queue_messages", "Ready messages in a queue", labels=["queue"])
        consumers = GaugeMetricFamily("vidwatch_queue_consumers", "Consumers of a queue", labels=["queue"])
        for name, depth in depths.items():
            messages.add_metric([name], depth.messages)
            consumers.add_metric([name], depth.consumers)
        yield messages
        yield consumers

    def _lags(self) -> Iterator[Metric]:
        """Each consumer group's distance from its stream's end: trimming deletes what it has not read."""
        lag = GaugeMetricFamily("vidwatch_consumer_group_lag", "Entries a consumer group has not read yet",
                                labels=["stream", "group"])
        pending = GaugeMetricFamily("vidwatch_consumer_group_pending", "Entries read but not acknowledged",
                                    labels=["stream", "group"])
        streams = [self.keys.events, self.keys.summaries,
                   *sorted(str(k) for k in self.client.scan_iter(match=self.keys.detections("*"), count=1000))]
        for stream in streams:
            short = self.keys.short(stream)
            for row in group_lags(self.client, stream):
                lag.add_metric([short, str(row["group"])], float(row["lag"]))
                pending.add_metric([short, str(row["group"])], float(row["pending"]))
        yield lag
        yield pending

    def _redis(self) -> Iterator[Metric]:
        yield from self._lags()
        counts = {state.value: 0 for state in State.in_flight()}
        for row in in_flight(self.client, self.keys):
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        videos = GaugeMetricFamily("vidwatch_videos", "Videos by state (done: indexed videos)", labels=["state"])
        for state, count in counts.items():
            videos.add_metric([state], count)
        videos.add_metric(["done"], float(self.client.zcard(self.keys.index_time)))
        yield videos
        backlog = GaugeMetricFamily("vidwatch_backlog_videos", "Claimed videos waiting for normalization (all daemons)")
        backlog.add_metric([], float(self.client.zcard(self.keys.backlog)))
        yield backlog
        workers = live_workers(self.client, self.keys)
        per_queue = GaugeMetricFamily("vidwatch_workers", "Live workers consuming a queue", labels=["queue"])
        for queue in QUEUES:
            per_queue.add_metric([queue], sum(1 for w in workers if queue in w["queues"]))
        yield per_queue
        fill = GaugeMetricFamily(
            "vidwatch_worker_batch_fill",
            "A threads-pool worker's engine batches: frames per batch ÷ [engine] batch since it started",
            labels=["worker"],
        )
        mixed = CounterMetricFamily(
            "vidwatch_worker_batches_mixed", "Engine calls that carried frames of more than one segment",
            labels=["worker"],
        )
        for worker in workers:
            if "batch_fill" in worker:
                fill.add_metric([worker["name"]], worker["batch_fill"])
                mixed.add_metric([worker["name"]], worker["batch_mixed"])
        yield fill
        yield mixed
        fps = GaugeMetricFamily(
            "vidwatch_worker_frames_per_second", "Frames/s of each analysing process's newest video",
            labels=["worker", "engine"],
        )
        for process, info in throughput(self.client, self.keys).items():
            if info["fps"] is not None:
                fps.add_metric([process, str(info["engine"])], info["fps"])
        yield fps
        up = GaugeMetricFamily("vidwatch_redis_up", "Redis answered this scrape")
        up.add_metric([], 1.0)
        yield up


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(request: Request) -> Response:
    body = request.app.state.metrics.scrape()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _normalize_metrics(snapshot: Mapping[str, Any]) -> Iterator[Metric]:
    """The normalizer's own counters (kept in the daemon process)."""
    if not snapshot:
        return
    for name, label, text in (
        ("normalized_total", "method", "Sources normalized, by method (remux, transcode)"),
        ("normalize_seconds_total", "method", "Wall seconds spent normalizing, by method"),
        ("media_seconds_total", "method", "Seconds of media normalized, by method"),
        ("failed_total", "reason", "Normalizations that failed, by reason"),
        ("rejected_total", "reason", "Sources refused before normalization, by reason"),
    ):
        family = CounterMetricFamily(f"vidwatch_normalize_{name.removesuffix('_total')}", text, labels=[label])
        for key, value in sorted((snapshot.get(name) or {}).items()):
            family.add_metric([str(key)], float(value))
        yield family
    for name, text in (
        ("not_ready_total", "Settled files found not complete yet"),
        ("spool_waits_total", "Normalizations that waited for room in the spool"),
        ("spool_removed_total", "Spooled copies removed after their video ended"),
        ("progress_events_total", "Progress events published for long normalizations"),
    ):
        counter = CounterMetricFamily(f"vidwatch_normalize_{name.removesuffix('_total')}", text)
        counter.add_metric([], float(snapshot.get(name, 0)))
        yield counter
    spool = GaugeMetricFamily("vidwatch_spool_bytes", "Bytes in the spool")
    spool.add_metric([], float(snapshot.get("spool_bytes", 0)))
    yield spool
    running = GaugeMetricFamily("vidwatch_normalize_progress", "Fraction done of each running normalization",
                                labels=["video_id", "method"])
    for video_id, info in sorted((snapshot.get("in_progress") or {}).items()):
        running.add_metric([video_id, str(info.get("method", ""))], float(info.get("fraction", 0.0)))
    yield running
