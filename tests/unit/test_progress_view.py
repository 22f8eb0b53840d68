"""Progress as measured: a bar with frames where workers measured it, nothing where they have not."""

from __future__ import annotations

import io

from rich.console import Console

from vidwatch.api.jobs import job_of
from vidwatch.api.page import render_panel
from vidwatch.ops.queues import QueueDepth
from vidwatch.ops.snapshot import Snapshot
from vidwatch.ops.status_view import render
from vidwatch.status import DaemonStatus


def snapshot() -> Snapshot:
    rows = [
        {"video_id": "measured", "path": "/nvr/a.mp4", "camera": "cam1", "state": "processing", "since": None,
         "progress": 0.25, "frames": [30, 120], "worker": "w"},
        {"video_id": "waiting", "path": "/nvr/b.mp4", "camera": "cam1", "state": "queued", "since": None,
         "progress": None, "frames": None, "worker": ""},
    ]
    return Snapshot(taken_at=1_700_000_000.0, backlog={"queued": 1, "processing": 1}, done_indexed=0,
                    queues={"cpu": QueueDepth("cpu", 1, 1)}, workers=[], in_flight=rows, failures=[], recent=[])


def test_the_page_and_status_show_only_measured_progress() -> None:
    html = render_panel(snapshot(), DaemonStatus(settling=0, observers={}, root_errors={}))
    assert html.count("<progress") == 1 and '<progress max="100" value="25">' in html and "30/120 frames" in html
    console = Console(file=io.StringIO(), width=200, force_terminal=False, color_system=None)
    console.print(render(snapshot()))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    measured = next(line for line in out.splitlines() if "measured" in line)
    waiting = next(line for line in out.splitlines() if "waiting" in line)
    assert "━" in measured and "━" not in waiting and "30/120 frames" in out


def test_a_job_shows_its_frames_per_segment() -> None:
    record = {"state": "processing", "path": "/nvr/a.mp4", "camera": "cam1", "frames_done": "60",
              "frames_planned": "200", "frames_done_0": "50", "frames_planned_0": "100", "frames_done_1": "10",
              "frames_planned_1": "100"}
    job = job_of("v", record)
    assert (job.progress, job.frames_done, job.frames_planned) == (0.3, 60, 200)
    assert [(s.segment, s.frames_done, s.frames_planned) for s in job.segments] == [(0, 50, 100), (1, 10, 100)]
    queued = job_of("v", {"state": "queued", "path": "/nvr/a.mp4"})
    assert (queued.progress, queued.frames_done, queued.segments) == (None, None, [])
