"""Work items and their dispatch: every kind has a handler, observers' events become typed items."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from vidwatch.daemon.watchers import EnqueueHandler
from vidwatch.daemon.work import FILE_CHANGES, Dispatcher, Inbox, Kind, WorkItem


def recording_dispatcher() -> tuple[Dispatcher, list[tuple[Kind, str, float]]]:
    calls: list[tuple[Kind, str, float]] = []
    handlers = {kind: (lambda path, now, k=kind: calls.append((k, path, now))) for kind in Kind}
    return Dispatcher(handlers), calls


def test_each_item_goes_to_its_kinds_handler_in_order() -> None:
    dispatcher, calls = recording_dispatcher()
    inbox: Inbox = queue.Queue()
    items = [WorkItem(kind, f"/nvr/{kind.value}") for kind in Kind]
    for item in items:
        inbox.put(item)
    assert dispatcher.drain(inbox, now=7.5) == len(items)
    assert calls == [(item.kind, item.path, 7.5) for item in items]
    assert dispatcher.drain(inbox, now=8.0) == 0


def test_a_kind_without_a_handler_is_refused_at_construction() -> None:
    handlers = {kind: (lambda path, now: None) for kind in Kind if kind is not Kind.OVERFLOW}
    with pytest.raises(ValueError, match="no handler for overflow"):
        Dispatcher(handlers)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (("overflow", "/nvr"), Kind.OVERFLOW),  # a bare pair, as a test or an old caller puts it
        ((Kind.DELETED, "/nvr/a.mp4"), Kind.DELETED),
    ],
)
def test_a_bare_pair_is_checked_and_dispatched(raw: tuple[str, str], expected: Kind) -> None:
    dispatcher, calls = recording_dispatcher()
    dispatcher.dispatch(raw, now=1.0)  # type: ignore[arg-type]
    assert calls == [(expected, raw[1], 1.0)]


def test_an_unknown_kind_fails_loudly() -> None:
    dispatcher, _ = recording_dispatcher()
    with pytest.raises(ValueError, match="'teleported'"):
        dispatcher.dispatch(("teleported", "/nvr/a.mp4"), now=0.0)  # type: ignore[arg-type]


def test_items_compare_as_the_pairs_they_replace() -> None:
    item = WorkItem(Kind.FOLDER, "/nvr/cam1")
    assert item == ("dir", "/nvr/cam1")
    kind, path = item
    assert (kind, path) == (Kind.FOLDER, "/nvr/cam1")
    assert set(FILE_CHANGES) == {Kind.CREATED, Kind.MODIFIED, Kind.CLOSED, Kind.MOVED, Kind.FOUND}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (FileCreatedEvent("/nvr/a.mp4"), [WorkItem(Kind.CREATED, "/nvr/a.mp4")]),
        (FileModifiedEvent("/nvr/a.mp4"), [WorkItem(Kind.MODIFIED, "/nvr/a.mp4")]),
        (FileClosedEvent("/nvr/a.mp4"), [WorkItem(Kind.CLOSED, "/nvr/a.mp4")]),
        (FileMovedEvent("/nvr/.a.part", "/nvr/a.mp4"), [WorkItem(Kind.MOVED, "/nvr/a.mp4")]),
        (FileDeletedEvent("/nvr/a.mp4"), [WorkItem(Kind.DELETED, "/nvr/a.mp4")]),
        (DirCreatedEvent("/nvr/cam2"), [WorkItem(Kind.FOLDER, "/nvr/cam2")]),
        (DirMovedEvent("/usb/cam7", "/nvr/cam7"),
         [WorkItem(Kind.MOVED, "/nvr/cam7"), WorkItem(Kind.FOLDER, "/nvr/cam7")]),
        (FileOpenedEvent("/nvr/a.mp4"), []),  # opening or reading changes nothing
        (FileClosedNoWriteEvent("/nvr/a.mp4"), []),
    ],
)
def test_observer_events_become_typed_items(event: object, expected: list[WorkItem]) -> None:
    inbox: Inbox = queue.Queue()
    EnqueueHandler(inbox).on_any_event(event)  # type: ignore[arg-type]
    got = []
    while not inbox.empty():
        got.append(inbox.get_nowait())
    assert got == expected
    assert all(isinstance(item.kind, Kind) and isinstance(item.path, str) for item in got)


def test_bytes_paths_are_decoded(tmp_path: Path) -> None:
    inbox: Inbox = queue.Queue()
    EnqueueHandler(inbox).on_any_event(FileCreatedEvent(bytes(tmp_path / "a.mp4")))
    assert inbox.get_nowait() == WorkItem(Kind.CREATED, str(tmp_path / "a.mp4"))
