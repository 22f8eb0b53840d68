"""Helpers shared by the tests: clips made with ffmpeg, waiting on conditions with a deadline."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar, cast

import pytest

from vidwatch.results.records import Records

T = TypeVar("T")


def missing(what: str, how: str = "", *, ci_has_it: bool = True) -> NoReturn:
    """The one way a test says a service or tool is absent: skip locally, fail in CI (where ``CI`` is set).

    ``how``: what installs it, shown in CI's failure (``"apt-get install systemd"``).
    ``ci_has_it=False``: hardware a CI runner is not expected to have (an NVIDIA GPU): skipped there too.
    """
    if os.environ.get("CI") and ci_has_it:
        pytest.fail(f"{what} is required in CI" + (f" ({how})" if how else ""))
    pytest.skip(f"{what} is not available")


def stored(records: Records, video_id: str) -> dict[str, str]:
    """The video's hash as Redis holds it, field by field (``{}`` when absent): the stored contract."""
    return cast(dict[str, str], records.client.hgetall(records.keys.video(video_id)))


def wait_for(condition: Callable[[], T], *, timeout_s: float, what: str, interval_s: float = 0.1) -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def moving_square_clip(
    path: Path,
    *,
    seconds: float = 6.0,
    move_from_s: float = 2.0,
    move_to_s: float = 4.0,
    size: str = "320x240",
    fps: int = 25,
    codec: str = "libx264",
    fmt: str | None = None,
) -> Path:
    """A grey scene where a white 40x40 square is still, moves from ``move_from_s`` to ``move_to_s``, then rests."""
    span = move_to_s - move_from_s
    x = f"if(lt(t,{move_from_s}),20,if(lt(t,{move_to_s}),20+(t-{move_from_s})*{200 / span},220))"
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [
        "ffmpeg", "-v", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"color=c=0x404040:s={size}:d={seconds}:r={fps}",
        "-f", "lavfi", "-i", f"color=c=white:s=40x40:r={fps}",
        "-filter_complex", f"[0][1]overlay=x='{x}':y=100:shortest=1,format=yuv420p",
        "-c:v", codec, "-g", str(fps),
    ]
    if codec == "libx264":
        args += ["-preset", "veryfast"]
    if fmt:
        args += ["-f", fmt]
    subprocess.run([*args, str(path)], check=True, timeout=60)
    return path
