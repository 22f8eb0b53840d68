"""Child processes that die with their parent and stop in order."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Sequence

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        return


def spawn(args: Sequence[str], *, env: dict[str, str] | None = None, log_path: str | None = None,
          cwd: str | None = None) -> subprocess.Popen[bytes]:
    """Start ``args`` in its own session (a terminal's Ctrl-C reaches only us; we stop children in order)."""
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(
            list(args),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - called before any thread of ours forks
        )
    finally:
        if out:
            out.close()


def stop(
    proc: subprocess.Popen[bytes], name: str, steps: Sequence[tuple[int, float]] = ((signal.SIGTERM, 10.0),)
) -> int:
    """Send each ``(signal, grace_s)`` in turn until ``proc`` exits; then SIGKILL its group. Returns its exit code."""
    for sig, grace_s in steps:
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("%s still running %.0f s after %s", name, grace_s, signal.Signals(sig).name)
    if proc.poll() is None:
        logger.warning("%s: killing it", name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()
