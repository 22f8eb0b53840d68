"""`vidwatch tail summaries` (one readable line per video), `vidwatch show`, `vidwatch query --objects`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.api_fixtures import START_TS, Seeded, seed
from tests.conftest import REDIS_URL
from vidwatch.config import load_config
from vidwatch.results.keys import Keys
from vidwatch.results.objects import ObjectEntry, ObjectWriter


def vidwatch(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("vidwatch")), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def seeded(redis_prefix: str, tmp_path: Path) -> tuple[str, Seeded]:
    path = tmp_path / "vidwatch.toml"
    path.write_text(f'[redis]\nurl = "{REDIS_URL}"\nprefix = "{redis_prefix}"\n[paths]\nstate_dir = "{tmp_path}"\n'
                    '[api]\nlisten = "0.0.0.0:8799"\n')
    config = load_config(path)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    videos = seed(config, client)
    objects = [ObjectEntry(videos.done, track, "cam1", label, START_TS + start, START_TS + start + 1.5, start,
                           start + 1.5, crop=f"/state/crops/track-{track}.jpg", score=0.75)
               for track, label, start in ((1, "person", 2.4), (2, "car", 1.0))]
    ObjectWriter(client, Keys(redis_prefix)).write(videos.done, "cam1", objects)
    client.hset(Keys(redis_prefix).video(videos.done), mapping={"path": "/nvr/cam1/evil\x1b[2J\nname.mp4"})
    return str(path), videos


def test_tail_summaries_prints_one_line_per_video(seeded: tuple[str, Seeded]) -> None:
    config, videos = seeded
    done = vidwatch("tail", "summaries", "-c", config, "--from-start", "--count", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        "2025-11-24 16:00:00Z  cam1  6.0 s  person ×1 · motion  activity 0:02.0–0:04.2 (2.2 s)  "
        f"http://127.0.0.1:8799/browse/videos/{videos.done}",
        "2025-11-24 17:00:00Z  cam2  6.0 s  motion  activity 0:02.0–0:04.2 (2.2 s)  "
        f"http://127.0.0.1:8799/browse/videos/{videos.done_cam2}",
    ]
    raw = vidwatch("tail", "summaries", "-c", config, "--from-start", "--count", "2", "--json")
    entries = [json.loads(line) for line in raw.stdout.splitlines()]
    assert [e["video_id"] for e in entries] == [videos.done, videos.done_cam2] and "labels" in entries[0]


def test_show_reports_a_video_on_one_screen(seeded: tuple[str, Seeded]) -> None:
    config, videos = seeded
    done = vidwatch("show", videos.done, "-c", config)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for words in (f"video {videos.done}  cam1  recorded 2025-11-24 16:00:00Z  duration 6.0 s  state done",
                  "path      /nvr/cam1/evil\\x1b[2J\\nname.mp4",  # a file name's controls stay escaped
                  "seen      person ×1 · motion", "activity  1 span(s): 0:02.0–0:04.2 (2.2 s)", "objects   2",
                  "#2        car        0:01.0–0:02.5  score 0.75  /state/crops/track-2.jpg",
                  "analysed  30 frames by opencv in 1.5 s (20.0 fps) on w1:1",
                  f"browse    http://127.0.0.1:8799/browse/videos/{videos.done}"):
        assert words in text, words
    assert len(text.splitlines()) <= 25 and "\x1b" not in text
    failed = vidwatch("show", videos.failed, "-c", config).stdout
    assert "state failed" in failed and "truncated (moov atom not found)" in failed and "no summary" in failed
    queued = vidwatch("show", videos.queued, "-c", config).stdout
    assert "state queued" in queued and "no summary yet" in queued and "progress" not in queued
    as_json = json.loads(vidwatch("show", videos.done, "-c", config, "--json").stdout)
    assert [o["track"] for o in as_json["objects"]] == [2, 1] and as_json["summary"]["camera"] == "cam1"
    missing = vidwatch("show", "f" * 20, "-c", config)
    assert missing.returncode == 1 and "no video" in missing.stderr


def test_query_objects(seeded: tuple[str, Seeded]) -> None:
    config, videos = seeded
    text = vidwatch("query", "--objects", "-c", config, "--label", "person").stdout
    assert text.splitlines() == [
        "objects (1):",
        f"  2025-11-24 16:00:02Z  cam1  person  1.5 s  score 0.75  {videos.done} #1 at 0:02.4  "
        "/state/crops/track-1.jpg",
    ]
    first = json.loads(vidwatch("query", "--objects", "-c", config, "--limit", "1", "--json").stdout)
    assert [o["object_id"] for o in first["objects"]] == [f"{videos.done}:1"] and first["next_cursor"]
    second = json.loads(vidwatch("query", "--objects", "-c", config, "--limit", "1", "--json",
                                 "--cursor", first["next_cursor"]).stdout)
    assert [o["object_id"] for o in second["objects"]] == [f"{videos.done}:2"] and second["next_cursor"] is None
    bad = vidwatch("query", "--objects", "-c", config, "--cursor", "nonsense")
    assert bad.returncode == 1 and "cursor" in bad.stderr
