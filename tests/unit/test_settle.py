from vidwatch.daemon.settle import SettleTracker

# (time, action, size) → expected result of observe, or None for a touch
SLOW_WRITER = [
    (0.0, "touch", None, None),
    (0.1, "observe", 100, False),
    (1.0, "touch", None, None),  # a chunk is appended
    (1.1, "observe", 200, False),
    (2.0, "touch", None, None),
    (2.9, "observe", 300, False),  # grew since the last look: quiet from now on
    (4.05, "observe", 300, False),
    (4.95, "observe", 300, True),  # 2 s quiet since the change was seen
]


def test_slow_writer_settles_only_after_the_last_chunk() -> None:
    tracker = SettleTracker(settle_s=2.0)
    for now, action, size, expected in SLOW_WRITER:
        if action == "touch":
            tracker.touch("f", now=now)
        else:
            assert tracker.observe("f", size=size, mtime_ns=size, now=now) is expected, now


def test_a_file_that_grows_without_events_restarts_its_quiet_period() -> None:
    tracker = SettleTracker(settle_s=1.0)
    tracker.touch("f", now=0.0)
    assert tracker.observe("f", size=1, mtime_ns=1, now=0.5) is False
    assert tracker.observe("f", size=2, mtime_ns=2, now=1.2) is False  # grew (e.g. written by another host)
    assert tracker.observe("f", size=2, mtime_ns=2, now=2.1) is False
    assert tracker.observe("f", size=2, mtime_ns=2, now=2.3) is True


def test_mtime_change_alone_counts_as_a_write() -> None:
    tracker = SettleTracker(settle_s=1.0)
    tracker.touch("f", now=0.0)
    tracker.observe("f", size=5, mtime_ns=1, now=0.1)
    assert tracker.observe("f", size=5, mtime_ns=2, now=1.5) is False


def test_due_waits_for_quiet_and_respects_defer() -> None:
    tracker = SettleTracker(settle_s=1.0)
    tracker.touch("a", now=0.0)
    assert tracker.due(now=0.0) == ["a"]  # never looked at: look now
    tracker.observe("a", size=1, mtime_ns=1, now=0.0)
    assert tracker.due(now=0.5) == []
    assert tracker.due(now=1.0) == ["a"]
    tracker.defer("a", now=1.0, delay_s=5.0)
    assert tracker.due(now=2.0) == []
    assert tracker.due(now=6.0) == ["a"]
    tracker.forget("a")
    assert tracker.due(now=10.0) == [] and "a" not in tracker
