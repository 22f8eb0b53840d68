"""`vidwatch up`'s worker child: watched after each tick of the daemon's loop, stopped beside the daemon."""

from __future__ import annotations

import sys
import threading

from vidwatch.up import _Worker


def test_a_worker_that_exits_stops_everything_with_an_error() -> None:
    worker = _Worker([sys.executable, "-c", "raise SystemExit(3)"])
    stop = threading.Event()
    worker.proc.wait(timeout=30)
    worker.check(stop)
    assert stop.is_set() and worker.exit_code == 1
    worker.stop_soon()
    worker.wait_stopped()


def test_a_running_worker_is_left_alone_then_stopped_with_sigterm() -> None:
    worker = _Worker([sys.executable, "-c", "import time; time.sleep(120)"])
    stop = threading.Event()
    try:
        worker.check(stop)
        assert not stop.is_set() and worker.exit_code == 0
    finally:
        worker.stop_soon()
        worker.stop_soon()  # once is enough; a second call changes nothing
        worker.wait_stopped()
    assert worker.proc.returncode is not None and worker.proc.returncode < 0  # ended by a signal
    assert worker.exit_code == 0  # a stop we asked for is not a failure
