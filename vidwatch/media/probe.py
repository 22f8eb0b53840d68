"""ffprobe a file into the facts the rest of vidwatch needs."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidwatch.errors import MediaTimeout, NotReadyError, SourceError
from vidwatch.media.run import run_ffmpeg

logger = logging.getLogger(__name__)

# Demuxers that read other files or URLs named inside the input: never followed.
REFERENCING_FORMATS = {"hls", "concat", "ffconcat", "dash", "rtsp", "sdp", "mpjpeg", "tee", "data"}
PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Probe:
    """What ffprobe says of a file, reduced to what we use."""

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

    def as_record(self) -> dict[str, str]:
        """Flat string fields for a Redis hash or an event."""
        return {f"probe_{k}": "" if v is None else str(v) for k, v in asdict(self).items()}


def probe(path: Path, *, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    """Probe ``path``; raise :class:`SourceError` (or :class:`NotReadyError` when it may be half written)."""
    args = [
        "ffprobe", "-v", "error", "-hide_banner",
        "-protocol_whitelist", "file",
        "-print_format", "json", "-show_format", "-show_streams",
        "-i", f"file:{path}",
    ]
    try:
        result = run_ffmpeg(args, timeout_s=timeout_s)
    except MediaTimeout as exc:
        raise SourceError(f"probe: {path}: {exc}") from exc
    except FileNotFoundError as exc:
        raise SourceError("probe: ffprobe is not installed (apt-get install ffmpeg)") from exc
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        raise SourceError(f"probe: {path}: empty file (0 bytes)")
    if result.returncode != 0:
        reason = result.stderr_tail.splitlines()[-1] if result.stderr_tail else f"exit {result.returncode}"
        if "moov atom not found" in result.stderr_tail:
            if not _looks_like_mp4(path):
                raise SourceError(f"probe: {path}: not a video (named like an MP4, but has no MP4 structure)")
            raise NotReadyError(f"probe: {path}: truncated or still being written (moov atom not found)")
        raise SourceError(f"probe: {path}: not a readable video ({_short(reason, path)})")
    try:
        data = json.loads(result.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise SourceError(f"probe: {path}: ffprobe printed no JSON") from exc
    return _facts(path, data, size)


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
        raise SourceError(f"probe: {path}: refused: {format_name} input refers to other files or URLs")
    streams = data.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    if not video:
        kind = "audio only" if any(s.get("codec_type") == "audio" for s in streams) else "no streams"
        raise SourceError(f"probe: {path}: no video stream ({kind})")
    v = video[0]
    width, height = int(v.get("width") or 0), int(v.get("height") or 0)
    if width <= 0 or height <= 0:
        raise SourceError(f"probe: {path}: video stream has no size")
    duration = _float(fmt.get("duration")) or _float(v.get("duration"))
    if not duration or duration <= 0:
        raise NotReadyError(f"probe: {path}: no duration yet (truncated or still being written)")
    tags = {**fmt.get("tags", {}), **v.get("tags", {})}
    return Probe(
        format_name=format_name,
        codec=str(v.get("codec_name", "unknown")),
        width=width,
        height=height,
        pix_fmt=str(v.get("pix_fmt", "")),
        fps=_rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate")) or 0.0,
        duration_s=duration,
        rotation=_rotation(v, tags),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        creation_time=tags.get("creation_time"),
        size_bytes=size,
    )


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
