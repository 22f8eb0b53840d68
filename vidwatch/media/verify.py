"""Cheap integrity check: decode the last seconds and compare with the declared duration.

Probing is not proof. A faststart MP4 cut short (a copy interrupted, a recorder that
died) keeps its index at the front: ffprobe reports the full duration and exits 0, and
even a full decode exits 0. Decoding only the tail with ``-xerror`` fails on the missing
or broken bytes, and the last decoded timestamp shows how far the data really goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vidwatch.errors import MediaTimeout, NotReadyError, SourceError
from vidwatch.media.probe import ALLOWED_DEMUXERS, Probe
from vidwatch.media.run import run_ffmpeg

VERIFY_TIMEOUT_S = 60.0
MIN_SHORTFALL_S = 0.5  # decoded end may fall this far short of the declared duration (rounding, audio)

TRUNCATION_HINTS = ("partial file", "end of file", "Invalid NAL unit size", "corrupt input packet", "Truncating packet")


@dataclass(frozen=True)
class Verified:
    decoded_end_s: float
    wall_s: float


def verify_tail(
    path: Path, facts: Probe, *, tail_s: float = 3.0, max_pixels: int | None = None, timeout_s: float = VERIFY_TIMEOUT_S
) -> Verified:
    """Decode the last ``tail_s`` of the video stream; raise when the file is cut short or corrupt.

    Raises :class:`NotReadyError` when the data ends before the declared duration (the
    file may still be arriving; the caller fails it as truncated after its retries) and
    :class:`SourceError` (``kind="corrupt"``) when the tail does not decode.
    """
    start_s = max(0.0, facts.duration_s - tail_s)
    args = [
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror",
        "-protocol_whitelist", "file", "-format_whitelist", ALLOWED_DEMUXERS,
        *(["-max_pixels", str(max_pixels)] if max_pixels else []),
        "-ss", f"{start_s:.3f}", "-i", f"file:{path}",
        "-map", f"0:{facts.video_index}", "-f", "null", "-progress", "pipe:1", "-nostats", "-",
    ]
    out_time_us = [0]

    def progress(block: dict[str, str]) -> None:
        try:
            out_time_us[0] = max(out_time_us[0], int(block.get("out_time_us", "0")))
        except ValueError:
            return

    try:
        result = run_ffmpeg(args, timeout_s=timeout_s, stall_s=timeout_s / 2, on_progress=progress)
    except MediaTimeout as exc:
        raise SourceError(
            f"verify: {path}: timed out decoding the last {tail_s:g} s ({exc})", kind="timed_out"
        ) from exc
    decoded_end = start_s + out_time_us[0] / 1e6
    frame_s = 1.0 / facts.fps if facts.fps > 0 else 0.04
    shortfall = facts.duration_s - decoded_end
    short = shortfall > max(MIN_SHORTFALL_S, 3 * frame_s)
    if result.returncode != 0 or short:
        last = result.stderr_tail.splitlines()[-1] if result.stderr_tail else ""
        told = f"decoded to {decoded_end:.2f} s of a declared {facts.duration_s:.2f} s"
        if short or any(hint in result.stderr_tail for hint in TRUNCATION_HINTS):
            raise NotReadyError(
                f"verify: {path}: truncated: {told}" + (f" ({_clean(last, path)})" if last else ""), kind="truncated"
            )
        raise SourceError(f"verify: {path}: corrupt: the last {tail_s:g} s do not decode ({_clean(last, path)})",
                          kind="corrupt")
    return Verified(decoded_end, result.wall_s)


def _clean(line: str, path: Path) -> str:
    """ffmpeg's line without its ``[demuxer @ 0x...]`` prefix and with the file's name only."""
    line = re.sub(r"^\[[^\]]+ @ 0x[0-9a-f]+\] ", "", line)
    return line.replace(f"file:{path}", path.name).replace(str(path), path.name)
