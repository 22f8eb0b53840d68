"""Readable results: a busy video's report stays on one screen; names cannot break lines."""

from __future__ import annotations

from vidwatch.results.objects import ObjectEntry
from vidwatch.results.report import summary_line, video_report


def test_a_busy_video_fits_one_screen() -> None:
    labels = {"person": {"tracks": 30, "max_simultaneous": 4, "first_pts": 0.0, "last_pts": 9.8},
              "car": {"tracks": 10, "max_simultaneous": 2, "first_pts": 1.0, "last_pts": 9.0},
              "motion": {"tracks": 0, "max_simultaneous": 1, "first_pts": 0.0, "last_pts": 10.0}}
    summary = {"camera": "cam1", "duration": 10.0, "frames_analyzed": 50, "labels": labels,
               "activity": [[0.0, 10.0]], "processing": {"engine": "onnx", "wall_s": 2.0, "fps": 25.0,
                                                         "worker": "w:1"}, "run": "1"}
    objects = [ObjectEntry("v", t, "cam1", "person" if t <= 30 else "car", 100.0 + t / 5, 101.0 + t / 5, t / 5,
                           1 + t / 5, crop=f"/s/crops/v/track-{t}.jpg", score=0.9) for t in range(1, 41)]
    record = {"camera": "cam1", "state": "done", "start_ts": "100", "path": "/nvr/cam1/a.mp4"}
    text = video_report("v", record, summary, objects, link="http://h:1/browse/videos/v")
    lines = text.splitlines()
    assert len(lines) <= 25, text
    assert "seen      person ×30, car ×10 · motion" in text and "28 more" in text
    assert "person: 0:00.0–0:09.8, at most 4 at once" in text


def test_a_summary_line_is_one_line_whatever_the_names() -> None:
    fields = {"camera": "cam\n1", "duration": "2", "labels": '{"per\\u001b[2Json": {"tracks": 1}}', "activity": "[]"}
    line = summary_line(fields, start_ts=None, link="l")
    assert "\n" not in line and "\x1b" not in line and "cam\\n1" in line and "per\\x1b[2Json ×1" in line
