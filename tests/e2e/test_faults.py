"""Nothing lost, nothing twice: a killed daemon, a broker that goes away."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import free_port
from tests.e2e.processes import Proc
from tests.helpers import moving_square_clip, wait_for
from tests.integration.test_ingestion import distinct_ts_clips, publish_all
from vidwatch.results.keys import Keys

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


def _private_rabbitmq(tmp_path: Path, port: int) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    binary = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    if not binary.exists():
        binary = Path(shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server")
    if not binary.exists():
        pytest.skip("rabbitmq-server is not installed")
    base = tmp_path / "rabbit"
    (base / "log").mkdir(parents=True, exist_ok=True)
    (base / "enabled_plugins").write_text("[].\n")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(base),
        "RABBITMQ_NODENAME": f"vwtest{port}@localhost", "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(port + 10000),
        "RABBITMQ_BASE": str(base), "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"), "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"), "RABBITMQ_PID_FILE": str(base / "pid"),
    }
    with open(base / "log" / "console.log", "ab") as log:
        proc = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, env


def _broker_up(port: int) -> bool:
    from kombu import Connection

    try:
        with Connection(f"amqp://guest:guest@127.0.0.1:{port}//", connect_timeout=1) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


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
    rabbit, _ = _private_rabbitmq(tmp_path, port)
    env = {"VIDWATCH_BROKER__URL": f"amqp://guest:guest@127.0.0.1:{port}//", "VIDWATCH_WATCH__SETTLE_SECONDS": "0.5"}
    config = ["-c", str(site["config"])]
    worker = daemon = None
    try:
        wait_for(lambda: _broker_up(port), timeout_s=90, what="the private RabbitMQ")
        worker = Proc(["worker", *config], tmp_path / "worker.log", env)
        daemon = Proc(["daemon", *config], tmp_path / "daemon.log", env)
        wait_for(lambda: _readyz(site["port"]).get("status") == "ready", timeout_s=60, what="readiness")
        publish_all(distinct_ts_clips(tiny_ts, site["inbox"] / "cam1", 10))
        wait_for(lambda: sum(summaries(redis_client, keys).values()) >= 3, timeout_s=60, what="the first summaries")

        rabbit.send_signal(signal.SIGTERM)
        rabbit.wait(timeout=60)
        publish_all(distinct_ts_clips(tiny_ts, site["inbox"] / "cam2", 10, first=10))
        wait_for(lambda: _readyz(site["port"]).get("checks", {}).get("broker", {}).get("ok") is False, timeout_s=30,
                 what="/readyz to report the broker down")
        outage = subprocess.run(["sleep", "30"], check=False)  # the outage lasts 30 s, as the issue says
        assert outage.returncode == 0
        assert sum(summaries(redis_client, keys).values()) < 20

        rabbit, _ = _private_rabbitmq(tmp_path, port)
        wait_for(lambda: sum(summaries(redis_client, keys).values()) >= 20, timeout_s=180,
                 what="all 20 summaries after the broker returned")
    finally:
        for proc in (daemon, worker):
            if proc is not None:
                proc.stop()
        rabbit.send_signal(signal.SIGTERM)
        rabbit.wait(timeout=60)
    done = summaries(redis_client, keys)
    assert len(done) == 20 and set(done.values()) == {1}
    assert count_events(redis_client, keys, "failed") == 0
    record_states = {redis_client.hget(keys.video(v), "state") for v in done}
    assert record_states == {"done"}
    assert json.loads(next(iter(redis_client.xrange(keys.summaries)))[1]["labels"]) is not None
