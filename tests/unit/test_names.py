"""Odd names (issue 13, item 8): printed on one line, camera keys distinct, no path out of its folder."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path, PurePosixPath

import pytest
from rich.console import Console

from vidwatch.config import Config, ResultsConfig, WatchConfig
from vidwatch.logs import OneLineFormatter
from vidwatch.ops.queues import QueueDepth
from vidwatch.ops.snapshot import Snapshot
from vidwatch.ops.status_view import render
from vidwatch.paths import PathRules, camera_component, decode_camera, encode_camera, is_camera_key
from vidwatch.results.commands import render as render_query
from vidwatch.results.sidecar import sidecar_path, write_sidecar
from vidwatch.results.tail import format_entry
from vidwatch.textsafe import printable

FORGED = "x.mp4\n2026-12-03 12:00:00,000 daemon INFO vidwatch.daemon: done"
TITLE = "\x1b]0;owned\x07x.mp4"  # OSC: retitles an xterm
CLEAR = "\x1b[2J\x1b[Hx.mp4"  # CSI: clears the screen
BAD_UTF8 = b"caf\xe9.mp4".decode("utf-8", "surrogateescape")

PRINTABLE = [  # text, printed as
    ("cam1/2026-11-24/12-00-00.mp4", "cam1/2026-11-24/12-00-00.mp4"),
    ("caméra 1/Überblick — 東京.mp4", "caméra 1/Überblick — 東京.mp4"),  # letters are not controls
    ("a\nb", "a\\nb"),
    ("a\r\nb\tc", "a\\r\\nb\\tc"),
    ("\x00\x01\x1f\x7f", "\\x00\\x01\\x1f\\x7f"),
    ("\x85\x9b31m", "\\x85\\x9b31m"),  # C1: NEL, CSI
    (TITLE, "\\x1b]0;owned\\x07x.mp4"),
    (CLEAR, "\\x1b[2J\\x1b[Hx.mp4"),
    ("evil\u202egpj.exe", "evil\\u202egpj.exe"),  # right-to-left override
    ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line/paragraph separators
    (BAD_UTF8, "caf\\xe9.mp4"),  # a byte that is not UTF-8
    ("\ud800", "\\ud800"),  # a lone surrogate that is no byte
    ("back\\slash", "back\\slash"),  # kept
]


@pytest.mark.parametrize(("text", "shown"), PRINTABLE)
def test_printable_escapes_controls_and_keeps_the_rest(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(shown) == shown  # escaped text is printable as it is
    shown.encode("utf-8")  # and can be written to any UTF-8 stream


def test_a_log_line_cannot_be_forged_or_drive_the_terminal() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("%(asctime)s daemon %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("vidwatch.test_names")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        log.warning("ingest: %s: failed", FORGED)
        log.info("normalized %s (%d bytes, %.1f s)", Path(TITLE), 10, 1.5)
        log.info(f"f-string {CLEAR}")  # a message built before logging is escaped too
        log.info("mapping %(path)s", {"path": BAD_UTF8})
        try:
            raise ValueError(f"cannot read {FORGED}")
        except ValueError:
            log.exception("claim: %s", TITLE)
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    lines = text.splitlines()
    starts = [line for line in lines if not line.startswith(" ")]
    assert len(starts) == 5, text  # one line per record; a traceback's lines are indented
    assert not any(" INFO vidwatch.daemon: done" in line and not line.startswith(" ") for line in lines[1:]), text
    assert "\x1b" not in text and "\x07" not in text and "\udce9" not in text
    assert "ingest: x.mp4\\n2026-12-03 12:00:00,000 daemon INFO vidwatch.daemon: done: failed" in text
    assert "normalized \\x1b]0;owned\\x07x.mp4 (10 bytes, 1.5 s)" in text
    assert "mapping caf\\xe9.mp4" in text


def test_tail_prints_one_line_per_entry() -> None:
    fields = {"type": "done", "video_id": "v1", "path": f"/nvr/{FORGED}", "detail": CLEAR}
    for as_json in (False, True):
        line = format_entry("1-0", fields, as_json=as_json)
        assert "\n" not in line and "\x1b" not in line, line
    assert format_entry("1-0", {"path": BAD_UTF8}, as_json=False) == "1-0 path=caf\\xe9.mp4"


def test_status_and_query_print_names_escaped_and_never_as_markup() -> None:
    odd = f"[red]{TITLE}[/nope]{FORGED}"
    snap = Snapshot(
        taken_at=1_700_000_000.0,
        backlog={"seen": 0, "normalizing": 0, "queued": 1, "processing": 0},
        done_indexed=0,
        queues={"cpu": QueueDepth("cpu", 1, 0)},
        workers=[{"name": odd, "queues": ["cpu"], "engine": "opencv", "pid": "1"}],
        in_flight=[{"video_id": "v1", "path": odd, "camera": odd, "state": "queued", "since": None,
                    "progress": 0.5, "worker": ""}],
        failures=[{"event_id": "1-0", "video_id": "v2", "path": odd, "reason": odd, "ts": 1_699_999_990.0}],
        recent=[],
    )
    console = Console(file=io.StringIO(), width=400, force_terminal=True, color_system=None)
    console.print(render(snap))  # "[/nope]" would raise MarkupError if a cell were read as markup
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x07" not in out and "]0;owned" not in out.replace("\\x1b]0;owned", "")
    assert "[red]\\x1b]0;owned\\x07x.mp4[/nope]x.mp4\\n2026" in out
    assert not any(line.lstrip().startswith("2026-12-03 12:00:00") for line in out.splitlines())
    listed = render_query({"videos": [{"video_id": "v1", "camera": "cam1", "start_ts": None, "state": "done",
                                       "path": f"/nvr/{FORGED}"}]})
    assert listed.count("\n") == 1 and "x.mp4\\n2026" in listed


CAMERAS = [  # folder name, camera key
    ("cam1", "cam1"),  # safe names keep their key: existing data stays where it is
    ("Gate_2.north-east", "Gate_2.north-east"),
    ("a_b", "a_b"),
    ("a b", "a%20b"),
    ("a*b", "a%2Ab"),
    ("a:b", "a%3Ab"),
    ("a%20b", "a%2520b"),  # a name that looks encoded is encoded again: no two names share a key
    (".", "%2E"),
    ("..", "%2E%2E"),
    ("...", "..."),  # not special to a file system
    ("a/b", "a%2Fb"),  # a camera_pattern group may span folders
    ("caméra", "cam%C3%A9ra"),
    (BAD_UTF8, "caf%E9.mp4"),
    ("x\n\x1b", "x%0A%1B"),
]


@pytest.mark.parametrize(("name", "key"), CAMERAS)
def test_camera_keys_are_reversible_and_stay_in_their_folder(name: str, key: str, tmp_path: Path) -> None:
    assert encode_camera(name) == key
    assert decode_camera(key) == name
    assert is_camera_key(key) and camera_component(key) == key
    assert "/" not in key and key not in (".", "..", "")
    folder = tmp_path / "sidecars"
    target = sidecar_path(Config(results=ResultsConfig(sidecar_dir=folder)), "v1", key)
    assert target is not None and target.parent.parent == folder and target.parent.name == key
    assert os.path.normpath(target).startswith(str(folder) + os.sep)


def test_folders_that_used_to_merge_get_distinct_keys() -> None:
    rules = PathRules(WatchConfig(roots=[Path("/nas")]))
    keys = [rules.camera(Path(f"/nas/{name}/x.mp4")) for name in ("a b", "a*b", "a:b", "a_b")]
    assert len(set(keys)) == 4, keys


@pytest.mark.parametrize(
    ("pattern", "path", "camera"),
    [  # a camera_pattern may capture what a folder name cannot be
        (r"^(?P<camera>[^/]*)/", "/nas/../x.mp4", "%2E%2E"),
        (r"^(?P<camera>.+)/[^/]+$", "/nas/site/gate/x.mp4", "site%2Fgate"),
        (r"^[^/]+/(?P<camera>[^/]*)/", "/nas/site//x.mp4", "default"),  # empty: the default camera
    ],
)
def test_a_camera_pattern_cannot_name_a_folder_outside(pattern: str, path: str, camera: str, tmp_path: Path) -> None:
    rules = PathRules(WatchConfig(roots=[Path("/nas")], camera_pattern=pattern))
    assert rules.camera(Path(path)) == camera
    target = sidecar_path(Config(results=ResultsConfig(sidecar_dir=tmp_path)), "v1", rules.camera(Path(path)))
    assert target is not None and target.resolve().parent.parent == tmp_path.resolve()


@pytest.mark.parametrize("stored", ["..", ".", "", "a/../../b", "a b"])
def test_a_sidecar_for_an_unencoded_stored_camera_stays_inside(stored: str, tmp_path: Path) -> None:
    """Records written before the encoding (or by hand) hold raw names: they are encoded on the way to a path."""
    target = sidecar_path(Config(results=ResultsConfig(sidecar_dir=tmp_path)), "v1", stored)
    assert target is not None and target.resolve().parent.parent == tmp_path.resolve()


@pytest.mark.parametrize(
    ("pattern", "relative", "camera"),
    [  # a camera_pattern that captures a path-like name, the file it came from, the camera key
        (r"^[^/]+/(?P<camera>[^/]+)/", "site/../x.mp4", "%2E%2E"),
        (r"^(?P<camera>[^/]+/[^/]+)/", "../../x.mp4", "..%2F.."),
        (r"^cam/(?P<camera>[^x]*)x", "cam/.x.mp4", "%2E"),
    ],
)
def test_a_sidecar_is_written_inside_sidecar_dir(pattern: str, relative: str, camera: str, tmp_path: Path) -> None:
    folder = tmp_path / "archive" / "sidecars"
    config = Config(results=ResultsConfig(sidecar_dir=folder))
    rules = PathRules(WatchConfig(roots=[Path("/nas")], camera_pattern=pattern))
    assert rules.camera(PurePosixPath("/nas", relative)) == camera
    written = write_sidecar(config, "v1", {"camera": camera, "video_id": "v1"}, [])
    assert written is not None and written.resolve().parent.parent == folder.resolve()
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*.json")] == [written.relative_to(tmp_path)]


def test_a_long_camera_name_still_makes_a_sidecar_folder(tmp_path: Path) -> None:
    names = ["東京駅" * 30, "東京駅" * 30 + "北", "x" * 255]  # 270+ bytes once encoded, a name at NAME_MAX
    config = Config(results=ResultsConfig(sidecar_dir=tmp_path))
    written = [write_sidecar(config, "v1", {"camera": encode_camera(name)}, []) for name in names]
    folders = {path.parent for path in written if path is not None}
    assert len(folders) == 3 and all(folder.parent == tmp_path and len(folder.name) <= 200 for folder in folders)
