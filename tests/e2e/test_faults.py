"""Nothing lost, nothing twice: a killed daemon, a broker that goes away."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import free_port
from tests.e2e.processes import Proc
from tests.helpers import missing, moving_square_clip, wait_for
from tests.integration.test_ingestion import distinct_ts_clips, publish_all
from vidwatch.errors import ConfigError
from vidwatch.results.keys import Keys
from vidwatch.services import PrivateService, start_rabbitmq

pytestmark = pytest.mark.e2e


def summaries(client: redis.Redis, keys: Keys) -> Counter[str]:
    return Counter(fields["video_id"] for _, fields in client.xrange(keys.summaries))


def count_events(client: redis.Redis, keys: Keys, kind: str) -> int:
    return sum(1 for _, f in client.xrange(keys.events) if f["type"] == kind)


@pytest.fixture
def tiny_ts(tmp_path: Path, ffmpeg: str) -> Path:
    return moving_square_clip(tmp_path / "tiny.ts", seconds=1, size="64x48", fmt="mpegts")


@pytest.mark.timeout(360)
def test_daemon_killed_mid_burst_loses_nothing_and_repeats_nothing(
    site: dict, redis_client: redis.Redis, tiny_ts: Path, tmp_path: Path
) -> None:
    keys = Keys(site["prefix"])
    config = ["-c", str(site["config"])]
    env = {"VIDWATCH_WATCH__SETTLE_SECONDS": "0.5"}
    worker = Proc(["worker", *config], tmp_path / "worker.log", env)
    daemon = Proc(["daemon", *config], tmp_path / "daemon.log", env)
    try:
        publish_all(distinct_ts_clips(tiny_ts, site["inbox"] / "cam1", 200))
        wait_for(lambda: count_events(redis_client, keys, "detected") >= 60, timeout_s=60,
                 what="the burst to be under way")
        daemon.kill9()
        assert count_events(redis_client, keys, "queued") < 200  # it really died mid-way
        daemon = Proc(["daemon", *config], tmp_path / "daemon.log", env)
        wait_for(lambda: sum(summaries(redis_client, keys).values()) >= 200, timeout_s=240,
                 what="200 summaries")
        wait_for(lambda: redis_client.scard(keys.inflight) == 0, timeout_s=30, what="nothing left in flight")
    finally:
        assert daemon.stop() == 0, daemon.tail()
        worker.stop()
    done = summaries(redis_client, keys)
    assert len(done) == 200 and set(done.values()) == {1}, "a video was summarised twice"
    assert count_events(redis_client, keys, "detected") == 200
    assert count_events(redis_client, keys, "failed") == 0


def _private_rabbitmq(tmp_path: Path, port: int) -> PrivateService:
    """A RabbitMQ of this test's own (data under tmp_path, so a restart keeps its durable queues)."""
    try:
        return start_rabbitmq(f"amqp://guest:guest@127.0.0.1:{port}//", tmp_path / "state")
    except ConfigError as exc:
        missing(f"a private RabbitMQ ({exc})", "apt-get install rabbitmq-server")


OUTAGE_S = 30.0  # how long the broker stays down, as the issue says


def _outage_held(port: int, stopped_at: float) -> bool:
    """The broker has been down for OUTAGE_S and the daemon still holds videos it could not publish."""
    daemon = _readyz(port).get("daemon") or {}
    waiting = daemon.get("publish_retries", 0) + daemon.get("videos_in_progress", 0)
    return time.monotonic() - stopped_at >= OUTAGE_S and waiting > 0


def _readyz(port: int) -> dict:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
    except httpx.HTTPError:
        return {}


@pytest.mark.timeout(360)
def test_broker_down_for_30_seconds_during_a_burst(
    site: dict, redis_client: redis.Redis, tiny_ts: Path, tmp_path: Path
) -> None:
    keys = Keys(site["prefix"])
    port = free_port()
    rabbit = _private_rabbitmq(tmp_path, port)  # answers once this returns
    env = {"VIDWATCH_BROKER__URL": f"amqp://guest:guest@127.0.0.1:{port}//", "VIDWATCH_WATCH__SETTLE_SECONDS": "0.5"}
    config = ["-c", str(site["config"])]
    worker = daemon = None
    try:
        worker = Proc(["worker", *config], tmp_path / "worker.log", env)
        daemon = Proc(["daemon", *config], tmp_path / "daemon.log", env)
        wait_for(lambda: _readyz(site["port"]).get("status") == "ready", timeout_s=60, what="readiness")
        publish_all(distinct_ts_clips(tiny_ts, site["inbox"] / "cam1", 10))
        wait_for(lambda: sum(summaries(redis_client, keys).values()) >= 3, timeout_s=60, what="the first summaries")

        rabbit.stop()
        stopped_at = time.monotonic()
        publish_all(distinct_ts_clips(tiny_ts, site["inbox"] / "cam2", 10, first=10))
        wait_for(lambda: _readyz(site["port"]).get("checks", {}).get("broker", {}).get("ok") is False, timeout_s=30,
                 what="/readyz to report the broker down")
        wait_for(lambda: _outage_held(site["port"], stopped_at), timeout_s=OUTAGE_S + 60,
                 what=f"a {OUTAGE_S:.0f} s outage with videos waiting for the broker")
        assert sum(summaries(redis_client, keys).values()) < 20

        rabbit = _private_rabbitmq(tmp_path, port)  # the same data folder: the durable queues are back
        wait_for(lambda: sum(summaries(redis_client, keys).values()) >= 20, timeout_s=180,
                 what="all 20 summaries after the broker returned")
    finally:
        for proc in (daemon, worker):
            if proc is not None:
                proc.stop()
        rabbit.stop()
    done = summaries(redis_client, keys)
    assert len(done) == 20 and set(done.values()) == {1}
    assert count_events(redis_client, keys, "failed") == 0
    record_states = {redis_client.hget(keys.video(v), "state") for v in done}
    assert record_states == {"done"}
    assert json.loads(next(iter(redis_client.xrange(keys.summaries)))[1]["labels"]) is not None
