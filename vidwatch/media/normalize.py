"""Normalize a source into the spool: remux when it conforms, transcode when it must.

The source is only ever read. The output is written beside its final name and renamed
into place, so a spool file is either complete or absent.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from vidwatch.config import NormalizeConfig
from vidwatch.errors import MediaTimeout, NormalizeError
from vidwatch.media.probe import Probe
from vidwatch.media.run import run_ffmpeg

logger = logging.getLogger(__name__)

STALL_S = 60.0


@dataclass(frozen=True)
class Normalized:
    path: Path
    method: str  # "remux" | "transcode"
    wall_s: float


def plan(facts: Probe, settings: NormalizeConfig) -> tuple[str, str]:
    """("remux" | "transcode", why) for a probed source."""
    if facts.codec not in settings.codecs:
        return "transcode", f"codec {facts.codec} not in {settings.codecs}"
    if facts.height > settings.max_height:
        return "transcode", f"height {facts.height} > max_height {settings.max_height}"
    if facts.rotation:
        return "transcode", f"rotation {facts.rotation} to apply"
    return "remux", "conforming"


def build_args(source: Path, target: Path, facts: Probe, settings: NormalizeConfig, method: str) -> list[str]:
    """The ffmpeg command line (built with ffmpeg-python) for one normalization."""
    src = ffmpeg.input(f"file:{source}", protocol_whitelist="file")
    video = src["v:0"]
    options: dict[str, object] = {"f": "mp4", "movflags": "+faststart", "map_metadata": 0}
    if method == "remux":
        options.update({"c:v": "copy"})
    else:
        if facts.height > settings.max_height:
            video = video.filter("scale", -2, settings.max_height)
        options.update(
            {"c:v": "libx264", "preset": "veryfast", "crf": 23, "pix_fmt": "yuv420p", "fps_mode": "cfr"}
        )
        if facts.fps > 0:
            options["r"] = f"{facts.fps:.6g}"
    out = ffmpeg.output(video, str(target), **options)
    out = out.global_args("-nostdin", "-hide_banner", "-v", "error", "-progress", "pipe:1", "-nostats")
    return ffmpeg.compile(out.overwrite_output(), cmd="ffmpeg")


def normalize(
    source: Path,
    target: Path,
    facts: Probe,
    settings: NormalizeConfig,
    *,
    on_progress: Callable[[float], None] | None = None,
) -> Normalized:
    """Write ``target`` (MP4, faststart) from ``source``; raise :class:`NormalizeError` on failure."""
    method, why = plan(facts, settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    args = build_args(source, partial, facts, settings, method)
    timeout_s = settings.timeout_seconds + settings.timeout_per_media_second * facts.duration_s
    logger.debug("normalize %s: %s (%s)", source, method, why)

    def progress(block: dict[str, str]) -> None:
        if on_progress is None or not facts.duration_s:
            return
        try:
            out_us = int(block.get("out_time_us", "0"))
        except ValueError:
            return
        on_progress(min(1.0, out_us / 1e6 / facts.duration_s))

    try:
        result = run_ffmpeg(args, timeout_s=timeout_s, stall_s=STALL_S, on_progress=progress)
    except MediaTimeout as exc:
        partial.unlink(missing_ok=True)
        raise NormalizeError(f"normalize: {source}: {method} {exc}") from exc
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        last = result.stderr_tail.splitlines()[-1] if result.stderr_tail else f"exit {result.returncode}"
        raise NormalizeError(f"normalize: {source}: {method} failed: {last}")
    os.replace(partial, target)
    return Normalized(target, method, result.wall_s)
