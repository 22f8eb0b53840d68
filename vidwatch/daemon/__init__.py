"""The watcher/normalizer/publisher, with the HTTP API."""

from vidwatch.daemon.main import Daemon
from vidwatch.daemon.run import run_daemon

__all__ = ["Daemon", "run_daemon"]
