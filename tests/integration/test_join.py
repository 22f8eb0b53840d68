"""Fan-out and join (vidwatch.tasks.join): the merge of segment partials, the plan, the fan-out, the join in Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.conftest import REDIS_URL
from vidwatch.config import AnalysisConfig, BrokerConfig, Config, PathsConfig, RedisConfig
from vidwatch.media.probe import Probe
from vidwatch.results.keys import Keys
from vidwatch.results.partials import LabelTracks, SegmentPartial, Sighting
from vidwatch.results.records import Records, State
from vidwatch.results.summary import LabelSummary
from vidwatch.tasks import join
from vidwatch.tasks.app import make_app
from vidwatch.tasks.resources import WorkerContext
from vidwatch.tasks.video import register_tasks

FPS = 5.0
SECOND = join.TRACK_ID_STRIDE  # segment 1's tracks are numbered from here


def frames(start: float, end: float) -> tuple[float, ...]:
    return tuple(round(start + i / FPS, 3) for i in range(round((end - start) * FPS) + 1))


def two_segments() -> list[SegmentPartial]:
    """A person walking through the cut at 5 s (one track), and a second person in segment 1 only."""
    before = SegmentPartial(
        start=0.0, end=5.0, frames=25, active_pts=frames(1.0, 4.8),
        labels={"person": LabelTracks((1,), 1, 1.0, 4.8)},
        first={1: Sighting("person", (10.0, 10.0, 50.0, 50.0), 1.0)},
        last={1: Sighting("person", (100.0, 10.0, 140.0, 50.0), 4.8)},
        thumbnail="/t/v-0.jpg", thumbnail_area=1600.0, wall_s=2.0, worker="w1:1",
        analyzers={"sharpness": {"mean": 0.5}}, crops={1: {"score": 0.7, "path": "/c/1.jpg"}},
        engine_calls=2.5, engine_frames=20,
    )
    after = SegmentPartial(
        start=5.0, end=10.0, frames=25, active_pts=frames(5.0, 9.0),
        labels={"person": LabelTracks((SECOND + 1, SECOND + 2), 2, 5.0, 9.0)},
        first={SECOND + 1: Sighting("person", (104.0, 10.0, 144.0, 50.0), 5.0),
               SECOND + 2: Sighting("person", (250.0, 150.0, 290.0, 190.0), 7.0)},
        last={SECOND + 1: Sighting("person", (200.0, 10.0, 240.0, 50.0), 8.0),
              SECOND + 2: Sighting("person", (250.0, 150.0, 290.0, 190.0), 9.0)},
        thumbnail="/t/v-1.jpg", thumbnail_area=3200.0, wall_s=3.0, worker="w2:1",
        analyzers={"sharpness": {"mean": 0.7}}, crops={SECOND + 1: {"score": 0.9, "path": "/c/2.jpg"}},
        engine_calls=1.5, engine_frames=10,
    )
    return [before, after]


def test_a_track_through_the_cut_is_counted_once() -> None:
    merged = join.merge(list(reversed(two_segments())), FPS, min_gap_s=1.0, min_activity_s=0.0)
    assert merged.track_map == {1: 1, SECOND + 1: 1, SECOND + 2: SECOND + 2}
    assert merged.labels == {"person": LabelSummary(tracks=2, max_simultaneous=2, first_pts=1.0, last_pts=9.0)}
    assert merged.frames == 50 and merged.wall_s == 5.0 and merged.workers == ["w1:1", "w2:1"]
    assert merged.activity == [(1.0, 9.2)]
    assert merged.thumbnail == "/t/v-1.jpg"  # the busier segment's
    assert merged.analyzers == {"sharpness": [{"segment_start": 0.0, "value": {"mean": 0.5}},
                                              {"segment_start": 5.0, "value": {"mean": 0.7}}]}


def test_a_track_that_ended_before_the_cut_is_not_continued() -> None:
    before, after = two_segments()
    early = SegmentPartial(**{**before.__dict__, "last": {1: Sighting("person", (100.0, 10.0, 140.0, 50.0), 3.0)}})
    merged = join.merge([early, after], FPS, min_gap_s=1.0, min_activity_s=0.0)
    assert merged.track_map[SECOND + 1] == SECOND + 1
    assert merged.labels["person"].tracks == 3


def test_best_crops_and_presence_follow_the_joined_tracks() -> None:
    parts = two_segments()
    track_map = join.join_tracks(parts, FPS)
    assert join.best_crops(parts, track_map) == {1: {"score": 0.9, "path": "/c/2.jpg"}}
    assert join.presence(parts, track_map) == {"person": [[1.0, 9.0]]}


def test_one_segment_keeps_its_analyzers_as_they_are() -> None:
    merged = join.merge(two_segments()[:1], FPS, min_gap_s=1.0, min_activity_s=0.0)
    assert merged.analyzers == {"sharpness": {"mean": 0.5}}
    assert merged.track_map == {1: 1}


# ---------------------------------------------------------------------------- with Redis and RabbitMQ


@pytest.fixture
def app(redis_prefix: str, amqp_url: str, tmp_path: Path) -> Iterator[Celery]:
    config = Config(
        redis=RedisConfig(url=REDIS_URL, prefix=redis_prefix),
        broker=BrokerConfig(url=amqp_url),
        paths=PathsConfig(state_dir=tmp_path / "var"),
        analysis=AnalysisConfig(fps=FPS, segment_seconds=5.0),
    )
    app = make_app(config)
    register_tasks(app, config)
    with app.connection_for_write() as connection:
        for queue in app.conf.task_queues:
            queue(connection.default_channel).declare()
    yield app
    app.close()


@pytest.fixture
def context(app: Celery, redis_client: redis.Redis) -> WorkerContext:
    context = app.tasks["vidwatch.cpu.analyze_video"].context
    context.ensure()
    records = Records(redis_client, Keys(context.config.redis.prefix), events_maxlen=1000)
    records.create("v1", {"path": "/in/a.mp4", "camera": "cam1"}, path="/in/a.mp4")
    records.transition("v1", State.PROCESSING, event="started", path="/in/a.mp4")
    return context


def queued(app: Celery, queue: str) -> list[tuple[str, list[object], object]]:
    """(task id, args, time limits) of every message waiting in ``queue``, taken off it."""
    out = []
    with app.connection_for_read() as connection:
        bound = app.amqp.queues[queue](connection.default_channel)
        while (message := bound.get(no_ack=True)) is not None:
            out.append((message.headers["id"], message.decode()[0], message.headers["timelimit"]))
    return out


def facts(duration_s: float) -> Probe:
    return Probe(format_name="mp4", codec="h264", width=320, height=240, pix_fmt="yuv420p", fps=25.0,
                 duration_s=duration_s, rotation=0, has_audio=False, creation_time=None, size_bytes=1000)


def test_the_plan_is_made_once_and_kept_in_the_record(context: WorkerContext, tmp_path: Path) -> None:
    plan = join.plan_segments(context, context.records.record("v1"), tmp_path / "a.mp4", facts(7.0))
    assert plan == [(0.0, 7.0)]  # short enough for one segment: no keyframe listing
    again = join.plan_segments(context, context.records.record("v1"), tmp_path / "a.mp4", facts(60.0))
    assert again == plan  # a redelivery reuses the plan the first delivery kept
    assert context.records.record("v1").segments == ((0.0, 7.0),)


def test_fan_out_sends_one_task_per_segment_with_its_own_limits(app: Celery, context: WorkerContext) -> None:
    join.fan_out(context, "v1", [(0.0, 5.0), (5.0, 5.0), (10.0, 300.0)], "cpu")
    sent = queued(app, "cpu")
    assert [(task_id, args) for task_id, args, _ in sent] == [
        ("v1.seg0", ["v1", 0]), ("v1.seg1", ["v1", 1]), ("v1.seg2", ["v1", 2])
    ]
    hard, soft = sent[2][2]  # the message header is (time_limit, soft_time_limit)
    assert hard == 120.0 + 4.0 * 300.0 and soft < hard


def test_the_last_segment_in_sends_the_summary_once_and_a_redelivery_sends_it_again(
    app: Celery, context: WorkerContext
) -> None:
    before, after = two_segments()
    writer = context.writer

    def segment_in(k: int, partial: SegmentPartial) -> join.Joined:
        written = writer.write_segment("v1", k, "cam1", 1_700_000_000.0, [], partial=partial, segments=2)
        return join.segment_in(context, "v1", "/in/a.mp4", k, 2, written)

    assert segment_in(1, after) is join.Joined.WAITING
    assert queued(app, "summary") == []
    assert segment_in(0, before) is join.Joined.SENT
    assert [(task_id, args) for task_id, args, _ in queued(app, "summary")] == [("v1.summary", ["v1"])]
    assert segment_in(0, before) is join.Joined.SENT  # the finisher redelivered: it may have died before sending
    assert len(queued(app, "summary")) == 1
    assert writer.segment_partials("v1", 1) == {0: before, 1: after}
    done = [f for _, f in context.client.xrange(context.keys.events) if f["type"] == "segment_done"]
    assert len(done) == 2  # written once each


def test_a_single_segment_is_summarised_by_its_own_task(app: Celery, context: WorkerContext) -> None:
    before, _ = two_segments()
    written = context.writer.write_segment("v1", 0, "cam1", 1_700_000_000.0, [], partial=before, segments=1)
    assert join.segment_in(context, "v1", "/in/a.mp4", 0, 1, written) is join.Joined.HERE
    assert queued(app, "summary") == []
