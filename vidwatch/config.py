"""The one configuration model: a TOML file plus ``VIDWATCH_<SECTION>__<KEY>`` overrides.

>>> cfg = load_config(None, environ={"VIDWATCH_ANALYSIS__FPS": "2"})
>>> cfg.analysis.fps
2.0

Where the file comes from: ``-c FILE``, else ``$VIDWATCH_CONFIG``, else
``/etc/vidwatch/vidwatch.toml`` when it exists, else built-in defaults that work in the
current folder (watch ``./inbox``, state under ``./var``). Relative paths are resolved
against the current folder when the configuration is loaded. The result is frozen:
load it once at the edge (the CLI) and pass it down.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    SerializeAsAny,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from vidwatch.errors import ConfigError
from vidwatch.registry import ANALYZER_SETTINGS, STAGE_SETTINGS, PluginSettings
from vidwatch.timecode import compile_pattern, time_zone

SYSTEM_CONFIG = Path("/etc/vidwatch/vidwatch.toml")
ENV_PREFIX = "VIDWATCH_"

_DEFAULT_PATTERNS = ["*.mp4", "*.m4v", "*.mkv", "*.mov", "*.avi", "*.ts", "*.mts", "*.webm"]
_DEFAULT_IGNORE = [".*", "*.part", "*.partial", "*.tmp", "*.temp", "*~", "*.crdownload", "*.swp"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _split_plain_lists(cls, value: Any, info: Any) -> Any:
        """A plain string given for a list field (an environment override) is comma-separated."""
        field = cls.model_fields[info.field_name]
        origin = getattr(field.annotation, "__origin__", None)
        if origin is list and isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class WatchConfig(_Section):
    roots: list[Path] = Field(
        default_factory=lambda: [Path("inbox")],
        min_length=1,
        description="Folders to watch, recursively (local disks, NFS/SMB mounts).",
    )
    patterns: list[str] = Field(
        default_factory=lambda: list(_DEFAULT_PATTERNS),
        min_length=1,
        description="Shell patterns (case-insensitive) a file name must match to be a candidate.",
    )
    ignore: list[str] = Field(
        default_factory=lambda: list(_DEFAULT_IGNORE),
        description="Shell patterns of names (files or folders) never processed: hidden, temporary.",
    )
    mode: Literal["auto", "inotify", "poll"] = Field(
        "auto", description="auto polls on network filesystems (NFS, SMB, FUSE), inotify elsewhere."
    )
    settle_seconds: float = Field(
        2.0, gt=0, le=3600, description="Quiet period (no size or mtime change) before a file counts as complete."
    )
    rescan_seconds: float = Field(
        300.0, ge=1, description="Period of the reconciliation walk that catches anything the observers missed."
    )
    poll_interval_seconds: float = Field(2.0, gt=0, le=600, description="Period of the polling observer.")
    require_mount: StrictBool | Literal["auto"] = Field(
        "auto",
        description="A root must be a mount point (its own filesystem): when it is not (the share was unmounted, "
        "its device is its parent's), the root is an outage: not ready, nothing treated as deleted, rescanned when "
        "it is back. true | false | \"auto\" (required for each root that was a mount point when first seen).",
    )
    camera_pattern: str | None = Field(
        None,
        description="Regular expression with a group named 'camera', matched against the path relative to "
        "its root; default: the first folder ('default' for files directly in a root).",
    )

    time_pattern: str | None = Field(
        None,
        description="Recording time from the path relative to its root when the container has no creation_time: "
        "strftime directives (%Y %y %m %d %H %M %S %f, * for any characters within a folder or name), e.g. "
        "'%Y-%m-%d/%H-%M-%S' for cam1/2026-11-24/12-00-00.mp4; none: the file's mtime minus its duration.",
    )
    time_zone: str = Field("UTC", description="Time zone of the times in paths (the recorder's), e.g. Europe/Berlin.")

    @field_validator("require_mount", mode="before")
    @classmethod
    def _valid_require_mount(cls, value: Any) -> Any:
        if isinstance(value, bool) or value == "auto":
            return value
        raise ValueError('expected true, false or "auto"')

    @field_validator("time_pattern")
    @classmethod
    def _valid_time_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _valid_time_zone(cls, value: str) -> str:
        time_zone(value)
        return value

    @field_validator("camera_pattern")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        if "camera" not in compiled.groupindex:
            raise ValueError("needs a named group (?P<camera>...)")
        return value


class PathsConfig(_Section):
    state_dir: Path = Field(Path("var"), description="Ledger-independent local state: private services, thumbnails.")
    spool_dir: Path | None = Field(None, description="Normalized copies of sources; default <state_dir>/spool.")

    @property
    def spool(self) -> Path:
        return self.spool_dir if self.spool_dir is not None else self.state_dir / "spool"


class BrokerConfig(_Section):
    url: SecretStr = Field(
        SecretStr("amqp://guest:guest@127.0.0.1:5672//"), description="RabbitMQ URL (AMQP 0-9-1), vhost included."
    )
    publish_timeout_seconds: float = Field(10.0, gt=0, description="How long a publish waits for its confirm.")
    quorum_queues: bool = Field(
        False, description="Declare the gpu/cpu/summary queues as quorum queues (replicated, for RabbitMQ "
        "clusters). A queue's type cannot change once declared: delete the queues before switching."
    )

    @field_validator("url")
    @classmethod
    def _amqp(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("amqp://", "amqps://", "pyamqp://")):
            raise ValueError("expected an amqp:// or amqps:// URL")
        return value


class RedisConfig(_Section):
    url: SecretStr = Field(SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL.")
    prefix: str = Field("vidwatch", pattern=r"^[A-Za-z0-9_.:-]+$", description="Prefix of every key vidwatch writes.")
    events_maxlen: int = Field(100_000, ge=100, description="Approximate MAXLEN of the events stream.")
    detections_maxlen: int = Field(1_000_000, ge=100, description="Approximate MAXLEN of each detections stream.")
    summaries_maxlen: int = Field(100_000, ge=100, description="Approximate MAXLEN of the summaries stream.")
    objects_maxlen: int = Field(1_000_000, ge=100, description="Approximate MAXLEN of the objects stream.")

    @field_validator("url")
    @classmethod
    def _redis(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value


class ApiConfig(_Section):
    listen: str = Field("127.0.0.1:8787", description="HOST:PORT of the HTTP API (port 0: any free port).")
    token: SecretStr | None = Field(None, description="Bearer token for write endpoints; none: they are refused.")
    read_token: SecretStr | None = Field(
        None, description="Token for reads (every GET but /healthz, /readyz and /metrics; the status page and "
        "/docs too), as a bearer token or a Basic-auth password; the write token reads too; none: reads are open.",
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=64 * 2**20,
        description="Largest request body, in bytes; a longer one is answered 413 before it is read or parsed.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host header names (no port) the API answers besides the listen address's host, localhost, "
        "127.0.0.1 and ::1, which are always allowed; '*': any Host (turns the DNS-rebinding check off).",
    )

    @field_validator("token", "read_token")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("empty token: set a token, or remove the key to go without one")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        names = [name.strip().lower() for name in value]
        for name in names:
            bare = name.strip("[]")
            if not (name == "*" or re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?", name)
                    or (bare.count(":") >= 2 and re.fullmatch(r"[0-9a-f:.]+", bare))):
                raise ValueError("expected host names or IP addresses without a port, or '*'")
        return [name.strip("[]").rstrip(".") for name in names]

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:8787")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class AnalysisConfig(_Section):
    fps: float = Field(5.0, gt=0, le=240, description="Frames per second analysed (decimated on decode).")
    size: int = Field(640, ge=64, le=8192, description="Long side, in pixels, of the frames the engine sees.")
    segment_seconds: float = Field(300.0, ge=5, description="Videos longer than this are analysed in segments.")
    min_gap_seconds: float = Field(1.0, ge=0, description="Activity separated by less than this is one segment.")
    min_activity_seconds: float = Field(0.0, ge=0, description="Activity segments shorter than this are dropped.")
    motion_gate: bool = Field(
        False, description="Run the engine only on frames where motion (MOG2) was found; others count as empty."
    )
    track_motion: bool = Field(
        False, description="Give motion detections track ids, best crops (and so summary tracks); off: motion only "
        "marks activity and gates the engine. Motion is never an object either way.",
    )


class EngineConfig(_Section):
    kind: Literal["auto", "tensorrt", "onnx", "opencv"] = Field("auto", description="Inference engine.")
    model: Path | None = Field(None, description="ONNX model for the onnx and tensorrt engines.")
    batch: int = Field(8, ge=1, le=256, description="Frames per inference batch.")
    batch_timeout_ms: float = Field(
        20.0, ge=0, le=10_000, description="Longest a batch waits, from its first frame, for more frames to fill it "
        "(from any segment the worker process analyses); it leaves at once when no segment can add one.",
    )
    detectors: list[Literal["motion", "person"]] = Field(
        default_factory=lambda: ["motion", "person"],  # type: ignore[arg-type]  # pydantic's stub: list[str] description="opencv engine: which classical detectors run."
    )
    motion_min_area: int = Field(64, ge=1, description="opencv motion: smallest moving blob, in analysed pixels.")
    person_min_score: float = Field(0.5, description="opencv person (HOG): smallest SVM score kept.")
    person_gate: bool = Field(
        True, description="opencv with motion and person: search for people only in frames with a foreground "
        "blob, after a frame with a person, and once a second otherwise (HOG costs ~10x motion); false: every frame.",
    )
    motion_regions: list[list[tuple[float, float]]] = Field(
        default_factory=list,
        description="opencv motion (and the motion gate): polygons, as [x, y] fractions of the frame (0..1), "
        "where motion counts; empty: the whole frame.",
    )
    labels: Path | None = Field(
        None, description="Class names, one per line in class order; default: the model's 'names' metadata."
    )
    confidence: float = Field(0.25, gt=0, lt=1, description="onnx/tensorrt: smallest class score kept.")
    iou: float = Field(0.45, gt=0, le=1, description="onnx/tensorrt: IoU above which NMS drops the weaker box.")
    input_size: int = Field(
        640, ge=32, le=4096, description="onnx/tensorrt: square input side for a model whose size is dynamic."
    )
    threads: int = Field(
        0, ge=0, le=256, description="onnx: intra-op threads; 0: the cores this worker process may run on."
    )
    precision: Literal["fp16", "fp32"] = Field(
        "fp16",
        description="tensorrt: fp16 sets TensorRT 10's FP16 flag; TensorRT 11 builds the types in the ONNX file.",
    )
    workspace_mib: int = Field(1024, ge=16, description="tensorrt: builder workspace limit, MiB.")
    cache_dir: Path | None = Field(
        None, description="tensorrt: where built engines are cached; default: <[paths] state_dir>/engines."
    )
    queue: Literal["auto", "gpu", "cpu"] = Field(
        "auto", description="The queue the daemon publishes videos to; auto: gpu when kind is tensorrt, else cpu "
        "(decided by these settings, not by the daemon host's hardware).",
    )

    @property
    def publish_queue(self) -> str:
        """The analysis queue videos go to (see ``queue``).

        >>> EngineConfig().publish_queue, EngineConfig(kind="tensorrt").publish_queue
        ('cpu', 'gpu')
        """
        if self.queue != "auto":
            return self.queue
        return "gpu" if self.kind == "tensorrt" else "cpu"

    @property
    def configured_kind(self) -> str | None:
        """The engine kind these settings alone decide; None where only the worker's host can tell
        (``auto`` with a model: tensorrt where a GPU and TensorRT are present, else onnx).

        >>> EngineConfig().configured_kind, EngineConfig(kind="onnx").configured_kind
        ('opencv', 'onnx')
        """
        if self.kind != "auto":
            return self.kind
        return "opencv" if self.model is None else None

    @field_validator("motion_regions")
    @classmethod
    def _polygons(cls, value: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        for polygon in value:
            if len(polygon) < 3:
                raise ValueError(f"a region needs at least 3 points, got {len(polygon)}")
            if any(not (0 <= x <= 1 and 0 <= y <= 1) for x, y in polygon):
                raise ValueError("region points are fractions of the frame: expected 0 <= x, y <= 1")
        return value


class NormalizeConfig(_Section):
    workers: int = Field(2, ge=1, le=64, description="Normalizations running at once.")
    codecs: list[str] = Field(
        default_factory=lambda: ["h264", "hevc"], description="Codecs remuxed as they are; others are transcoded."
    )
    max_height: int = Field(1080, ge=64, description="Taller inputs are transcoded down to this height.")
    timeout_seconds: float = Field(60.0, gt=0, description="Base wall-clock limit of one ffmpeg run.")
    timeout_per_media_second: float = Field(2.0, ge=0, description="Added to the limit per second of media.")
    probe_attempts: int = Field(3, ge=1, description="Failed probes of a settled file before it is failed.")
    mode: Literal["auto", "remux", "transcode"] = Field(
        "auto", description="auto remuxes conforming input and transcodes the rest; remux or transcode: always."
    )
    encoder: str = Field("libx264", pattern=r"^[\w-]+$", description="ffmpeg video encoder of transcodes (CPU).")
    preset: str = Field("veryfast", pattern=r"^[\w-]+$", description="Encoder preset of transcodes (CPU).")
    crf: int = Field(23, ge=0, le=51, description="Constant quality of transcodes (lower is better, bigger).")
    hwaccel: Literal["none", "cuda"] = Field(
        "none", description="cuda: NVDEC decode and NVENC encode where ffmpeg and the GPU have them, else the CPU."
    )
    gpu_encoder: str = Field("h264_nvenc", pattern=r"^[\w-]+$", description="Encoder used with hwaccel = cuda.")
    gpu_preset: str = Field("p4", pattern=r"^[\w-]+$", description="Preset of the GPU encoder (p1 fastest .. p7).")
    keep_audio: bool = Field(False, description="Keep the first audio stream (AAC in the spool); dropped by default.")
    max_pixels: int = Field(
        7680 * 4320, ge=64 * 64, description="Inputs with more pixels per frame are refused before decoding."
    )
    max_duration_seconds: float = Field(
        86_400.0, gt=0, description="Inputs declaring a longer duration are refused before decoding."
    )
    verify_tail_seconds: float = Field(
        3.0, ge=0, description="Seconds decoded at the end of each input to catch truncation (0: no check)."
    )
    stall_seconds: float = Field(60.0, gt=0, description="An ffmpeg run with no progress for this long is killed.")
    progress_interval_seconds: float = Field(
        5.0, ge=0, description="Least time between two progress events of one normalization."
    )
    spool_max_bytes: int = Field(
        20 * 2**30, ge=2**20, description="Bytes the spool may hold; normalization waits for room."
    )
    spool_retention_seconds: float = Field(
        3600.0, ge=0, description="How long a spooled copy stays after its video is done or failed."
    )


class SummaryConfig(_Section):
    crops: bool = Field(True, description="Save each track's best crop (largest, sharpest, most confident) as a JPEG.")
    crop_min_px: int = Field(
        32, ge=1, le=4096, description="Boxes whose short side is below this many source pixels give no crop."
    )
    timeline: bool = Field(True, description="Draw a PNG timeline of activity and per-label presence per video.")
    condensed_clip: bool = Field(
        False, description="Cut a video of only the active segments (ffmpeg, stream copy at keyframes where possible)."
    )
    condensed_pad_seconds: float = Field(
        1.0, ge=0, le=60, description="Condensed clip: seconds kept before and after each active segment."
    )


class WorkerConfig(_Section):
    concurrency: int = Field(
        0, ge=0, le=64, description="Worker processes of `vidwatch worker` (prefork pool); 0: one per core the "
        "worker may run on, each with one OpenCV and ONNX Runtime thread per core it gets.",
    )
    pool: Literal["auto", "prefork", "threads"] = Field(
        "auto", description="prefork: `concurrency` processes, each with its own engine (CPU engines); threads: "
        "one process whose `threads` tasks feed one engine batcher (one per GPU); auto: threads for `--gpu` or "
        "a tensorrt engine, else prefork.",
    )
    threads: int = Field(
        2, ge=1, le=64, description="Tasks (segments) one threads-pool worker process analyses at once.",
    )
    heartbeat_seconds: float = Field(5.0, gt=0, description="Period of the worker's liveness key in Redis.")
    max_deliveries: int = Field(
        3, ge=1, le=100, description="A task delivered more often than this is poison: its video fails, "
        "the message is dead-lettered to the 'dead' queue."
    )
    task_time_limit_seconds: float = Field(
        1500.0, ge=1, description="Hard limit of one task (the soft limit, which fails the video, comes 30 s "
        "or a tenth earlier); keep it below RabbitMQ's consumer_timeout (30 min by default), or the broker "
        "closes the channel and the task loops."
    )


class ResultsConfig(_Section):
    sidecar_dir: Path | None = Field(
        None,
        description="Where a JSON file per video (summary + detections) is written, so an archive stays readable "
        "without Redis; none: no sidecars.",
    )


class RetentionConfig(_Section):
    """How long results are kept, by the video's **recording** time (not by count, not by write time)."""

    detections_days: float = Field(
        0.0, ge=0, le=36500,
        description="Per-frame detections (detections:<camera> entries and their index members) recorded more "
        "than this many days ago are removed; 0: kept forever (then only [redis] detections_maxlen trims).",
    )
    summaries_days: float = Field(
        0.0, ge=0, le=36500,
        description="Video records, summaries, index members and events of videos recorded more than this many "
        "days ago are removed (with their files); 0: kept forever.",
    )
    files_days: float = Field(
        0.0, ge=0, le=36500,
        description="Thumbnails, crops, timelines, condensed clips and sidecars of videos recorded more than this "
        "many days ago are deleted; 0: kept as long as the video's record (summaries_days).",
    )
    every_seconds: float = Field(
        300.0, ge=1, le=86400, description="Period of the daemon's retention pass (each pass does bounded work)."
    )

    @model_validator(mode="after")
    def _files_within_records(self) -> RetentionConfig:
        if self.summaries_days and self.files_days > self.summaries_days:
            raise ValueError(
                f"files_days = {self.files_days}: expected at most summaries_days ({self.summaries_days}): files "
                "are found through their video's record, so they cannot outlive it"
            )
        return self

    def horizon_s(self, kind: str) -> float | None:
        """Seconds a kind (``detections``, ``summaries``, ``files``) is kept; None: forever."""
        files = self.files_days or self.summaries_days
        days = {"detections": self.detections_days, "summaries": self.summaries_days, "files": files}[kind]
        return days * 86400.0 if days else None

    @property
    def enabled(self) -> bool:
        return bool(self.detections_days or self.summaries_days or self.files_days)


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")


class Config(BaseModel):
    """The whole configuration; every section has working defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    watch: WatchConfig = Field(default_factory=WatchConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    analyzers: Annotated[list[SerializeAsAny[PluginSettings]], BeforeValidator(ANALYZER_SETTINGS.validate)] = Field(
        default_factory=list,
        description="Optional per-frame analyzers, one [[analyzers]] table each, chosen by `type` "
        "(edges, lines, sharpness, ground); their findings go to the summary's `analyzers` field.",
    )
    stages: Annotated[list[SerializeAsAny[PluginSettings]], BeforeValidator(STAGE_SETTINGS.validate)] = Field(
        default_factory=list,
        description="Optional crop stages, one [[stages]] table each, chosen by `type` (dominant_colour, "
        "http_forward); run at summary time on each track's best crop, their fields go to that track's entry.",
    )
    summary: SummaryConfig = Field(default_factory=SummaryConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    results: ResultsConfig = Field(default_factory=ResultsConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    source: str = Field("defaults", description="Where this configuration came from (set by load_config).")

    def resolved(self, cwd: Path) -> Config:
        """Absolute paths, relative ones taken from ``cwd``."""

        def absolute(path: Path) -> Path:
            return path if path.is_absolute() else (cwd / path)

        watch = self.watch.model_copy(update={"roots": [absolute(r) for r in self.watch.roots]})
        paths = self.paths.model_copy(
            update={
                "state_dir": absolute(self.paths.state_dir),
                "spool_dir": absolute(self.paths.spool_dir) if self.paths.spool_dir else None,
            }
        )
        engine = self.engine.model_copy(
            update={
                "model": absolute(self.engine.model) if self.engine.model else None,
                "labels": absolute(self.engine.labels) if self.engine.labels else None,
                "cache_dir": absolute(self.engine.cache_dir or self.paths.state_dir / "engines"),
            }
        )
        results = self.results.model_copy(
            update={"sidecar_dir": absolute(self.results.sidecar_dir) if self.results.sidecar_dir else None}
        )
        return self.model_copy(update={"watch": watch, "paths": paths, "engine": engine, "results": results})


def config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """The file ``load_config`` reads, or None for built-in defaults."""
    if explicit:
        return Path(explicit)
    if environ.get("VIDWATCH_CONFIG"):
        return Path(environ["VIDWATCH_CONFIG"])
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Read, merge and validate the configuration; raise :class:`ConfigError` naming key, value, why."""
    environ = os.environ if environ is None else environ
    source = config_path(path, environ)
    data: dict[str, Any] = {}
    if source is not None:
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config: {source}: file not found") from exc
        except OSError as exc:
            raise ConfigError(f"config: {source}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {source}: not valid TOML: {exc}") from exc
    overrides = _env_overrides(environ)
    for (section, key), value in overrides.items():
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"config: [{section}] is not a table in {source}")
        target[key] = value
    data["source"] = str(source) if source else "defaults"
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, overrides)) from exc
    return config.resolved(cwd or Path.cwd())


def _env_overrides(environ: Mapping[str, str]) -> dict[tuple[str, str], Any]:
    overrides: dict[tuple[str, str], Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "VIDWATCH_CONFIG":
            continue
        section, _, key = name[len(ENV_PREFIX) :].partition("__")
        if not section or not key:
            continue
        overrides[(section.lower(), key.lower())] = _parse_env_value(raw)
    return overrides


def _parse_env_value(raw: str) -> Any:
    """An override is a TOML value where it parses as one (``5``, ``["a", "b"]``, ``true``), else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _describe(exc: ValidationError, source: Path | None, overrides: Mapping[tuple[str, str], Any]) -> str:
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc)
        origin = f"from {ENV_PREFIX}{loc[0].upper()}__{loc[1].upper()}" if tuple(loc[:2]) in overrides else None
        if origin is None:
            origin = f"in {source}" if source else "in the defaults"
        value = error.get("input")
        if error["type"] == "extra_forbidden":
            lines.append(f"config: {key}: unknown key ({origin})")
        else:
            shown = "***" if any(word in key for word in ("url", "token", "headers")) else repr(value)
            lines.append(f"config: {key} = {shown}: {error['msg']} ({origin})")
    return "invalid configuration:\n  " + "\n  ".join(lines)
