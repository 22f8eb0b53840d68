"""The supervisor and its parts in a running daemon: publish retries on one thread, observers restarted.

(Work items put on the inbox from outside: test_ingestion's overflow test.)
"""

from __future__ import annotations

import threading
import uuid

import redis

from tests.conftest import AMQP_HOST, _rabbitmqctl
from tests.helpers import moving_square_clip, wait_for
from tests.integration.test_daemon import events, running
from vidwatch.config import load_config
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.results.keys import Keys


def _retry_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "publish-retry")


def test_an_unconfirmed_publish_waits_in_the_scheduler_and_goes_out_when_the_broker_answers(
    site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    vhost = f"vwtest-later-{uuid.uuid4().hex[:8]}"  # not there yet: the broker refuses every publish
    config = load_config(site["config"], environ={
        "VIDWATCH_BROKER__URL": f"amqp://guest:guest@{AMQP_HOST}/{vhost}",
        "VIDWATCH_BROKER__PUBLISH_TIMEOUT_SECONDS": "2",
    })
    keys = Keys(site["prefix"])
    try:
        with running(config) as daemon:
            retry_threads = _retry_threads()
            clip = moving_square_clip(site["inbox"] / "cam1" / "a.mp4", seconds=1)
            video_id = fingerprint(clip).video_id
            wait_for(lambda: daemon.status().publish_retries == 1, timeout_s=60, what="a publish retry")
            record = redis_client.hgetall(keys.video(video_id))
            assert (record["state"], record["published"]) == ("queued", "0")  # kept, never dropped
            assert not daemon.idle()  # a retry is work in progress
            assert _retry_threads() == retry_threads  # no thread per retry

            _rabbitmqctl("add_vhost", vhost)
            _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            wait_for(lambda: redis_client.hget(keys.video(video_id), "published") == "1", timeout_s=60,
                     what="the retry to be confirmed once the broker answers")
            wait_for(daemon.idle, timeout_s=30, what="the daemon to settle")
            status = daemon.status()
            assert (status.publish_retries, status.videos_in_progress) == (0, 0)
            assert _retry_threads() == retry_threads
        assert [kind for kind, vid in events(redis_client, keys) if vid == video_id] == [
            "detected", "normalized", "queued"]
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def test_a_dead_observer_is_restarted_and_what_it_missed_is_found(
    site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    config = load_config(site["config"], environ={})  # rescan_seconds = 60: only a restart's rescan finds it
    keys = Keys(site["prefix"])
    root = site["inbox"]
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        dead = daemon.observers[root]
        dead.stop()
        dead.join(timeout=10)
        clip = moving_square_clip(root / "cam1" / "missed.mp4", seconds=1)  # written while nobody watched
        wait_for(lambda: daemon.observers[root] is not dead and daemon.status().observers == {str(root): True},
                 timeout_s=30, what="a fresh observer")
        video_id = fingerprint(clip).video_id
        wait_for(lambda: ("queued", video_id) in events(redis_client, keys), timeout_s=60,
                 what="the file written while the observer was dead")

