"""Retention against the real Redis: exactly what was recorded before the cutoff goes, across a restart;
``prune --dry-run`` changes nothing; a video in flight is never removed; bridge keys go at the end."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import REDIS_URL
from vidwatch.config import Config
from vidwatch.daemon.retention import RetentionJob
from vidwatch.detection import Detection
from vidwatch.results.bridge import DELIVERIES_LINGER_S, Bridge
from vidwatch.results.keys import Keys
from vidwatch.results.lag import lag_report
from vidwatch.results.records import Records
from vidwatch.results.retention import Cutoffs, Retention, VideoInFlight
from vidwatch.results.writer import FrameResult, ResultWriter
from vidwatch.tasks.app import task_id

DAY = 86400.0
NOW = time.time()


def _config(tmp_path: Path, prefix: str, **retention: float) -> Config:
    return Config.model_validate({
        "redis": {"url": REDIS_URL, "prefix": prefix},
        "paths": {"state_dir": str(tmp_path / "state")},
        "results": {"sidecar_dir": str(tmp_path / "sidecars")},
        "retention": retention,
    })


class Site:
    """Videos written the product's way (records, writer), with the files a worker leaves."""

    def __init__(self, client: redis.Redis, config: Config) -> None:
        self.client = client
        self.config = config
        self.keys = Keys(config.redis.prefix)
        self.records = Records(client, self.keys, events_maxlen=10_000)
        self.writer = ResultWriter(client, self.keys, events_maxlen=10_000, detections_maxlen=100_000,
                                   summaries_maxlen=10_000)

    def start(self, video_id: str, camera: str, start_ts: float, *, segments: int = 1) -> None:
        path = f"/nvr/{camera}/{video_id}.mp4"
        fields: dict[str, Any] = {"path": path, "camera": camera, "start_ts": f"{start_ts:.3f}",
                                  "probe_duration_s": "60.0"}
        if segments > 1:
            fields["segments"] = json.dumps([[60.0 * k / segments, 60.0 / segments] for k in range(segments)])
        assert self.records.create(video_id, fields, path=path)
        self.records.transition(video_id, "processing")

    def segment(self, video_id: str, camera: str, start_ts: float, k: int = 0, segments: int = 1) -> bool:
        frames = [FrameResult(i, k * 10.0 + i * 0.2, [Detection("person", 0.9, (1.0, 2.0, 30.0, 40.0), 1)])
                  for i in range(5)]
        return self.writer.write_segment(video_id, k, camera, start_ts, frames, partial={"start": 0},
                                         segments=segments).written

    def finish(self, video_id: str, camera: str, start_ts: float) -> str:
        summary_id = self.writer.write_summary(video_id, f"/nvr/{camera}/{video_id}.mp4", camera, start_ts,
                                               {"video_id": video_id}, {"person": 0.0})
        assert summary_id
        return summary_id

    def analyse(self, video_id: str, camera: str, start_ts: float) -> str:
        self.start(video_id, camera, start_ts)
        self.segment(video_id, camera, start_ts)
        for name in (f"thumbnails/{video_id}.jpg", f"crops/{video_id}/1.jpg", f"timelines/{video_id}.png",
                     f"condensed/{video_id}.mp4"):
            target = self.config.paths.state_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x" * 100)
        sidecar = self.config.results.sidecar_dir / camera / f"{video_id}.json"  # type: ignore[operator]
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        sidecar.write_text("{}")
        return self.finish(video_id, camera, start_ts)

    def files(self, video_id: str) -> list[Path]:
        state = self.config.paths.state_dir
        return [p for p in (state / "thumbnails" / f"{video_id}.jpg", state / "crops" / video_id,
                            state / "timelines" / f"{video_id}.png", state / "condensed" / f"{video_id}.mp4")
                if p.exists()]

    def snapshot(self) -> dict[str, Any]:
        """Every key under the prefix with its content (DUMP), and every file under the two folders."""
        keys = sorted(str(k) for k in self.client.scan_iter(match=f"{self.keys.prefix}:*", count=1000))
        raw = redis.Redis.from_url(REDIS_URL)
        files = sorted(str(p) for folder in (self.config.paths.state_dir, self.config.results.sidecar_dir)
                       if folder is not None and folder.exists() for p in folder.rglob("*"))
        return {"keys": {k: raw.dump(k) for k in keys}, "files": files}

    def detection_videos(self, camera: str) -> list[str]:
        return [f["video_id"] for _, f in self.client.xrange(self.keys.detections(camera))]


@pytest.fixture
def site(redis_client: redis.Redis, redis_prefix: str, tmp_path: Path) -> Site:
    config = _config(tmp_path, redis_prefix, summaries_days=30, detections_days=7, files_days=14)
    site = Site(redis_client, config)
    # (video, camera, recorded days ago): written now, whatever their recording time (a backlog)
    for video_id, camera, age in (("old1", "cam1", 40), ("old2", "cam2", 31), ("mid", "cam1", 20),
                                  ("recent", "cam1", 10), ("new", "cam2", 1)):
        site.analyse(video_id, camera, NOW - age * DAY)
    site.records.create("stuck", {"path": "/nvr/cam1/stuck.mp4", "camera": "cam1",
                                  "start_ts": f"{NOW - 50 * DAY:.3f}"}, path="/nvr/cam1/stuck.mp4")
    site.client.zadd(site.keys.retention_videos, {"stuck": NOW - 50 * DAY})  # as after a forced rerun
    return site


def test_retention_removes_exactly_what_was_recorded_before_each_cutoff_across_a_restart(site: Site) -> None:
    keys, client = site.keys, site.client
    kept_records = {v: client.hgetall(keys.video(v)) for v in ("mid", "recent", "new")}
    summaries_before = {f["video_id"]: i for i, f in client.xrange(keys.summaries)}
    stop = threading.Event()
    first = RetentionJob(client, keys, site.config, stop, limit=1).run_once(NOW)  # bounded: one video per pass
    assert first is not None and first.more
    report = RetentionJob(client, keys, site.config, stop).run_once(NOW)  # a restarted daemon finishes it
    assert report is not None and not report.more and report.in_flight == 1
    # records, summaries, indexes: videos recorded more than 30 days ago (never the one in flight)
    assert [v for v in ("old1", "old2", "mid", "recent", "new", "stuck") if client.exists(keys.video(v))] == [
        "mid", "recent", "new", "stuck"]
    assert {v: client.hgetall(keys.video(v)) for v in kept_records} == kept_records
    assert {f["video_id"]: i for i, f in client.xrange(keys.summaries)} == {
        v: summaries_before[v] for v in ("mid", "recent", "new")}
    assert client.zrange(keys.index_time, 0, -1) == ["mid", "recent", "new"]
    assert client.zrange(keys.index_camera("cam1"), 0, -1) == ["mid", "recent"]
    assert client.zrange(keys.index_camera("cam2"), 0, -1) == ["new"]
    assert client.zrange(keys.index_label("person"), 0, -1) == ["mid", "recent", "new"]
    # detections: recorded more than 7 days ago, entries and index members
    assert site.detection_videos("cam1") == [] and site.detection_videos("cam2") == ["new"] * 5
    assert client.zcard(keys.index_detections("cam1")) == 0 and client.zcard(keys.index_detections("cam2")) == 1
    # files: recorded more than 14 days ago
    assert [v for v in ("old1", "old2", "mid", "recent", "new") if site.files(v)] == ["recent", "new"]
    assert len(site.files("recent")) == 4 and len(site.files("new")) == 4
    sidecars = site.config.results.sidecar_dir
    assert sorted(p.stem for p in sidecars.rglob("*.json")) == ["new", "recent"]  # type: ignore[union-attr]
    both = first.counts + report.counts
    assert (both["videos"], both["summaries"], both["detections"], both["detection_spans"]) == (2, 2, 20, 4)
    assert both["files"] == 15 and both["index_members"] == 6  # 3 videos' 5 files; 2 videos in time+camera+label
    # a later pass finds nothing more
    again = Retention(client, keys, site.config).run(Cutoffs.from_config(site.config, NOW))
    assert sum(again.counts.values()) == 0


def test_streams_are_also_trimmed_by_write_time(redis_client: redis.Redis, redis_prefix: str, tmp_path: Path) -> None:
    """An entry written before the cutoff was recorded before it: MINID takes what no index points at."""
    site = Site(redis_client, _config(tmp_path, redis_prefix, summaries_days=30, detections_days=7))
    keys = site.keys
    old_id = f"{int((NOW - 31 * DAY) * 1000)}-0"
    for stream in (keys.detections("cam1"), keys.events, keys.summaries):  # written long ago, by no index
        redis_client.xadd(stream, {"video_id": "gone", "type": "old"}, id=old_id)
    site.analyse("new", "cam1", NOW - DAY)
    report = Retention(redis_client, keys, site.config).run(Cutoffs.from_config(site.config, NOW))
    assert (report.counts["detections"], report.counts["events"], report.counts["summaries"]) == (1, 1, 1)
    assert site.detection_videos("cam1") == ["new"] * 5
    assert [f["video_id"] for _, f in redis_client.xrange(keys.summaries)] == ["new"]
    assert all(f.get("type") != "old" for _, f in redis_client.xrange(keys.events))


def test_prune_dry_run_changes_nothing_and_counts_what_prune_removes(
        site: Site, tmp_path: Path, redis_prefix: str) -> None:
    config_file = tmp_path / "vidwatch.toml"
    config_file.write_text(
        f'[redis]\nurl = "{REDIS_URL}"\nprefix = "{redis_prefix}"\n'
        f'[paths]\nstate_dir = "{site.config.paths.state_dir}"\n'
        f'[results]\nsidecar_dir = "{site.config.results.sidecar_dir}"\n'
        "[retention]\nsummaries_days = 30\ndetections_days = 7\nfiles_days = 14\n"
    )
    before = site.snapshot()

    def prune(*args: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "vidwatch", "prune", "-c", str(config_file), "--json", *args],
                             capture_output=True, text=True, timeout=120, check=True)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    dry = prune("--dry-run")
    assert dry["dry_run"] is True and site.snapshot() == before
    assert dry["removed"]["videos"] == 2 and dry["skipped_in_flight"] == 1
    done = prune()
    assert done["removed"] == dry["removed"]
    assert site.snapshot() != before
    everything = prune("--before", "now", "--dry-run")
    assert everything["removed"]["videos"] == 3 and everything["skipped_in_flight"] == 1


def test_a_video_in_flight_is_never_removed(site: Site) -> None:
    retention = Retention(site.client, site.keys, site.config)
    before = site.snapshot()
    with pytest.raises(VideoInFlight, match="still seen"):
        retention.delete_video("stuck")
    assert site.snapshot() == before
    counts = retention.delete_video("new")
    assert counts["videos"] == 1 and counts["summaries"] == 1 and counts["detections"] == 5
    assert not site.client.exists(site.keys.video("new")) and site.files("new") == []


def test_bridge_keys_go_when_the_video_ends_and_a_redelivery_does_not_bring_them_back(
        redis_client: redis.Redis, redis_prefix: str, tmp_path: Path) -> None:
    site = Site(redis_client, _config(tmp_path, redis_prefix))
    keys = site.keys
    site.start("v1", "cam1", NOW, segments=2)
    for unit in ("analyze", "seg0", "seg1", "summary"):
        redis_client.incr(keys.deliveries(f"{task_id('v1', unit)}.r1"))  # what tasks.policy.count_delivery does
    assert site.segment("v1", "cam1", NOW, 0, 2) and site.segment("v1", "cam1", NOW, 1, 2)
    bridge = Bridge(redis_client, keys).keys_of("v1")
    assert len(bridge) == 2 + 2 + 4 and redis_client.exists(*bridge) == 8  # join, :fired, 2 markers, 4 counts
    entries = redis_client.xlen(keys.detections("cam1"))
    counts = keys.bridge_counts("v1", 1, 2)
    site.finish("v1", "cam1", NOW)

    def gone() -> bool:  # join, markers deleted; delivery counts readable for an hour, not 7 days
        return (redis_client.exists(*(set(bridge) - set(counts))) == 0
                and all(0 < redis_client.ttl(key) <= DELIVERIES_LINGER_S for key in counts))

    assert gone()
    assert not site.segment("v1", "cam1", NOW, 1, 2)  # redelivered after done: nothing written, nothing back
    assert gone() and redis_client.xlen(keys.detections("cam1")) == entries
    # failed: the same, through Records.fail
    site.start("v2", "cam1", NOW)
    assert site.segment("v2", "cam1", NOW)
    failed_bridge = Bridge(redis_client, keys).keys_of("v2")
    assert redis_client.exists(*failed_bridge) >= 2
    site.records.fail("v2", "summary: /nvr/cam1/v2.mp4: boom", path="/nvr/cam1/v2.mp4", stage="summary", kind="other")
    assert redis_client.exists(*failed_bridge) == 0  # no delivery was counted here
    assert redis_client.zscore(keys.retention_videos, "v2") == pytest.approx(NOW, abs=0.01)


def test_readyz_warns_before_retention_removes_what_a_group_has_not_read(site: Site) -> None:
    keys, client = site.keys, site.client
    client.xgroup_create(keys.summaries, "archiver", id="0")
    client.xgroup_create(keys.detections("cam2"), "alerts", id="$")
    report = lag_report(client, keys, site.config.redis, retention=site.config.retention, now=NOW)
    warned = [w for w in report["warnings"] if "retention" in w]
    assert len(warned) == 1 and "archiver" in warned[0] and "summaries_days = 30" in warned[0]
    client.xreadgroup("archiver", "c1", {keys.summaries: ">"})
    client.xack(keys.summaries, "archiver", *[i for i, _ in client.xrange(keys.summaries)])
    report = lag_report(client, keys, site.config.redis, retention=site.config.retention, now=NOW)
    assert [w for w in report["warnings"] if "retention" in w] == []


def test_the_daemon_enforces_retention_and_a_restarted_daemon_carries_on(site: Site, tmp_path: Path) -> None:
    """The real daemon (its retention job starts with it); stopped, old results arrive; a new daemon removes them."""
    from tests.conftest import free_port
    from tests.helpers import wait_for
    from vidwatch.config import load_config
    from vidwatch.daemon import Daemon

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    settings = site.config
    environ = {
        "VIDWATCH_WATCH__ROOTS": f'["{inbox}"]', "VIDWATCH_REDIS__URL": REDIS_URL,
        "VIDWATCH_REDIS__PREFIX": settings.redis.prefix, "VIDWATCH_PATHS__STATE_DIR": str(settings.paths.state_dir),
        "VIDWATCH_RESULTS__SIDECAR_DIR": str(settings.results.sidecar_dir),
        "VIDWATCH_API__LISTEN": f"127.0.0.1:{free_port()}",
        "VIDWATCH_RETENTION__SUMMARIES_DAYS": "30", "VIDWATCH_RETENTION__DETECTIONS_DAYS": "7",
        "VIDWATCH_RETENTION__FILES_DAYS": "14",
    }
    config = load_config(environ=environ)
    keys, client = site.keys, site.client

    def run_daemon_until(condition: Any, what: str) -> None:
        daemon = Daemon(config)
        thread = threading.Thread(target=daemon.run, daemon=True)
        daemon.start()
        thread.start()
        try:
            wait_for(condition, timeout_s=30, what=what)
        finally:
            daemon.stop_event.set()
            thread.join(timeout=10)
            daemon.stop()
            daemon.client.connection_pool.disconnect()  # its threads' connections, closed here, not by the GC

    run_daemon_until(lambda: not client.exists(keys.video("old1")) and not client.exists(keys.video("old2")),
                     "the daemon's first retention pass")
    assert all(client.exists(keys.video(v)) for v in ("mid", "recent", "new", "stuck"))
    site.analyse("late", "cam2", NOW - 35 * DAY)  # a backlog file analysed while no daemon ran
    assert client.exists(keys.video("late"))
    run_daemon_until(lambda: not client.exists(keys.video("late")), "the restarted daemon's pass")
    assert client.zrange(keys.index_time, 0, -1) == ["mid", "recent", "new"]
    assert site.detection_videos("cam2") == ["new"] * 5 and site.files("late") == []
