import pytest

from vidwatch.engines.base import Detection
from vidwatch.results.summary import SummaryBuilder, merge_activity
from vidwatch.tasks.track import Tracker


@pytest.mark.parametrize(
    ("active", "gap", "minimum", "expected"),
    [
        ([], 1.0, 0.0, []),
        ([2.0, 2.2, 2.4], 1.0, 0.0, [(2.0, 2.6)]),
        ([2.0, 2.2, 3.0], 1.0, 0.0, [(2.0, 3.2)]),  # a 0.6 s gap is bridged
        ([2.0, 3.4], 1.0, 0.0, [(2.0, 2.2), (3.4, 3.6)]),  # a 1.2 s gap is not
        ([2.0, 3.4], 0.0, 0.0, [(2.0, 2.2), (3.4, 3.6)]),
        ([1.0, 5.0, 5.2, 5.4], 1.0, 0.5, [(5.0, 5.6)]),  # a 0.2 s blip is dropped
        ([3.0, 1.0], 1.0, 0.0, [(1.0, 1.2), (3.0, 3.2)]),  # order does not matter
    ],
)
def test_merge_activity(active: list[float], gap: float, minimum: float, expected: list) -> None:
    assert merge_activity(active, 0.2, min_gap_s=gap, min_activity_s=minimum) == expected


def det(label: str, x: float, track: int | None = None) -> Detection:
    return Detection(label, 0.9, (x, 10.0, x + 40, 50.0), track)


def test_summary_counts_tracks_not_boxes() -> None:
    builder = SummaryBuilder()
    builder.add(0.0, [])
    builder.add(0.2, [det("person", 0, 1), det("person", 100, 2)])
    builder.add(0.4, [det("person", 5, 1), det("person", 105, 2), det("car", 200, 3)])
    builder.add(0.6, [det("person", 10, 1)])
    builder.add(0.8, [])
    assert builder.frames == 5
    assert {label: stats.summary().to_dict() for label, stats in sorted(builder.labels.items())} == {
        "car": {"tracks": 1, "max_simultaneous": 1, "first_pts": 0.4, "last_pts": 0.4},
        "person": {"tracks": 2, "max_simultaneous": 2, "first_pts": 0.2, "last_pts": 0.6},
    }
    assert merge_activity(builder.active_pts, 0.2, min_gap_s=1.0, min_activity_s=0.0) == [(0.2, 0.8)]


def test_tracker_follows_a_moving_box_and_separates_labels() -> None:
    tracker = Tracker(max_age_frames=2)
    ids = []
    for frame in range(6):
        out = tracker.update(frame, [det("person", frame * 20.0), det("car", 300.0)])
        ids.append((out[0].track, out[1].track))
    assert {p for p, _ in ids} == {1} and {c for _, c in ids} == {2}


def test_tracker_starts_a_new_track_after_max_age() -> None:
    tracker = Tracker(max_age_frames=2)
    first = tracker.update(0, [det("person", 0)])[0].track
    assert tracker.update(2, [det("person", 0)])[0].track == first  # 2 frames missed: same track
    assert tracker.update(5, [det("person", 0)])[0].track != first  # 3 missed: a new one


def test_tracker_does_not_jump_across_the_frame() -> None:
    tracker = Tracker(max_age_frames=5)
    a = tracker.update(0, [det("person", 0)])[0].track
    b = tracker.update(1, [det("person", 500)])[0].track
    assert a != b


def test_detection_rejects_an_inverted_box() -> None:
    with pytest.raises(ValueError, match="expected x1 <= x2"):
        Detection("x", 1.0, (10, 0, 5, 5))
