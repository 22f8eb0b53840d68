"""`vidwatch up` with a model: the onnx engine, the motion gate and analyzers reach Redis."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from tests.helpers import moving_square_clip, wait_for
from tests.models import square_detector
from vidwatch.results.keys import Keys

pytestmark = pytest.mark.e2e


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_onnx_engine_with_motion_gate_and_analyzers(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    model = square_detector(tmp_path / "models" / "squares.onnx")
    config: Path = site["config"]
    config.write_text(
        config.read_text().replace("[analysis]\n", "[analysis]\nmotion_gate = true\n")
        + f"""
[engine]
kind = "auto"
model = "{model}"
batch = 4

[[analyzers]]
type = "ground"
cameras = {{ cam1 = [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]] }}

[[analyzers]]
type = "sharpness"
min_duration_s = 1.0
"""
    )
    keys = Keys(site["prefix"])
    clip = moving_square_clip(tmp_path / "sources" / "lobby.mp4")
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115 - closed in finally
    up = subprocess.Popen(
        [str(Path(sys.executable).with_name("vidwatch")), "up", "-c", str(config)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
    )
    try:
        wait_for(lambda: _ready(site["port"]), timeout_s=60, what="/readyz to answer 200 (worker seen)")
        (site["inbox"] / "cam1").mkdir()
        shutil.copy(clip, site["inbox"] / "cam1" / "lobby.mp4")
        wait_for(lambda: redis_client.xlen(keys.summaries) >= 1, timeout_s=90, what="the summary")
        ((_, summary),) = redis_client.xrange(keys.summaries)
        assert json.loads(summary["processing"])["engine"] == "onnx"
        labels = json.loads(summary["labels"])
        assert list(labels) == ["square"] and labels["square"]["tracks"] == 1
        # the gate lets through only the frames where the square moves (2 s to 4 s)
        start, end = json.loads(summary["activity"])[0]
        assert 1.8 <= start <= 2.4 and 3.6 <= end <= 4.6
        analyzers = json.loads(summary["analyzers"])
        assert analyzers["ground"]["homography"] is True and analyzers["ground"]["projected"] >= 8
        assert len(analyzers["sharpness"]["frozen"]) == 2  # a generated clip's still stretches
        entries = redis_client.xrange(keys.detections("cam1"))
        assert len(entries) >= 8
        for _, entry in entries:
            (det,) = json.loads(entry["detections"])
            x1, _, x2, y2 = det["box"]
            assert det["label"] == "square"
            assert det["world"] == pytest.approx([(x1 + x2) / 200, y2 / 100], abs=0.002)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            code = up.wait(timeout=30)
        finally:
            if up.poll() is None:
                up.kill()
            log.close()
    assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
