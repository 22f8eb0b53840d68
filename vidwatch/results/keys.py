"""Every Redis key vidwatch uses, under one prefix (``[redis] prefix``, default ``vidwatch``)."""

from __future__ import annotations

from dataclasses import dataclass

STREAMS = ("events", "summaries")


@dataclass(frozen=True)
class Keys:
    """Key names; the layout is a public contract (see ARCHITECTURE.md).

    >>> Keys("vidwatch").detections("cam1")
    'vidwatch:detections:cam1'
    """

    prefix: str = "vidwatch"

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # public contract
    @property
    def events(self) -> str:
        return self._k("events")

    @property
    def summaries(self) -> str:
        return self._k("summaries")

    def detections(self, camera: str) -> str:
        return self._k("detections", camera)

    def video(self, video_id: str) -> str:
        return self._k("video", video_id)

    @property
    def index_time(self) -> str:
        return self._k("index", "time")

    def index_camera(self, camera: str) -> str:
        return self._k("index", "camera", camera)

    def index_label(self, label: str) -> str:
        return self._k("index", "label", label)

    def index_detections(self, camera: str) -> str:
        """zset: one member per written segment with detections, ``first_id|last_id|video_id|segment|run|last_ts``,
        scored by the recording time (epoch s) of its first detection: maps a time range to stream ids."""
        return self._k("index", "detections", camera)

    @property
    def index_detections_span(self) -> str:
        """hash: camera -> the longest ``last_ts - first_ts`` of any member of its detections index (s)."""
        return self._k("index", "detections-span")

    # internal
    @property
    def paths(self) -> str:
        """hash: source path -> "size:mtime_ns:video_id" (a hint that spares re-reading known files)."""
        return self._k("ledger", "paths")

    @property
    def inflight(self) -> str:
        """set: video ids not yet done or failed."""
        return self._k("ledger", "inflight")

    @property
    def backlog(self) -> str:
        """zset: video ids claimed and waiting for normalization, by claim time (shared by all daemons)."""
        return self._k("ledger", "backlog")

    def daemon(self, daemon_id: str) -> str:
        """string with a TTL: a daemon instance is alive."""
        return self._k("daemon", daemon_id)

    def worker(self, name: str) -> str:
        """hash with a TTL: a worker is alive, its queues and engine."""
        return self._k("worker", name)

    def worker_pattern(self) -> str:
        return self._k("worker", "*")

    def segment_done(self, video_id: str, segment: int) -> str:
        """string: the segment's detections are written (the idempotency marker)."""
        return self._k("segment", video_id, str(segment))

    def join(self, video_id: str, run: str = "1") -> str:
        """hash: segment number -> that segment's partial summary (JSON), per run; the summary joins them.

        ``join(video_id, "")`` is the prefix the segment script appends the run to; the script also
        sets ``<join>:fired`` for the one segment finisher of a run that enqueues the summary.
        """
        return self._k("join", video_id, f"r{run}")

    def deliveries(self, task_id: str) -> str:
        """counter: how often a task message was delivered (poison-message detection)."""
        return self._k("deliveries", task_id)

    def delivery_count(self, video_id: str, unit: str, run: int | str) -> str:
        """:meth:`deliveries` of one unit of work (``analyze``, ``seg<k>``, ``summary``) of one run.

        The same key ``tasks.policy.count_delivery`` counts in (task id ``<video_id>.<unit>``, see
        ``tasks.app.task_id``).
        """
        return self.deliveries(f"{video_id}.{unit}.r{run}")

    def bridge(self, video_id: str, run: int | str, segments: int) -> list[str]:
        """Keys that only carry a video's processing and go once it is done or failed: the run's join
        hash and its ``:fired`` flag, each segment's marker, each unit's delivery count."""
        join = self.join(video_id, str(run))
        return [
            join, f"{join}:fired",
            *(self.segment_done(video_id, k) for k in range(segments)),
            *self.bridge_counts(video_id, run, segments),
        ]

    def bridge_counts(self, video_id: str, run: int | str, segments: int) -> list[str]:
        """The delivery counts among :meth:`bridge` (its last keys)."""
        units = ["analyze", "summary", *(f"seg{k}" for k in range(segments))]
        return [self.delivery_count(video_id, unit, run) for unit in units]

    @property
    def retention_videos(self) -> str:
        """zset: every video that ended (done or failed), by recording start (epoch s): what retention
        ranges over to remove records, summaries, index members and files."""
        return self._k("retention", "videos")

    @property
    def retention_files(self) -> str:
        """zset: ended videos whose files (thumbnails, crops, timeline, clip, sidecar) are still on disk,
        by recording start (epoch s)."""
        return self._k("retention", "files")

    def stream(self, name: str) -> str:
        """A stream by its short name: ``events``, ``summaries`` or ``detections:<camera>``."""
        return self._k(name)
