"""The shared foundation: the exception tree, the boundary translators, the typed records."""

from __future__ import annotations

import amqp
import pytest
import redis

from vidwatch import errors
from vidwatch.broker import broker_errors
from vidwatch.detection import Detection
from vidwatch.errors import (
    ApiError,
    Cancelled,
    PublishError,
    ResultsError,
    ResultsUnavailable,
    RootStuck,
    ShuttingDown,
    SourceError,
    VidwatchError,
    failure_kind,
    is_retryable,
)
from vidwatch.results.connection import redis_errors
from vidwatch.results.partials import LabelTracks, SegmentPartial, Sighting
from vidwatch.results.records import State, VideoRecord
from vidwatch.results.summary import LabelSummary, Summary
from vidwatch.status import DaemonStatus, PollerStatus

REDIS_CASES = [  # redis error, the project's error, retryable
    (redis.ConnectionError("refused"), ResultsUnavailable, True),
    (redis.TimeoutError("slow"), ResultsUnavailable, True),
    (redis.exceptions.BusyLoadingError("loading"), ResultsUnavailable, True),
    (redis.exceptions.ReadOnlyError("replica"), ResultsUnavailable, True),
    (redis.ResponseError("WRONGTYPE"), ResultsError, False),
    (redis.exceptions.NoScriptError("no script"), ResultsError, False),
]


@pytest.mark.parametrize(("raised", "expected", "retryable"), REDIS_CASES)
def test_redis_errors_become_the_projects_chained(raised: Exception, expected: type, retryable: bool) -> None:
    with pytest.raises(expected) as caught, redis_errors("records: get abc"):
        raise raised
    assert type(caught.value) is expected and is_retryable(caught.value) is retryable
    assert caught.value.__cause__ is raised and str(caught.value).startswith("records: get abc: ")


@pytest.mark.parametrize("raised", [amqp.exceptions.ConnectionForced("closed"), ConnectionRefusedError(111, "x"),
                                    TimeoutError("confirm")])
def test_broker_errors_become_a_retryable_publish_error(raised: Exception) -> None:
    with pytest.raises(PublishError) as caught, broker_errors("publish: video abc"):
        raise raised
    assert is_retryable(caught.value) and caught.value.__cause__ is raised


def test_other_errors_pass_the_translators_unchanged() -> None:
    with pytest.raises(KeyError), redis_errors(), broker_errors():
        raise KeyError("x")


def test_the_classes_that_sat_outside_are_in_the_tree() -> None:
    for cls in (errors.Poison, Cancelled, ShuttingDown, RootStuck, ApiError):
        assert issubclass(cls, VidwatchError) and not is_retryable(cls.__new__(cls))
    stuck = RootStuck("/nvr: stat did not return")
    assert isinstance(stuck, OSError) and str(stuck) == "/nvr: stat did not return"
    api = ApiError(404, "no such video")
    assert (api.status, api.message, str(api)) == (404, "no such video", "no such video")


KINDS = [  # exception, failure kind
    (SourceError("probe: a: not a video", kind="not_video"), "not_a_video"),
    (SourceError("probe: a: empty file", kind="empty"), "empty_file"),
    (errors.MediaTimeout("normalize: a: ffmpeg stalled"), "timeout"),
    (errors.NormalizeError("normalize: a: ffmpeg exit 1"), "other"),
    (ResultsUnavailable("redis down"), "unreachable"),
    (errors.EngineUnavailable("tensorrt missing"), "engine"),
    (FileNotFoundError("gone"), "source_gone"),
    (RuntimeError("bug"), "internal"),
]


@pytest.mark.parametrize(("exc", "kind"), KINDS)
def test_failure_kinds_come_from_the_exception(exc: BaseException, kind: str) -> None:
    assert failure_kind(exc) == kind and kind in errors.FAILURE_KINDS


def test_state_order_is_defined_once() -> None:
    assert [s.rank for s in State] == [0, 1, 2, 3, 4, 4]
    assert [s for s in State if s.terminal] == [State.DONE, State.FAILED]
    assert [s for s in State if s.resumable] == [State.SEEN, State.NORMALIZING]
    assert State("queued") is State.QUEUED and f"{State.DONE}" == "done"


def test_video_record_reads_a_stored_hash() -> None:
    stored = {
        "video_id": "abc", "state": "queued", "path": "/nvr/cam1/a.mp4", "root": "/nvr", "camera": "cam1",
        "fingerprint": "f", "size": "1024", "mtime_ns": "17", "start_ts": "1700000000.000", "published": "1",
        "owner": "d1", "seen_at": "1.000", "queued_at": "2.500", "updated_at": "2.500", "probe_codec": "h264",
        "probe_duration_s": "6.0", "segments": "[[0, 3.0], [3.0, 6.0]]", "spool_path": "/spool/abc.mp4",
        "labels": "car,person", "run": "2", "summary_trimmed": "", "custom": "x",
    }
    record = VideoRecord.from_redis("abc", stored)
    assert record is not None
    assert (record.state, record.size, record.published, record.run, record.labels) == (
        State.QUEUED, 1024, True, 2, ("car", "person"))
    assert record.timestamps == {"seen": 1.0, "queued": 2.5} and record.duration_s == 6.0
    assert record.segments == ((0.0, 3.0), (3.0, 6.0)) and record.extra == {"custom": "x"}
    assert VideoRecord.from_redis("abc", record.to_redis()) == record


def test_segment_partial_round_trips_the_stored_shape() -> None:
    stored = {
        "start": 0.0, "end": 4.0, "frames": 20, "active_pts": [1.0],
        "labels": {"car": {"tracks": [2, 1], "max_simultaneous": 2, "first_pts": 1.0, "last_pts": 1.0}},
        "first": {"1": ["car", [0, 0, 4, 4], 1.0]}, "last": {"1": ["car", [1, 0, 5, 4], 1.0]},
        "thumbnail": None, "thumbnail_area": 0.0, "wall_s": 0.5, "worker": "w:1", "analyzers": {},
        "crops": {"1": {"score": 0.9, "path": "/c/1.jpg"}}, "engine_calls": 3, "engine_frames": 20,
    }
    part = SegmentPartial.from_dict(stored)
    assert part.labels["car"] == LabelTracks((2, 1), 2, 1.0, 1.0)
    assert part.first[1] == Sighting("car", (0, 0, 4, 4), 1.0) and part.crops[1]["score"] == 0.9
    expected = {**stored, "labels": {"car": {**stored["labels"]["car"], "tracks": [1, 2]}}}
    assert part.to_dict() == expected


def test_summary_fields_keep_the_stream_shape() -> None:
    summary = Summary("abc", "/nvr/a.mp4", "cam1", 6.0, 30, {"car": LabelSummary(1, 1, 0.5, None)},
                      ((0.5, 2.0),), (), {"wall_s": 1.0}, tracks={"1": {"path": "/c.jpg"}}, timeline="/t.png")
    fields = summary.to_fields()
    assert list(fields) == ["video_id", "path", "camera", "duration", "frames_analyzed", "labels", "activity",
                            "thumbnails", "processing", "tracks", "timeline"]
    assert summary.label_first_pts() == {"car": 0.5}
    assert Summary.from_fields({**fields, "schema": "1"}) == Summary(**{**summary.__dict__, "extra": {"schema": "1"}})


def test_daemon_status_round_trips() -> None:
    status = DaemonStatus(settling=1, publish_retries=2, observers={"/a": False},
                          pollers={"/b": PollerStatus(3, 1, 0.25)}, loop_age_s=0.5)
    data = status.to_dict()
    assert DaemonStatus.from_dict(data) == status
    assert status.loop_age_s == 0.5 and status.dead_roots == ["/a"]


def test_detection_json_round_trip() -> None:
    det = Detection("person", 0.5, (1.0, 2.0, 3.0, 4.0), track=3, world=(1.5, 2.5))
    assert Detection.from_json(det.as_json()) == det
