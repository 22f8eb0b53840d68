"""The latency breakdown's arithmetic, and the stamps it is made of (no services)."""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from vidwatch.config import Config, WatchConfig
from vidwatch.daemon.claims import ClaimPool
from vidwatch.daemon.fsguard import FsGuard
from vidwatch.daemon.normalize import NormalizeMetrics
from vidwatch.daemon.settle import SettleTracker
from vidwatch.daemon.work import Inbox, Kind, WorkItem
from vidwatch.paths import PathRules
from vidwatch.results.latency import KEYS, Stamps, breakdown, covered, stamps_of
from vidwatch.results.partials import SegmentPartial
from vidwatch.results.records import VideoRecord
from vidwatch.results.report import latency_text

FULL = {"settle_s": 1.5, "normalize_s": 0.5, "queue_wait_s": 1.0, "analysis_s": 2.0, "writing_s": 0.5,
        "total_s": 5.5}

# (first_seen, claimed, queued, analysis spans, written) → the figures
CASES: list[tuple[str, Stamps, dict[str, float]]] = [
    ("every stamp", Stamps(100.0, 101.5, 102.0, ((103.0, 105.0),), 105.5), FULL),
    ("a record from before first_seen_at: no settle, no total",
     Stamps(None, 101.5, 102.0, ((103.0, 105.0),), 105.5),
     {"normalize_s": 0.5, "queue_wait_s": 1.0, "analysis_s": 2.0, "writing_s": 0.5}),
    ("partials from before the analysis stamps: no queue wait, analysis or writing",
     Stamps(100.0, 101.5, 102.0, None, 105.5), {"settle_s": 1.5, "normalize_s": 0.5, "total_s": 5.5}),
    ("no stamp at all", Stamps(None, None, None, None, 105.5), {}),
    ("segments one after another: the queue gap between them is in no stage",
     Stamps(100.0, 100.0, 101.0, ((102.0, 103.0), (104.0, 106.0)), 107.0),
     {"settle_s": 0.0, "normalize_s": 1.0, "queue_wait_s": 1.0, "analysis_s": 3.0, "writing_s": 1.0, "total_s": 7.0}),
    ("segments side by side count once",
     Stamps(100.0, 100.0, 101.0, ((102.0, 106.0), (102.5, 105.0)), 107.0),
     {"settle_s": 0.0, "normalize_s": 1.0, "queue_wait_s": 1.0, "analysis_s": 4.0, "writing_s": 1.0, "total_s": 7.0}),
    ("a worker's clock 0.3 s behind the daemon's: clamped at 0, never negative",
     Stamps(100.0, 101.0, 102.0, ((101.7, 103.0),), 103.2),
     {"settle_s": 1.0, "normalize_s": 1.0, "queue_wait_s": 0.0, "analysis_s": 1.3, "writing_s": 0.2, "total_s": 3.2}),
    ("rounded to 1 ms", Stamps(100.0, 100.12345, None, None, 101.0), {"settle_s": 0.123, "total_s": 1.0}),
]


@pytest.mark.parametrize(("stamps", "expected"), [(s, e) for _, s, e in CASES], ids=[c[0] for c in CASES])
def test_breakdown(stamps: Stamps, expected: dict[str, float]) -> None:
    figures = breakdown(stamps)
    assert figures == pytest.approx(expected)
    assert list(figures) == [key for key in KEYS if key in figures]  # stage order
    stamps_in_order = stamps.analysis is None or stamps.queued is None or stamps.queued <= stamps.analysis[0][0]
    if len(figures) == len(KEYS) and stamps_in_order:  # (a clock behind adds what the clamp takes away)
        assert sum(figures[key] for key in KEYS[:-1]) <= figures["total_s"] + 0.003


@pytest.mark.parametrize(("spans", "expected"), [
    ([], 0.0),
    ([(0.0, 2.0)], 2.0),
    ([(0.0, 2.0), (3.0, 4.0)], 3.0),
    ([(0.0, 4.0), (1.0, 3.0)], 4.0),  # one inside the other
    ([(1.0, 3.0), (0.0, 2.0), (2.5, 5.0)], 5.0),  # overlapping, unordered
])
def test_covered(spans: list[tuple[float, float]], expected: float) -> None:
    assert covered(spans) == pytest.approx(expected)


def part(start: float, *, started_at: float | None = None, analyzed_at: float | None = None) -> SegmentPartial:
    return SegmentPartial(start, start + 5.0, 25, wall_s=1.0, worker="w:1", started_at=started_at,
                          analyzed_at=analyzed_at)


def test_stamps_come_from_the_record_and_the_partials() -> None:
    record = VideoRecord.from_redis("v", {"state": "processing", "first_seen_at": "100.000", "seen_at": "101.500",
                                          "normalizing_at": "101.6", "queued_at": "102.000",
                                          "processing_at": "102.9"})
    assert record is not None
    parts = [part(0.0, started_at=103.0, analyzed_at=104.0), part(5.0, started_at=104.0, analyzed_at=105.0)]
    assert breakdown(stamps_of(record, parts, written=105.5)) == pytest.approx(FULL)
    # one segment analysed by a worker from before the stamps: the analysis span is not measured
    mixed = stamps_of(record, [parts[0], part(5.0)], written=105.5)
    assert mixed.analysis is None
    assert set(breakdown(mixed)) == {"settle_s", "normalize_s", "total_s"}


def test_a_partial_keeps_its_stamps_and_an_old_one_reads_without() -> None:
    new = part(0.0, started_at=103.25, analyzed_at=104.5)
    assert SegmentPartial.from_dict(new.to_dict()) == new
    old = part(0.0).to_dict()
    assert "started_at" not in old and "analyzed_at" not in old  # the stored shape is the one before
    assert SegmentPartial.from_dict(old).started_at is None


def test_the_report_line_shows_what_was_measured_in_stage_order() -> None:
    assert latency_text({"wall_s": 2.0, **FULL}) == (
        "settle 1.5 s, normalize 0.5 s, queue 1.0 s, analysis 2.0 s, writing 0.5 s; total 5.5 s")
    assert latency_text({"wall_s": 2.0, "fps": 5.0}) == ""


def test_the_settle_tracker_keeps_the_first_sighting() -> None:
    tracker = SettleTracker(settle_s=1.0)
    tracker.touch("f", now=10.0)
    tracker.touch("f", now=12.0)  # written again: the quiet period restarts, the first sighting stays
    assert tracker.first_seen("f") == 10.0
    assert tracker.first_seen("other") is None
    tracker.forget("f")
    tracker.defer("f", now=20.0, delay_s=1.0, first_seen=10.0)  # back from a claim attempt
    assert tracker.first_seen("f") == 10.0
    tracker.defer("g", now=20.0, delay_s=1.0)
    assert tracker.first_seen("g") == 20.0


class FakeIngestor:
    """Says "not complete yet" to the first claim, then claims; remembers each claim's first sighting."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.first_seen: list[float | None] = []

    def time_in_path(self, path: str) -> float | None:
        return None  # no [watch] time_pattern: the claim pool's horizon falls back to mtime

    def claim(self, path: str, *, final_attempt: bool, first_seen: float | None = None) -> Kind:
        self.first_seen.append(first_seen)
        return Kind.NOT_READY if len(self.first_seen) == 1 else Kind.CLAIMED


def test_the_first_sighting_reaches_the_claim_through_a_not_ready_look(tmp_path: Path) -> None:
    clip = tmp_path / "cam1" / "a.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"x" * 100)
    watch = WatchConfig(roots=[tmp_path], settle_seconds=1.0)
    ingestor = FakeIngestor(Config(watch=watch))
    inbox: Inbox = queue.Queue()
    pool = ClaimPool(ingestor, PathRules(watch), FsGuard(5.0), inbox, NormalizeMetrics())  # type: ignore[arg-type]
    monotonic_epoch = time.time() - time.monotonic()  # the epoch of the main loop's clock's 0
    base = time.monotonic() - 60.0  # the file was first seen a minute ago
    try:
        pool.touch(str(clip), base)
        reports: list[Any] = []
        for look in (base + 1.0, base + 20.0):  # settle, not ready, deferred; settle again, claimed
            pool.check_settled(look)
            pool.check_settled(look + 1.0)
            reports.append(wait_for(lambda: not inbox.empty() and inbox.get(), timeout_s=10, what="the claim"))
            handler = pool.not_ready if reports[-1].kind is Kind.NOT_READY else pool.claimed
            handler(str(clip), look + 1.0)
        assert reports == [WorkItem(Kind.NOT_READY, str(clip)), WorkItem(Kind.CLAIMED, str(clip))]
        first, again = ingestor.first_seen
        assert first == pytest.approx(again, abs=0.01)  # the same moment, converted to epoch s twice
        assert first == pytest.approx(monotonic_epoch + base, abs=0.5)
        assert pool.idle()
    finally:
        pool.stop()
