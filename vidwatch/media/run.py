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
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    out_chunks: list[bytes] = []
    last_activity = [time.monotonic()]

    def drain_stderr(stream: IO[bytes]) -> None:
        for raw in stream:
            last_activity[0] = time.monotonic()
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail.append(line)

    def drain_stdout(stream: IO[bytes]) -> None:
        if on_progress is None:
            for chunk in iter(lambda: stream.read(65536), b""):
                last_activity[0] = time.monotonic()
                out_chunks.append(chunk)
            return
        block: dict[str, str] = {}
        for raw in stream:
            last_activity[0] = time.monotonic()
            key, _, value = raw.decode("utf-8", "replace").strip().partition("=")
            block[key] = value
            if key == "progress":
                on_progress(block)
                block = {}

    threads = [threading.Thread(target=drain_stderr, args=(proc.stderr,), daemon=True, name="ffmpeg-stderr")]
    if proc.stdout is not None:
        threads.append(threading.Thread(target=drain_stdout, args=(proc.stdout,), daemon=True, name="ffmpeg-stdout"))
    exited = threading.Event()

    def reap() -> None:  # a blocking wait returns the moment ffmpeg exits (a polling wait lags up to 50 ms)
        proc.wait()
        exited.set()

    threads.append(threading.Thread(target=reap, daemon=True, name="ffmpeg-wait"))
    for thread in threads:
        thread.start()
    deadline = started + timeout_s
    reason = None
    while not exited.wait(WATCH_S):
        now = time.monotonic()
        if now > deadline:
            reason = f"timed out after {timeout_s:.0f} s"
        elif stall_s is not None and now - last_activity[0] > stall_s:
            reason = f"stalled: no progress for {stall_s:.0f} s"
        if reason:
            kill_group(proc)
            exited.wait()
            break
    for thread in threads:
        thread.join(timeout=5)
    close_pipes(proc)
    wall_s = time.monotonic() - started
    stderr_tail = "\n".join(tail)
    if reason:
        raise MediaTimeout(f"{os.path.basename(args[0])} {reason}" + (f": {tail[-1]}" if tail else ""))
    return FFmpegResult(proc.returncode, b"".join(out_chunks), stderr_tail, wall_s)
