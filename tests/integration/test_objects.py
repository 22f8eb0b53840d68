"""Objects on real Redis: written once per run, indexed by time, camera and label, paged by a stable cursor."""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis

from vidwatch.results.keys import Keys
from vidwatch.results.objects import (
    ObjectEntry,
    ObjectKeys,
    ObjectQuery,
    ObjectWriter,
    find_objects,
    object_of,
    objects_of,
)
from vidwatch.results.paging import decode_cursor

T0 = 1_764_000_000.0


def entry(video_id: str, track: int, camera: str, label: str, start_s: float, **extra: object) -> ObjectEntry:
    return ObjectEntry(video_id, track, camera, label, T0 + start_s, T0 + start_s + 2.0, start_s, start_s + 2.0,
                       **extra)  # type: ignore[arg-type]


@pytest.fixture
def keys(redis_prefix: str) -> Keys:
    return Keys(redis_prefix)


def test_write_is_once_per_run_and_a_rerun_replaces_the_indexes(redis_client: redis.Redis, keys: Keys) -> None:
    writer = ObjectWriter(redis_client, keys)
    okeys = ObjectKeys.of(keys)
    first = [entry("v1", 1, "cam1", "person", 1.0, crop="/c/1.jpg", score=0.9, box=(1.0, 2.0, 3.0, 4.0)),
             entry("v1", 2, "cam1", "car", 3.0)]
    assert writer.write("v1", "cam1", first, run=1) is True
    assert writer.write("v1", "cam1", first, run=1) is False  # a redelivered summary: nothing again
    assert redis_client.xlen(okeys.stream) == 2
    got = objects_of(redis_client, keys, "v1")
    assert [(o.track, o.label, o.crop, o.score, o.box, o.run) for o in got] == [
        (1, "person", "/c/1.jpg", 0.9, (1.0, 2.0, 3.0, 4.0), 1), (2, "car", None, None, None, 1)]
    assert object_of(redis_client, keys, "v1", 2) == got[1]
    assert redis_client.zcard(okeys.label("car")) == 1
    # run 2 found only a person: the car leaves every index, the stream keeps its history
    assert writer.write("v1", "cam1", [entry("v1", 1, "cam1", "person", 1.5)], run=2) is True
    assert redis_client.xlen(okeys.stream) == 3
    assert [(o.track, o.run, o.start_pts) for o in objects_of(redis_client, keys, "v1")] == [(1, 2, 1.5)]
    for index in (okeys.time, okeys.camera("cam1"), okeys.label("person")):
        assert redis_client.zcard(index) == 1, index
    assert redis_client.zcard(okeys.label("car")) == 0
    with pytest.raises(ValueError, match="camera cam1"):
        writer.write("v1", "cam1", [entry("v1", 1, "cam2", "person", 0.0)], run=3)


def test_queries_by_camera_label_and_time_page_without_repeats(redis_client: redis.Redis, keys: Keys) -> None:
    writer = ObjectWriter(redis_client, keys)
    # cam1: 30 people at 0..29 s and 5 cars; cam2: 10 people at the same times as cam1's first ten
    writer.write("a", "cam1", [entry("a", t, "cam1", "person", float(t)) for t in range(1, 31)]
                 + [entry("a", 100 + t, "cam1", "car", float(t)) for t in range(5)])
    writer.write("b", "cam2", [entry("b", t, "cam2", "person", float(t)) for t in range(1, 11)])
    cases = [  # query, expected count
        (ObjectQuery(limit=1000), 45),
        (ObjectQuery(camera="cam1", limit=1000), 35),
        (ObjectQuery(label="person", limit=1000), 40),
        (ObjectQuery(camera="cam2", label="person", limit=1000), 10),
        (ObjectQuery(camera="cam2", label="car", limit=1000), 0),
        (ObjectQuery(label="person", since=T0 + 10, until=T0 + 12, limit=1000), 4),  # cam1 10, 11, 12; cam2 10
        (ObjectQuery(camera="nowhere", limit=1000), 0),
    ]
    for query, expected in cases:
        assert len(find_objects(redis_client, keys, query).objects) == expected, query
    # pages of 7 over the 40 people: newest first, every object once, ties (same start) ordered too
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = find_objects(redis_client, keys, ObjectQuery(label="person", limit=7, cursor=cursor))
        pages += 1
        seen.extend(o.object_id for o in page.objects)
        if pages == 2:  # written meanwhile: a newer object and an older one
            writer.write("c", "cam3", [entry("c", 1, "cam3", "person", 50.0), entry("c", 2, "cam3", "person", -5.0)])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 41  # the older one is met on its page; the newer one is before page 1
    assert "c:2" in seen and "c:1" not in seen
    starts = [o.start_ts for o in find_objects(redis_client, keys, ObjectQuery(label="person", limit=1000)).objects]
    assert starts == sorted(starts, reverse=True)
    assert pages == 6
    with pytest.raises(ValueError, match="cursor"):
        ObjectQuery(cursor="not-a-cursor")
    assert decode_cursor(page.next_cursor or cursor or "") is not None


def test_trimmed_entries_leave_the_index_they_are_met_in(redis_client: redis.Redis, keys: Keys) -> None:
    writer = ObjectWriter(redis_client, keys)
    writer.write("a", "cam1", [entry("a", t, "cam1", "person", float(t)) for t in range(1, 4)])
    okeys = ObjectKeys.of(keys)
    oldest = redis_client.xrange(okeys.stream, count=1)[0][0]
    redis_client.xdel(okeys.stream, oldest)
    page = find_objects(redis_client, keys, ObjectQuery(label="person"))
    assert [o.track for o in page.objects] == [3, 2] and page.next_cursor is None
    assert redis_client.zcard(okeys.label("person")) == 2
    assert [o.track for o in objects_of(redis_client, keys, "a")] == [2, 3]


def test_round_trip_keeps_attributes(redis_client: redis.Redis, keys: Keys) -> None:
    original = entry("v", 7, "cam1", "car", 1.0, attributes={"dominant_colour": {"name": "red"}}, quality=12.5,
                     best_pts=2.2, segment=1)
    ObjectWriter(redis_client, keys).write("v", "cam1", [original], run=3)
    (got,) = objects_of(redis_client, keys, "v")
    assert got == replace(original, run=3, entry_id=got.entry_id)
    assert got.as_json()["attributes"] == {"dominant_colour": {"name": "red"}}


def test_videos_page_by_the_same_cursor(redis_client: redis.Redis, keys: Keys) -> None:
    from vidwatch.results.paging import video_page
    from vidwatch.results.writer import ResultWriter

    writer = ResultWriter(redis_client, keys, events_maxlen=1000, detections_maxlen=1000, summaries_maxlen=1000)
    for n in range(5):
        video_id = f"v{n}"
        redis_client.hset(keys.video(video_id), mapping={"state": "processing", "camera": "cam1"})
        writer.write_summary(video_id, f"/nvr/cam1/{n}.mp4", "cam1", T0 + (n // 2), {"labels": {}},
                             {"person": 0.0} if n % 2 else {})
    pages, cursor = [], None
    while True:
        page = video_page(redis_client, keys, camera="cam1", limit=2, cursor=cursor)
        pages.append([vid for vid, _ in page.items])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == [["v4", "v3"], ["v2", "v1"], ["v0"]]  # same start: by id, descending
    assert [vid for vid, _ in video_page(redis_client, keys, camera="cam1", label="person", limit=10).items] == [
        "v3", "v1"]
