"""`vidwatch daemon`: the daemon and its HTTP API until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal

from vidwatch.api.server import ApiServer, readiness_checks
from vidwatch.config import Config
from vidwatch.daemon.main import TICK_S, Daemon
from vidwatch.ops.notify import Notifier
from vidwatch.ops.service import ServiceNotifier

logger = logging.getLogger(__name__)


def run_daemon(config: Config) -> int:
    daemon = Daemon(config)

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("daemon: %s received; stopping", signal.Signals(signum).name)
        daemon.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    checks = readiness_checks(config, daemon)
    api = ApiServer(config, daemon, checks)
    api.app.state.metrics.time_publishes(daemon.publisher)  # publish latency for /metrics
    service = ServiceNotifier(daemon, Notifier(), checks["broker"], daemon.keys)
    api.start()
    try:
        service.starting()
        daemon.start()
        while not daemon.stop_event.is_set():  # Daemon.run(), plus what systemd hears
            daemon.tick()
            service.after_tick()
            daemon.stop_event.wait(TICK_S)
    finally:
        service.stopping()
        daemon.stop()
        api.stop()
    return 0

