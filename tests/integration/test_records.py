"""Typed records against the real Redis: VideoRecord, failure labels, partials, typed summaries, metrics."""

from __future__ import annotations

import pytest
import redis

from vidwatch.api.metrics import Metrics
from vidwatch.errors import ResultsUnavailable, SourceError, failure_kind
from vidwatch.results.connection import redis_errors
from vidwatch.results.keys import Keys
from vidwatch.results.partials import LabelTracks, SegmentPartial
from vidwatch.results.records import Records, State
from vidwatch.results.summary import LabelSummary, Summary
from vidwatch.results.writer import ResultWriter
from vidwatch.status import DaemonStatus


def _records(client: redis.Redis, prefix: str) -> Records:
    return Records(client, Keys(prefix), events_maxlen=1000)


def test_record_is_typed_and_follows_its_states(redis_client: redis.Redis, redis_prefix: str) -> None:
    records = _records(redis_client, redis_prefix)
    assert records.record("v1") is None
    records.create("v1", {"path": "/nvr/cam1/a.mp4", "camera": "cam1", "size": 42}, path="/nvr/cam1/a.mp4")
    assert records.transition("v1", State.QUEUED, {"published": "0"})
    record = records.record("v1")
    assert record is not None
    assert (record.state, record.camera, record.size, record.published) == (State.QUEUED, "cam1", 42, False)
    assert {"seen", "queued"} <= set(record.timestamps) and not record.terminal


def test_a_failure_stores_its_stage_and_kind(redis_client: redis.Redis, redis_prefix: str) -> None:
    records = _records(redis_client, redis_prefix)
    keys = Keys(redis_prefix)
    records.create("v1", {}, path="/a.mp4")
    exc = SourceError("probe: /a.mp4: empty file (0 bytes)", kind="empty")
    assert records.fail("v1", str(exc), path="/a.mp4", stage="probe", kind=failure_kind(exc))
    record = records.record("v1")
    assert record is not None and (record.state, record.failure_stage, record.failure_kind) == (
        State.FAILED, "probe", "empty_file")
    event = redis_client.xrange(keys.events)[-1][1]
    assert (event["type"], event["failure_stage"], event["failure_kind"]) == ("failed", "probe", "empty_file")


def test_a_rerun_clears_the_failure(redis_client: redis.Redis, redis_prefix: str) -> None:
    records = _records(redis_client, redis_prefix)
    records.create("v1", {}, path="/a.mp4")
    records.fail("v1", "probe: /a.mp4: not a video", path="/a.mp4", stage="probe", kind="not_a_video")
    assert records.rerun("v1", path="/a.mp4") == 2
    record = records.record("v1")
    assert record is not None
    assert (record.state, record.run, record.error, record.failure_stage, record.failure_kind) == (
        State.SEEN, 2, "", "", "")


def test_typed_partials_and_summary_go_through_the_writer(redis_client: redis.Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    records = _records(redis_client, redis_prefix)
    writer = ResultWriter(redis_client, keys, events_maxlen=1000, detections_maxlen=1000, summaries_maxlen=1000)
    records.create("v1", {"camera": "cam1"}, path="/a.mp4")
    part = SegmentPartial(0.0, 4.0, 20, active_pts=(1.0,), labels={"car": LabelTracks((1,), 1, 1.0, 1.0)},
                          worker="w:1")
    assert writer.write_segment("v1", 0, "cam1", 1000.0, [], partial=part, segments=1).fire
    assert writer.segment_partials("v1") == {0: part}
    summary = Summary("v1", "/a.mp4", "cam1", 4.0, 20, {"car": LabelSummary(1, 1, 1.0, 1.0)}, ((1.0, 1.2),))
    summary_id = writer.write_video_summary(summary, 1000.0)
    assert summary_id is not None
    stored = redis_client.xrange(keys.summaries)[-1][1]
    assert Summary.from_fields(stored).labels == summary.labels
    assert redis_client.zscore(keys.index_label("car"), "v1") == 1001.0


def test_redis_errors_become_retryable_results_errors() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    with pytest.raises(ResultsUnavailable) as caught, redis_errors("records: get v1"):
        client.hgetall("x")
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


def test_metrics_count_failures_by_the_stored_stage_and_kind(redis_client: redis.Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    records = _records(redis_client, redis_prefix)
    metrics = Metrics(redis_client, keys, DaemonStatus, lambda: "broker down")
    records.create("v1", {}, path="/a.mp4")
    records.create("v2", {}, path="/b.mp4")
    records.fail("v1", "it broke in some new way", path="/a.mp4", stage="normalize", kind="truncated")
    records.fail("v2", "probe: /b.mp4: not a video (a text file)", path="/b.mp4", stage="probe", kind="not_a_video")
    metrics.publish_confirmed(0.02)
    text = metrics.scrape().decode()
    assert 'vidwatch_failures_total{reason="truncated",stage="normalize"} 1.0' in text
    assert 'vidwatch_failures_total{reason="not_a_video",stage="probe"} 1.0' in text
    assert "vidwatch_publish_seconds_count 1.0" in text
