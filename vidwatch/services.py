"""Reuse Redis and RabbitMQ where they answer; else start private ones under the state folder."""

from __future__ import annotations

import logging
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import redis

from vidwatch.broker import broker_answers
from vidwatch.errors import ConfigError, VidwatchError
from vidwatch.procs import spawn, stop

logger = logging.getLogger(__name__)

__all__ = ["PrivateService", "broker_answers", "redis_answers", "start_rabbitmq", "start_redis"]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
REDIS_START_S = 20.0
RABBIT_START_S = 90.0


@dataclass
class PrivateService:
    name: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        code = stop(self.proc, self.name, ((signal.SIGTERM, 30.0),))
        logger.info("stopped private %s (exit %s)", self.name, code)


def redis_answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        return bool(client.ping())
    except redis.RedisError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _local_port(url: str, default_port: int, key: str) -> int:
    parsed = urlparse(url)
    if parsed.hostname not in LOCAL_HOSTS:
        raise VidwatchError(f"{key}: {parsed.hostname} does not answer, and vidwatch only starts local servers")
    return parsed.port or default_port


def _wait(check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if proc.poll() is not None:
            raise VidwatchError(f"{what} exited with {proc.returncode} at start; see {log}")
        if time.monotonic() > deadline:
            raise VidwatchError(f"{what} did not answer within {timeout_s:.0f} s; see {log}")
        time.sleep(0.25)


def start_redis(url: str, state_dir: Path) -> PrivateService:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError("redis.url: nothing answers and redis-server is not installed (apt-get install redis-server)")
    port = _local_port(url, 6379, "redis.url")
    folder = state_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "redis.log"
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--logfile", str(log)]
    proc = spawn(args)
    logger.info("started private redis-server on port %d (data in %s)", port, folder)
    _wait(lambda: redis_answers(url, 0.5), "redis-server", proc, REDIS_START_S, log)
    return PrivateService("redis-server", proc)


def _rabbit_tool(name: str) -> str | None:
    """RabbitMQ's own script: Debian's /usr/sbin wrapper would switch to the rabbitmq user,
    who cannot write our state folder, and drop our environment."""
    direct = Path("/usr/lib/rabbitmq/bin") / name
    return str(direct) if direct.exists() else shutil.which(name)


def advanced_config(rabbit_env: Mapping[str, int | bool]) -> str:
    """An ``advanced.config`` that sets these keys of the ``rabbit`` application (Erlang terms).

    Keys must be plain Erlang atoms; values integers or booleans (what the timers and limits take).

    >>> advanced_config({"consumer_timeout": 5000, "channel_tick_interval": 250})
    '[{rabbit, [{consumer_timeout, 5000}, {channel_tick_interval, 250}]}].\\n'
    """
    terms = []
    for key, value in rabbit_env.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            raise ValueError(f"rabbit setting: expected a lower-case Erlang atom, got {key!r}")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        else:
            raise ValueError(f"rabbit setting {key}: expected an int or a bool, got {value!r}")
        terms.append(f"{{{key}, {text}}}")
    return f"[{{rabbit, [{', '.join(terms)}]}}].\n"


def start_rabbitmq(url: str, state_dir: Path, *, rabbit_env: Mapping[str, int | bool] | None = None) -> PrivateService:
    """Start a private RabbitMQ node for ``url`` (data under ``state_dir``); return once it answers.

    ``rabbit_env`` sets keys of the ``rabbit`` application through an advanced.config,
    including those rabbitmq.conf has no name for, e.g. ``{"consumer_timeout": 5000,
    "channel_tick_interval": 250}`` (both in ms; the broker checks the consumer timeout once
    per channel tick, 60 s by default). None: the broker's defaults.
    """
    binary = _rabbit_tool("rabbitmq-server")
    if binary is None:
        raise ConfigError(
            "broker.url: nothing answers and rabbitmq-server is not installed (apt-get install rabbitmq-server)"
        )
    port = _local_port(url, 5672, "broker.url")
    folder = (state_dir / "rabbitmq").resolve()
    (folder / "log").mkdir(parents=True, exist_ok=True)
    (folder / "enabled_plugins").write_text("[].\n")
    node = f"vidwatch{port}@localhost"
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(folder),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(_free_port()),  # Erlang distribution (rabbitmqctl); any free port
        "RABBITMQ_BASE": str(folder),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
        "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
        "ERL_CRASH_DUMP": str(folder / "log" / "erl_crash.dump"),
    }
    advanced = folder / "advanced.config"
    if rabbit_env:
        advanced.write_text(advanced_config(rabbit_env))
        env["RABBITMQ_ADVANCED_CONFIG_FILE"] = str(advanced)
    else:
        advanced.unlink(missing_ok=True)  # a restart without settings must not look as if it had them
    proc = spawn([binary], env=env, log_path=str(folder / "log" / "console.log"), cwd=str(folder))
    logger.info("started private rabbitmq-server %s on port %d (data in %s)", node, port, folder)
    default_vhost = urlparse(url)._replace(path="/").geturl()
    _wait(lambda: broker_answers(default_vhost, 1.0), "rabbitmq-server", proc, RABBIT_START_S, folder / "log")
    ctl = _rabbit_tool("rabbitmqctl") or "rabbitmqctl"
    vhost = unquote(urlparse(url).path[1:]) or "/"
    if vhost != "/":
        for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
            subprocess.run([ctl, "-n", node, *args], env=env, capture_output=True, timeout=60, check=False)
    return PrivateService("rabbitmq-server", proc)  # SIGTERM makes the Erlang VM shut down cleanly
