"""`vidwatch up` as a user runs it: real Redis, RabbitMQ and ffmpeg; files dropped into the inbox."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.helpers import moving_square_clip, wait_for
from vidwatch.results.keys import Keys

pytestmark = pytest.mark.e2e


def _vidwatch() -> str:
    return str(Path(sys.executable).with_name("vidwatch"))


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _summaries(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    return [fields for _, fields in client.xrange(keys.summaries)]


def _write_slowly(data: bytes, target: Path, chunks: int, pause_s: float) -> None:
    """A recorder that reopens the file for every chunk, pausing in between."""
    step = -(-len(data) // chunks)
    for start in range(0, len(data), step):
        with open(target, "ab") as handle:
            handle.write(data[start : start + step])
        time.sleep(pause_s)  # the writer's pace, not a wait for the product


def test_dropped_files_become_exactly_one_summary_each(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    keys = Keys(site["prefix"])
    inbox: Path = site["inbox"]
    sources = tmp_path / "sources"
    lobby = moving_square_clip(sources / "lobby.mp4")
    slow = moving_square_clip(sources / "slow.ts", fmt="mpegts")
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115 - closed in finally
    env = {**os.environ, "VIDWATCH_WATCH__SETTLE_SECONDS": "2"}
    up = subprocess.Popen(
        [_vidwatch(), "up", "-c", str(site["config"])], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        wait_for(lambda: _ready(site["port"]), timeout_s=60, what="/readyz to answer 200 (worker seen)")

        (inbox / "cam1").mkdir()
        shutil.copy(lobby, inbox / "cam1" / "lobby.mp4")
        (inbox / "cam2").mkdir()
        _write_slowly(slow.read_bytes(), inbox / "cam2" / "slow.ts", chunks=10, pause_s=1.0)  # over 10 s

        wait_for(lambda: len(_summaries(redis_client, keys)) >= 2, timeout_s=90, what="two summaries")
        summaries = {s["camera"]: s for s in _summaries(redis_client, keys)}
        assert sorted(summaries) == ["cam1", "cam2"]

        for camera in ("cam1", "cam2"):
            summary = summaries[camera]
            assert float(summary["duration"]) == pytest.approx(6.0, abs=0.1), camera
            assert int(summary["frames_analyzed"]) == 30, camera  # 6 s at 5 fps: the whole file
            activity = json.loads(summary["activity"])
            assert len(activity) == 1, (camera, activity)
            start, end = activity[0]
            assert 1.6 <= start <= 2.4 and 3.6 <= end <= 4.8, (camera, activity)
            labels = json.loads(summary["labels"])
            # motion marks activity and gates the engine; by default it makes no tracks, crops or objects (issue 17)
            assert "motion" in labels and labels["motion"]["tracks"] == 0
            assert set(json.loads(summary["processing"])) >= {"wall_s", "fps", "engine", "worker", "batch_fill"}
            for thumbnail in json.loads(summary["thumbnails"]):
                assert Path(thumbnail).is_file()
            assert Path(summary["timeline"]).is_file()
            assert "tracks" not in summary  # no track, so no crop

        video_id = summaries["cam1"]["video_id"]
        events = [f["type"] for _, f in redis_client.xrange(keys.events) if f["video_id"] == video_id]
        assert events == ["detected", "normalized", "queued", "started", "done"]
        record = redis_client.hgetall(keys.video(video_id))
        assert record["state"] == "done" and record["summary_id"]
        assert redis_client.zscore(keys.index_camera("cam1"), video_id) is not None
        detections = redis_client.xrange(keys.detections("cam1"))
        assert detections and {d["video_id"] for _, d in detections} == {video_id}
        assert lobby.read_bytes() == (inbox / "cam1" / "lobby.mp4").read_bytes()  # the source is untouched
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            code = up.wait(timeout=30)  # stops cleanly within 30 s
        finally:
            if up.poll() is None:
                up.kill()
            log.close()
    assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
    assert len(_summaries(redis_client, keys)) == 2  # nothing processed twice
