"""`vidwatch submit`: in-process without a daemon, through the daemon's API with one, and forced reruns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api_fixtures import serve
from tests.helpers import moving_square_clip, stored, wait_for
from vidwatch.config import load_config
from vidwatch.daemon.submit import Submitter, outcome_line
from vidwatch.engines.base import Detection
from vidwatch.errors import SourceError
from vidwatch.results.query import summary_of
from vidwatch.results.writer import FrameResult, ResultWriter


def _finish_like_a_worker(submitter: Submitter, video_id: str, label: str) -> str:
    """What the worker does at the end of a video: detections, then the summary (the run's results)."""
    record = stored(submitter.records, video_id)
    submitter.records.transition(video_id, "processing", {"worker": "test"}, event="started", path=record["path"])
    writer = ResultWriter(submitter.client, submitter.keys, events_maxlen=1000, detections_maxlen=1000,
                          summaries_maxlen=1000)
    frames = [FrameResult(3, 0.6, [Detection(label, 0.9, (1.0, 1.0, 9.0, 9.0), 1)])]
    writer.write_segment(video_id, 0, record["camera"], float(record["start_ts"]), frames)
    summary_id = writer.write_summary(video_id, record["path"], record["camera"], float(record["start_ts"]),
                                      {"video_id": video_id, "camera": record["camera"]}, {label: 0.6})
    assert summary_id
    return summary_id


@pytest.fixture
def clip(site: dict[str, Any], ffmpeg: str) -> Path:
    return moving_square_clip(site["inbox"] / "cam1" / "a.mp4", seconds=2.0, move_from_s=0.5, move_to_s=1.5)


def test_without_a_daemon_the_claim_runs_here(site: dict[str, Any], clip: Path) -> None:
    submitter = Submitter(load_config(site["config"]))
    try:
        first = submitter.submit(str(clip))
        assert first.how == "processed"
        record = stored(submitter.records, first.video_id)
        assert (record["state"], record["published"], record["camera"]) == ("queued", "1", "cam1")
        assert Path(record["spool_path"]).is_file()
        assert submitter.submit(str(clip)).how == "known"
        with pytest.raises(SourceError, match="not inside a watched root"):
            submitter.submit(str(site["tmp"] / "vidwatch.toml"))
    finally:
        submitter.close()


def test_force_starts_a_new_run_that_replaces_the_results_at_once(site: dict[str, Any], clip: Path) -> None:
    submitter = Submitter(load_config(site["config"]))
    try:
        video_id = submitter.submit(str(clip)).video_id
        assert submitter.submit(str(clip), force=True).how == "known"  # still in flight: nothing to force
        first_summary = _finish_like_a_worker(submitter, video_id, "person")
        assert submitter.submit(str(clip)).how == "known"
        assert submitter.submit(str(clip), force=True).how == "rerun"
        record = stored(submitter.records, video_id)
        assert (record["state"], record["run"], record["summary_id"]) == ("queued", "2", first_summary)
        assert summary_of(submitter.client, submitter.keys, video_id)["run"] == "1"  # readers: the old run
        waited = submitter.wait([video_id], timeout_s=0.0)
        assert "still queued (run 2)" in outcome_line(video_id, waited[video_id])
        second = _finish_like_a_worker(submitter, video_id, "car")
        summary = summary_of(submitter.client, submitter.keys, video_id)
        assert summary is not None and (summary["summary_id"], summary["run"]) == (second, "2")
        assert submitter.client.zscore(submitter.keys.index_label("person"), video_id) is None
        done = submitter.wait([video_id], timeout_s=5.0)[video_id]
        assert outcome_line(video_id, done).endswith(f"summary {second} run 2")
    finally:
        submitter.close()


def test_with_a_daemon_the_job_is_posted_to_it(site: dict[str, Any], clip: Path) -> None:
    with serve(site, token="s3cret") as served:
        submitter = Submitter(served.config)
        try:
            assert submitter.daemon_answers()
            item = submitter.submit(str(clip))
            assert item.how == "daemon"
            record = wait_for(lambda: stored(submitter.records, item.video_id).get("published") == "1",
                              timeout_s=60, what="the daemon to publish the submitted file")
            assert record
        finally:
            submitter.close()


def test_with_a_daemon_but_no_token_the_daemon_takes_the_claim_over(site: dict[str, Any], clip: Path) -> None:
    with serve(site, token=None) as served:
        submitter = Submitter(served.config)
        try:
            item = submitter.submit(str(clip))
            assert item.how == "claimed"
            wait_for(lambda: stored(submitter.records, item.video_id).get("published") == "1",
                     timeout_s=60, what="the daemon to take the claim over and publish it")
            assert stored(submitter.records, item.video_id)["owner"] == served.daemon.ledger.daemon_id
        finally:
            submitter.close()


def test_get_videos_takes_the_same_time_forms(site: dict[str, Any]) -> None:
    import httpx

    with serve(site, token=None, run_daemon=False) as api:
        everything = httpx.get(f"{api.url}/videos", params={"since": "3650d", "until": "now"}, timeout=10)
        assert everything.status_code == 200 and everything.json()["count"] == 2  # the two seeded done videos
        assert httpx.get(f"{api.url}/videos", params={"since": "1h"}, timeout=10).json()["count"] == 0
        refused = httpx.get(f"{api.url}/videos", params={"since": "yesterday"}, timeout=10)
        assert refused.status_code == 400 and "2h" in refused.text
