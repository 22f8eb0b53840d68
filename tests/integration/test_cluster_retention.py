"""Objects, retention, ``DELETE``'s removal, the index pruner and the bridge drop on a real 3-master Redis
Cluster (``[redis] mode = "cluster"``): every script single-slot, and exactly what the single-node tests
(``test_retention.py``, ``test_api_delete.py``) assert goes, goes, and what stays, stays."""

from __future__ import annotations

import gc
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests import clusters
from tests.clusters import RedisClusterSet
from tests.integration.test_retention import DAY, NOW, Site
from vidwatch.config import Config
from vidwatch.daemon.retention import RetentionJob
from vidwatch.results.bridge import Bridge
from vidwatch.results.connection import connect
from vidwatch.results.keys import Keys
from vidwatch.results.objects import ObjectEntry, ObjectKeys, ObjectWriter, objects_of, prune_object_indexes
from vidwatch.results.records import Records
from vidwatch.results.retention import Cutoffs, NoSuchVideo, Retention, VideoInFlight
from vidwatch.results.writer import ResultWriter
from vidwatch.tasks.app import task_id

redis_cluster = clusters.redis_cluster  # a module-scoped real cluster (3 primaries)


class ClusterSite(Site):
    """:class:`Site` in the cluster layout."""

    def __init__(self, client: redis.Redis, config: Config) -> None:
        super().__init__(client, config)
        self.keys = Keys.for_config(config.redis)
        assert self.keys.cluster
        self.records = Records(client, self.keys, events_maxlen=10_000)
        self.writer = ResultWriter(client, self.keys, events_maxlen=10_000, detections_maxlen=100_000,
                                   summaries_maxlen=10_000)
        self.okeys = ObjectKeys.of(self.keys)

    def snapshot(self) -> dict[str, Any]:
        """Every key of this site on every primary with its type and content, and every file."""
        out: dict[str, Any] = {}
        for key in sorted(str(k) for k in self.client.scan_iter(match=f"*{self.keys.prefix}*", count=1000)):
            kind = str(self.client.type(key))
            read = {"hash": self.client.hgetall, "zset": lambda k: self.client.zrange(k, 0, -1, withscores=True),
                    "stream": self.client.xrange, "set": self.client.smembers, "string": self.client.get}[kind]
            out[key] = (kind, read(key))
        files = sorted(str(p) for folder in (self.config.paths.state_dir, self.config.results.sidecar_dir)
                       if folder is not None and folder.exists() for p in folder.rglob("*"))
        return {"keys": out, "files": files}


@pytest.fixture
def cluster_client(redis_cluster: RedisClusterSet) -> Iterator[tuple[redis.Redis, str]]:
    url = redis_cluster.url
    client = connect(Config.model_validate({"redis": {"mode": "cluster", "url": url}}).redis)
    yield client, url
    client.close()
    gc.collect()  # a socket left open shows here, in this test, not in a later one


def _site(cluster_client: tuple[redis.Redis, str], tmp_path: Path, **retention: float) -> ClusterSite:
    client, url = cluster_client
    config = Config.model_validate({
        "redis": {"mode": "cluster", "url": url, "prefix": f"vw{uuid.uuid4().hex[:8]}"},
        "paths": {"state_dir": str(tmp_path / "state")},
        "results": {"sidecar_dir": str(tmp_path / "sidecars")},
        "retention": retention,
    })
    return ClusterSite(client, config)


@pytest.fixture
def site(cluster_client: tuple[redis.Redis, str], tmp_path: Path) -> ClusterSite:
    """The videos of ``test_retention.site``, on the cluster."""
    site = _site(cluster_client, tmp_path, summaries_days=30, detections_days=7, files_days=14)
    for video_id, camera, age in (("old1", "cam1", 40), ("old2", "cam2", 31), ("mid", "cam1", 20),
                                  ("recent", "cam1", 10), ("new", "cam2", 1)):
        site.analyse(video_id, camera, NOW - age * DAY)
    site.records.create("stuck", {"path": "/nvr/cam1/stuck.mp4", "camera": "cam1",
                                  "start_ts": f"{NOW - 50 * DAY:.3f}"}, path="/nvr/cam1/stuck.mp4")
    site.client.zadd(site.keys.retention_videos, {"stuck": NOW - 50 * DAY})
    return site


def test_the_layout_spreads_cameras_and_keeps_objects_in_the_control_slot(site: ClusterSite) -> None:
    client, keys, okeys = site.client, site.keys, site.okeys
    control = client.keyslot(keys.video("old1"))
    for key in (okeys.stream, okeys.time, okeys.camera("cam1"), okeys.label("car"), okeys.video("old1")):
        assert client.keyslot(key) == control, key
    assert client.keyslot(keys.detections("cam1")) != client.keyslot(keys.detections("cam2"))
    assert [o.label for o in objects_of(client, keys, "old1")] == ["person", "car"]


def test_retention_on_a_cluster_removes_exactly_what_one_redis_does(site: ClusterSite) -> None:
    """The assertions of ``test_retention_removes_exactly_what_was_recorded_before_each_cutoff_across_a_restart``."""
    keys, client, okeys = site.keys, site.client, site.okeys
    kept_records = {v: client.hgetall(keys.video(v)) for v in ("mid", "recent", "new")}
    summaries_before = {f["video_id"]: i for i, f in client.xrange(keys.summaries)}
    stop = threading.Event()
    first = RetentionJob(client, keys, site.config, stop, limit=1).run_once(NOW)  # the backfill SCAN too
    assert first is not None and first.more
    report = RetentionJob(client, keys, site.config, stop).run_once(NOW)
    assert report is not None and not report.more and report.in_flight == 1
    assert [v for v in ("old1", "old2", "mid", "recent", "new", "stuck") if client.exists(keys.video(v))] == [
        "mid", "recent", "new", "stuck"]
    assert {v: client.hgetall(keys.video(v)) for v in kept_records} == kept_records
    assert {f["video_id"]: i for i, f in client.xrange(keys.summaries)} == {
        v: summaries_before[v] for v in ("mid", "recent", "new")}
    assert client.zrange(keys.index_time, 0, -1) == ["mid", "recent", "new"]
    assert client.zrange(keys.index_camera("cam1"), 0, -1) == ["mid", "recent"]
    assert client.zrange(keys.index_camera("cam2"), 0, -1) == ["new"]
    assert client.zrange(keys.index_label("person"), 0, -1) == ["mid", "recent", "new"]
    assert site.detection_videos("cam1") == [] and site.detection_videos("cam2") == ["new"] * 5
    assert client.zcard(keys.index_detections("cam1")) == 0 and client.zcard(keys.index_detections("cam2")) == 1
    assert [v for v in ("old1", "old2", "mid", "recent", "new") if site.files(v)] == ["recent", "new"]
    sidecars = site.config.results.sidecar_dir
    assert sorted(p.stem for p in sidecars.rglob("*.json")) == ["new", "recent"]  # type: ignore[union-attr]
    assert sorted({f["video_id"] for _, f in client.xrange(okeys.stream)}) == ["mid", "new", "recent"]
    assert site.object_videos() == ["mid", "mid", "recent", "recent", "new", "new"]
    assert site.object_videos(okeys.camera("cam1")) == ["mid", "mid", "recent", "recent"]
    assert site.object_videos(okeys.camera("cam2")) == ["new", "new"]
    assert site.object_videos(okeys.label("car")) == ["mid", "recent", "new"]
    assert site.object_videos(okeys.label("person")) == ["mid", "recent", "new"]
    assert [v for v in ("old1", "old2", "mid", "recent", "new") if client.exists(okeys.video(v))] == [
        "mid", "recent", "new"]
    both = first.counts + report.counts
    assert both["objects"] == 4
    assert (both["videos"], both["summaries"], both["detections"], both["detection_spans"]) == (2, 2, 20, 4)
    assert both["files"] == 15 and both["index_members"] == 6
    again = Retention(client, keys, site.config).run(Cutoffs.from_config(site.config, NOW))
    assert sum(again.counts.values()) == 0


def test_a_dry_run_changes_nothing_and_counts_what_the_pass_removes(site: ClusterSite) -> None:
    before = site.snapshot()
    cutoffs = Cutoffs.from_config(site.config, NOW)
    dry = Retention(site.client, site.keys, site.config).run(cutoffs, dry_run=True)
    assert site.snapshot() == before and dry.counts["videos"] == 2 and dry.in_flight == 1
    done = Retention(site.client, site.keys, site.config).run(cutoffs)
    assert done.counts == dry.counts and site.snapshot() != before


def test_delete_removes_one_video_and_refuses_one_in_flight(site: ClusterSite) -> None:
    """What ``DELETE /videos/{id}`` does (``api/removal.py`` calls :meth:`Retention.delete_video`)."""
    client, keys, okeys = site.client, site.keys, site.okeys
    retention = Retention(client, keys, site.config)
    before = site.snapshot()
    with pytest.raises(VideoInFlight, match="still seen"):
        retention.delete_video("stuck")
    assert site.snapshot() == before
    kept = sorted(k for k in client.hkeys(okeys.video("mid")) if k != "run")
    counts = retention.delete_video("new")
    assert (counts["videos"], counts["summaries"], counts["detections"], counts["objects"]) == (1, 1, 5, 2)
    assert not client.exists(keys.video("new")) and site.files("new") == []
    assert site.detection_videos("cam2") == ["old2"] * 5 and client.zscore(keys.index_time, "new") is None
    assert not client.exists(okeys.video("new")) and site.object_videos(okeys.camera("cam2")) == ["old2", "old2"]
    assert "new" not in site.object_videos() and sorted(k for k in client.hkeys(okeys.video("mid"))
                                                        if k != "run") == kept
    with pytest.raises(NoSuchVideo):
        retention.delete_video("new")  # once


def test_a_removal_cut_short_after_the_camera_step_is_finished_by_the_next_try(site: ClusterSite) -> None:
    client, keys = site.client, site.keys
    retention = Retention(client, keys, site.config)
    fields = client.hgetall(keys.video("new"))
    members = retention._spans_of("new", "cam2", fields)
    assert retention._delete_camera(keys=[keys.detections("cam2"), keys.index_detections("cam2"),
                                          *keys.bridge_markers("new", 1, "cam2")], args=["0", *members])
    assert site.detection_videos("cam2") == ["old2"] * 5 and client.exists(keys.video("new"))
    counts = retention.delete_video("new")  # the retry: the camera's part is done, the rest goes now
    assert (counts["videos"], counts["summaries"], counts["detections"], counts["objects"]) == (1, 1, 0, 2)
    assert not client.exists(keys.video("new")) and client.zscore(keys.retention_videos, "new") is None


def test_the_index_pruner_finds_the_objects_indexes_on_a_cluster(
        cluster_client: tuple[redis.Redis, str], tmp_path: Path) -> None:
    site = _site(cluster_client, tmp_path)
    client, okeys = site.client, site.okeys
    for video_id, camera in (("a", "cam1"), ("b", "cam2"), ("c", "cam1")):
        site.analyse(video_id, camera, NOW - DAY)
    client.xtrim(okeys.stream, maxlen=4, approximate=False)
    assert site.object_videos().count("gone") == 2
    assert prune_object_indexes(client, site.keys, batch=1) == 6
    for index in (okeys.time, okeys.camera("cam1"), okeys.camera("cam2"), okeys.label("person"), okeys.label("car")):
        assert "gone" not in site.object_videos(index)
    assert site.object_videos() == ["b", "c", "b", "c"] and site.object_videos(okeys.camera("cam1")) == ["c", "c"]
    assert prune_object_indexes(client, site.keys) == 0


def test_a_new_run_replaces_the_objects_in_one_slot(cluster_client: tuple[redis.Redis, str], tmp_path: Path) -> None:
    site = _site(cluster_client, tmp_path)
    client, keys, okeys = site.client, site.keys, site.okeys
    site.analyse("v", "cam1", NOW - DAY)
    entry = ObjectEntry("v", 7, "cam1", "dog", NOW, NOW + 1.0, 0.0, 1.0)
    writer = ObjectWriter(client, keys)
    assert writer.write("v", "cam1", [entry], run=2) and not writer.write("v", "cam1", [entry], run=2)
    assert [o.label for o in objects_of(client, keys, "v")] == ["dog"]
    assert client.zcard(okeys.label("person")) == 0 and client.zcard(okeys.label("dog")) == 1


def test_bridge_keys_go_at_the_end_markers_in_the_cameras_slot(
        cluster_client: tuple[redis.Redis, str], tmp_path: Path) -> None:
    """The assertions of ``test_bridge_keys_go_when_the_video_ends_and_a_redelivery_does_not_bring_them_back``."""
    site = _site(cluster_client, tmp_path)
    client, keys = site.client, site.keys
    site.start("v1", "cam1", NOW, segments=2)
    for unit in ("analyze", "seg0", "seg1", "summary"):
        client.incr(keys.deliveries(f"{task_id('v1', unit)}.r1"))
    assert site.segment("v1", "cam1", NOW, 0, 2) and site.segment("v1", "cam1", NOW, 1, 2)
    bridge = Bridge(client, keys).keys_of("v1")
    assert keys.segment_done("v1", 0, "cam1") in bridge
    assert len(bridge) == 2 + 2 + 4 and sum(client.exists(k) for k in bridge) == 8
    entries = client.xlen(keys.detections("cam1"))
    site.finish("v1", "cam1", NOW)
    assert sum(client.exists(k) for k in bridge) == 0
    assert not site.segment("v1", "cam1", NOW, 1, 2)
    assert sum(client.exists(k) for k in bridge) == 0 and client.xlen(keys.detections("cam1")) == entries
    site.start("v2", "cam1", NOW)
    assert site.segment("v2", "cam1", NOW)
    failed_bridge = Bridge(client, keys).keys_of("v2")
    client.incr(keys.deliveries(f"{task_id('v2', 'analyze')}.r1"))
    assert sum(client.exists(k) for k in failed_bridge) >= 3
    site.records.fail("v2", "summary: /nvr/cam1/v2.mp4: boom", path="/nvr/cam1/v2.mp4", stage="summary", kind="other")
    assert sum(client.exists(k) for k in failed_bridge) == 0
    assert client.zscore(keys.retention_videos, "v2") == pytest.approx(NOW, abs=0.01)
    assert Bridge(client, keys).drop("v2") == 0  # again: nothing left, harmless
