from pathlib import Path

import pytest

from vidwatch.config import WatchConfig
from vidwatch.paths import PathRules

RULES = PathRules(WatchConfig(roots=[Path("/nas"), Path("/nas/deep")]))


@pytest.mark.parametrize(
    ("path", "candidate"),
    [
        ("/nas/cam1/a.mp4", True),
        ("/nas/cam1/a.MKV", True),
        ("/nas/a.mov", True),
        ("/nas/cam1/.a.mp4", False),  # hidden
        ("/nas/.tmp/a.mp4", False),  # inside a hidden folder
        ("/nas/cam1/a.mp4.part", False),  # recorder's temporary name
        ("/nas/cam1/a.tmp", False),
        ("/nas/cam1/notes.txt", False),
        ("/elsewhere/a.mp4", False),  # outside every root
        ("/nas", False),
    ],
)
def test_candidates(path: str, candidate: bool) -> None:
    assert RULES.is_candidate(Path(path)) is candidate


@pytest.mark.parametrize(
    ("pattern", "path", "camera"),
    [
        (None, "/nas/cam1/2026-11-24/12-00-00.mp4", "cam1"),
        (None, "/nas/lobby.mp4", "default"),
        (None, "/nas/deep/cam9/x.mp4", "cam9"),  # the deepest root wins
        (None, "/nas/front door/x.mp4", "front%20door"),  # safe for a key name, and distinct (issue 13)
        (r"^site-\w+/(?P<camera>[^/]+)/", "/nas/site-a/gate/x.mp4", "gate"),
        (r"^site-\w+/(?P<camera>[^/]+)/", "/nas/other/x.mp4", "default"),
    ],
)
def test_camera_from_path(pattern: str | None, path: str, camera: str) -> None:
    rules = PathRules(WatchConfig(roots=[Path("/nas"), Path("/nas/deep")], camera_pattern=pattern))
    assert rules.camera(Path(path)) == camera
