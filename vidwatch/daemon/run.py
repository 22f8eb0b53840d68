"""`vidwatch daemon`: the daemon and its HTTP API until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal

from vidwatch.api.server import ApiServer, readiness_checks
from vidwatch.config import Config
from vidwatch.daemon.main import Daemon

logger = logging.getLogger(__name__)


def run_daemon(config: Config) -> int:
    daemon = Daemon(config)

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("daemon: %s received; stopping", signal.Signals(signum).name)
        daemon.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    api = ApiServer(config, daemon, readiness_checks(config, daemon))
    api.start()
    try:
        daemon.start()
        daemon.run()
    finally:
        daemon.stop()
        api.stop()
    return 0
