"""A condensed video: only the active segments of a video, one after the other.

Each activity span is padded by ``pad_s`` on both sides, clipped to the video, and spans
that then overlap or touch are merged. The cut is made with ffmpeg:

- **stream copy** first: each span's start is moved back to the keyframe at or before it
  (so nothing of the padded span is lost and no frame is re-encoded), each span is cut
  to its own file, and the files are joined by the concat demuxer from a list file
  written here, in a private temporary folder beside the target. The list names only
  those files, by plain relative names, so the demuxer's safe mode stays on.
- **re-encoding** (libx264) when stream copy is impossible (no keyframe index, a codec
  the MP4 muxer cannot copy, a cut ffmpeg refuses): one pass that keeps the frames of
  the spans (``select``) and renumbers their timestamps.

Only the first video stream is kept (spool copies have no audio). Every ffmpeg run reads
with ``-protocol_whitelist file``; the source is only read; the target appears by rename
once complete.

>>> padded_spans([[2.0, 3.0], [4.5, 5.0], [20.0, 21.0]], pad_s=1.0, duration_s=21.5)
[(1.0, 6.0), (19.0, 21.5)]
>>> snap_to_keyframes([(1.0, 6.0), (19.0, 21.5)], [0.0, 4.0, 8.0, 12.0, 16.0, 20.0])
[(0.0, 6.0), (16.0, 21.5)]
"""

from __future__ import annotations

import bisect
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from vidwatch.errors import MediaTimeout, SourceError, VidwatchError
from vidwatch.fileio import atomic_target
from vidwatch.media.probe import probe
from vidwatch.media.run import run_ffmpeg

logger = logging.getLogger(__name__)

Span = tuple[float, float]
STALL_S = 60.0
MIN_SPAN_S = 0.001


class CondenseError(VidwatchError):
    """ffmpeg could not make the condensed clip."""


def _merge(spans: Sequence[Span]) -> list[Span]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(round(s, 6), round(e, 6)) for s, e in merged if e - s >= MIN_SPAN_S]


def padded_spans(activity: Sequence[Sequence[float]], *, pad_s: float, duration_s: float) -> list[Span]:
    """Activity spans grown by ``pad_s`` each side, clipped to ``[0, duration_s]``, merged."""
    if pad_s < 0:
        raise ValueError(f"condense: expected pad_s >= 0, got {pad_s}")
    grown = [(max(0.0, float(s) - pad_s), min(duration_s, float(e) + pad_s)) for s, e in activity]
    return _merge([(s, e) for s, e in grown if e > s])


def snap_to_keyframes(spans: Sequence[Span], keyframes_s: Sequence[float]) -> list[Span]:
    """Each span starting at the last keyframe at or before its start, merged again."""
    keys = sorted(keyframes_s)
    snapped = []
    for start, end in spans:
        i = bisect.bisect_right(keys, start + 1e-6) - 1
        snapped.append((keys[i] if i >= 0 else 0.0, end))
    return _merge(snapped)


def keyframes(source: Path, *, timeout_s: float) -> list[float]:
    """Times (s, from the start of the file) of the first video stream's keyframes, from its packets."""
    args = [
        "ffprobe", "-v", "error", "-hide_banner", "-protocol_whitelist", "file",
        "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags:format=start_time",
        "-of", "csv", f"file:{source}",
    ]
    result = run_ffmpeg(args, timeout_s=timeout_s)
    if result.returncode != 0:
        reason = _last(result.stderr_tail, result.returncode)
        raise CondenseError(f"condense: {source}: cannot list keyframes: {reason}")
    origin, times = 0.0, []
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        fields = line.strip().split(",")
        if fields[0] == "format" and len(fields) > 1:
            origin = _number(fields[1]) or 0.0
        elif fields[0] == "packet" and len(fields) > 2 and "K" in fields[2]:
            value = _number(fields[1])
            if value is not None:
                times.append(value)
    return sorted(max(0.0, t - origin) for t in times)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _last(stderr_tail: str, returncode: int) -> str:
    return stderr_tail.splitlines()[-1] if stderr_tail else f"exit {returncode}"


class _Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.end = time.monotonic() + timeout_s

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise MediaTimeout(f"condense timed out after {self.timeout_s:.0f} s")
        return left


def _ffmpeg(args: list[str], deadline: _Deadline, what: str) -> None:
    base = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
    result = run_ffmpeg([*base, *args], timeout_s=deadline.left(), stall_s=STALL_S, capture_stdout=False)
    if result.returncode != 0:
        raise _CopyImpossible(f"{what}: {_last(result.stderr_tail, result.returncode)}")


class _CopyImpossible(Exception):
    """An ffmpeg step of the stream-copy path failed; re-encoding may still work."""


def _copy(source: Path, spans: list[Span], partial: Path, deadline: _Deadline) -> None:
    try:
        found = keyframes(source, timeout_s=deadline.left())
    except CondenseError as exc:
        raise _CopyImpossible(str(exc)) from exc
    if not found:
        raise _CopyImpossible("no keyframes listed")
    cuts = snap_to_keyframes(spans, found)
    with tempfile.TemporaryDirectory(prefix=".condense-", dir=partial.parent) as folder:
        names = []
        for i, (start, end) in enumerate(cuts):
            name = f"part-{i:05d}.mp4"
            _ffmpeg(
                ["-protocol_whitelist", "file", "-ss", f"{start:.6f}", "-i", f"file:{source}",
                 "-t", f"{end - start:.6f}", "-map", "0:v:0", "-c", "copy", "-avoid_negative_ts", "make_zero",
                 "-f", "mp4", f"file:{Path(folder) / name}"],
                deadline,
                f"cut {start:.3f}-{end:.3f} s",
            )
            names.append(name)
        listing = Path(folder) / "parts.ffconcat"
        listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{n}'\n" for n in names), encoding="utf-8")
        _ffmpeg(
            ["-protocol_whitelist", "file", "-f", "concat", "-i", f"file:{listing}",
             "-map", "0:v:0", "-c", "copy", "-movflags", "+faststart", "-f", "mp4", f"file:{partial}"],
            deadline,
            "concat",
        )


def _encode(source: Path, spans: list[Span], partial: Path, fps: float, deadline: _Deadline) -> None:
    keep = "+".join(f"between(t,{s:.6f},{e:.6f})" for s, e in spans)
    rate = f"{fps:.6g}" if fps > 0 else "25"
    args = [
        "-protocol_whitelist", "file", "-i", f"file:{source}", "-map", "0:v:0",
        "-vf", f"select='{keep}',setpts=N/({rate})/TB", "-r", rate, "-an",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-f", "mp4", f"file:{partial}",
    ]
    try:
        _ffmpeg(args, deadline, "re-encode")
    except _CopyImpossible as exc:
        raise CondenseError(f"condense: {source}: {exc}") from exc


def condense(
    source_mp4: Path,
    activity: Sequence[Sequence[float]],
    target_mp4: Path,
    *,
    pad_s: float = 1.0,
    timeout_s: float,
    mode: Literal["auto", "copy", "encode"] = "auto",
) -> float:
    """Write ``target_mp4`` with only the (padded, merged) active spans; return its duration in seconds.

    ``activity`` is ``[[start_s, end_s], ...]`` in the source's media time. With no span
    left, nothing is written and 0.0 is returned. ``mode="auto"`` tries stream copy and
    re-encodes when that fails; ``copy`` and ``encode`` force one path. ``timeout_s``
    bounds the whole operation (every ffmpeg run gets what is left of it). Raises
    :class:`CondenseError` when no path works, :class:`~vidwatch.errors.MediaTimeout` past
    the deadline, :class:`~vidwatch.errors.SourceError` for an unreadable source.
    """
    source, target = Path(source_mp4), Path(target_mp4)
    if source.resolve() == target.resolve():
        raise ValueError(f"condense: the target must not be the source: {source}")
    deadline = _Deadline(timeout_s)
    facts = probe(source, timeout_s=deadline.left())
    spans = padded_spans(activity, pad_s=pad_s, duration_s=facts.duration_s)
    if not spans:
        return 0.0
    try:
        with atomic_target(target) as partial:
            method = "copy"
            if mode == "encode":
                method = "encode"
            else:
                try:
                    _copy(source, spans, partial, deadline)
                except _CopyImpossible as exc:
                    if mode == "copy":
                        raise CondenseError(f"condense: {source}: stream copy failed: {exc}") from exc
                    logger.info("condense: %s: stream copy impossible (%s): re-encoding", source, exc)
                    method = "encode"
            if method == "encode":
                _encode(source, spans, partial, facts.fps, deadline)
            duration = probe(partial, timeout_s=deadline.left()).duration_s
    except SourceError as exc:
        raise CondenseError(f"condense: {source}: the output is not readable: {exc}") from exc
    logger.info("condense: %s: %d spans, %s, %.1f of %.1f s", source, len(spans), method, duration, facts.duration_s)
    return duration
