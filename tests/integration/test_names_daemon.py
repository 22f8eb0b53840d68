"""Odd names through the real daemon (issue 13, item 8): distinct cameras, one log line per record."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import moving_square_clip, wait_for
from tests.integration.test_daemon import running
from vidwatch.config import load_config
from vidwatch.logs import OneLineFormatter
from vidwatch.results.keys import Keys
from vidwatch.results.tail import format_entry

FORGED = "x\n2026-12-03 12:00:00,000 daemon INFO vidwatch.daemon: done \x1b]0;owned\x07.ts"
FOLDERS = {  # camera folder, its key
    "a b": "a%20b",
    "a*b": "a%2Ab",
    "a:b": "a%3Ab",
    "a_b": "a_b",
    "cam.2-x_y": "cam.2-x_y",
}
LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} daemon ")


@pytest.fixture
def daemon_log() -> Iterator[io.StringIO]:
    """The daemon's log as `vidwatch daemon` writes it (the CLI's formatter), at INFO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("%(asctime)s daemon %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_odd_folder_and_file_names(site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path,
                                   daemon_log: io.StringIO) -> None:
    template = moving_square_clip(tmp_path / "tiny.ts", seconds=1, size="64x48", fmt="mpegts").read_bytes()
    files = []
    for i, folder in enumerate([*FOLDERS, "cam1"]):
        (site["inbox"] / folder).mkdir()
        name = FORGED if folder == "cam1" else "clip.ts"
        path = site["inbox"] / folder / name
        path.write_bytes(template + b"\x47\x1f\xff\x10" + i.to_bytes(4, "big") * 46)  # distinct bytes each
        files.append(path)
    keys = Keys(site["prefix"])
    config = load_config(site["config"], environ={})

    def queued() -> list[dict[str, str]]:
        ids = [f["video_id"] for _, f in redis_client.xrange(keys.events) if f["type"] == "queued"]
        return [redis_client.hgetall(keys.video(i)) for i in ids] if len(ids) == len(files) else []

    with running(config) as daemon:
        records = wait_for(lambda: daemon.idle() and queued(), timeout_s=60, what="every file queued")

    cameras = {record["path"]: record["camera"] for record in records}
    expected = {str(site["inbox"] / folder / "clip.ts"): key for folder, key in FOLDERS.items()}
    expected[str(site["inbox"] / "cam1" / FORGED)] = "cam1"
    assert cameras == expected  # the four folders that used to merge as a_b stay apart

    for entry_id, fields in redis_client.xrange(keys.events):  # the events stream keeps the real path …
        line = format_entry(entry_id, fields, as_json=False)  # … and `vidwatch tail` prints it on one line
        assert "\n" not in line and "\x1b" not in line and "\x07" not in line, line
    text = daemon_log.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    for line in text.splitlines():
        assert LINE_START.match(line) or line.startswith("    "), line  # no line a name could have forged
    assert not any(line.startswith("2026-12-03 12:00:00,000") for line in text.splitlines())
    assert "cam1/x\\n2026-12-03 12:00:00,000 daemon INFO vidwatch.daemon: done \\x1b]0;owned\\x07.ts" in text
