"""Recording times from paths and the order of the sources: creation_time, path, mtime."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from vidwatch.config import Config, WatchConfig
from vidwatch.daemon.ingest import Ingestor, recording_start
from vidwatch.media.probe import Probe
from vidwatch.paths import PathRules
from vidwatch.timecode import PathTime, compile_pattern


def _utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


# pattern, zone, path relative to its root, expected epoch seconds (None: no time in the path)
CASES = [
    ("%Y-%m-%d/%H-%M-%S", "UTC", "cam1/2026-11-24/12-00-00.mp4", _utc(2026, 11, 24, 12, 0, 0)),
    ("%Y-%m-%d/%H-%M-%S", "UTC", "cam1/2026-11-24/23-59-59.mkv", _utc(2026, 11, 24, 23, 59, 59)),
    ("%Y-%m-%d/%H-%M-%S", "UTC", "cam1/2026-11-24/latest.mp4", None),
    ("%Y-%m-%d/%H-%M-%S", "UTC", "cam1/2026-13-24/12-00-00.mp4", None),  # month 13: not a time
    ("%Y-%m-%d/%H-%M-%S", "Europe/Berlin", "cam1/2026-11-24/13-00-00.mp4", _utc(2026, 11, 24, 12, 0, 0)),
    ("%Y-%m-%d/%H-%M-%S", "Europe/Berlin", "cam1/2026-07-01/14-00-00.mp4", _utc(2026, 7, 1, 12, 0, 0)),  # CEST
    ("%Y%m%d_%H%M%S", "UTC", "cam2/rec_20261124_120000.mp4", _utc(2026, 11, 24, 12, 0, 0)),
    ("%Y%m%d_%H%M%S", "UTC", "20261124_000000/clip_20261124_063015.mp4", _utc(2026, 11, 24, 6, 30, 15)),  # last
    ("%y%m%d-%H%M%S.%f", "UTC", "ch01_261124-120000.250.mp4", _utc(2026, 11, 24, 12, 0, 0) + 0.25),
    ("%Y/%m/%d/%H", "UTC", "cam1/2026/11/24/07/part-3.mp4", _utc(2026, 11, 24, 7, 0, 0)),
    ("%Y-%m-%d", "UTC", "cam1/2026-11-24/a.mp4", _utc(2026, 11, 24)),  # a date alone: midnight
    ("*_%Y-%m-%dT%H-%M-%S", "UTC", "nvr/front_2026-11-24T12-00-00.mp4", _utc(2026, 11, 24, 12, 0, 0)),
    ("100%%_%Y-%m-%d", "UTC", "cam1/100%_2026-11-24.mp4", _utc(2026, 11, 24)),
]


@pytest.mark.parametrize(("pattern", "zone", "path", "expected"), CASES)
def test_time_in_path(pattern: str, zone: str, path: str, expected: float | None) -> None:
    assert PathTime(pattern, zone).parse(path) == expected


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("%H-%M-%S", "needs a date"),
        ("%Y-%m", "needs a date"),
        ("%Y-%m-%d-%Y", "appears twice"),
        ("%Y-%m-%d %Q", "unsupported directive %Q"),
        ("%Y-%m-%d%", "lone '%'"),
    ],
)
def test_bad_patterns_are_refused(pattern: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        compile_pattern(pattern)


def _probe(creation_time: str | None, duration_s: float = 60.0) -> Probe:
    return Probe("mov,mp4", "h264", 320, 240, "yuv420p", 25.0, duration_s, 0, False, creation_time, 1000)


MTIME_NS = int(_utc(2026, 11, 24, 12, 1, 0) * 1e9)
PATH_TS = _utc(2026, 11, 24, 12, 0, 5)


@pytest.mark.parametrize(
    ("creation_time", "path_ts", "expected"),
    [
        ("2026-11-24T11:59:00.000000Z", PATH_TS, _utc(2026, 11, 24, 11, 59, 0)),  # creation_time first
        ("2026-11-24T11:59:00", PATH_TS, _utc(2026, 11, 24, 11, 59, 0)),  # naive creation_time is UTC
        ("1970-01-01T00:00:00.000000Z", PATH_TS, PATH_TS),  # an unset clock: not a time
        ("garbage", PATH_TS, PATH_TS),
        (None, PATH_TS, PATH_TS),  # then the path
        (None, None, _utc(2026, 11, 24, 12, 0, 0)),  # then mtime minus the duration
    ],
)
def test_recording_start_order(creation_time: str | None, path_ts: float | None, expected: float) -> None:
    assert recording_start(_probe(creation_time), MTIME_NS, path_ts) == expected


def test_the_ingestor_reads_times_relative_to_the_root(tmp_path: Path) -> None:
    watch = WatchConfig(roots=[tmp_path / "nvr"], time_pattern="%Y-%m-%d/%H-%M-%S", time_zone="UTC")
    config = Config(watch=watch)
    ingestor = Ingestor(config, PathRules(watch), None, None, None, "cpu", normalizer=None)  # type: ignore[arg-type]
    assert ingestor.time_in_path(str(tmp_path / "nvr/cam1/2026-11-24/12-00-00.mp4")) == _utc(2026, 11, 24, 12)
    assert ingestor.time_in_path(str(tmp_path / "nvr/cam1/other.mp4")) is None
    plain_watch = WatchConfig(roots=[tmp_path])
    plain = Ingestor(
        Config(watch=plain_watch), PathRules(plain_watch), None, None, None, "cpu", normalizer=None  # type: ignore[arg-type]
    )
    assert plain.time_in_path(str(tmp_path / "cam1/2026-11-24/12-00-00.mp4")) is None  # no pattern: no path time
