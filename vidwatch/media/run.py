"""Run ffmpeg/ffprobe as a child we control.

Each run gets its own process group, no stdin, a wall-clock deadline and a stall
deadline (no progress for ``stall_s``); on either, the whole group is killed. stderr is
drained in a thread and its tail kept for the error message.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from vidwatch.errors import MediaTimeout

STDERR_TAIL_LINES = 12
WATCH_S = 0.2  # how often the deadlines are checked


@dataclass(frozen=True)
class FFmpegResult:
    returncode: int
    stdout: bytes
    stderr_tail: str
    wall_s: float


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group (ffmpeg may have children of its own)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    except PermissionError:
        proc.kill()


def close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


class _Output:
    """What the child wrote: stdout (or its progress blocks), stderr's tail, and when it last wrote."""

    def __init__(self, on_progress: Callable[[dict[str, str]], None] | None) -> None:
        self.on_progress = on_progress
        self.tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.chunks: list[bytes] = []
        self.last_activity = time.monotonic()

    def drain_stderr(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.last_activity = time.monotonic()
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.tail.append(line)

    def drain_stdout(self, stream: IO[bytes]) -> None:
        if self.on_progress is None:
            for chunk in iter(lambda: stream.read(65536), b""):
                self.last_activity = time.monotonic()
                self.chunks.append(chunk)
            return
        block: dict[str, str] = {}
        for raw in stream:
            self.last_activity = time.monotonic()
            key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
            block[key] = value
            if key == "progress":
                self.on_progress(block)
                block = {}


def _watch(proc: subprocess.Popen[bytes], exited: threading.Event, output: _Output, *, deadline: float,
           timeout_s: float, stall_s: float | None) -> str | None:
    """Wait for the child to exit; kill its group at a deadline and say which one passed."""
    while not exited.wait(WATCH_S):
        now = time.monotonic()
        reason = None
        if now > deadline:
            reason = f"timed out after {timeout_s:.0f} s"
        elif stall_s is not None and now - output.last_activity > stall_s:
            reason = f"stalled: no progress for {stall_s:.0f} s"
        if reason:
            kill_group(proc)
            exited.wait()
            return reason
    return None


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout_s: float,
    stall_s: float | None = None,
    on_progress: Callable[[dict[str, str]], None] | None = None,
    capture_stdout: bool = True,
) -> FFmpegResult:
    """Run ``args``; parse ``-progress pipe:1`` blocks when ``on_progress`` is given.

    Raises :class:`MediaTimeout` when the wall-clock or stall deadline passes.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        list(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture_stdout or on_progress else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    output = _Output(on_progress)
    exited = threading.Event()

    def reap() -> None:  # a blocking wait returns the moment ffmpeg exits (a polling wait lags up to 50 ms)
        proc.wait()
        exited.set()

    threads = [threading.Thread(target=output.drain_stderr, args=(proc.stderr,), daemon=True, name="ffmpeg-stderr")]
    if proc.stdout is not None:
        threads.append(
            threading.Thread(target=output.drain_stdout, args=(proc.stdout,), daemon=True, name="ffmpeg-stdout")
        )
    threads.append(threading.Thread(target=reap, daemon=True, name="ffmpeg-wait"))
    for thread in threads:
        thread.start()
    reason = _watch(proc, exited, output, deadline=started + timeout_s, timeout_s=timeout_s, stall_s=stall_s)
    for thread in threads:
        thread.join(timeout=5)
    close_pipes(proc)
    wall_s = time.monotonic() - started
    tail = output.tail
    if reason:
        raise MediaTimeout(f"{os.path.basename(args[0])} {reason}" + (f": {tail[-1]}" if tail else ""))
    return FFmpegResult(proc.returncode, b"".join(output.chunks), "\n".join(tail), wall_s)
