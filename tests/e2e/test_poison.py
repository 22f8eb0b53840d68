"""Poison and broken inputs end as `failed`, the worker keeps going, nothing loops."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from kombu import Connection

from tests.e2e.processes import Proc
from tests.helpers import moving_square_clip, stored, wait_for
from vidwatch.config import load_config
from vidwatch.media.normalize import normalize
from vidwatch.media.probe import probe
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.tasks.app import ANALYZE_TASK, DEAD_QUEUE, make_app
from vidwatch.tasks.video import task_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_poison_and_missing_inputs_fail_once_and_the_worker_carries_on(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    config = load_config(site["config"], environ={})
    keys = Keys(site["prefix"])
    records = Records(redis_client, keys, events_maxlen=1000)
    spool = config.paths.spool
    clip = moving_square_clip(tmp_path / "clip.mp4", seconds=2)
    normalize(clip, spool / "good.mp4", probe(clip), config.normalize)
    videos = {
        "good": {"spool_path": str(spool / "good.mp4")},
        "gone": {"spool_path": str(spool / "gone.mp4")},  # its spooled copy was removed
        "poison": {"spool_path": str(spool / "good.mp4")},  # delivered too often already
    }
    for video_id, fields in videos.items():
        records.create(video_id, {**fields, "path": f"/in/{video_id}.mp4", "camera": "cam1"}, path=f"/in/{video_id}")
        records.transition(video_id, "queued")
    redis_client.set(keys.deliveries(f"{task_id('poison', 'analyze')}.r1"), config.worker.max_deliveries)

    worker = Proc(["worker", "-c", str(site["config"])], tmp_path / "worker.log")
    try:
        app = make_app(config)
        for video_id in ("poison", "gone", "good"):
            app.send_task(ANALYZE_TASK["cpu"], args=[video_id], task_id=task_id(video_id, "analyze"))
        wait_for(lambda: all(stored(records, v).get("state") in ("done", "failed") for v in videos), timeout_s=120,
                 what="every video to end")
        assert worker.proc.poll() is None, worker.tail()
    finally:
        worker.stop()
    states = {v: (stored(records, v)["state"], stored(records, v).get("error", "")) for v in videos}
    assert states["good"][0] == "done"
    assert states["gone"][0] == "failed" and "spooled copy" in states["gone"][1] and "missing" in states["gone"][1]
    assert states["poison"][0] == "failed" and "poison message" in states["poison"][1]
    failed_events = [f["video_id"] for _, f in redis_client.xrange(keys.events) if f["type"] == "failed"]
    assert sorted(failed_events) == ["gone", "poison"]  # each failed once
    with Connection(config.broker.url.get_secret_value()) as conn:
        dead = conn.default_channel.queue_declare(queue=DEAD_QUEUE, passive=True).message_count
    assert dead == 1  # the poison message was dead-lettered, not requeued
