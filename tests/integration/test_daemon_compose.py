"""The composition root: one build for the daemon, `vidwatch submit` and the daemon service; the queue setting."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
import redis

from tests.helpers import moving_square_clip, wait_for
from vidwatch.config import Config, load_config
from vidwatch.daemon import Daemon
from vidwatch.daemon.compose import build
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.daemon.ledger import daemon_id_for
from vidwatch.daemon.publish import queue_for
from vidwatch.daemon.serve import DaemonService
from vidwatch.daemon.submit import Submitter
from vidwatch.errors import ConfigError
from vidwatch.results.keys import Keys
from vidwatch.status import DaemonStatus
from vidwatch.tasks.app import ANALYZE_TASK


@pytest.mark.parametrize(
    ("environ", "queue"),
    [
        ({}, "cpu"),  # auto, and [engine] kind auto: cpu whatever GPU this host has
        ({"VIDWATCH_ENGINE__KIND": "tensorrt"}, "gpu"),
        ({"VIDWATCH_ENGINE__KIND": "onnx"}, "cpu"),
        ({"VIDWATCH_ENGINE__KIND": "opencv"}, "cpu"),
        ({"VIDWATCH_ENGINE__QUEUE": "gpu"}, "gpu"),  # a GPU worker fleet fed by a CPU-only daemon host
        ({"VIDWATCH_ENGINE__KIND": "tensorrt", "VIDWATCH_ENGINE__QUEUE": "cpu"}, "cpu"),
    ],
)
def test_the_queue_follows_the_configuration_only(environ: dict[str, str], queue: str) -> None:
    config = load_config(None, environ=environ)
    assert queue_for(config) == queue


def test_an_unknown_queue_is_refused_with_its_key() -> None:
    with pytest.raises(ConfigError, match="queue"):
        load_config(None, environ={"VIDWATCH_ENGINE__QUEUE": "tpu"})


def test_one_build_wires_every_part_to_the_same_client_and_ledger(site: dict, ffmpeg: str) -> None:
    config = load_config(site["config"], environ={"VIDWATCH_ENGINE__QUEUE": "gpu"})
    parts = build(config)
    try:
        assert parts.ledger.daemon_id == daemon_id_for(config.paths.state_dir)
        assert parts.records.client is parts.client and parts.ledger.client is parts.client
        assert parts.normalizer.client is parts.client
        assert parts.ingestor.ledger is parts.ledger and parts.ingestor.publisher is parts.publisher
        assert parts.ingestor.normalizer is parts.normalizer and parts.ingestor.rules is parts.rules
        assert parts.normalizer.stop_event is parts.stop_event
        assert (parts.queue, parts.publisher.task_name) == ("gpu", ANALYZE_TASK["gpu"])
        assert parts.keys.prefix == site["prefix"]
    finally:
        parts.publisher.close()


def test_the_daemon_and_submit_share_the_root_with_their_own_identities(site: dict) -> None:
    config = load_config(site["config"], environ={})
    client = redis.Redis.from_url(config.redis.url.get_secret_value(), decode_responses=True)
    submitter = Submitter(config, client=client)
    daemon = Daemon(config)
    try:
        assert submitter.parts.client is client
        assert submitter.parts.ledger.daemon_id.startswith("submit:")  # taken over by a daemon (no heartbeat)
        assert daemon.ledger.daemon_id == daemon_id_for(config.paths.state_dir)
        assert submitter.parts.queue == daemon.queue == "cpu"
    finally:
        submitter.close()
        daemon.publisher.close()


def test_the_daemon_service_serves_publishes_times_and_stops(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    config: Config = load_config(site["config"], environ={})
    keys = Keys(site["prefix"])
    service = DaemonService(config)
    ticks = [0]
    thread = threading.Thread(target=service.run, kwargs={"after_tick": lambda: ticks.__setitem__(0, ticks[0] + 1)})
    thread.start()
    base = f"http://127.0.0.1:{site['port']}"
    try:
        wait_for(lambda: _status(f"{base}/healthz") == 200, timeout_s=30, what="/healthz to answer 200")
        clip = moving_square_clip(site["inbox"] / "cam1" / "a.mp4", seconds=1)
        video_id = fingerprint(clip).video_id
        wait_for(lambda: redis_client.hget(keys.video(video_id), "published") == "1", timeout_s=60,
                 what="the dropped clip to be published")
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert "vidwatch_publish_seconds_count 1.0" in metrics  # the publisher reports to the API's metrics
        assert ticks[0] > 0
        status = service.daemon.status()
        assert isinstance(status, DaemonStatus) and status.observers == {str(site["inbox"]): True}
        assert status.redis_ok and status.publish_retries == 0
    finally:
        service.stop_event.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert redis_client.exists(keys.daemon(service.daemon.ledger.daemon_id)) == 0  # heartbeat released
    assert _status(f"{base}/healthz") is None  # the API stopped with it


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None
