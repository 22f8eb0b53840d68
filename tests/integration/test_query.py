"""Indexed queries of videos and detections against the real Redis: ranges, edges, trimming, reruns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_URL
from tests.helpers import stored
from vidwatch.config import Config
from vidwatch.engines.base import Detection
from vidwatch.results.detections import DetectionQuery, find_detections
from vidwatch.results.keys import Keys
from vidwatch.results.query import VideoQuery, find_video_ids, summary_of
from vidwatch.results.records import Records
from vidwatch.results.trim import prune_indexes
from vidwatch.results.version import analysis_version
from vidwatch.results.writer import FrameResult, ResultWriter


def _det(label: str, track: int = 1) -> Detection:
    return Detection(label, 0.9, (1.0, 2.0, 3.0, 4.0), track)


# video, camera, recording start, {pts: labels}
VIDEOS = {
    "v1": ("cam1", 1000.0, {0.0: ["person"], 5.0: ["person", "car"], 10.0: ["person"]}),
    "v2": ("cam1", 2000.0, {0.0: ["person"], 1.0: ["person"]}),
    "v3": ("cam2", 1500.0, {0.0: ["car"], 2.0: ["car"]}),
}


class Site:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.records = Records(client, self.keys, events_maxlen=1000)
        self.writer = ResultWriter(client, self.keys, events_maxlen=1000, detections_maxlen=1000,
                                   summaries_maxlen=1000, analysis=analysis_version(Config()))

    def analyse(self, video_id: str, camera: str, start: float, frames: dict[float, list[str]]) -> str:
        path = f"/nvr/{camera}/{video_id}.mp4"
        if not self.records.create(video_id, {"camera": camera, "path": path}, path=path):
            assert self.records.rerun(video_id, path=path)
        self.records.transition(video_id, "processing")
        results = [FrameResult(i, pts, [_det(label, n) for n, label in enumerate(labels)])
                   for i, (pts, labels) in enumerate(sorted(frames.items()))]
        assert self.writer.write_segment(video_id, 0, camera, start, results)
        first: dict[str, float] = {}
        for pts, labels in sorted(frames.items()):
            for label in labels:
                first.setdefault(label, pts)
        summary_id = self.writer.write_summary(video_id, path, camera, start, {"video_id": video_id}, first)
        assert summary_id
        return summary_id

    def videos(self, **query: object) -> list[str]:
        return [vid for vid, _ in find_video_ids(self.client, self.keys, VideoQuery(**query))]  # type: ignore[arg-type]

    def detections(self, **query: object) -> list[tuple[str, float, list[str]]]:
        rows = find_detections(self.client, self.keys, DetectionQuery(**query))  # type: ignore[arg-type]
        return [(row["video_id"], row["ts"], [d["label"] for d in row["detections"]]) for row in rows]


@pytest.fixture
def site(redis_client: redis.Redis, redis_prefix: str) -> Site:
    site = Site(redis_client, redis_prefix)
    for video_id, (camera, start, frames) in VIDEOS.items():
        site.analyse(video_id, camera, start, frames)
    return site


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["v2", "v3", "v1"]),
        ({"since": 1000.0, "until": 1500.0}, ["v3", "v1"]),  # both edges inclusive
        ({"since": 1000.001, "until": 1499.999}, []),
        ({"camera": "cam1"}, ["v2", "v1"]),
        ({"camera": "cam1", "since": 1001.0}, ["v2"]),
        ({"label": "car"}, ["v3", "v1"]),  # by first occurrence: 1500, 1005
        ({"label": "car", "until": 1005.0}, ["v1"]),
        ({"camera": "cam1", "label": "car"}, ["v1"]),
        ({"camera": "cam2", "label": "person"}, []),
        ({"camera": "cam9"}, []),
    ],
)
def test_videos_in_range(site: Site, query: dict[str, object], expected: list[str]) -> None:
    assert site.videos(**query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"since": 1005.0, "until": 1500.0},
         [("v1", 1005.0, ["person", "car"]), ("v1", 1010.0, ["person"]), ("v3", 1500.0, ["car"])]),
        ({"label": "car", "since": 1005.0, "until": 1502.0},
         [("v1", 1005.0, ["car"]), ("v3", 1500.0, ["car"]), ("v3", 1502.0, ["car"])]),
        ({"camera": "cam2"}, [("v3", 1500.0, ["car"]), ("v3", 1502.0, ["car"])]),
        ({"since": 1010.0, "until": 1010.0}, [("v1", 1010.0, ["person"])]),  # a span that started before since
        ({"since": 1005.001, "until": 1009.999}, []),  # inside v1's span, between its entries
        ({"camera": "cam1", "since": 2001.0}, [("v2", 2001.0, ["person"])]),
        ({"label": "dog"}, []),
        ({"since": 1000.0, "until": 2001.0, "limit": 2},
         [("v1", 1000.0, ["person"]), ("v1", 1005.0, ["person", "car"])]),
    ],
)
def test_detections_in_range(site: Site, query: dict[str, object], expected: list[object]) -> None:
    assert site.detections(**query) == expected


def test_entries_carry_schema_and_analysis_versions(site: Site) -> None:
    version = analysis_version(Config())
    (_, fields), *_ = site.client.xrange(site.keys.detections("cam1"), count=1)
    assert (fields["schema"], fields["analysis_version"], fields["run"]) == ("1", version.id, "1")
    summary = summary_of(site.client, site.keys, "v1")
    assert summary is not None
    assert (summary["schema"], summary["analysis_version"], summary["run"]) == ("1", version.id, "1")
    assert summary["analysis"]["engine"] == version.details["engine"]
    assert {f["schema"] for _, f in site.client.xrange(site.keys.events)} == {"1"}


def test_a_writer_from_the_configuration_stamps_its_analysis_version(redis_client: redis.Redis,
                                                                     redis_prefix: str) -> None:
    config = Config()
    keys = Keys(redis_prefix)
    writer = ResultWriter.from_config(redis_client, keys, config)
    assert writer.analysis == analysis_version(config)
    assert writer.detections_maxlen == config.redis.detections_maxlen
    records = Records(redis_client, keys, events_maxlen=1000)
    records.create("v9", {"camera": "cam1"}, path="/a.mp4")
    records.transition("v9", "processing")
    writer.write_summary("v9", "/a.mp4", "cam1", 5.0, {"video_id": "v9"}, {})
    (done,) = [f for _, f in redis_client.xrange(keys.events) if f["type"] == "done"]
    assert done["analysis_version"] == analysis_version(config).id


def test_trimmed_summaries_and_detections_are_not_returned(site: Site) -> None:
    site.client.xtrim(site.keys.summaries, maxlen=1, approximate=False)  # keeps v3's summary (written last)
    assert site.videos() == ["v3"]
    assert site.videos(camera="cam1") == []
    assert site.videos(label="person") == []
    assert site.client.zcard(site.keys.index_time) == 1  # pruned on the way
    assert site.client.zscore(site.keys.index_label("car"), "v1") is None

    site.client.xtrim(site.keys.detections("cam1"), maxlen=2, approximate=False)  # v2's two entries stay
    assert [(v, ts) for v, ts, _ in site.detections(camera="cam1")] == [("v2", 2000.0), ("v2", 2001.0)]
    assert site.client.zcard(site.keys.index_detections("cam1")) == 1


def test_the_background_pruner_unindexes_trimmed_summaries(site: Site) -> None:
    site.client.xtrim(site.keys.summaries, maxlen=2, approximate=False)
    assert prune_indexes(site.client, site.keys, batch=1) == 1
    assert sorted(site.client.zrange(site.keys.index_time, 0, -1)) == ["v2", "v3"]


def test_a_rerun_replaces_results_when_its_summary_lands(site: Site) -> None:
    keys, client = site.keys, site.client
    before = summary_of(client, keys, "v1")
    assert site.records.rerun("v1", path="/nvr/cam1/v1.mp4") == 2
    assert site.records.rerun("v1", path="/nvr/cam1/v1.mp4") == 0  # already running again
    site.records.transition("v1", "processing")
    assert site.writer.write_segment("v1", 0, "cam1", 1000.0, [FrameResult(0, 3.0, [_det("dog")])])
    # until the new summary is in, readers see run 1 everywhere
    assert summary_of(client, keys, "v1") == before
    assert [ts for v, ts, _ in site.detections(camera="cam1") if v == "v1"] == [1000.0, 1005.0, 1010.0]
    new_id = site.writer.write_summary("v1", "/nvr/cam1/v1.mp4", "cam1", 1000.0, {"video_id": "v1"}, {"dog": 3.0})
    summary = summary_of(client, keys, "v1")
    assert summary is not None and (summary["summary_id"], summary["run"]) == (new_id, "2")
    assert [(v, ts, labels) for v, ts, labels in site.detections(camera="cam1") if v == "v1"] == [
        ("v1", 1003.0, ["dog"])
    ]
    assert site.videos(label="car") == ["v3"]
    assert site.videos(label="dog") == ["v1"]
    assert stored(site.records, "v1")["state"] == "done"
    done = [f for _, f in client.xrange(keys.events) if f["type"] == "done" and f["video_id"] == "v1"]
    assert [f["run"] for f in done] == ["1", "2"]
    assert json.loads(done[-1]["detail"] or "{}") == {}


def _vidwatch(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("vidwatch")), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_the_query_command(site: Site, tmp_path: Path) -> None:
    config = tmp_path / "vidwatch.toml"
    config.write_text(f'[redis]\nurl = "{REDIS_URL}"\nprefix = "{site.keys.prefix}"\n')
    argv = ["query", "-c", str(config), "--label", "car", "--since", "1970-01-01T00:16:45Z", "--until", "1502"]
    done = _vidwatch(*argv, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [v["video_id"] for v in out["videos"]] == ["v3", "v1"]  # a label alone: by its first occurrence
    assert [(d["video_id"], d["ts"]) for d in out["detections"]] == [("v1", 1005.0), ("v3", 1500.0), ("v3", 1502.0)]
    text = _vidwatch(*argv).stdout
    assert "videos (2):" in text and "detections (3):" in text and "1970-01-01T00:25:00.000Z" in text
    refused = _vidwatch("query", "-c", str(config), "--since", "last tuesday")
    assert refused.returncode == 1 and "last tuesday" in refused.stderr
