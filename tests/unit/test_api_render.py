"""Rendering without services: failure reasons, timelines, the status panel's escaping."""

from __future__ import annotations

import pytest

from vidwatch.api.metrics import Metrics
from vidwatch.api.page import render_panel
from vidwatch.api.videos import timeline_svg
from vidwatch.errors import ResultsUnavailable, SourceError, failure_kind
from vidwatch.ops.queues import QueueDepth
from vidwatch.ops.snapshot import Snapshot
from vidwatch.results.keys import Keys
from vidwatch.status import DaemonStatus

FAILURES = [  # where it failed, what was raised, the (stage, reason) labels /metrics counts it under
    ("probe", SourceError("probe: /nvr/a.mp4: not a video (no video stream)", kind="no_video_stream"),
     ("probe", "not_a_video")),
    ("probe", SourceError("probe: /nvr/a.mkv: empty file after 3 probes", kind="empty"), ("probe", "empty_file")),
    ("normalize", SourceError("normalize: cam1/a.mp4: truncated (moov atom not found)", kind="truncated"),
     ("normalize", "truncated")),
    ("analyze", TimeoutError("analyze: /nvr/a.mp4: time limit exceeded"), ("analyze", "timeout")),
    ("ingest", SourceError("ingest: /nvr/a.mp4: source disappeared before it was normalized", kind="gone"),
     ("ingest", "source_gone")),
    ("ingest", SourceError("ingest: /nvr/a.mp4: source changed before it was normalized", kind="changed"),
     ("ingest", "source_changed")),
    ("analyze", ResultsUnavailable("analyze: Redis unreachable after 5 retries"), ("analyze", "unreachable")),
    ("analyze", KeyError("x"), ("analyze", "internal")),
    (None, None, ("other", "other")),  # a failed event and record without labels (written before they existed)
]


class _NoLabelsStored:
    """The Redis a Metrics needs here: an empty events stream, and records without failure labels."""

    def xrevrange(self, *_args: object, **_kwargs: object) -> list[object]:
        return []

    def hmget(self, _key: str, names: list[str]) -> list[None]:
        return [None] * len(names)


@pytest.mark.parametrize(("stage", "exc", "expected"), FAILURES)
def test_failure_labels_come_from_the_stored_fields(stage: str | None, exc: Exception | None,
                                                    expected: tuple[str, str]) -> None:
    # the fields Records.fail stores in the record and its failed event
    event = {"type": "failed", "video_id": "v1"}
    if stage is not None and exc is not None:
        event.update(failure_stage=stage, failure_kind=failure_kind(exc))
    metrics = Metrics(_NoLabelsStored(), Keys("t"), DaemonStatus, lambda: "no broker")  # type: ignore[arg-type]
    metrics._count(event)
    counted = {(sample.labels["stage"], sample.labels["reason"]): sample.value
               for family in metrics.failures.collect() for sample in family.samples
               if sample.name == "vidwatch_failures_total"}
    assert counted == {expected: 1.0}


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
    html = render_panel(snap, DaemonStatus(settling=0, observers={evil: False}, root_errors={}))
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") >= 6
    assert '<progress max="100" value="30">' in html and "10 s ago" in html
