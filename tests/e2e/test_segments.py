"""Long videos in segments on several workers: the same summary as one pass, exactly once through a crash."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.e2e.processes import Proc
from tests.helpers import wait_for
from tests.models import square_detector
from vidwatch.ops.snapshot import live_workers
from vidwatch.results.keys import Keys

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def drifting_square_ts(path: Path, seconds: int, variant: int) -> Path:
    """A square drifting slowly across the whole clip (one track through every cut), 1 s GOPs.

    ``variant`` is appended as a null packet: the same pictures, a different file version.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"color=c=0x404040:s=320x240:d={seconds}:r=10",
         "-f", "lavfi", "-i", "color=c=white:s=40x40:r=10",
         "-filter_complex", "[0][1]overlay=x='10+t*8':y=100:shortest=1,format=yuv420p",
         "-c:v", "libx264", "-preset", "veryfast", "-g", "10", "-f", "mpegts", str(path)],
        check=True, timeout=120,
    )
    with open(path, "ab") as handle:
        handle.write(b"\x47\x1f\xff\x10" + variant.to_bytes(4, "big") * 46)
    return path


def summary_of(client: redis.Redis, keys: Keys, video_id: str) -> dict[str, str] | None:
    summary_id = client.hget(keys.video(video_id), "summary_id")
    if not summary_id:
        return None
    return client.xrange(keys.summaries, summary_id, summary_id)[0][1]


def video_id_of(client: redis.Redis, keys: Keys, path: Path) -> str | None:
    for _, fields in client.xrange(keys.events):
        if fields["type"] == "detected" and fields["path"] == str(path):
            return fields["video_id"]
    return None


def test_segments_on_two_workers_match_one_pass_and_survive_a_killed_worker(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    keys = Keys(site["prefix"])
    config = ["-c", str(site["config"])]
    # the drifting square is motion: tracked here (off by default) so the join across cuts is counted
    base_env = {"VIDWATCH_WATCH__SETTLE_SECONDS": "0.5", "VIDWATCH_ANALYSIS__FPS": "5",
                "VIDWATCH_ANALYSIS__TRACK_MOTION": "true"}
    one_pass = drifting_square_ts(tmp_path / "src" / "a.ts", 30, 1)
    segmented = drifting_square_ts(tmp_path / "src" / "b.ts", 30, 2)
    daemon = Proc(["daemon", *config], tmp_path / "daemon.log", base_env)
    workers: list[Proc] = []
    try:
        # one pass: a single worker, segments longer than the video
        workers.append(Proc(["worker", *config], tmp_path / "w0.log",
                            {**base_env, "VIDWATCH_ANALYSIS__SEGMENT_SECONDS": "1000"}))
        shutil.copy(one_pass, site["inbox"] / "a.ts")
        first_id = wait_for(lambda: video_id_of(redis_client, keys, site["inbox"] / "a.ts"), timeout_s=60,
                            what="the first video to be detected")
        reference = wait_for(lambda: summary_of(redis_client, keys, first_id), timeout_s=120,
                             what="the one-pass summary")
        workers.pop().stop()

        # segmented: two workers, 5 s segments; one worker is killed once segments are running
        seg_env = {**base_env, "VIDWATCH_ANALYSIS__SEGMENT_SECONDS": "5"}
        workers += [Proc(["worker", *config], tmp_path / f"w{i}.log", seg_env) for i in (1, 2)]
        shutil.copy(segmented, site["inbox"] / "b.ts")
        second_id = wait_for(lambda: video_id_of(redis_client, keys, site["inbox"] / "b.ts"), timeout_s=60,
                             what="the second video to be detected")
        wait_for(lambda: any(f["type"] == "segment_done" and f["video_id"] == second_id
                             for _, f in redis_client.xrange(keys.events)), timeout_s=120, what="a first segment")
        workers[0].kill9()
        summary = wait_for(lambda: summary_of(redis_client, keys, second_id), timeout_s=180,
                           what="the segmented summary")
    finally:
        daemon.stop()
        for worker in workers:
            worker.stop()

    processing = json.loads(summary["processing"])
    assert processing["segments"] == 6
    assert summary["frames_analyzed"] == reference["frames_analyzed"] == "150"
    assert json.loads(summary["activity"]) == json.loads(reference["activity"])
    ref_labels, labels = json.loads(reference["labels"]), json.loads(summary["labels"])
    # tracks are joined across the cuts: the same count as one pass (the drifting square is one track)
    assert labels["motion"]["tracks"] == ref_labels["motion"]["tracks"] >= 1
    # exactly once: one summary for the video, one detection entry per analysed frame at most
    assert Counter(f["video_id"] for _, f in redis_client.xrange(keys.summaries))[second_id] == 1
    frames = [f["frame"] for _, f in redis_client.xrange(keys.detections("default")) if f["video_id"] == second_id]
    assert len(frames) == len(set(frames)) > 100
    assert redis_client.hget(keys.video(second_id), "state") == "done"


def test_a_gpu_style_worker_runs_segments_as_threads_feeding_one_batcher(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    """`vidwatch worker --pool threads`: one process, segments at once, one engine; the same summary as one pass."""
    keys = Keys(site["prefix"])
    config = ["-c", str(site["config"])]
    model = square_detector(tmp_path / "models" / "squares.onnx")
    base_env = {"VIDWATCH_WATCH__SETTLE_SECONDS": "0.5", "VIDWATCH_ANALYSIS__FPS": "5",
                "VIDWATCH_ENGINE__KIND": "onnx", "VIDWATCH_ENGINE__MODEL": str(model), "VIDWATCH_ENGINE__BATCH": "4"}
    one_pass = drifting_square_ts(tmp_path / "src" / "a.ts", 30, 1)
    segmented = drifting_square_ts(tmp_path / "src" / "b.ts", 30, 2)
    daemon = Proc(["daemon", *config], tmp_path / "daemon.log", base_env)
    worker = Proc(["worker", *config], tmp_path / "w0.log", {**base_env, "VIDWATCH_ANALYSIS__SEGMENT_SECONDS": "1000"})
    try:
        shutil.copy(one_pass, site["inbox"] / "a.ts")
        first_id = wait_for(lambda: video_id_of(redis_client, keys, site["inbox"] / "a.ts"), timeout_s=60,
                            what="the first video to be detected")
        reference = wait_for(lambda: summary_of(redis_client, keys, first_id), timeout_s=120,
                             what="the one-pass summary")
        worker.stop()

        worker = Proc(["worker", "--pool", "threads", "--threads", "3", *config], tmp_path / "w1.log",
                      {**base_env, "VIDWATCH_ANALYSIS__SEGMENT_SECONDS": "5"})
        shutil.copy(segmented, site["inbox"] / "b.ts")
        second_id = wait_for(lambda: video_id_of(redis_client, keys, site["inbox"] / "b.ts"), timeout_s=60,
                             what="the second video to be detected")
        summary = wait_for(lambda: summary_of(redis_client, keys, second_id), timeout_s=180,
                           what="the segmented summary")
        (beat,) = wait_for(lambda: [w for w in live_workers(redis_client, keys) if w.get("batch_calls")],
                           timeout_s=30, what="the worker's heartbeat with its batcher's counts")
    finally:
        daemon.stop()
        worker.stop()

    assert beat["pool"] == "threads:3"
    processing = json.loads(summary["processing"])
    assert processing["segments"] == 6 and processing["engine"] == "onnx"
    assert isinstance(processing["worker"], str), "every segment ran in the one worker process"
    assert 0 < beat["batch_fill"] <= 1 and 0 < processing["batch_fill"] <= 1
    assert summary["frames_analyzed"] == reference["frames_analyzed"] == "150"
    assert json.loads(summary["activity"]) == json.loads(reference["activity"])
    labels = json.loads(summary["labels"])
    assert labels["square"]["tracks"] == json.loads(reference["labels"])["square"]["tracks"] == 1
    frames = [f["frame"] for _, f in redis_client.xrange(keys.detections("default")) if f["video_id"] == second_id]
    assert len(frames) == len(set(frames)) == 150
