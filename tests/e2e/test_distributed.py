"""The whole flow (daemon + worker processes) on distributed back-ends started by the tests:
a 3-master Redis Cluster and a Sentinel set give the same summaries as one Redis, a Sentinel
fail-over mid-burst loses and repeats nothing, and a 3-node RabbitMQ cluster with quorum queues
loses a node mid-burst while every video still ends exactly once.
"""

from __future__ import annotations

import gc
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import clusters
from tests.clusters import RabbitClusterSet, SentinelSet
from tests.conftest import REDIS_URL, free_port
from tests.e2e.processes import Proc
from tests.e2e.test_segments import drifting_square_ts
from tests.helpers import moving_square_clip, wait_for
from tests.integration.test_ingestion import distinct_ts_clips
from vidwatch.config import load_config
from vidwatch.results.connection import connect
from vidwatch.results.keys import Keys
from vidwatch.results.objects import ObjectKeys, objects_of

pytestmark = pytest.mark.e2e

redis_cluster = clusters.redis_cluster
redis_sentinel = clusters.redis_sentinel
rabbit_cluster = clusters.rabbit_cluster

COMPARED = ("camera", "duration", "frames_analyzed", "labels", "activity")  # summary fields that must agree


def write_config(folder: Path, inbox: Path, redis_table: str, broker_url: str, *, quorum: bool = False) -> Path:
    """A vidwatch.toml for one site: its own inbox, state folder, prefix and API port."""
    config = folder / "vidwatch.toml"
    config.write_text(
        f"""
[watch]
roots = ["{inbox}"]
settle_seconds = 0.5
rescan_seconds = 60

[paths]
state_dir = "{folder / 'var'}"

[broker]
url = "{broker_url}"
quorum_queues = {"true" if quorum else "false"}

[redis]
prefix = "vwd{uuid.uuid4().hex[:8]}"
{redis_table}

[api]
listen = "127.0.0.1:{free_port()}"

[analysis]
fps = 5
size = 320
segment_seconds = 5
"""
    )
    return config


class Site:
    """A daemon and a worker on one configuration, and what they wrote."""

    def __init__(self, folder: Path, config: Path) -> None:
        self.folder, self.config = folder, config
        loaded = load_config(config)
        self.client = connect(loaded.redis)
        self.keys = Keys.for_config(loaded.redis)
        args = ["-c", str(config)]
        self.worker = Proc(["worker", *args], folder / "worker.log")
        self.daemon = Proc(["daemon", *args], folder / "daemon.log")

    def summaries(self) -> Counter[str]:
        return Counter(fields["video_id"] for _, fields in self.client.xrange(self.keys.summaries))

    def events(self, kind: str) -> int:
        return sum(1 for _, fields in self.client.xrange(self.keys.events) if fields["type"] == kind)

    def wait_done(self, count: int, timeout_s: float) -> None:
        wait_for(lambda: sum(self.summaries().values()) >= count, timeout_s=timeout_s,
                 what=f"{count} summaries (daemon log: {self.daemon.log})", interval_s=0.5)
        wait_for(lambda: self.client.scard(self.keys.inflight) == 0, timeout_s=30, what="nothing left in flight")

    def by_path(self) -> dict[str, dict[str, object]]:
        """Each summary's compared fields, by the video's path relative to the inbox."""
        out = {}
        for _, fields in self.client.xrange(self.keys.summaries):
            path = Path(fields["path"]).relative_to(self.folder / "inbox").as_posix()
            out[path] = {name: json.loads(fields[name]) if fields[name][:1] in "[{" else fields[name]
                         for name in COMPARED}
        return out

    def objects_by_path(self) -> dict[str, tuple[str | None, list[tuple[str, int]]]]:
        """Each video's objects run marker and (label, track) of its objects, by path relative to the inbox."""
        out = {}
        for _, fields in self.client.xrange(self.keys.summaries):
            path = Path(fields["path"]).relative_to(self.folder / "inbox").as_posix()
            run = self.client.hget(ObjectKeys.of(self.keys).video(fields["video_id"]), "run")
            out[path] = (run, [(o.label, o.track) for o in objects_of(self.client, self.keys, fields["video_id"])])
        return out

    def stop(self) -> None:
        daemon_code = self.daemon.stop()
        self.worker.stop()
        assert daemon_code == 0, self.daemon.tail()

    def forget(self) -> None:
        """Delete this site's keys (on the shared Redis; the test clusters go away by themselves)."""
        pattern = f"{self.keys.prefix}:*" if not self.keys.cluster else None
        if pattern:
            found = list(self.client.scan_iter(match=pattern, count=1000))
            if found:
                self.client.delete(*found)

    def assert_each_once(self, count: int) -> None:
        done = self.summaries()
        assert len(done) == count and set(done.values()) == {1}, f"summaries per video: {done}"
        assert self.events("detected") == count
        assert self.events("failed") == 0
        assert self.events("done") == count


OPEN: list[Site] = []  # sites whose Redis clients the autouse fixture closes after each test


@pytest.fixture(autouse=True)
def _close_sites() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().client.close()
    gc.collect()  # a socket left open shows here, in this test, not in a later one


def run_flow(folder: Path, redis_table: str, broker_url: str, clips: list[tuple[str, Path]], *,
             quorum: bool = False, during: Callable[[Site], None] | None = None, timeout_s: float = 240) -> Site:
    """Start a site, drop ``clips`` (relative path, file) into its inbox, run ``during``, wait for every summary."""
    inbox = folder / "inbox"
    inbox.mkdir(parents=True)
    site = Site(folder, write_config(folder, inbox, redis_table, broker_url, quorum=quorum))
    OPEN.append(site)
    try:
        for relative, source in clips:
            target = inbox / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(f".{target.name}.part")
            part.write_bytes(source.read_bytes())
            part.rename(target)
        if during is not None:
            during(site)
        site.wait_done(len(clips), timeout_s)
    finally:
        site.stop()
    return site


@pytest.fixture(scope="module")
def motion_clips(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    """Three cameras' videos with motion; the 12 s ones are analysed in three segments."""
    folder = tmp_path_factory.mktemp("clips")
    return [
        ("cam1/a.ts", drifting_square_ts(folder / "a.ts", 12, 1)),
        ("cam2/b.ts", drifting_square_ts(folder / "b.ts", 12, 2)),
        ("cam3/c.mp4", moving_square_clip(folder / "c.mp4", seconds=6)),
        ("cam1/d.mp4", moving_square_clip(folder / "d.mp4", seconds=6, move_from_s=1, move_to_s=5)),
    ]


@pytest.mark.timeout(900)
def test_cluster_and_sentinel_give_the_same_summaries_as_one_redis(
    tmp_path: Path, amqp_url: str, redis_cluster: clusters.RedisClusterSet, redis_sentinel: SentinelSet,
    motion_clips: list[tuple[str, Path]], ffmpeg: str,
) -> None:
    single = run_flow(tmp_path / "single", f'url = "{REDIS_URL}"', amqp_url, motion_clips)
    expected, expected_objects = single.by_path(), single.objects_by_path()
    single.forget()
    assert len(expected) == len(motion_clips) and any(s["labels"] for s in expected.values())

    cluster = run_flow(tmp_path / "cluster", f'mode = "cluster"\nurl = "{redis_cluster.url}"', amqp_url,
                       motion_clips)
    cluster.assert_each_once(len(motion_clips))
    assert cluster.by_path() == expected
    assert cluster.objects_by_path() == expected_objects  # written by the summary task, in the control slot
    assert all(run == "1" for run, _ in expected_objects.values())
    assert any(cluster.client.keyslot(cluster.keys.detections(c)) != cluster.client.keyslot(cluster.keys.events)
               for c in ("cam1", "cam2", "cam3"))

    sentinels = json.dumps(redis_sentinel.sentinel_addresses)
    sentinel = run_flow(tmp_path / "sentinel", f'mode = "sentinel"\nsentinels = {sentinels}\n'
                        f'service = "{redis_sentinel.service}"', amqp_url, motion_clips)
    sentinel.assert_each_once(len(motion_clips))
    assert sentinel.by_path() == expected


@pytest.mark.timeout(600)
def test_sentinel_primary_killed_mid_burst_loses_and_repeats_nothing(
    tmp_path: Path, amqp_url: str, redis_sentinel: SentinelSet, ffmpeg: str
) -> None:
    tiny = moving_square_clip(tmp_path / "tiny.ts", seconds=1, size="64x48", fmt="mpegts")
    clips = [(f"cam{i % 3}/{path.name.removeprefix('.').removesuffix('.part')}", path)
             for i, path in enumerate(distinct_ts_clips(tiny, tmp_path / "burst", 30))]

    def kill_primary(site: Site) -> None:
        wait_for(lambda: sum(site.summaries().values()) >= 8, timeout_s=120, what="the burst to be under way")
        old = redis_sentinel.kill_primary()
        assert sum(site.summaries().values()) < 30, "the burst ended before the fail-over"
        assert redis_sentinel.primary_port() != old.port

    sentinels = json.dumps(redis_sentinel.sentinel_addresses)
    try:
        site = run_flow(tmp_path / "site", f'mode = "sentinel"\nsentinels = {sentinels}\n'
                        f'service = "{redis_sentinel.service}"', amqp_url, clips, during=kill_primary)
    finally:
        redis_sentinel.revive()
    site.assert_each_once(30)


@pytest.mark.timeout(900)
def test_rabbitmq_cluster_with_quorum_queues_loses_a_node_mid_burst(
    tmp_path: Path, rabbit_cluster: RabbitClusterSet, ffmpeg: str
) -> None:
    vhost = rabbit_cluster.add_vhost()
    tiny = moving_square_clip(tmp_path / "tiny.ts", seconds=1, size="64x48", fmt="mpegts")
    clips = [(f"cam1/{path.name.removeprefix('.').removesuffix('.part')}", path)
             for path in distinct_ts_clips(tiny, tmp_path / "burst", 30)]

    def stop_a_node(site: Site) -> None:
        wait_for(lambda: sum(site.summaries().values()) >= 6, timeout_s=180, what="the burst to be under way")
        rabbit_cluster.stop_node(0)  # the first URL: what the daemon and the worker are connected to
        assert sum(site.summaries().values()) < 30, "the burst ended before the node stopped"

    try:
        site = run_flow(tmp_path / "site", f'url = "{REDIS_URL}"', rabbit_cluster.multi_url(vhost), clips,
                        quorum=True, during=stop_a_node, timeout_s=300)
        site.assert_each_once(30)
        site.forget()
        listed = rabbit_cluster.ctl("list_queues", "-p", vhost, "--no-table-headers", "name", "type").stdout
        types = dict(line.split("\t")[:2] for line in listed.splitlines() if "\t" in line)
        assert {types[name] for name in ("cpu", "dead")} == {"quorum"}, types
    finally:
        if not rabbit_cluster.nodes[0].server.alive():
            rabbit_cluster.start_node(0)
        rabbit_cluster.delete_vhost(vhost)
