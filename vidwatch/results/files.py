"""The files a video's analysis leaves on disk, found by name (no folder listing), and their removal.

| file | where (``<state_dir>`` is ``[paths] state_dir``) |
|---|---|
| busiest-frame thumbnail | ``<state_dir>/thumbnails/<id>.jpg``, or ``<id>-<k>.jpg`` per segment ``k`` of a cut video |
| best crop per track | ``<state_dir>/crops/<id>/`` (the folder) |
| timeline | ``<state_dir>/timelines/<id>.png`` |
| condensed clip | ``<state_dir>/condensed/<id>.mp4`` |
| sidecar | ``<[results] sidecar_dir>/<camera>/<id>.json`` |

The names are the ones the worker writes (``tasks/video.py``, ``tasks/summary.py``,
``results/sidecar.py``); a folder of a million thumbnails is never listed.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from vidwatch.config import Config
from vidwatch.results.sidecar import sidecar_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundFiles:
    paths: tuple[Path, ...]  # files and folders that exist
    count: int  # files (a folder counts its files)
    bytes: int


def candidates(config: Config, video_id: str, camera: str, segments: int) -> list[Path]:
    """Every path the video's files may have (existing or not)."""
    state = config.paths.state_dir
    thumbnails = state / "thumbnails"
    out = [thumbnails / f"{video_id}.jpg", *(thumbnails / f"{video_id}-{k}.jpg" for k in range(segments)),
           state / "crops" / video_id, state / "timelines" / f"{video_id}.png",
           state / "condensed" / f"{video_id}.mp4"]
    sidecar = sidecar_path(config, video_id, camera or "default")
    if sidecar is not None:
        out.append(sidecar)
    return out


def find_files(config: Config, video_id: str, camera: str, segments: int) -> FoundFiles:
    """The video's files that exist, how many and how big."""
    found: list[Path] = []
    count = size = 0
    for path in candidates(config, video_id, camera, segments):
        try:
            if path.is_dir():
                inside = [p for p in path.rglob("*") if p.is_file()]
                count += len(inside)
                size += sum(p.stat().st_size for p in inside)
            elif path.is_file():
                count += 1
                size += path.stat().st_size
            else:
                continue
        except OSError:
            continue
        found.append(path)
    return FoundFiles(tuple(found), count, size)


def remove_files(found: FoundFiles) -> None:
    """Delete what :func:`find_files` found (a file gone meanwhile is not an error)."""
    for path in found.paths:
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("retention: %s: cannot delete (%s); next pass", path, exc.strerror)
