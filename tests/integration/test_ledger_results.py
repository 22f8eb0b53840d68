"""Records, claims and result writes against the real Redis."""

from __future__ import annotations

import json

import redis

from tests.helpers import stored
from vidwatch.engines.base import Detection
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.results.writer import FrameResult, ResultWriter


def _records(client: redis.Redis, prefix: str) -> Records:
    return Records(client, Keys(prefix), events_maxlen=1000)


def _events(client: redis.Redis, keys: Keys) -> list[str]:
    return [fields["type"] for _, fields in client.xrange(keys.events)]


def test_claim_is_won_once(redis_client: redis.Redis, redis_prefix: str) -> None:
    records = _records(redis_client, redis_prefix)
    assert records.create("v1", {"path": "/a.mp4"}, path="/a.mp4") is True
    assert records.create("v1", {"path": "/copy-of-a.mp4"}, path="/copy-of-a.mp4") is False
    assert stored(records, "v1")["path"] == "/a.mp4"
    assert records.inflight() == {"v1"}
    assert _events(redis_client, Keys(redis_prefix)) == ["detected"]


def test_states_only_move_forward(redis_client: redis.Redis, redis_prefix: str) -> None:
    records = _records(redis_client, redis_prefix)
    records.create("v1", {}, path="/a.mp4")
    assert records.transition("v1", "normalizing")
    assert records.transition("v1", "processing", event="started", path="/a.mp4")
    assert not records.transition("v1", "queued", event="queued", path="/a.mp4")  # a late daemon
    assert stored(records, "v1")["state"] == "processing"
    assert records.fail("v1", "decode: broken", path="/a.mp4", stage="analyze", kind="other")
    assert not records.fail("v1", "again", path="/a.mp4", stage="analyze", kind="other")
    assert not records.transition("v1", "processing")
    record = stored(records, "v1")
    assert (record["state"], record["error"]) == ("failed", "decode: broken")
    assert records.inflight() == set()
    assert _events(redis_client, Keys(redis_prefix)) == ["detected", "started", "failed"]
    assert records.transition("unknown", "queued") is False


def test_segment_and_summary_writes_are_idempotent(redis_client: redis.Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    records = _records(redis_client, redis_prefix)
    writer = ResultWriter(redis_client, keys, events_maxlen=1000, detections_maxlen=1000, summaries_maxlen=1000)
    records.create("v1", {}, path="/cam1/a.mp4")
    records.transition("v1", "processing")
    frames = [
        FrameResult(0, 0.0, []),
        FrameResult(1, 0.2, [Detection("person", 0.9, (1, 2, 3, 4), 7)]),
        FrameResult(2, 0.4, [Detection("person", 0.8, (2, 2, 4, 4), 7)]),
    ]
    first = writer.write_segment("v1", 0, "cam1", 1000.0, frames, partial={"frames": 3}, segments=2)
    assert (first.written, first.complete, first.fire) == (True, False, False)
    again = writer.write_segment("v1", 0, "cam1", 1000.0, frames, partial={"frames": 3}, segments=2)
    assert (again.written, again.complete, again.fire) == (False, False, False)  # redelivered
    last = writer.write_segment("v1", 1, "cam1", 1000.0, [], partial={"frames": 0}, segments=2)
    assert (last.written, last.complete, last.fire) == (True, True, True)  # the finisher
    late = writer.write_segment("v1", 1, "cam1", 1000.0, [], partial={"frames": 0}, segments=2)
    assert (late.written, late.complete, late.fire) == (False, True, False)  # a redelivered finisher
    joined = redis_client.hgetall(keys.join("v1", "1"))  # the partials as stored, by segment
    assert {int(k): json.loads(v) for k, v in joined.items()} == {0: {"frames": 3}, 1: {"frames": 0}}
    entries = redis_client.xrange(keys.detections("cam1"))
    assert len(entries) == 2
    first = entries[0][1]
    assert (first["video_id"], first["segment"], first["frame"], first["pts"], first["ts"]) == (
        "v1", "0", "1", "0.200", "1000.200"
    )
    assert json.loads(first["detections"]) == [{"label": "person", "score": 0.9, "box": [1, 2, 3, 4], "track": 7}]

    summary = {"video_id": "v1", "labels": {"person": {"tracks": 1}}, "duration": "6.000"}
    first_id = writer.write_summary("v1", "/cam1/a.mp4", "cam1", 1000.0, summary, {"person": 0.2})
    again = writer.write_summary("v1", "/cam1/a.mp4", "cam1", 1000.0, summary, {"person": 0.2})
    assert first_id and again == first_id
    assert redis_client.xlen(keys.summaries) == 1
    record = stored(records, "v1")
    assert (record["state"], record["summary_id"]) == ("done", first_id)
    assert redis_client.zscore(keys.index_time, "v1") == 1000.0
    assert redis_client.zscore(keys.index_camera("cam1"), "v1") == 1000.0
    assert redis_client.zscore(keys.index_label("person"), "v1") == 1000.2
    assert _events(redis_client, keys).count("done") == 1
    assert records.inflight() == set()


def test_summary_of_a_failed_video_is_not_written(redis_client: redis.Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    records = _records(redis_client, redis_prefix)
    writer = ResultWriter(redis_client, keys, events_maxlen=1000, detections_maxlen=1000, summaries_maxlen=1000)
    records.create("v1", {}, path="/a.mp4")
    records.fail("v1", "broken", path="/a.mp4", stage="analyze", kind="other")
    assert writer.write_summary("v1", "/a.mp4", "default", 0.0, {"video_id": "v1"}, {}) is None
    assert redis_client.xlen(keys.summaries) == 0
