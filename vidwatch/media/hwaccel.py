"""Whether this ffmpeg can decode on NVDEC and encode on NVENC here, found out once per process.

Being listed by ``ffmpeg -hwaccels`` / ``-encoders`` only means ffmpeg was built with
it; whether it works needs a driver and a GPU that has the unit (an H100 has NVDEC
but no NVENC). So each side is tried on a tiny generated clip, and the answer cached.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from vidwatch.errors import MediaTimeout
from vidwatch.media.run import run_ffmpeg

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CudaSupport:
    """What of NVDEC (``decode``) and NVENC with a given encoder (``encode``) works, and why not."""

    decode: bool
    encode: bool
    why: str


_lock = threading.Lock()
_cache: dict[str, CudaSupport] = {}


def cuda_support(encoder: str) -> CudaSupport:
    """Try NVDEC and ``encoder`` once (a second each at most) and remember the answer."""
    with _lock:
        if encoder not in _cache:
            _cache[encoder] = _check(encoder)
            logger.info("hwaccel cuda: decode=%s encode(%s)=%s %s", _cache[encoder].decode, encoder,
                        _cache[encoder].encode, _cache[encoder].why)
        return _cache[encoder]


def _ffmpeg(*args: str) -> tuple[bool, str]:
    try:
        result = run_ffmpeg(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *args], timeout_s=CHECK_TIMEOUT_S)
    except (MediaTimeout, FileNotFoundError) as exc:
        return False, str(exc)
    first = result.stderr_tail.splitlines()[0] if result.stderr_tail else ""
    return result.returncode == 0, first.split("] ", 1)[-1]


def _check(encoder: str) -> CudaSupport:
    ok, listing = _listing("-hwaccels")
    if not ok or "cuda" not in listing.split():
        return CudaSupport(False, False, "this ffmpeg was built without CUDA")
    reasons = []
    with tempfile.TemporaryDirectory(prefix="vidwatch-hwcheck-") as tmp:
        sample = Path(tmp) / "sample.mp4"
        made, why = _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=256x144:r=10:d=0.5", "-c:v", "libx264",
                            "-pix_fmt", "yuv420p", "-y", str(sample))
        decode = False
        if made:
            decode, why = _ffmpeg("-xerror", "-hwaccel", "cuda", "-i", f"file:{sample}", "-f", "null", "-")
        if not decode:
            reasons.append(f"NVDEC: {why or 'unavailable'}")
    encode, why = _ffmpeg("-f", "lavfi", "-i", "color=s=256x144:r=10:d=0.5", "-c:v", encoder, "-f", "null", "-")
    if not encode:
        reasons.append(f"{encoder}: {why or 'unavailable'}")
    return CudaSupport(decode, encode, "; ".join(reasons) or "NVDEC and NVENC work")


def _listing(flag: str) -> tuple[bool, str]:
    try:
        result = run_ffmpeg(["ffmpeg", "-hide_banner", flag], timeout_s=CHECK_TIMEOUT_S)
    except (MediaTimeout, FileNotFoundError) as exc:
        return False, str(exc)
    return result.returncode == 0, result.stdout.decode("utf-8", "replace")
