"""Objects, crops and a playable spooled copy for the seeded API videos (tests.api_fixtures)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tests.api_fixtures import START_TS, Served
from vidwatch.results.objects import ObjectEntry, ObjectWriter


@dataclass
class SeededObjects:
    people: list[str]  # object ids of cam1's people, newest first
    car: str
    clip: Path


def spool_clip(path: Path, seconds: float = 6.0) -> Path:
    """An H.264 MP4 (faststart) like the spool holds: a test pattern, one keyframe a second."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", f"testsrc=s=320x240:d={seconds}:r=25",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25", "-movflags", "+faststart",
         str(path)],
        check=True, timeout=60,
    )
    return path


def seed_objects(api: Served) -> SeededObjects:
    """cam1's done video: three people (tracks 1-3) and a car (track 4), crops for tracks 1 and 4; its spool copy."""
    config, client, keys = api.config, api.daemon.client, api.daemon.keys
    video_id = api.seeded.done
    crops = config.paths.state_dir / "crops" / video_id
    crops.mkdir(parents=True, exist_ok=True)
    objects = []
    for track, label, start in ((1, "person", 0.5), (2, "person", 2.4), (3, "person", 3.0), (4, "car", 1.0)):
        crop = None
        if track in (1, 4):
            crop = crops / f"track-{track}.jpg"
            cv2.imwrite(str(crop), np.full((64, 32, 3), 40 * track, np.uint8))
        objects.append(ObjectEntry(video_id, track, "cam1", label, START_TS + start, START_TS + start + 1.5, start,
                                   start + 1.5, crop=str(crop) if crop else None, score=0.8 if crop else None,
                                   box=(10.0, 10.0, 42.0, 74.0) if crop else None))
    ObjectWriter(client, keys).write(video_id, "cam1", objects)
    clip = spool_clip(config.paths.spool / f"{video_id}.mp4")
    client.hset(keys.video(video_id), "spool_path", str(clip))
    return SeededObjects([f"{video_id}:3", f"{video_id}:2", f"{video_id}:1"], f"{video_id}:4", clip)
