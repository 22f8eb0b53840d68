"""Files recorded before ``[retention] summaries_days``: not claimed, no record or event, logged once.

The claim pool is driven the way the main loop does (its own clock), against the real Redis and
ffmpeg clips, as in ``test_daemon_claims.py``.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Iterator

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
DAY_S = 86400.0


@pytest.fixture
def parts(site: dict) -> Iterator[Components]:
    config: Config = load_config(site["config"], environ={"VIDWATCH_RETENTION__SUMMARIES_DAYS": "30"})
    built = build(config)
    yield built
    built.publisher.close()


def test_a_file_recorded_before_summaries_days_is_skipped_and_logged_once(
    parts: Components, site: dict, redis_client: redis.Redis, ffmpeg: str, caplog: pytest.LogCaptureFixture
) -> None:
    keys = Keys(site["prefix"])
    old = moving_square_clip(site["inbox"] / "cam1" / "old.mp4", seconds=1)
    new = moving_square_clip(site["inbox"] / "cam1" / "new.mp4", seconds=2)  # other content: another video
    long_ago = time.time() - 40 * DAY_S
    os.utime(old, (long_ago, long_ago))  # recorded 40 days ago (mtime; no time_pattern)
    inbox: Inbox = queue.Queue()
    pool = ClaimPool(parts.ingestor, parts.rules, FsGuard(5.0), inbox, parts.normalizer.metrics)
    caplog.set_level(logging.INFO, logger="vidwatch.daemon.horizon")
    try:
        for now in (0.0, 100.0):  # found, then found again by a rescan
            pool.touch(str(old), now)
            pool.touch(str(new), now)
            pool.check_settled(now)
            pool.check_settled(now + SETTLE_S)
            assert pool.claiming == 1, "only the recent file goes to a claim thread"
            report = inbox.get(timeout=30)
            assert report == WorkItem(Kind.CLAIMED, str(new))
            pool.claimed(report.path, now + 2.0)
            assert pool.idle()
        skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert len(skipped) == 1 and str(old) in skipped[0] and "summaries_days = 30" in skipped[0]
        old_id, new_id = fingerprint(old).video_id, fingerprint(new).video_id
        assert not redis_client.exists(keys.video(old_id)) and redis_client.exists(keys.video(new_id))
        assert [f["video_id"] for _, f in redis_client.xrange(keys.events)] == [new_id]  # no failed event
        assert redis_client.hget(keys.paths, str(old)) is None
    finally:
        pool.stop()
