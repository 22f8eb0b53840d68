"""The watcher/normalizer/publisher, with the HTTP API."""

from vidwatch.daemon.main import Daemon
from vidwatch.daemon.serve import run_daemon

__all__ = ["Daemon", "run_daemon"]
