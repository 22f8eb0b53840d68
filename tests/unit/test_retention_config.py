"""``[retention]``: validated with the key, the value and why; the horizons per kind; keys shared with the tasks."""

from __future__ import annotations

import pytest

from vidwatch.config import load_config
from vidwatch.errors import ConfigError
from vidwatch.results.keys import Keys
from vidwatch.results.retention import Cutoffs
from vidwatch.tasks.app import task_id


@pytest.mark.parametrize(
    ("environ", "error"),
    [
        ({"VIDWATCH_RETENTION__DETECTIONS_DAYS": "-1"}, "retention.detections_days = -1"),
        ({"VIDWATCH_RETENTION__SUMMARIES_DAYS": "7", "VIDWATCH_RETENTION__FILES_DAYS": "30"},
         "files_days = 30.0: expected at most summaries_days (7.0)"),
        ({"VIDWATCH_RETENTION__DAYS": "7"}, "retention.days: unknown key"),
        ({"VIDWATCH_RETENTION__EVERY_SECONDS": "0"}, "retention.every_seconds = 0"),
    ],
)
def test_invalid_retention_is_refused_with_key_value_and_why(environ: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError, match=r"config: .*") as caught:
        load_config(environ=environ)
    assert error in str(caught.value)


@pytest.mark.parametrize(
    ("retention", "expected"),  # [retention] days → cutoffs (days before now) per kind; None: kept forever
    [
        ({}, (None, None, None)),
        ({"DETECTIONS_DAYS": "7"}, (7, None, None)),
        ({"SUMMARIES_DAYS": "30"}, (None, 30, 30)),  # files go with their record
        ({"SUMMARIES_DAYS": "30", "FILES_DAYS": "14", "DETECTIONS_DAYS": "2"}, (2, 30, 14)),
    ],
)
def test_cutoffs_follow_the_configured_days(retention: dict[str, str], expected: tuple[float | None, ...]) -> None:
    config = load_config(environ={f"VIDWATCH_RETENTION__{k}": v for k, v in retention.items()})
    now = 1_800_000_000.0
    cutoffs = Cutoffs.from_config(config, now)
    got = tuple(None if c is None else round((now - c) / 86400) for c in (cutoffs.detections, cutoffs.summaries,
                                                                           cutoffs.files))
    assert got == expected
    assert config.retention.enabled == any(v is not None for v in expected)


def test_delivery_count_keys_are_the_ones_the_tasks_count_in() -> None:
    keys = Keys("vw")
    for unit in ("analyze", "seg3", "summary"):
        assert keys.delivery_count("v1", unit, 2) == keys.deliveries(f"{task_id('v1', unit)}.r2")
    assert keys.bridge("v1", 1, 2) == [
        "vw:join:v1:r1", "vw:join:v1:r1:fired", "vw:segment:v1:0", "vw:segment:v1:1",
        "vw:deliveries:v1.analyze.r1", "vw:deliveries:v1.summary.r1", "vw:deliveries:v1.seg0.r1",
        "vw:deliveries:v1.seg1.r1",
    ]
