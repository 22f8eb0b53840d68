"""The claim pool against real Redis and ffmpeg clips: settle, claim, not-ready retries, back-pressure, outages.

The tests drive the pool the way the main loop does, with their own clock (``now``), and
wait for each claim thread's report on the inbox with a deadline.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import moving_square_clip
from vidwatch.config import Config, load_config
from vidwatch.daemon.claims import ClaimPool
from vidwatch.daemon.compose import Components, build
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.daemon.fsguard import FsGuard
from vidwatch.daemon.work import Inbox, Kind, WorkItem
from vidwatch.results.keys import Keys

SETTLE_S = 1.0  # the site's [watch] settle_seconds
REPORT_TIMEOUT_S = 30.0


@pytest.fixture
def config(site: dict) -> Config:
    return load_config(site["config"], environ={})


@pytest.fixture
def parts(config: Config) -> Iterator[Components]:
    built = build(config)
    yield built
    built.publisher.close()


def make_pool(parts: Components, **limits: int) -> tuple[ClaimPool, Inbox]:
    inbox: Inbox = queue.Queue()
    pool = ClaimPool(parts.ingestor, parts.rules, FsGuard(5.0), inbox, parts.normalizer.metrics, **limits)
    return pool, inbox


def settle_and_claim(pool: ClaimPool, inbox: Inbox, path: Path, now: float) -> WorkItem:
    """Two looks ``SETTLE_S`` apart (first look, then quiet long enough), then the claim thread's report."""
    pool.check_settled(now)
    pool.check_settled(now + SETTLE_S)
    assert pool.claiming == 1, "the settled file was not handed to a claim thread"
    return inbox.get(timeout=REPORT_TIMEOUT_S)


def test_a_settled_clip_is_claimed_once_and_put_on_the_backlog(
    parts: Components, site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    keys = Keys(site["prefix"])
    clip = moving_square_clip(site["inbox"] / "cam1" / "a.mp4", seconds=1)
    pool, inbox = make_pool(parts)
    try:
        pool.touch(str(clip), 0.0)
        pool.touch(str(site["inbox"] / "cam1" / "notes.txt"), 0.0)  # not a candidate: ignored
        assert pool.settling == 1
        report = settle_and_claim(pool, inbox, clip, now=0.0)
        assert report == WorkItem(Kind.CLAIMED, str(clip))
        pool.claimed(report.path, 2.0)
        assert pool.idle()
        video_id = fingerprint(clip).video_id
        record = redis_client.hgetall(keys.video(video_id))
        assert (record["state"], record["camera"], record["path"]) == ("seen", "cam1", str(clip))
        assert redis_client.zrange(keys.backlog, 0, -1) == [video_id]

        pool.touch(str(clip), 10.0)  # seen again (a rescan): the ledger knows this size and mtime
        assert settle_and_claim(pool, inbox, clip, now=10.0) == WorkItem(Kind.CLAIMED, str(clip))
        assert redis_client.zcard(keys.backlog) == 1
    finally:
        pool.stop()


def test_an_incomplete_file_is_looked_at_again_then_failed_after_the_last_attempt(
    parts: Components, config: Config, site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    keys = Keys(site["prefix"])
    whole = moving_square_clip(tmp_path / "whole.mp4", seconds=1)
    cut = site["inbox"] / "cam1" / "cut.mp4"
    cut.parent.mkdir(parents=True, exist_ok=True)
    cut.write_bytes(whole.read_bytes()[:-2000])  # the last box runs past the end: still being written
    attempts = config.normalize.probe_attempts
    pool, inbox = make_pool(parts)
    try:
        pool.touch(str(cut), 0.0)
        now = 0.0
        for attempt in range(1, attempts):
            report = settle_and_claim(pool, inbox, cut, now=now)
            assert report == WorkItem(Kind.NOT_READY, str(cut)), attempt
            pool.not_ready(report.path, now + SETTLE_S)
            assert pool.settling == 1  # deferred, not dropped
            now += 3 * SETTLE_S
        assert parts.normalizer.metrics.snapshot()["not_ready_total"] == attempts - 1
        report = settle_and_claim(pool, inbox, cut, now=now)  # the last attempt claims it, to fail it
        assert report == WorkItem(Kind.CLAIMED, str(cut))
        record = redis_client.hgetall(keys.video(fingerprint(cut).video_id))
        assert record["state"] == "failed"
        assert record["error"].endswith(f"after {attempts} checks")
        assert redis_client.zcard(keys.backlog) == 0
    finally:
        pool.stop()


def test_back_pressure_keeps_settled_files_in_the_tracker(parts: Components, site: dict, ffmpeg: str) -> None:
    clip = moving_square_clip(site["inbox"] / "cam1" / "b.mp4", seconds=1)
    pool, inbox = make_pool(parts, max_in_flight=0)
    try:
        pool.touch(str(clip), 0.0)
        pool.check_settled(0.0)
        pool.check_settled(5.0)
        assert (pool.settling, pool.claiming) == (1, 0)
        assert inbox.empty()
    finally:
        pool.stop()


def test_a_file_gone_before_it_settled_is_forgotten(parts: Components, site: dict, ffmpeg: str) -> None:
    clip = moving_square_clip(site["inbox"] / "cam1" / "c.mp4", seconds=1)
    pool, _ = make_pool(parts)
    try:
        pool.touch(str(clip), 0.0)
        clip.unlink()
        pool.check_settled(5.0)
        assert pool.idle()
    finally:
        pool.stop()


def test_submitted_files_skip_the_settle_wait(
    parts: Components, site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    clip = moving_square_clip(site["inbox"] / "cam2" / "d.mp4", seconds=1)
    pool, inbox = make_pool(parts)
    try:
        pool.touch(str(clip), 0.0)
        pool.submitted(str(clip), 0.0)
        assert (pool.settling, pool.claiming) == (0, 1)
        assert inbox.get(timeout=REPORT_TIMEOUT_S) == WorkItem(Kind.CLAIMED, str(clip))
        assert redis_client.zcard(Keys(site["prefix"]).backlog) == 1
    finally:
        pool.stop()


def test_redis_away_means_retry_later(config: Config, site: dict, ffmpeg: str) -> None:
    away = build(config, client=redis.Redis(port=1, socket_connect_timeout=0.5, decode_responses=True))
    clip = moving_square_clip(site["inbox"] / "cam1" / "e.mp4", seconds=1)
    pool, inbox = make_pool(away)
    try:
        pool.touch(str(clip), 0.0)
        report = settle_and_claim(pool, inbox, clip, now=0.0)
        assert report == WorkItem(Kind.RETRY, str(clip))
        pool.retry(report.path, 2.0)
        assert (pool.settling, pool.claiming) == (1, 0)  # back in the tracker, looked at after the settle time
    finally:
        pool.stop()
        away.publisher.close()
