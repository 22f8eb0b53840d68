"""ffprobe a file into the facts the rest of vidwatch needs.

One ffprobe run reads the container and stream headers and the video packets of the
first seconds: the frame rate is judged from those packet timestamps, because
``r_frame_rate`` (and often ``avg_frame_rate``) claim a constant rate for files that
have none. Only local files are read (``-protocol_whitelist file``) and only by the
demuxers in :data:`ALLOWED_DEMUXERS`: playlists and lists of other files (HLS, concat,
DASH, IMF) are refused before they can open anything.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidwatch.errors import MediaTimeout, NotReadyError, SourceError
from vidwatch.media.run import run_ffmpeg

# Demuxers that read other files or URLs named inside the input: never followed.
REFERENCING_FORMATS = {"hls", "concat", "ffconcat", "dash", "rtsp", "sdp", "mpjpeg", "tee", "data", "imf"}
# The only demuxers ffmpeg/ffprobe may use on a source: video containers and elementary
# streams that recorders write, plus common audio ones (so an audio file is told apart).
ALLOWED_DEMUXERS = (
    "mov,matroska,avi,mpegts,mpeg,flv,asf,mxf,nut,dv,ogg,ivf,dhav,"
    "h264,hevc,mjpeg,m4v,mpegvideo,yuv4mpegpipe,wav,mp3,aac,flac"
)
PROBE_TIMEOUT_S = 30.0
VFR_SAMPLE_S = 8.0  # seconds of packets whose timestamps judge the frame rate
VFR_IRREGULAR_SHARE = 0.02  # above this share of irregular frame intervals, the rate is variable
COMMON_RATES = (23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0, 120.0)
INTERLACED_ORDERS = {"tt", "bb", "tb", "bt"}
# Text headers of inputs that are lists of other files or URLs.
_REFERENCE_HEADS = (
    (b"#EXTM3U", "an HLS playlist"),
    (b"ffconcat version", "an ffconcat list"),
)
_DEMUXER_REFUSED = re.compile(r"\[([\w,]+) @ 0x[0-9a-f]+\] Format not on whitelist")
_TOO_LARGE = re.compile(r"Picture size (\d+)x(\d+) (?:exceeds|is invalid)")


@dataclass(frozen=True)
class Probe:
    """What ffprobe says of a file, reduced to what we use.

    ``fps`` is the rate a constant-rate copy should have: the typical frame interval
    seen in the packets (snapped to a common rate), else the declared average.
    """

    format_name: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    fps: float
    duration_s: float
    rotation: int
    has_audio: bool
    creation_time: str | None
    size_bytes: int
    video_index: int = 0
    vfr: bool = False
    declared_fps: float = 0.0
    interlaced: bool = False
    field_order: str = ""
    audio_codec: str = ""
    codec_tag: str = ""
    bit_rate: int = 0

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown, rotation applied."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)

    def as_record(self) -> dict[str, str]:
        """Flat string fields for a Redis hash or an event."""
        return {f"probe_{k}": "" if v is None else str(v) for k, v in asdict(self).items()}


def probe(path: Path, *, timeout_s: float = PROBE_TIMEOUT_S, max_pixels: int | None = None) -> Probe:
    """Probe ``path``; raise :class:`SourceError` (or :class:`NotReadyError` when it may be half written).

    ``max_pixels`` makes decoders refuse larger frames while ffprobe looks at the streams.
    """
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        raise SourceError(f"probe: {path}: empty file (0 bytes)", kind="empty")
    _refuse_reference_lists(path)
    args = [
        "ffprobe", "-v", "error", "-hide_banner",
        "-protocol_whitelist", "file", "-format_whitelist", ALLOWED_DEMUXERS,
        *(["-max_pixels", str(max_pixels)] if max_pixels else []),
        "-print_format", "json", "-show_format", "-show_streams",
        "-show_entries", "packet=stream_index,pts,dts", "-read_intervals", f"%+{VFR_SAMPLE_S:g}",
        "-i", f"file:{path}",
    ]
    try:
        result = run_ffmpeg(args, timeout_s=timeout_s)
    except MediaTimeout as exc:
        raise SourceError(f"probe: {path}: timed out reading the headers ({exc})", kind="timed_out") from exc
    except FileNotFoundError as exc:
        raise SourceError("probe: ffprobe is not installed (apt-get install ffmpeg)") from exc
    if result.returncode != 0:
        _raise_for_stderr(path, result.stderr_tail, result.returncode)
    try:
        data = json.loads(result.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise SourceError(f"probe: {path}: ffprobe printed no JSON") from exc
    return _facts(path, data, size)


def _refuse_reference_lists(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, what in _REFERENCE_HEADS:
        if text.startswith(magic):
            raise SourceError(
                f"probe: {path}: refused: {what} (it names other files or URLs to open)", kind="refused_reference"
            )
    if b"<MPD" in head or b"CompositionPlaylist" in head:
        raise SourceError(
            f"probe: {path}: refused: a DASH/IMF manifest (it names other files or URLs to open)",
            kind="refused_reference",
        )


def _raise_for_stderr(path: Path, stderr: str, returncode: int) -> None:
    refused = _DEMUXER_REFUSED.search(stderr)
    if refused:
        name = refused.group(1)
        if set(name.split(",")) & REFERENCING_FORMATS:
            raise SourceError(
                f"probe: {path}: refused: {name} input refers to other files or URLs", kind="refused_reference"
            )
        raise SourceError(f"probe: {path}: not a video (a {name} file, not a video container)", kind="not_video")
    too_large = _TOO_LARGE.search(stderr)
    if too_large:
        raise SourceError(
            f"probe: {path}: too large: {too_large.group(1)}x{too_large.group(2)} pixels per frame", kind="too_large"
        )
    if "moov atom not found" in stderr:
        if not _looks_like_mp4(path):
            raise SourceError(
                f"probe: {path}: not a video (named like an MP4, but has no MP4 structure)", kind="not_video"
            )
        raise NotReadyError(f"probe: {path}: truncated or still being written (moov atom not found)")
    reason = stderr.splitlines()[-1] if stderr else f"exit {returncode}"
    raise SourceError(f"probe: {path}: not a readable video ({_short(reason, path)})", kind="not_video")


MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}


def _looks_like_mp4(path: Path) -> bool:
    """An MP4/MOV starts with a box header: 4 bytes of size, then a known type."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    return len(head) == 8 and head[4:8] in MP4_BOXES


def _short(reason: str, path: Path) -> str:
    return reason.replace(f"file:{path}: ", "").replace(str(path), path.name)


def _facts(path: Path, data: dict[str, Any], size: int) -> Probe:
    fmt = data.get("format", {})
    format_name = str(fmt.get("format_name", ""))
    if set(format_name.split(",")) & REFERENCING_FORMATS:
        raise SourceError(
            f"probe: {path}: refused: {format_name} input refers to other files or URLs", kind="refused_reference"
        )
    streams = data.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not video:
        kind = "audio only" if audio else "no streams"
        raise SourceError(f"probe: {path}: no video stream ({kind})", kind="no_video_stream")
    v = video[0]
    codec = str(v.get("codec_name") or "")
    if not codec or codec == "none":
        tag = str(v.get("codec_tag_string") or "unknown")
        raise SourceError(
            f"probe: {path}: unsupported codec ({tag}): ffmpeg cannot decode it", kind="unsupported_codec"
        )
    width, height = int(v.get("width") or 0), int(v.get("height") or 0)
    if width <= 0 or height <= 0:
        raise SourceError(f"probe: {path}: video stream has no size (corrupt header)", kind="corrupt")
    duration = _float(v.get("duration")) or _float(fmt.get("duration"))
    if not duration or duration <= 0:
        raise NotReadyError(f"probe: {path}: no duration yet (truncated or still being written)")
    tags = {**fmt.get("tags", {}), **v.get("tags", {})}
    declared = _rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate")) or 0.0
    index = int(v.get("index", 0))
    measured, vfr = _judge_rate(data.get("packets", []), index, Fraction(str(v.get("time_base") or "1/90000")))
    field_order = str(v.get("field_order") or "")
    return Probe(
        format_name=format_name,
        codec=codec,
        width=width,
        height=height,
        pix_fmt=str(v.get("pix_fmt", "")),
        fps=_target_rate(measured, declared, vfr),
        duration_s=duration,
        rotation=_rotation(v, tags),
        has_audio=bool(audio),
        creation_time=tags.get("creation_time"),
        size_bytes=size,
        video_index=index,
        vfr=vfr,
        declared_fps=round(declared, 3),
        interlaced=field_order in INTERLACED_ORDERS,
        field_order=field_order,
        audio_codec=str(audio[0].get("codec_name") or "") if audio else "",
        codec_tag=str(v.get("codec_tag_string") or ""),
        bit_rate=int(_float(fmt.get("bit_rate")) or 0),
    )


def _judge_rate(packets: list[dict[str, Any]], index: int, time_base: Fraction) -> tuple[float | None, bool]:
    """(frames per second from the typical packet interval, variable?) from the sampled packets.

    >>> tb = Fraction(1, 1000)
    >>> _judge_rate([{"stream_index": 0, "pts": 40 * n} for n in range(50)], 0, tb)
    (25.0, False)
    >>> _judge_rate([{"stream_index": 0, "pts": 40 * n + 40 * (n // 3)} for n in range(50)], 0, tb)
    (25.0, True)
    >>> rate, vfr = _judge_rate([{"stream_index": 0, "pts": n * 1000 // 30} for n in range(60)], 0, tb)
    >>> round(rate, 1), vfr
    (30.0, False)
    """
    stamps = sorted(
        {int(t) for p in packets if p.get("stream_index") == index and (t := p.get("pts", p.get("dts"))) is not None}
    )
    deltas = [b - a for a, b in itertools.pairwise(stamps)]
    if len(deltas) < 3 or time_base <= 0:
        return None, False
    typical = statistics.median(deltas)
    if typical <= 0:
        return None, False
    tolerance = max(1.0, 0.02 * typical)  # one tick of rounding (1/1000 s time bases), or 2 %
    regular = [d for d in deltas if abs(d - typical) <= tolerance]
    mean = statistics.fmean(regular)  # 33 and 34 ms alternating are 30 fps, not 29.4
    irregular = len(deltas) - len(regular)
    return float(1 / (mean * time_base)), irregular > max(1, VFR_IRREGULAR_SHARE * len(deltas))


def _target_rate(measured: float | None, declared: float, vfr: bool) -> float:
    """The rate of a constant-rate copy: the declared one when the packets agree, else the measured one.

    >>> _target_rate(29.97002997, 29.97002997, False), _target_rate(30.0, 30.0, False), _target_rate(None, 0.0, False)
    (29.97, 30.0, 25.0)
    >>> _target_rate(25.0, 1000.0, True), _target_rate(29.5, 30.0, True)
    (25.0, 30.0)
    """
    if declared and (measured is None or abs(measured - declared) <= 0.02 * declared):
        return _snap(declared)
    return _snap(measured or declared or 25.0)


def _snap(fps: float) -> float:
    """The closest common rate when within 1 %, else the rate to 3 decimals.

    >>> _snap(29.9700299), _snap(30.0), _snap(24.99), _snap(12.5)
    (29.97, 30.0, 25.0, 12.5)
    """
    closest = min(COMMON_RATES, key=lambda rate: abs(fps - rate))
    if abs(fps - closest) <= 0.01 * closest:
        return closest
    return round(min(max(fps, 1.0), 240.0), 3)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _rate(value: Any) -> float | None:
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None


def _rotation(stream: dict[str, Any], tags: dict[str, str]) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    return int(_float(tags.get("rotate")) or 0) % 360
