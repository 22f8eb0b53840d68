"""The walker reports the candidate files of a folder that the ledger does not know, and nothing else."""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import cast

import pytest
import redis

from tests.helpers import wait_for
from vidwatch.config import WatchConfig
from vidwatch.daemon.ledger import Ledger
from vidwatch.daemon.walker import Walker
from vidwatch.daemon.work import Kind, WorkItem
from vidwatch.paths import PathRules


class KnownPaths:
    """The part of the ledger the walker asks: which (path, size, mtime_ns) it knows already."""

    def __init__(self, known: set[str], *, down: bool = False) -> None:
        self.known = known
        self.down = down
        self.asked: list[int] = []

    def known_many(self, stats: list[tuple[str, int, int]]) -> list[bool]:
        if self.down:
            raise redis.ConnectionError("Redis is down")
        self.asked.append(len(stats))
        return [path in self.known for path, _, _ in stats]


def _walker(root: Path, ledger: KnownPaths) -> tuple[Walker, queue.Queue[WorkItem], threading.Event]:
    inbox: queue.Queue[WorkItem] = queue.Queue()
    stop = threading.Event()
    rules = PathRules(WatchConfig(roots=[root], patterns=["*.mp4"]))
    walker = Walker(cast(Ledger, ledger), rules, inbox, stop)
    walker.start()
    return walker, inbox, stop


def _drain(inbox: queue.Queue[WorkItem]) -> list[WorkItem]:
    items = []
    while not inbox.empty():
        items.append(inbox.get_nowait())
    return items


def _touch(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return str(path)


def test_a_walk_reports_unknown_candidates_only(tmp_path: Path) -> None:
    new = _touch(tmp_path / "cam1" / "new.mp4")
    known = _touch(tmp_path / "cam1" / "known.mp4")
    _touch(tmp_path / "cam1" / "notes.txt")  # not a pattern
    _touch(tmp_path / "cam1" / ".hidden.mp4")  # an ignored name
    _touch(tmp_path / ".trash" / "old.mp4")  # inside an ignored folder
    ledger = KnownPaths({known})
    walker, inbox, stop = _walker(tmp_path, ledger)
    try:
        walker.walk(tmp_path)
        wait_for(walker.idle, timeout_s=10, what="the walk to end")
    finally:
        stop.set()
        walker.stop()
    assert _drain(inbox) == [WorkItem(Kind.FOUND, new)]
    assert ledger.asked == [2]  # one round trip for the two candidates


def test_a_large_folder_is_asked_about_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vidwatch.daemon.walker.WALK_BATCH", 3)
    paths = sorted(_touch(tmp_path / f"{n:02d}.mp4") for n in range(7))
    ledger = KnownPaths(set())
    walker, inbox, stop = _walker(tmp_path, ledger)
    try:
        walker.walk(tmp_path)
        wait_for(walker.idle, timeout_s=10, what="the walk to end")
    finally:
        stop.set()
        walker.stop()
    assert sorted(item.path for item in _drain(inbox)) == paths
    assert ledger.asked == [3, 3, 1]


def test_a_folder_that_appears_is_walked_unless_its_name_is_ignored(tmp_path: Path) -> None:
    inside = _touch(tmp_path / "moved-in" / "a.mp4")
    _touch(tmp_path / "upload.tmp" / "b.mp4")
    walker, inbox, stop = _walker(tmp_path, KnownPaths(set()))
    try:
        walker.folder_appeared(str(tmp_path / "upload.tmp"), 0.0)
        walker.folder_appeared(str(tmp_path / "moved-in"), 0.0)
        wait_for(walker.idle, timeout_s=10, what="the walks to end")
    finally:
        stop.set()
        walker.stop()
    assert _drain(inbox) == [WorkItem(Kind.FOUND, inside)]


def test_redis_down_during_a_walk_loses_nothing_but_that_walk(tmp_path: Path) -> None:
    _touch(tmp_path / "a.mp4")
    ledger = KnownPaths(set(), down=True)
    walker, inbox, stop = _walker(tmp_path, ledger)
    try:
        walker.walk(tmp_path)
        wait_for(walker.idle, timeout_s=10, what="the failed walk to end")
        assert inbox.empty()  # nothing reported while the ledger cannot say what it knows
        ledger.down = False
        walker.walk(tmp_path)  # the next rescan covers it
        wait_for(walker.idle, timeout_s=10, what="the second walk to end")
    finally:
        stop.set()
        walker.stop()
    assert [item.path for item in _drain(inbox)] == [os.path.join(tmp_path, "a.mp4")]
