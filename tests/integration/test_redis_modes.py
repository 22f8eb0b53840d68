"""``[redis] mode``: the records, the ledger and the idempotent writes on a real 3-master Redis Cluster
and on a real Sentinel set (primary killed mid-burst), through :func:`vidwatch.results.connection.connect`.
"""

from __future__ import annotations

import gc
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError

from tests import clusters
from tests.clusters import RedisClusterSet, SentinelSet
from tests.conftest import REDIS_URL
from tests.helpers import wait_for
from vidwatch.config import RedisConfig
from vidwatch.daemon.ledger import Ledger
from vidwatch.detection import Detection
from vidwatch.errors import ConfigError
from vidwatch.results import migrate
from vidwatch.results.connection import connect
from vidwatch.results.keys import Keys
from vidwatch.results.lag import result_streams
from vidwatch.results.records import Records, State
from vidwatch.results.writer import FrameResult, ResultWriter

redis_cluster = clusters.redis_cluster  # module-scoped fixtures: a real cluster and Sentinel set
redis_sentinel = clusters.redis_sentinel

CONFIGS = [  # [redis] table, the error's words (None: valid)
    ({}, None),
    ({"mode": "cluster", "url": "redis://10.0.0.1:7000/0"}, None),
    ({"mode": "cluster", "url": "unix:///run/redis.sock"}, "cluster mode needs a redis:// or rediss:// seed"),
    ({"mode": "sentinel", "sentinels": ["s1:26379", "s2:26379"], "service": "vw"}, None),
    ({"mode": "sentinel", "service": "vw"}, "sentinel mode needs [redis] sentinels"),
    ({"mode": "sentinel", "sentinels": ["s1:26379"]}, "sentinel mode needs the primary's name"),
    ({"mode": "sentinel", "sentinels": ["s1"], "service": "vw"}, "expected HOST:PORT for each sentinel"),
    ({"mode": "replica"}, "Input should be 'standalone', 'cluster' or 'sentinel'"),
]


@pytest.mark.parametrize(("table", "error"), CONFIGS)
def test_modes_are_validated(table: dict, error: str | None) -> None:
    from vidwatch.config import Config

    if error is None:
        Config.model_validate({"redis": table})
        return
    with pytest.raises(ValidationError) as raised:
        Config.model_validate({"redis": table})
    assert error in str(raised.value)


def test_an_invalid_mode_is_refused_at_load_with_key_and_reason(tmp_path) -> None:
    from vidwatch.config import load_config

    config = tmp_path / "vidwatch.toml"
    config.write_text('[redis]\nmode = "sentinel"\nsentinels = ["127.0.0.1:26379"]\n')
    with pytest.raises(ConfigError, match=r"redis\.service = None: .*sentinel mode needs the primary's name"):
        load_config(config)


def _frames(label: str) -> list[FrameResult]:
    return [FrameResult(0, 0.0, []), FrameResult(1, 0.2, [Detection(label, 0.9, (1, 2, 3, 4), 1)])]


def _one_video(records: Records, writer: ResultWriter, video_id: str, camera: str) -> str | None:
    path = f"/in/{camera}/{video_id}.mp4"
    records.create(video_id, {"path": path, "camera": camera}, path=path)
    records.transition(video_id, State.PROCESSING, event="started", path=path)
    for k in range(2):
        written = writer.write_segment(video_id, k, camera, 1000.0 + k, _frames("person"), partial={"k": k},
                                       segments=2)
        assert written.written
    assert writer.write_segment(video_id, 1, camera, 1001.0, _frames("person"), segments=2).written is False
    summary = {"video_id": video_id, "camera": camera, "labels": {"person": {"tracks": 1}}}
    return writer.write_summary(video_id, path, camera, 1000.0, summary, {"person": 0.2})


@pytest.fixture
def closing() -> Iterator[list[redis.Redis]]:
    """Clients to close at the end of the test."""
    clients: list[redis.Redis] = []
    yield clients
    for client in clients:
        client.close()
    gc.collect()  # a socket left open shows here, in this test, not in a later one


def test_cluster_mode_writes_every_script_in_one_slot_and_spreads_cameras(
    redis_cluster: RedisClusterSet, closing: list[redis.Redis]
) -> None:
    redis_cluster.flush()
    config = RedisConfig(mode="cluster", url=redis_cluster.url, prefix=f"vw{uuid.uuid4().hex[:6]}")
    client = connect(config)
    closing.append(client)
    keys = Keys.for_config(config)
    assert keys.cluster and keys.video("v").startswith("{")
    records = Records(client, keys, events_maxlen=1000)
    writer = ResultWriter(client, keys, events_maxlen=1000, detections_maxlen=1000, summaries_maxlen=1000)
    cameras = [f"cam{i}" for i in range(8)]
    for i, camera in enumerate(cameras):
        assert _one_video(records, writer, f"v{i}", camera)
    assert client.xlen(keys.summaries) == 8
    assert records.inflight() == set()
    assert Counter(f["type"] for _, f in client.xrange(keys.events)) == {"detected": 8, "started": 8, "done": 8}
    slots = {client.keyslot(keys.detections(camera)) for camera in cameras}
    nodes = {client.nodes_manager.get_node_from_slot(slot).port for slot in slots}
    assert len(nodes) >= 2, "the cameras' detections all landed on one node"
    found = {keys.camera_of(key) for key in result_streams(client, keys, config) if "detections" in key}
    assert found == set(cameras), "SCAN missed streams on some nodes"
    ledger = Ledger(client, keys, records, "daemon-a")
    ledger.enqueue("v0")
    assert ledger.pop() == "v0" and client.hget(keys.video("v0"), "owner") == "daemon-a"
    assert ledger.pop() is None


def test_sentinel_mode_rides_over_a_failover_losing_and_repeating_nothing(
    redis_sentinel: SentinelSet, closing: list[redis.Redis]
) -> None:
    config = RedisConfig(mode="sentinel", sentinels=redis_sentinel.sentinel_addresses,
                         service=redis_sentinel.service, prefix=f"vw{uuid.uuid4().hex[:6]}")
    client = connect(config)
    closing.append(client)
    keys = Keys.for_config(config)
    records = Records(client, keys, events_maxlen=100_000)
    writer = ResultWriter(client, keys, events_maxlen=100_000, detections_maxlen=100_000, summaries_maxlen=100_000)
    done: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def burst() -> None:
        n = 0
        while not stop.is_set() or n < 40:
            try:
                if _one_video(records, writer, f"v{n}", f"cam{n % 3}"):
                    done.append(f"v{n}")
            except (redis.RedisError, AssertionError) as exc:
                errors.append(exc)
                return
            n += 1

    worker = threading.Thread(target=burst)
    worker.start()
    try:
        wait_for(lambda: len(done) >= 10 or not worker.is_alive(), timeout_s=60, what="the burst to be under way")
        old = redis_sentinel.kill_primary()
        assert redis_sentinel.primary_port() != old.port
    finally:
        stop.set()
        worker.join(timeout=120)
        redis_sentinel.revive()
    assert not errors, errors
    assert len(done) >= 40
    summaries = Counter(f["video_id"] for _, f in client.xrange(keys.summaries))
    assert set(summaries) == set(done) and set(summaries.values()) == {1}, "a summary lost or written twice"
    assert records.inflight() == set()
    events = Counter(f["type"] for _, f in client.xrange(keys.events))
    assert events == {"detected": len(done), "started": len(done), "done": len(done)}


def test_a_single_node_installation_migrates_into_the_cluster_layout(
    redis_cluster: RedisClusterSet, redis_client: redis.Redis, redis_prefix: str, closing: list[redis.Redis],
    tmp_path: Path,
) -> None:
    source_keys = Keys(redis_prefix)
    records = Records(redis_client, source_keys, events_maxlen=1000)
    writer = ResultWriter(redis_client, source_keys, events_maxlen=1000, detections_maxlen=1000,
                          summaries_maxlen=1000)
    summary_ids = {f"v{i}": _one_video(records, writer, f"v{i}", f"cam{i}") for i in range(3)}
    redis_client.xgroup_create(source_keys.summaries, "archiver", id="0")
    (tmp_path / "single.toml").write_text(f'[redis]\nurl = "{REDIS_URL}"\nprefix = "{redis_prefix}"\n')
    (tmp_path / "cluster.toml").write_text(
        f'[redis]\nmode = "cluster"\nurl = "{redis_cluster.url}"\nprefix = "{redis_prefix}"\n')
    assert migrate.main([str(tmp_path / "single.toml"), str(tmp_path / "cluster.toml")]) == 0
    assert migrate.main([str(tmp_path / "single.toml"), str(tmp_path / "cluster.toml")]) == 0  # again: no-op

    config = RedisConfig(mode="cluster", url=redis_cluster.url, prefix=redis_prefix)
    client = connect(config)
    closing.append(client)
    keys = Keys.for_config(config)
    for video_id, summary_id in summary_ids.items():
        assert client.hget(keys.video(video_id), "summary_id") == summary_id
        assert client.xrange(keys.summaries, summary_id, summary_id)
    assert client.xlen(keys.detections("cam1")) == redis_client.xlen(source_keys.detections("cam1")) == 2
    assert client.zrange(keys.index_detections("cam2"), 0, -1) == redis_client.zrange(
        source_keys.index_detections("cam2"), 0, -1)
    assert [g["name"] for g in client.xinfo_groups(keys.summaries)] == ["archiver"]
    assert client.zrange(keys.index_time, 0, -1) == ["v0", "v1", "v2"]
    assert not list(client.scan_iter(match=f"{redis_prefix}:segment:*"))  # in-flight markers are not copied
