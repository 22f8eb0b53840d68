"""JSON sidecars: where they go, what they hold, written whole."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vidwatch.config import Config, ResultsConfig
from vidwatch.engines.base import Detection
from vidwatch.results.sidecar import read_sidecar, sidecar_path, write_sidecar
from vidwatch.results.writer import FrameResult

SUMMARY = {
    "video_id": "v1",
    "camera": "cam1",
    "duration": "6.000",
    "labels": {"person": {"tracks": 1, "max_simultaneous": 1, "first_pts": 0.2, "last_pts": 0.4}},
    "activity": [[0.2, 0.6]],
    "processing": json.dumps({"engine": "opencv"}),  # as read back from the stream: a JSON string
}
FRAMES = [
    FrameResult(1, 0.2, [Detection("person", 0.9, (1.0, 2.0, 3.0, 4.0), 7)]),
    FrameResult(2, 0.4, [Detection("person", 0.8, (2.0, 2.0, 4.0, 4.0), 7)]),
]


def _config(folder: Path | None) -> Config:
    return Config(results=ResultsConfig(sidecar_dir=folder))


def test_no_sidecar_unless_configured(tmp_path: Path) -> None:
    assert write_sidecar(_config(None), "v1", SUMMARY, FRAMES) is None
    assert list(tmp_path.iterdir()) == []


def test_the_sidecar_holds_summary_and_detections(tmp_path: Path) -> None:
    path = write_sidecar(_config(tmp_path), "v1", SUMMARY, FRAMES, start_ts=1000.0)
    assert path == tmp_path / "cam1" / "v1.json" == sidecar_path(_config(tmp_path), "v1", "cam1")
    doc = read_sidecar(path)
    assert (doc["schema"], doc["video_id"]) == ("1", "v1")
    assert doc["summary"]["labels"]["person"]["tracks"] == 1
    assert doc["summary"]["processing"] == {"engine": "opencv"}
    assert doc["detections"] == [
        {"frame": 1, "pts": 0.2, "ts": 1000.2,
         "detections": [{"label": "person", "score": 0.9, "box": [1.0, 2.0, 3.0, 4.0], "track": 7}]},
        {"frame": 2, "pts": 0.4, "ts": 1000.4,
         "detections": [{"label": "person", "score": 0.8, "box": [2.0, 2.0, 4.0, 4.0], "track": 7}]},
    ]
    assert [p.name for p in path.parent.iterdir()] == ["v1.json"]  # no temporary file left


def test_stream_entries_are_accepted_and_a_rewrite_replaces_the_file(tmp_path: Path) -> None:
    entry = {"video_id": "v1", "frame": "1", "pts": "0.200", "ts": "1000.200",
             "detections": json.dumps([{"label": "car", "score": 0.5, "box": [0, 0, 1, 1], "track": 1}])}
    path = write_sidecar(_config(tmp_path), "v1", SUMMARY, FRAMES)
    assert path is not None
    inode = os.stat(path).st_ino
    write_sidecar(_config(tmp_path), "v1", {**SUMMARY, "run": "2"}, [entry])
    doc = read_sidecar(path)
    assert doc["summary"]["run"] == "2"
    assert doc["detections"][0]["detections"][0]["label"] == "car"
    assert os.stat(path).st_ino != inode  # renamed into place, not rewritten in place


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path) -> None:
    path = write_sidecar(_config(tmp_path), "v1", SUMMARY, FRAMES)
    assert path is not None
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_sidecar(_config(tmp_path), "v1", {**SUMMARY, "bad": object()}, FRAMES)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["v1.json"]
