"""Rendering without services: failure reasons, timelines, the status panel's escaping."""

from __future__ import annotations

import pytest

from vidwatch.api.metrics import failure_labels
from vidwatch.api.page import render_panel
from vidwatch.api.videos import timeline_svg
from vidwatch.ops.queues import QueueDepth
from vidwatch.ops.snapshot import Snapshot

FAILURES = [  # failure text, (stage, reason)
    ("probe: /nvr/a.mp4: not a video (no video stream)", ("probe", "not_a_video")),
    ("probe: /nvr/a.mkv: empty file after 3 probes", ("probe", "empty_file")),
    ("normalize: cam1/a.mp4: truncated (moov atom not found)", ("normalize", "truncated")),
    ("analyze: /nvr/a.mp4: time limit exceeded", ("analyze", "timeout")),
    ("ingest: /nvr/a.mp4: source disappeared before it was normalized", ("ingest", "source_gone")),
    ("ingest: /nvr/a.mp4: source changed before it was normalized", ("ingest", "source_changed")),
    ("analyze: Redis unreachable after 5 retries", ("analyze", "unreachable")),
    ("analyze: /nvr/a.mp4: internal error: KeyError('x')", ("analyze", "internal")),
    ("who knows", ("other", "other")),
    ("", ("other", "other")),
]


@pytest.mark.parametrize(("text", "expected"), FAILURES)
def test_failure_labels_come_from_small_fixed_sets(text: str, expected: tuple[str, str]) -> None:
    assert failure_labels(text) == expected


@pytest.mark.parametrize(
    "summary",
    [
        {},
        {"duration": "0", "labels": "not json", "activity": "nope"},
        {"duration": 6.0, "labels": {"person": None, "car": {"first_pts": "x"}}, "activity": [[1, 2], [3], "a"]},
        {"duration": 6.0, "labels": {"<b>": {"first_pts": 1.0, "last_pts": 9.0}}, "activity": [[-1, 99]]},
    ],
)
def test_timeline_tolerates_odd_summaries(summary: dict) -> None:
    svg = timeline_svg(summary)
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "<b>" not in svg


def test_the_panel_escapes_whatever_the_records_hold() -> None:
    evil = '<script>alert("x")</script>'
    snap = Snapshot(
        taken_at=1_700_000_000.0,
        backlog={"seen": 0, "normalizing": 0, "queued": 1, "processing": 0},
        done_indexed=1,
        queues={"cpu": QueueDepth("cpu", 3, 1)},
        workers=[{"name": evil, "queues": ["cpu"], "engine": "opencv", "pid": "1"}],
        in_flight=[{"video_id": "v1", "path": evil, "camera": evil, "state": "queued", "since": None,
                    "progress": 0.3, "worker": ""}],
        failures=[{"event_id": "1-0", "video_id": "v2", "path": evil, "reason": evil, "ts": 1_699_999_990.0}],
        recent=[{"video_id": "v3", "camera": evil, "path": evil, "state": "done", "start_ts": 1.0}],
    )
    html = render_panel(snap, {"settling": 0, "observers": {evil: False}, "root_errors": {}})
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") >= 6
    assert '<progress max="100" value="30">' in html and "10 s ago" in html
