"""Redis content for the API tests: done, failed and in-flight videos written the product's way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import redis

from vidwatch.api.server import ApiServer, readiness_checks
from vidwatch.config import Config, load_config
from vidwatch.daemon import Daemon
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.results.writer import ResultWriter

START_TS = 1_764_000_000.0  # 2025-11-24 16:00 UTC


@dataclass
class Seeded:
    done: str
    done_cam2: str
    failed: str
    queued: str


def seed(config: Config, client: redis.Redis) -> Seeded:
    """Two done videos (cam1 with a person, cam2 motion only), one failed, one queued."""
    keys = Keys(config.redis.prefix)
    records = Records(client, keys, events_maxlen=1000)
    writer = ResultWriter(client, keys, events_maxlen=1000, detections_maxlen=1000, summaries_maxlen=1000)
    thumbs = config.paths.state_dir / "thumbnails"
    thumbs.mkdir(parents=True, exist_ok=True)

    def done(video_id: str, camera: str, start: float, labels: dict[str, float]) -> None:
        path = f"/nvr/{camera}/{video_id}.mp4"
        records.create(video_id, {"path": path, "camera": camera, "start_ts": start, "probe_duration_s": 6.0},
                       path=path)
        records.transition(video_id, "normalizing", {"spool_path": f"/spool/{video_id}.mp4"}, event="normalized",
                           path=path, detail={"method": "remux", "seconds": 0.4})
        records.transition(video_id, "queued", {"published": "1"}, event="queued", path=path)
        records.transition(video_id, "processing", {"worker": "w1:1"}, event="started", path=path)
        image = np.full((90, 160, 3), 64, np.uint8)
        cv2.rectangle(image, (40, 20), (80, 60), (0, 255, 0), 2)
        thumb = thumbs / f"{video_id}.jpg"
        cv2.imwrite(str(thumb), image)
        summary = {
            "video_id": video_id, "path": path, "camera": camera, "duration": "6.000", "frames_analyzed": "30",
            "labels": {name: {"tracks": 1, "max_simultaneous": 1, "first_pts": first, "last_pts": first + 2}
                       for name, first in labels.items()},
            "activity": [[2.0, 4.2]],
            "thumbnails": [str(thumb)],
            "processing": {"wall_s": 1.5, "fps": 20.0, "engine": "opencv", "worker": "w1:1"},
        }
        writer.write_summary(video_id, path, camera, start, summary, labels)

    done("a" * 20, "cam1", START_TS, {"motion": 2.0, "person": 2.4})
    done("b" * 20, "cam2", START_TS + 3600, {"motion": 2.0})
    records.create("c" * 20, {"path": "/nvr/cam1/broken.mp4", "camera": "cam1"}, path="/nvr/cam1/broken.mp4")
    records.fail("c" * 20, "normalize: /nvr/cam1/broken.mp4: truncated (moov atom not found)",
                 path="/nvr/cam1/broken.mp4", stage="normalize", kind="truncated")
    records.create("d" * 20, {"path": "/nvr/cam3/wait.mp4", "camera": "cam3"}, path="/nvr/cam3/wait.mp4")
    records.transition("d" * 20, "queued", {"published": "1"}, event="queued", path="/nvr/cam3/wait.mp4")
    return Seeded("a" * 20, "b" * 20, "c" * 20, "d" * 20)


def thumbnail_path(config: Config, video_id: str) -> Path:
    return config.paths.state_dir / "thumbnails" / f"{video_id}.jpg"


@dataclass
class Served:
    url: str
    daemon: Daemon
    config: Config
    seeded: Seeded


@contextmanager
def serve(site: dict[str, Any], *, token: str | None, run_daemon: bool = True) -> Iterator[Served]:
    """The daemon (started, its loop in a thread) and its API on the site's port, seeded with videos."""
    environ = {"VIDWATCH_API__TOKEN": token} if token else {}
    config = load_config(site["config"], environ=environ)
    daemon = Daemon(config)
    seeded = seed(config, daemon.client)
    api = ApiServer(config, daemon, readiness_checks(config, daemon))
    api.start()
    thread = threading.Thread(target=daemon.run, daemon=True)
    if run_daemon:
        daemon.start()
        thread.start()
    try:
        host, port = api.address
        yield Served(f"http://{host}:{port}", daemon, config, seeded)
    finally:
        daemon.stop_event.set()
        if run_daemon:
            thread.join(timeout=10)
            daemon.stop()
        api.stop()
