"""Child processes: their own session, output to a log, stopped in order (a polite signal, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from tests.helpers import wait_for
from vidwatch.procs import spawn, stop

STUBBORN = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); signal.pause()"
POLITE = "import signal; print('ready', flush=True); signal.pause()"


def _ready(log: Path) -> bool:
    return log.exists() and "ready" in log.read_text()


def test_a_child_runs_in_its_own_session_and_logs_to_the_file(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    proc = spawn([sys.executable, "-c", POLITE], log_path=str(log))
    try:
        wait_for(lambda: _ready(log), timeout_s=30, what="the child to start")
        assert os.getsid(proc.pid) == proc.pid != os.getsid(0)  # a terminal's Ctrl-C does not reach it
    finally:
        code = stop(proc, "child")
    assert code == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_after_its_grace(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    proc = spawn([sys.executable, "-c", STUBBORN], log_path=str(log))
    wait_for(lambda: _ready(log), timeout_s=30, what="the child to ignore SIGTERM")
    assert stop(proc, "stubborn", steps=((signal.SIGTERM, 0.2),)) == -signal.SIGKILL


def test_stopping_a_child_that_already_exited_returns_its_code(tmp_path: Path) -> None:
    proc = spawn([sys.executable, "-c", "raise SystemExit(3)"], log_path=str(tmp_path / "child.log"))
    proc.wait(timeout=30)
    assert stop(proc, "gone") == 3
