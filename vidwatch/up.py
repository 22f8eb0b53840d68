"""`vidwatch up`: everything on one machine — services if needed, the daemon (in this process), one worker."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from vidwatch.config import Config
from vidwatch.daemon.serve import DaemonService, stop_on_signals
from vidwatch.procs import spawn, stop
from vidwatch.services import PrivateService, broker_answers, redis_answers, start_rabbitmq, start_redis

logger = logging.getLogger(__name__)

WORKER_WARM_STOP_S = 10.0
WORKER_COLD_STOP_S = 5.0


def run_up(config: Config, config_file: str | None) -> int:
    """Services if none answers, one worker (a child process), and the daemon with its API in this process."""
    services: list[PrivateService] = []
    stopping = threading.Event()
    stop_on_signals(stopping, "up")
    worker: _Worker | None = None
    try:
        config.paths.state_dir.mkdir(parents=True, exist_ok=True)
        for root in config.watch.roots:
            root.mkdir(parents=True, exist_ok=True)
        services = _start_services(config)
        extra = ["-c", config_file] if config_file else []
        child = worker = _Worker([sys.executable, "-m", "vidwatch", "worker", *extra])  # before any thread of ours
        daemon = DaemonService(config)
        stop_on_signals(daemon.stop_event, "up")  # from here on, a signal ends the daemon's loop
        if stopping.is_set():
            return 0
        _banner(config)
        daemon.run(after_tick=lambda: child.check(daemon.stop_event), before_stop=child.stop_soon)
        return child.exit_code
    finally:
        if worker is not None:
            worker.stop_soon()
            worker.wait_stopped()
        for service in reversed(services):
            service.stop()


class _Worker:
    """`vidwatch worker` as a child: watched from the daemon's loop, stopped beside the daemon."""

    def __init__(self, args: list[str]) -> None:
        self.proc = spawn(args, env=dict(os.environ))
        self.exit_code = 0
        self._stopper: threading.Thread | None = None

    def check(self, stop: threading.Event) -> None:
        """After each tick: a worker that exited stops everything."""
        if self.proc.poll() is not None and not stop.is_set():
            logger.error("up: worker exited with %s; stopping everything", self.proc.returncode)
            self.exit_code = 1
            stop.set()

    def stop_soon(self) -> None:
        """Warm shutdown first, then cold (its unacknowledged task goes back to the queue and is
        redelivered on the next start), in a thread: the daemon stops meanwhile."""
        if self._stopper is None:
            steps = ((signal.SIGTERM, WORKER_WARM_STOP_S), (signal.SIGQUIT, WORKER_COLD_STOP_S))
            self._stopper = threading.Thread(target=stop, args=(self.proc, "worker", steps), name="stop-worker")
            self._stopper.start()

    def wait_stopped(self) -> None:
        if self._stopper is not None:
            self._stopper.join()


def _start_services(config: Config) -> list[PrivateService]:
    services = []
    redis_url = config.redis.url.get_secret_value()
    if not redis_answers(redis_url):
        services.append(start_redis(redis_url, config.paths.state_dir))
    broker_url = config.broker.url.get_secret_value()
    if not broker_answers(broker_url):
        services.append(start_rabbitmq(broker_url, config.paths.state_dir))
    return services


def _banner(config: Config) -> None:
    roots = ", ".join(_short(r) for r in config.watch.roots)
    print(  # noqa: T201 - the user-facing banner of an interactive command
        f"\nvidwatch is running.\n"
        f"  Drop video files into: {roots}  (e.g. {_short(config.watch.roots[0])}/cam1/lobby.mp4)\n"
        f"  Follow results:        vidwatch tail summaries   |   vidwatch tail events\n"
        f"  Status page:           http://{config.api.listen}/   (API: /docs)\n"
        f"  Health:                http://{config.api.listen}/readyz\n"
        f"  Stop:                  Ctrl-C\n",
        flush=True,
    )


def _short(path: Path) -> str:
    try:
        return "./" + str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
