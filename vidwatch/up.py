"""`vidwatch up`: everything on one machine — services if needed, the daemon, one worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from vidwatch.config import Config
from vidwatch.procs import spawn, stop
from vidwatch.services import PrivateService, broker_answers, redis_answers, start_rabbitmq, start_redis

logger = logging.getLogger(__name__)

DAEMON_STOP_S = 15.0
WORKER_WARM_STOP_S = 10.0
WORKER_COLD_STOP_S = 5.0


def run_up(config: Config, config_file: str | None) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("up: %s received; stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services: list[PrivateService] = []
    children: dict[str, subprocess.Popen[bytes]] = {}
    code = 0
    try:
        config.paths.state_dir.mkdir(parents=True, exist_ok=True)
        for root in config.watch.roots:
            root.mkdir(parents=True, exist_ok=True)
        redis_url = config.redis.url.get_secret_value()
        if not redis_answers(redis_url):
            services.append(start_redis(redis_url, config.paths.state_dir))
        broker_url = config.broker.url.get_secret_value()
        if not broker_answers(broker_url):
            services.append(start_rabbitmq(broker_url, config.paths.state_dir))
        base = [sys.executable, "-m", "vidwatch"]
        extra = ["-c", config_file] if config_file else []
        env = dict(os.environ)
        children["daemon"] = spawn([*base, "daemon", *extra], env=env)
        children["worker"] = spawn([*base, "worker", *extra], env=env)
        _banner(config)
        while not stopping.is_set():
            for name, proc in children.items():
                if proc.poll() is not None:
                    logger.error("up: %s exited with %s; stopping everything", name, proc.returncode)
                    code = 1
                    stopping.set()
            stopping.wait(0.5)
    finally:
        # Both at once. The worker: warm shutdown first, then cold (its unacknowledged task
        # goes back to the queue and is redelivered on the next start).
        steps = {
            "daemon": ((signal.SIGTERM, DAEMON_STOP_S),),
            "worker": ((signal.SIGTERM, WORKER_WARM_STOP_S), (signal.SIGQUIT, WORKER_COLD_STOP_S)),
        }
        stoppers = [
            threading.Thread(target=stop, args=(proc, name, steps[name])) for name, proc in children.items()
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        for service in reversed(services):
            service.stop()
    return code


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
