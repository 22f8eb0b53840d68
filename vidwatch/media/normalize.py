"""Normalize a source into the spool: remux when it conforms, transcode when it must.

Conforming means: codec in ``[normalize] codecs``, a constant frame rate, height at most
``max_height``, no rotation to apply and progressive. Such input is stream-copied into
MP4 (no re-encode); anything else is transcoded to constant-rate yuv420p H.264 (or the
configured encoder), deinterlaced, rotated upright and scaled down to ``max_height``.

The source is only ever read. The output is written beside its final name and renamed
into place, so a spool file is either complete or absent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from vidwatch.config import NormalizeConfig
from vidwatch.errors import MediaTimeout, NormalizeError, SourceError
from vidwatch.fileio import atomic_target
from vidwatch.media.hwaccel import cuda_support
from vidwatch.media.probe import ALLOWED_DEMUXERS, Probe
from vidwatch.media.run import run_ffmpeg

logger = logging.getLogger(__name__)

# Audio codecs an MP4 holds as they are; others are converted to AAC when audio is kept.
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
MOOV_BASE_BYTES = 64 * 1024
MOOV_BYTES_PER_PACKET = 24  # sample size, composition offset, chunk offset, sync sample: at most
MOOV_TOO_SMALL = "reserved_moov_size is too small"
_warned_cpu_fallback: set[str] = set()


@dataclass(frozen=True)
class Plan:
    """How one source becomes its spool copy."""

    method: str  # "remux" | "transcode"
    why: str
    width: int  # output size, as displayed
    height: int
    fps: float
    deinterlace: bool


@dataclass(frozen=True)
class Progress:
    """One ``-progress`` block of a running normalization."""

    fraction: float
    out_time_s: float
    speed: float
    fps: float


@dataclass(frozen=True)
class Normalized:
    path: Path
    method: str  # "remux" | "transcode"
    wall_s: float
    why: str = ""
    encoder: str = "copy"
    hwaccel: str = "none"
    size_bytes: int = 0


def admit(facts: Probe, settings: NormalizeConfig, source: Path | str = "") -> None:
    """Refuse, before any decoding, inputs above ``max_pixels`` or ``max_duration_seconds``."""
    pixels = facts.width * facts.height
    if pixels > settings.max_pixels:
        raise SourceError(
            f"normalize: {source}: too large: {facts.width}x{facts.height} is {pixels} pixels per frame, "
            f"above max_pixels {settings.max_pixels}",
            kind="too_large",
        )
    if facts.duration_s > settings.max_duration_seconds:
        raise SourceError(
            f"normalize: {source}: too long: declares {facts.duration_s:.0f} s, "
            f"above max_duration_seconds {settings.max_duration_seconds:.0f}",
            kind="too_long",
        )


def nonconforming(facts: Probe, settings: NormalizeConfig) -> list[str]:
    """Why ``facts`` cannot be remuxed as they are (empty: it conforms).

    >>> from vidwatch.media.probe import Probe
    >>> f = Probe("mov", "mjpeg", 640, 480, "yuvj420p", 25.0, 2.0, 0, False, None, 1, vfr=True)
    >>> nonconforming(f, NormalizeConfig())
    ["codec mjpeg not in ['h264', 'hevc']", 'variable frame rate']
    """
    reasons = []
    if facts.codec not in settings.codecs:
        reasons.append(f"codec {facts.codec} not in {settings.codecs}")
    if facts.vfr:
        reasons.append("variable frame rate")
    if facts.display_size[1] > settings.max_height:
        reasons.append(f"height {facts.display_size[1]} > max_height {settings.max_height}")
    if facts.rotation:
        reasons.append(f"rotation {facts.rotation} to apply")
    if facts.interlaced:
        reasons.append(f"interlaced ({facts.field_order})")
    return reasons


def plan(facts: Probe, settings: NormalizeConfig) -> Plan:
    """Remux or transcode, and to what size and rate."""
    reasons = nonconforming(facts, settings)
    if settings.mode == "remux":
        method, why = "remux", "mode remux" + (f" (despite: {'; '.join(reasons)})" if reasons else "")
    elif settings.mode == "transcode":
        method, why = "transcode", "mode transcode"
    else:
        method, why = ("transcode", "; ".join(reasons)) if reasons else ("remux", "conforming")
    width, height = facts.display_size
    if method == "transcode":
        height_out = min(height, settings.max_height) // 2 * 2
        width = max(2, round(width * height_out / height / 2) * 2)
        height = max(2, height_out)
    return Plan(method, why, width, height, facts.fps, method == "transcode" and facts.interlaced)


@dataclass(frozen=True)
class _Encode:
    encoder: str
    hw_decode: bool
    options: dict[str, Any]


def _encode_choice(settings: NormalizeConfig, use_gpu: bool) -> _Encode:
    if use_gpu and settings.hwaccel == "cuda":
        support = cuda_support(settings.gpu_encoder)
        if support.encode:
            options = {"c:v": settings.gpu_encoder, "preset": settings.gpu_preset, "cq": settings.crf}
            return _Encode(settings.gpu_encoder, support.decode, options)
        if settings.gpu_encoder not in _warned_cpu_fallback:
            _warned_cpu_fallback.add(settings.gpu_encoder)
            logger.warning("hwaccel cuda: %s; encoding with %s on the CPU", support.why, settings.encoder)
        if support.decode:
            return _Encode(settings.encoder, True, _cpu_options(settings))
    return _Encode(settings.encoder, False, _cpu_options(settings))


def _cpu_options(settings: NormalizeConfig) -> dict[str, Any]:
    options: dict[str, Any] = {"c:v": settings.encoder, "preset": settings.preset}
    if settings.encoder in ("libx264", "libx265"):
        options["crf"] = settings.crf
    return options


def moov_bytes(facts: Probe, how: Plan, settings: NormalizeConfig) -> int:
    """Room to reserve for the MP4 index at the front: generous per frame and audio packet.

    With it the muxer writes the index in place at the end (``-moov_size``), where
    ``+faststart`` would rewrite the whole file a second time to move it.

    >>> from vidwatch.media.probe import Probe
    >>> f = Probe("mov", "h264", 1920, 1080, "yuv420p", 30.0, 60.0, 0, False, None, 1)
    >>> moov_bytes(f, plan(f, NormalizeConfig()), NormalizeConfig())
    113056
    """
    frames = facts.duration_s * max(how.fps, facts.declared_fps, 1.0) * 1.1
    audio = facts.duration_s * 50 if settings.keep_audio and facts.has_audio else 0
    return int(MOOV_BASE_BYTES + MOOV_BYTES_PER_PACKET * (frames + audio))


def build_args(
    source: Path,
    target: Path,
    facts: Probe,
    settings: NormalizeConfig,
    how: Plan,
    encode: _Encode | None = None,
    *,
    moov_size: int | None = None,
) -> list[str]:
    """The ffmpeg command line (built with ffmpeg-python) for one normalization.

    The index goes at the front either way: in ``moov_size`` bytes reserved for it, or
    moved there after writing (``+faststart``) when no size is given.
    """
    input_options: dict[str, Any] = {
        "protocol_whitelist": "file",
        "format_whitelist": ALLOWED_DEMUXERS,
        "max_pixels": settings.max_pixels,
        "fflags": "+genpts",
    }
    if encode is not None and encode.hw_decode:
        input_options["hwaccel"] = "cuda"
    src = ffmpeg.input(f"file:{source}", **input_options)
    video = src[str(facts.video_index)]
    options: dict[str, Any] = {
        "f": "mp4",
        "map_metadata": 0,
        "avoid_negative_ts": "make_zero",
        "max_muxing_queue_size": 1024,
    }
    if moov_size:
        options["moov_size"] = moov_size
    else:
        options["movflags"] = "+faststart"
    if how.method == "remux":
        options["c:v"] = "copy"
        if facts.codec == "hevc":
            options["tag:v"] = "hvc1"
    else:
        encode = encode or _encode_choice(settings, use_gpu=False)
        if how.deinterlace:
            video = video.filter("bwdif", mode="send_frame", parity="auto", deint="all")
        if (how.width, how.height) != facts.display_size:
            video = video.filter("scale", how.width, how.height)
        video = video.filter("format", "yuv420p")
        options.update(encode.options)
        options.update({"r": f"{how.fps:.6g}", "fps_mode": "cfr"})
    streams = [video]
    if settings.keep_audio and facts.has_audio:
        streams.append(src["a:0"])
        options["c:a"] = "copy" if facts.audio_codec in MP4_AUDIO else "aac"
    out = ffmpeg.output(*streams, str(target), **options)
    out = out.global_args("-nostdin", "-hide_banner", "-v", "error", "-progress", "pipe:1", "-nostats")
    return ffmpeg.compile(out.overwrite_output(), cmd="ffmpeg")


def timeout_for(facts: Probe, settings: NormalizeConfig) -> float:
    """Wall-clock limit of one run: a base plus so much per second of media."""
    return settings.timeout_seconds + settings.timeout_per_media_second * facts.duration_s


def normalize(
    source: Path,
    target: Path,
    facts: Probe,
    settings: NormalizeConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> Normalized:
    """Write ``target`` (MP4, faststart) from ``source``; raise :class:`NormalizeError` on failure.

    With ``hwaccel = "cuda"``, a transcode that fails on the GPU is run again on the CPU.
    """
    how = plan(facts, settings)
    logger.debug("normalize %s: %s (%s)", source, how.method, how.why)
    encode = _encode_choice(settings, use_gpu=True) if how.method == "transcode" else None
    with atomic_target(target) as partial:
        try:
            wall_s = _run(source, partial, facts, settings, how, encode, on_progress)
        except NormalizeError as exc:
            if encode is None or not (encode.hw_decode or encode.encoder == settings.gpu_encoder):
                raise
            logger.warning("normalize %s: failed on the GPU (%s); transcoding again on the CPU", source, exc)
            encode = _encode_choice(settings, use_gpu=False)
            wall_s = _run(source, partial, facts, settings, how, encode, on_progress)
    hw = "cuda" if encode is not None and (encode.hw_decode or encode.encoder == settings.gpu_encoder) else "none"
    return Normalized(
        target, how.method, wall_s, how.why, encode.encoder if encode else "copy", hw, target.stat().st_size
    )


def _run(
    source: Path,
    partial: Path,
    facts: Probe,
    settings: NormalizeConfig,
    how: Plan,
    encode: _Encode | None,
    on_progress: Callable[[Progress], None] | None,
) -> float:
    started = time.monotonic()
    moov_size: int | None = moov_bytes(facts, how, settings)

    def progress(block: dict[str, str]) -> None:
        if on_progress is None:
            return
        out_s = max(0.0, _number(block.get("out_time_us")) / 1e6)
        speed, fps = _number(block.get("speed", "").rstrip("x")), _number(block.get("fps"))
        fraction = 1.0 if block.get("progress") == "end" else min(1.0, out_s / facts.duration_s)
        on_progress(Progress(round(fraction, 4), out_s, speed, fps))

    while True:
        args = build_args(source, partial, facts, settings, how, encode, moov_size=moov_size)
        try:
            result = run_ffmpeg(args, timeout_s=timeout_for(facts, settings), stall_s=settings.stall_seconds,
                                on_progress=progress)
        except MediaTimeout as exc:
            partial.unlink(missing_ok=True)
            raise MediaTimeout(f"normalize: {source}: {how.method} {exc}") from exc
        if moov_size and MOOV_TOO_SMALL in result.stderr_tail:
            logger.info("normalize %s: %d bytes were too few for the index; writing it with +faststart",
                        source, moov_size)
            moov_size = None
            continue
        break
    # ffmpeg 5.1 exits 0 when it cannot write the trailer (the index): that is a failure too.
    if result.returncode != 0 or "Error writing trailer" in result.stderr_tail:
        partial.unlink(missing_ok=True)
        tail = " | ".join(result.stderr_tail.splitlines()[-3:]) or f"exit {result.returncode}"
        raise NormalizeError(f"normalize: {source}: {how.method} failed: {tail}")
    return time.monotonic() - started


def _number(text: str | None) -> float:
    """A number from a ``-progress`` value; 0 for ``N/A`` or nothing."""
    try:
        return float(text or 0)
    except ValueError:
        return 0.0
