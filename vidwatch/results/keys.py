"""Every Redis key vidwatch uses, under one prefix (``[redis] prefix``, default ``vidwatch``).

Two layouts of the same names:

- ``single`` (one Redis or Sentinel; the default, and the layout of existing data):
  ``vidwatch:video:<id>``, ``vidwatch:events``, ``vidwatch:detections:<camera>`` …
- ``cluster`` (``[redis] mode = "cluster"``): keys carry hash tags so that every script touches one
  slot. What a video's life changes together (its record, the in-flight set, the events, summaries
  and objects streams, the indexes, the join of its segments, the ledger) shares the ``{<prefix>}``
  slot: ``{vidwatch}:video:<id>``, ``{vidwatch}:events``. The detections, the bulk of the data, are
  spread by camera: the stream, its index and each segment's marker share the camera's slot,
  ``vidwatch:detections:{cam1}``, ``vidwatch:index:detections:{cam1}``,
  ``vidwatch:segment:{cam1}:<video_id>:<k>``. Scripts get every key in KEYS (none is built in Lua).

>>> Keys("vidwatch").video("v1"), Keys("vidwatch", cluster=True).video("v1")
('vidwatch:video:v1', '{vidwatch}:video:v1')
>>> Keys("vidwatch", cluster=True).detections("cam1")
'vidwatch:detections:{cam1}'
"""

from __future__ import annotations

from dataclasses import dataclass

from vidwatch.config import RedisConfig

STREAMS = ("events", "summaries")


@dataclass(frozen=True)
class Keys:
    """Key names; the layout is a public contract (see ARCHITECTURE.md).

    >>> Keys("vidwatch").detections("cam1")
    'vidwatch:detections:cam1'
    """

    prefix: str = "vidwatch"
    cluster: bool = False  # hash-tagged layout for a Redis Cluster (see the module's doc)

    @classmethod
    def for_config(cls, config: RedisConfig) -> Keys:
        """The layout ``[redis]`` asks for: hash-tagged in cluster mode, else the single-node names."""
        return cls(config.prefix, cluster=config.mode == "cluster")

    def _k(self, *parts: str) -> str:
        base = f"{{{self.prefix}}}" if self.cluster else self.prefix
        return ":".join((base, *parts))

    def _camera(self, *parts: str, camera: str) -> str:
        """A key in ``camera``'s slot (cluster layout); ``prefix:parts…:camera`` in the single layout."""
        if self.cluster:
            return ":".join((self.prefix, *parts, f"{{{camera}}}"))
        return ":".join((self.prefix, *parts, camera))

    def short(self, key: str) -> str:
        """A stream's short name (``events``, ``detections:cam1``) from its key, in either layout.

        >>> Keys("vw", cluster=True).short("{vw}:events"), Keys("vw", cluster=True).short("vw:detections:{c1}")
        ('events', 'detections:c1')
        """
        if key.startswith(f"{self.prefix}:detections:"):
            return f"detections:{self.camera_of(key)}"
        return key.removeprefix(f"{{{self.prefix}}}:" if self.cluster else f"{self.prefix}:")

    def camera_of(self, detections_key: str) -> str:
        """The camera of a detections stream's key (either layout).

        >>> Keys("vw", cluster=True).camera_of("vw:detections:{cam1}"), Keys("vw").camera_of("vw:detections:c")
        ('cam1', 'c')
        """
        camera = detections_key.removeprefix(f"{self.prefix}:detections:")
        return camera[1:-1] if self.cluster and camera.startswith("{") and camera.endswith("}") else camera

    # public contract
    @property
    def events(self) -> str:
        return self._k("events")

    @property
    def summaries(self) -> str:
        return self._k("summaries")

    def detections(self, camera: str) -> str:
        """``detections("*")`` is the SCAN pattern of every camera's stream."""
        if self.cluster and camera == "*":
            return f"{self.prefix}:detections:{{*}}"
        return self._camera("detections", camera=camera)

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
        return self._camera("index", "detections", camera=camera)

    @property
    def index_detections_span(self) -> str:
        """hash: camera -> the longest ``last_ts - first_ts`` of any member of its detections index (s)."""
        return self._k("index", "detections-span")

    @property
    def objects(self) -> str:
        """stream: one entry per object (a track of a thing, :mod:`vidwatch.results.objects`)."""
        return self._k("objects")

    @property
    def index_objects_time(self) -> str:
        """zset: objects entry ids by recording-time start (epoch s)."""
        return self._k("index", "objects", "time")

    def index_objects_camera(self, camera: str) -> str:
        return self._k("index", "objects", "camera", camera)

    def index_objects_label(self, label: str) -> str:
        return self._k("index", "objects", "label", label)

    def index_objects_pattern(self) -> str:
        """The SCAN pattern of every objects index (time, camera and label)."""
        return self._k("index", "objects", "*")

    def video_objects(self, video_id: str) -> str:
        """hash: entry id -> label of the video's objects, and ``run`` (the run they come from)."""
        return self._k("video-objects", video_id)

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

    def segment_done(self, video_id: str, segment: int, camera: str = "") -> str:
        """string: the segment's detections are written (the idempotency marker); in the camera's slot
        in the cluster layout, since it is written with the camera's detections."""
        if self.cluster:
            return ":".join((self.prefix, "segment", f"{{{camera}}}", video_id, str(segment)))
        return self._k("segment", video_id, str(segment))

    def join(self, video_id: str, run: str = "1") -> str:
        """hash: segment number -> that segment's partial summary (JSON), per run; the summary joins them."""
        return self._k("join", video_id, f"r{run}")

    def join_fired(self, video_id: str, run: str = "1") -> str:
        """string: set by the one segment finisher of a run that enqueues the summary."""
        return self._k("join", video_id, f"r{run}", "fired")

    def deliveries(self, task_id: str) -> str:
        """counter: how often a task message was delivered (poison-message detection)."""
        return self._k("deliveries", task_id)

    def delivery_count(self, video_id: str, unit: str, run: int | str) -> str:
        """:meth:`deliveries` of one unit of work (``analyze``, ``seg<k>``, ``summary``) of one run.

        The same key ``tasks.policy.count_delivery`` counts in (task id ``<video_id>.<unit>``, see
        ``tasks.app.task_id``).
        """
        return self.deliveries(f"{video_id}.{unit}.r{run}")

    def bridge(self, video_id: str, run: int | str, segments: int, camera: str = "") -> list[str]:
        """Keys that only carry a video's processing and go once it is done or failed: the run's join
        hash and its ``:fired`` flag, each segment's marker, each unit's delivery count.

        ``camera``: the video's camera (its record's), whose slot holds the markers in the cluster layout;
        there the markers (:meth:`bridge_markers`) are in another slot than the rest (:meth:`bridge_control`).
        """
        join = self.join(video_id, str(run))
        return [
            join, f"{join}:fired",
            *self.bridge_markers(video_id, segments, camera),
            *self.bridge_counts(video_id, run, segments),
        ]

    def bridge_control(self, video_id: str, run: int | str, segments: int) -> list[str]:
        """The :meth:`bridge` keys in the ``{prefix}`` slot: the join hash, its flag and the delivery counts."""
        join = self.join(video_id, str(run))
        return [join, f"{join}:fired", *self.bridge_counts(video_id, run, segments)]

    def bridge_markers(self, video_id: str, segments: int, camera: str = "") -> list[str]:
        """The :meth:`bridge` segment markers (in ``camera``'s slot in the cluster layout)."""
        return [self.segment_done(video_id, k, camera) for k in range(segments)]

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

    @property
    def retention_backfill(self) -> str:
        """hash: the one-shot backfill of ``retention_videos`` (:mod:`vidwatch.results.backfill`): ``cursor``
        (its SCAN cursor, while it runs), ``done`` (epoch s, once it finished), ``added``."""
        return self._k("retention", "backfill")

    def stream(self, name: str) -> str:
        """A stream by its short name: ``events``, ``summaries`` or ``detections:<camera>``."""
        if name.startswith("detections:"):
            return self.detections(name.removeprefix("detections:").strip("{}"))
        return self._k(name)
