"""Where a long video is cut into segments: near every ``segment_seconds``, at keyframes.

A segment decodes only its own range (input seeking), so a cut at a keyframe wastes no
decoding. Cuts also sit on the analysis grid (frame ``n`` at ``n / fps``), so a video's
analysed frames are the same however it is cut.
"""

from __future__ import annotations

import itertools
import json
from bisect import bisect_left
from pathlib import Path

from vidwatch.errors import SourceError
from vidwatch.media.run import run_ffmpeg

KEYFRAME_PROBE_TIMEOUT_S = 120.0


def keyframe_times(path: Path) -> list[float]:
    """Presentation times of the video's keyframes, from packet flags (no decoding)."""
    args = [
        "ffprobe", "-v", "error", "-hide_banner", "-protocol_whitelist", "file",
        "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "json", f"file:{path}",
    ]
    result = run_ffmpeg(args, timeout_s=KEYFRAME_PROBE_TIMEOUT_S)
    if result.returncode != 0:
        raise SourceError(f"segments: {path}: cannot list keyframes: {result.stderr_tail[-200:]}")
    packets = json.loads(result.stdout or b"{}").get("packets", [])
    times = sorted(float(p["pts_time"]) for p in packets if "K" in p.get("flags", "") and "pts_time" in p)
    return times or [0.0]


def plan(duration_s: float, fps: float, segment_s: float, keyframes: list[float]) -> list[tuple[float, float]]:
    """``(start_s, duration_s)`` of each segment; one segment when the video is short.

    >>> plan(10.0, 5, 30, [0.0])
    [(0.0, 10.0)]
    >>> plan(100.0, 5, 30, [0.0, 29.0, 31.5, 58.0, 91.0])
    [(0.0, 29.0), (29.0, 29.0), (58.0, 42.0)]
    """
    if duration_s <= segment_s * 1.5:
        return [(0.0, duration_s)]
    cuts = [0.0]
    target = segment_s
    while target < duration_s - segment_s / 2:
        i = bisect_left(keyframes, target)
        candidates = [k for k in keyframes[max(0, i - 1) : i + 1] if cuts[-1] + segment_s / 2 < k < duration_s]
        cut = min(candidates, key=lambda k: abs(k - target)) if candidates else target
        cut = round(cut * fps) / fps  # on the analysis grid
        if cut > cuts[-1]:
            cuts.append(cut)
        target = cut + segment_s
    bounds = [*cuts, duration_s]
    return [(round(a, 6), round(b - a, 6)) for a, b in itertools.pairwise(bounds)]
