"""What ``vidwatch daemon`` and ``vidwatch up`` run: the daemon, its HTTP API, and what systemd hears."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from vidwatch.api.server import ApiServer, readiness_checks
from vidwatch.config import Config
from vidwatch.daemon.main import Daemon
from vidwatch.ops.notify import Notifier
from vidwatch.ops.service import ServiceNotifier

logger = logging.getLogger(__name__)


class DaemonService:
    """The daemon, its HTTP API and its systemd notifications: what ``vidwatch daemon`` and ``up`` run."""

    def __init__(self, config: Config, daemon: Daemon | None = None) -> None:
        self.daemon = daemon or Daemon(config)
        checks = readiness_checks(config, self.daemon)
        self.api = ApiServer(config, self.daemon, checks)
        self.daemon.publisher.report_to(self.api.app.state.metrics)  # publish latency for /metrics
        self.service = ServiceNotifier(self.daemon, Notifier(), checks["broker"], self.daemon.keys)

    @property
    def stop_event(self) -> threading.Event:
        return self.daemon.stop_event

    def run(
        self, after_tick: Callable[[], None] | None = None, before_stop: Callable[[], None] | None = None
    ) -> None:
        """Serve until :attr:`stop_event` is set.

        ``after_tick`` runs after each tick of the main loop; ``before_stop`` once the loop ended,
        before the daemon's parts stop (to stop something else meanwhile).
        """

        def ticked() -> None:
            self.service.after_tick()
            if after_tick is not None:
                after_tick()

        self.api.start()
        try:
            self.service.starting()
            self.daemon.start()
            self.daemon.run(after_tick=ticked)
        finally:
            self.service.stopping()
            if before_stop is not None:
                before_stop()
            self.daemon.stop()
            self.api.stop()


def stop_on_signals(stop: threading.Event, who: str) -> None:
    """SIGTERM and SIGINT set ``stop`` (the main loop then shuts down cleanly)."""

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("%s: %s received; stopping", who, signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def run_daemon(config: Config) -> int:
    """``vidwatch daemon``: the daemon and its HTTP API until SIGTERM or Ctrl-C."""
    service = DaemonService(config)
    stop_on_signals(service.stop_event, "daemon")
    service.run()
    return 0
