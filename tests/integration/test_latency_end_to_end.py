"""The latency breakdown (issue 12) measured end to end: the real daemon and a real worker.

The daemon runs in-process (as in test_daemon.py), an in-process Celery worker (solo pool,
as in test_video_tasks.py) analyses what it publishes; Redis, RabbitMQ and ffmpeg are real.
A clip is moved into the watched folder and the test waits, with a deadline, for its summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from tests.helpers import moving_square_clip, wait_for
from tests.integration.test_daemon import running
from tests.integration.test_video_tasks import worker_app
from vidwatch.config import Config, load_config
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.results.keys import Keys
from vidwatch.results.latency import KEYS
from vidwatch.results.records import Records, State
from vidwatch.results.report import latency_text
from vidwatch.tasks.video import register_tasks

pytestmark = pytest.mark.timeout(240)

STAGES = KEYS[:-1]  # the five stages; the last key is total_s
EPSILON_S = 0.01  # each figure is rounded to 1 ms


def configured(site: dict, *, settle_s: float, segment_s: float = 60.0) -> Config:
    config = load_config(site["config"], environ={})
    return config.model_copy(update={
        "watch": config.watch.model_copy(update={"settle_seconds": settle_s}),
        "analysis": config.analysis.model_copy(update={"segment_seconds": segment_s}),
    })


@contextmanager
def worker(config: Config) -> Iterator[None]:
    app = worker_app(config)
    register_tasks(app, config)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield
    app.close()


def dropped(site: dict, name: str, seconds: float) -> str:
    """A clip made outside the inbox, then moved in whole (one event); returns its video id."""
    clip = moving_square_clip(site["tmp"] / f"{name}-src.mp4", seconds=seconds, move_from_s=0.5,
                              move_to_s=seconds - 0.5)
    video_id = fingerprint(clip).video_id
    target = site["inbox"] / "cam1" / f"{name}.mp4"
    target.parent.mkdir(exist_ok=True)
    os.replace(clip, target)
    return video_id


def processing_of(config: Config, client: redis.Redis, video_id: str) -> dict[str, Any]:
    """The video's summary's ``processing``, once it is done (fails at the deadline or when the video failed)."""
    keys = Keys(config.redis.prefix)
    records = Records(client, keys, events_maxlen=1000)
    record = wait_for(lambda: (r := records.record(video_id)) is not None and r.terminal and r,
                      timeout_s=150, what=f"video {video_id} to be done")
    assert record.state is State.DONE, record.error
    [(_, fields)] = client.xrange(keys.summaries, record.summary_id, record.summary_id)
    processing: dict[str, Any] = json.loads(fields["processing"])
    return processing


def check_breakdown(processing: dict[str, Any]) -> None:
    for key in KEYS:
        assert isinstance(processing.get(key), int | float), (key, processing)
        assert processing[key] >= 0, (key, processing)
    assert sum(processing[key] for key in STAGES) <= processing["total_s"] + EPSILON_S, processing
    # the analysis span counts segments analysed side by side once: never more than their summed wall time
    assert processing["analysis_s"] <= processing["wall_s"] + EPSILON_S, processing
    for key in ("wall_s", "fps", "engine", "worker", "segments", "batch_fill"):  # the keys there before, kept
        assert key in processing, (key, processing)


def test_every_stage_is_measured_and_they_add_up_to_no_more_than_the_total(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    # 6 s cut every 2 s: three segments, so the analysis span and the summary task are the segmented ones
    config = configured(site, settle_s=0.5, segment_s=2.0)
    with worker(config), running(config):
        video_id = dropped(site, "seg", seconds=6.0)
        processing = processing_of(config, redis_client, video_id)
    check_breakdown(processing)
    assert processing["segments"] > 1, processing
    assert processing["settle_s"] >= config.watch.settle_seconds - EPSILON_S, processing  # it waited that long
    assert latency_text(processing).startswith(f"settle {processing['settle_s']} s, normalize "), processing


def test_a_longer_settle_wait_shows_in_settle_s(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    quick = configured(site, settle_s=0.5)
    slow = configured(site, settle_s=3.0)
    with worker(quick):
        with running(quick):
            fast = processing_of(quick, redis_client, dropped(site, "quick", seconds=2.0))
        with running(slow):
            slowed = processing_of(slow, redis_client, dropped(site, "slow", seconds=3.0))
    check_breakdown(fast)
    check_breakdown(slowed)
    added = slow.watch.settle_seconds - quick.watch.settle_seconds
    assert slowed["settle_s"] > fast["settle_s"], (fast, slowed)
    # most of the added wait is in settle_s (the file waited at least settle_seconds, by the product's rule)
    assert slowed["settle_s"] - fast["settle_s"] >= added / 2, (fast, slowed)
    assert slowed["settle_s"] >= slow.watch.settle_seconds - EPSILON_S, slowed
