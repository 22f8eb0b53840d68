"""Logging set-up; called only by the CLI."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str, name: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("watchdog", "amqp", "kombu", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))
