"""The real daemon in-process on the generated corpus: every input ends normalized or failed, with a reason.

Real Redis, RabbitMQ and ffmpeg; no worker (messages stay queued). Workers finishing a
video are played by marking its record done.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
from pathlib import Path

import redis

from tests import media_corpus as corpus
from tests.helpers import wait_for
from tests.integration.test_daemon import running
from vidwatch.config import Config, load_config
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.results.keys import Keys


def make_config(site: dict, **normalize: object) -> Config:
    environ = {f"VIDWATCH_NORMALIZE__{key.upper()}": json.dumps(value) for key, value in normalize.items()}
    return load_config(site["config"], environ=environ)


def events_of(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    return [fields for _, fields in client.xrange(keys.events)]


def ended(client: redis.Redis, keys: Keys) -> dict[str, dict[str, str]]:
    """path -> its last queued or failed event."""
    return {e["path"]: e for e in events_of(client, keys) if e["type"] in ("queued", "failed")}


# file name, builder, expected: ("queued", method, words of the plan's reason) or ("failed", pattern of the reason)
CORPUS = [
    ("conforming.mp4", corpus.h264_mp4, ("queued", "remux", "conforming")),
    ("hevc.mkv", corpus.hevc_mkv, ("queued", "remux", "conforming")),
    ("mjpeg.avi", corpus.mjpeg_avi, ("queued", "transcode", "codec mjpeg")),
    ("vfr.mkv", corpus.vfr_mkv, ("queued", "transcode", "variable frame rate")),
    ("rotated.mp4", corpus.rotated_mp4, ("queued", "transcode", "rotation 90")),
    ("uhd.mp4", corpus.uhd_mp4, ("queued", "transcode", "height 2160")),
    ("interlaced.mp4", corpus.interlaced_mp4, ("queued", "transcode", "interlaced")),
    ("audio.mp4", corpus.audio_only_mp4, ("failed", r"no video stream \(audio only\)")),
    ("zero.mp4", corpus.zero_bytes, ("failed", r"empty file \(0 bytes\)")),
    ("notes.mp4", corpus.text_file, ("failed", "not a video")),
    ("noise.mkv", corpus.random_bytes, ("failed", "not a (readable )?video")),
    ("cut.mp4", corpus.truncated_mp4, ("failed", r"truncated: mdat box runs \d+ bytes past the end after 3 checks")),
    ("cut.mkv", corpus.truncated_mkv, ("failed", r"truncated: decoded to 2\.\d+ s of a declared 4\.00 s")),
    ("huge.mp4", corpus.huge_resolution, ("failed", "too large: 12000x12000")),
    ("odd.avi", corpus.unknown_codec_avi, ("failed", r"unsupported codec \(QQQQ\)")),
]


def test_every_input_of_the_corpus_ends_as_expected_and_the_daemon_stays_healthy(
    site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    keys = Keys(site["prefix"])
    cam = site["inbox"] / "cam1"
    cam.mkdir()
    expected = {str(build(cam / name)): outcome for name, build, outcome in CORPUS}
    half = cam / "half.mp4"  # the index comes last and never arrives
    half.write_bytes(corpus.moov_last_mp4(site["tmp"] / "half.mp4")[:3000])
    expected[str(half)] = ("failed", r"truncated: mdat box runs \d+ bytes past the end after 3 checks")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        for name, build in (("playlist.ts", corpus.hls_playlist), ("list.mp4", corpus.ffconcat_list)):
            expected[str(build(cam / name, port))] = ("failed", "refused: an? (HLS playlist|ffconcat list)")
        config = make_config(site, progress_interval_seconds=0)
        with running(config) as daemon:
            wait_for(lambda: daemon.idle() and len(ended(redis_client, keys)) == len(expected), timeout_s=120,
                     what="every input of the corpus to end")
            assert not select.select([listener], [], [], 0)[0], "a crafted input opened a connection"
            status = daemon.status()
            assert status.observers == {str(site["inbox"]): True} and status.redis_ok
            late = corpus.h264_mp4(cam / "late.mp4", seconds=2)  # the daemon still takes new files
            wait_for(lambda: str(late) in ended(redis_client, keys), timeout_s=30, what="a file dropped afterwards")
            metrics = daemon.normalizer.metrics.snapshot()

    outcomes = ended(redis_client, keys)
    normalized = {e["path"]: json.loads(e["detail"]) for e in events_of(redis_client, keys)
                  if e["type"] == "normalized"}
    for path, want in expected.items():
        got = outcomes[path]
        if want[0] == "queued":
            assert got["type"] == "queued", (path, got)
            detail = normalized[path]
            assert (detail["method"], want[2] in detail["why"]) == (want[1], True), (path, detail)
            record = redis_client.hgetall(keys.video(got["video_id"]))
            assert Path(record["spool_path"]).is_file()
            assert {"probe_vfr", "probe_interlaced", "probe_rotation", "probe_pix_fmt"} <= set(record)
        else:
            assert got["type"] == "failed", (path, got)
            assert re.search(want[1], got["detail"]), (path, got["detail"])
            assert redis_client.hget(keys.video(got["video_id"]), "state") == "failed"
    assert normalized[str(cam / "vfr.mkv")]["probe_vfr"] == "True"
    progress = [json.loads(e["detail"]) for e in events_of(redis_client, keys)
                if e["type"] == "progress" and e["path"] == str(cam / "uhd.mp4")]
    assert progress and progress[-1]["stage"] == "normalize" and progress[-1]["fraction"] == 1.0
    assert metrics["normalized_total"] == {"remux": 3, "transcode": 5}  # the late file included
    assert metrics["rejected_total"]["refused_reference"] == 2
    assert metrics["in_progress"] == {}


def test_an_mp4_still_being_written_is_not_failed_but_normalized_once_complete(
    site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    keys = Keys(site["prefix"])
    data = corpus.moov_last_mp4(site["tmp"] / "rec.mp4")
    target = site["inbox"] / "cam1" / "rec.mp4"
    target.parent.mkdir()
    with running(make_config(site, probe_attempts=20)) as daemon:
        target.write_bytes(data[: len(data) // 2])  # the recorder has written half, no index yet
        wait_for(lambda: daemon.normalizer.metrics.snapshot()["not_ready_total"] >= 1, timeout_s=30,
                 what="the daemon to find the file not complete yet")
        with open(target, "ab") as handle:
            handle.write(data[len(data) // 2 :])
        wait_for(lambda: str(target) in ended(redis_client, keys), timeout_s=30, what="the completed file to end")
    assert [e["type"] for e in events_of(redis_client, keys) if e["type"] != "progress"] == [
        "detected", "normalized", "queued"]
    assert ended(redis_client, keys)[str(target)]["video_id"] == fingerprint(target).video_id


def test_spool_copies_are_removed_once_their_video_is_done(
    site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    keys = Keys(site["prefix"])
    done = corpus.h264_mp4(site["inbox"] / "done.mp4")
    waiting = corpus.mjpeg_avi(site["inbox"] / "waiting.avi")
    with running(make_config(site, spool_retention_seconds=0)) as daemon:
        wait_for(lambda: daemon.idle() and len(ended(redis_client, keys)) == 2, timeout_s=60, what="both queued")
        spooled = {path: Path(redis_client.hget(keys.video(e["video_id"]), "spool_path"))
                   for path, e in ended(redis_client, keys).items()}
        assert all(p.is_file() for p in spooled.values())
        video_id = fingerprint(done).video_id
        daemon.records.transition(video_id, "processing")
        daemon.records.transition(video_id, "done", event="done", path=str(done))
        wait_for(lambda: not spooled[str(done)].exists(), timeout_s=30, what="the done video's copy to go")
        assert spooled[str(waiting)].is_file()  # still queued: its copy stays
        assert daemon.normalizer.metrics.snapshot()["spool_removed_total"] == 1


def test_normalization_waits_for_spool_room(site: dict, redis_client: redis.Redis, ffmpeg: str) -> None:
    keys = Keys(site["prefix"])
    config = make_config(site, spool_max_bytes=2**20)  # retention 1 h, but a waiting normalization goes first
    config.paths.spool.mkdir(parents=True)
    filler = config.paths.spool / "filler.mp4"  # another video's copy fills the spool
    filler.write_bytes(bytes(2**20))
    clip = corpus.h264_mp4(site["inbox"] / "clip.mp4")
    with running(config) as daemon:
        daemon.records.create("filler", {"path": "/elsewhere/filler.mp4"}, path="/elsewhere/filler.mp4")
        daemon.records.transition("filler", "queued")
        wait_for(lambda: any(e["type"] == "progress" and "spool_wait" in e["detail"]
                             for e in events_of(redis_client, keys)),
                 timeout_s=30, what="the normalization to wait for room")
        assert str(clip) not in ended(redis_client, keys)
        daemon.records.transition("filler", "done")  # its worker finished: the sweeper frees the room
        wait_for(lambda: str(clip) in ended(redis_client, keys), timeout_s=30, what="the clip to be queued")
    assert ended(redis_client, keys)[str(clip)]["type"] == "queued"
    assert not filler.exists()


def test_progress_events_are_bounded_by_the_interval(
    site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    from vidwatch.daemon.normalize import Normalizer
    from vidwatch.media.probe import probe

    keys = Keys(site["prefix"])
    source = corpus.mjpeg_avi(site["tmp"] / "source.avi")
    facts = probe(source)
    for interval, video_id in ((3600, "quiet"), (0, "chatty")):
        config = make_config(site, progress_interval_seconds=interval)
        normalizer = Normalizer(config, redis_client, keys, threading.Event())
        normalizer.normalize(video_id, str(source), facts, config.paths.spool / f"{video_id}.mp4")
        assert normalizer.metrics.snapshot()["in_progress"] == {}
    progress = [(e["video_id"], json.loads(e["detail"])) for e in events_of(redis_client, keys)]
    assert [video_id for video_id, _ in progress if video_id == "quiet"] == []  # done before the first interval
    chatty = [detail for video_id, detail in progress if video_id == "chatty"]
    assert chatty and chatty[-1]["fraction"] == 1.0 and chatty[-1]["duration_s"] == facts.duration_s
