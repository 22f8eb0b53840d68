"""Task time limits: the soft limit (which fails the video) always comes before the hard one."""

from pathlib import Path

import pytest

from vidwatch.config import load_config
from vidwatch.errors import ConfigError
from vidwatch.tasks.app import make_app, time_limits


@pytest.mark.parametrize(
    ("cap_s", "media_s", "soft_s", "hard_s"),
    [
        (1500, 300, 1290, 1320),  # a default segment: 120 + 4 × 300 s, 30 s to record the failure
        (1500, 3600, 1470, 1500),  # a long one: the cap
        (1500, 0, 108, 120),  # a very short one: a tenth of 120 s
        (60, 300, 54, 60),  # a low cap
        (3, 300, 2.7, 3),  # the lowest caps keep the soft limit below the hard one
        (1, 300, 0.9, 1),
    ],
)
def test_segment_limits(tmp_path: Path, cap_s: float, media_s: float, soft_s: float, hard_s: float) -> None:
    config = load_config(None, environ={"VIDWATCH_WORKER__TASK_TIME_LIMIT_SECONDS": str(cap_s)}, cwd=tmp_path)
    assert time_limits(config, media_s) == pytest.approx((soft_s, hard_s))


@pytest.mark.parametrize(
    ("cap_s", "soft_s"),
    [(1500, 1470), (300, 270), (30, 27), (3, 2.7)],
)
def test_app_limits_match_segment_limits(tmp_path: Path, cap_s: float, soft_s: float) -> None:
    config = load_config(None, environ={"VIDWATCH_WORKER__TASK_TIME_LIMIT_SECONDS": str(cap_s)}, cwd=tmp_path)
    app = make_app(config)
    assert (app.conf.task_soft_time_limit, app.conf.task_time_limit) == pytest.approx((soft_s, cap_s))
    assert (app.conf.task_soft_time_limit, app.conf.task_time_limit) == pytest.approx(time_limits(config, 1e6))


@pytest.mark.parametrize("value", ["0", "0.5", "-1"])
def test_time_limit_floor(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"worker\.task_time_limit_seconds = .*greater than or equal to 1"):
        load_config(None, environ={"VIDWATCH_WORKER__TASK_TIME_LIMIT_SECONDS": value}, cwd=tmp_path)
