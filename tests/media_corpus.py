"""The generated corpus of normalization inputs: each made with ffmpeg or by writing bytes.

Clips are tiny (a second, 320x240) except where size is the point (the 4K one).
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from pathlib import Path

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
SCENE = "testsrc=s={size}:r={fps}:d={seconds}"


def _ffmpeg(*args: str) -> None:
    subprocess.run([*FFMPEG, *args], check=True, timeout=120)


def _scene(size: str = "320x240", fps: int = 25, seconds: float = 1.0) -> list[str]:
    return ["-f", "lavfi", "-i", SCENE.format(size=size, fps=fps, seconds=seconds)]


def h264_mp4(path: Path, *, seconds: float = 1.0, faststart: bool = False, size: str = "320x240") -> Path:
    _ffmpeg(*_scene(size, seconds=seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
            "-pix_fmt", "yuv420p", *(["-movflags", "+faststart"] if faststart else []), str(path))
    return path


def hevc_mkv(path: Path) -> Path:
    _ffmpeg(*_scene(), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
            "-pix_fmt", "yuv420p", str(path))
    return path


def mjpeg_avi(path: Path) -> Path:
    _ffmpeg(*_scene(), "-c:v", "mjpeg", "-q:v", "5", "-f", "avi", str(path))
    return path


def vfr_mkv(path: Path) -> Path:
    """Every fifth frame dropped, timestamps kept: r_frame_rate and avg_frame_rate still say 25."""
    _ffmpeg(*_scene(seconds=2), "-vf", r"select='not(eq(mod(n\,5)\,2))'", "-fps_mode", "vfr",
            "-c:v", "libx264", "-preset", "ultrafast", str(path))
    return path


def rotated_mp4(path: Path) -> Path:
    base = h264_mp4(path.with_name(f".base-{path.name}"))
    _ffmpeg("-i", str(base), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    base.unlink()
    return path


def uhd_mp4(path: Path) -> Path:
    """4K that must be scaled down to max_height (five frames keep it quick)."""
    _ffmpeg(*_scene("3840x2160", fps=5), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            str(path))
    return path


def interlaced_mp4(path: Path) -> Path:
    _ffmpeg(*_scene(), "-flags", "+ildct+ilme", "-c:v", "libx264", "-preset", "ultrafast", "-x264opts", "tff=1",
            "-pix_fmt", "yuv420p", str(path))
    return path


def audio_only_mp4(path: Path) -> Path:
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", "-f", "mp4", str(path))
    return path


def zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_file(path: Path) -> Path:
    path.write_text("meeting notes, not a video\n" * 40)
    return path


def random_bytes(path: Path) -> Path:
    path.write_bytes(random.Random(4).randbytes(64 * 1024))  # seeded: the same bytes every run
    return path


def truncated_mp4(path: Path) -> Path:
    """A faststart MP4 cut at 60 %: its index promises every frame, the data stops early."""
    whole = h264_mp4(path.with_name(f".whole-{path.name}"), seconds=4, faststart=True)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def truncated_mkv(path: Path) -> Path:
    """A Matroska file cut at 60 %: its header (written last, in place) still declares 4 s."""
    whole = path.with_name(f".whole-{path.name}")
    _ffmpeg(*_scene(seconds=4), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "matroska", str(whole))
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def hls_playlist(path: Path, port: int) -> Path:
    path.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
        f"#EXTINF:2.0,\nhttp://127.0.0.1:{port}/segment0.ts\n#EXT-X-ENDLIST\n"
    )
    return path


def ffconcat_list(path: Path, port: int) -> Path:
    path.write_text(f"ffconcat version 1.0\nfile 'tcp://127.0.0.1:{port}'\nduration 2\n")
    return path


def huge_resolution(path: Path) -> Path:
    """A YUV4MPEG2 header that declares 12000x12000 frames, with a few bytes after it."""
    path.write_bytes(b"YUV4MPEG2 W12000 H12000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(4096))
    return path


def unknown_codec_avi(path: Path) -> Path:
    """An AVI whose codec tag names nothing ffmpeg knows."""
    mjpeg_avi(path)
    path.write_bytes(path.read_bytes().replace(b"MJPG", b"QQQQ"))
    return path


def moov_last_mp4(path: Path, *, seconds: float = 2.0) -> bytes:
    """The bytes of an MP4 with its index at the end (what a recorder writes last)."""
    whole = h264_mp4(path.with_name(f".whole-{path.name}"), seconds=seconds)
    data = whole.read_bytes()
    whole.unlink()
    return data


Builder = Callable[[Path], Path]
