"""Fixtures for real services. Each test gets its own Redis prefix and RabbitMQ vhost.

A missing service skips the test locally and fails it in CI (where ``CI`` is set): every
such skip goes through :func:`tests.helpers.missing`.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import missing


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """An in-process Celery worker sets the root logger's level (``start_worker`` logs at "error")
    and handlers for the rest of the process: put them back, so a later test's caplog or doctest
    sees its warnings whatever ran before it."""
    root = logging.getLogger()
    level, handlers, disabled = root.level, list(root.handlers), logging.root.manager.disable
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    logging.disable(disabled)

REDIS_URL = os.environ.get("VIDWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_HOST = os.environ.get("VIDWATCH_TEST_AMQP_HOST", "127.0.0.1:5672")


def _port_open(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None or shutil.which("ffprobe") is None:
        missing("ffmpeg/ffprobe")
    return path


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the shared Redis; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        missing(f"Redis at {REDIS_URL}")
    prefix = f"vwtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_client(redis_prefix: str) -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL, decode_responses=True)


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    return subprocess.run([ctl, "-q", *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A fresh vhost on the shared RabbitMQ, deleted afterwards."""
    if not _port_open(AMQP_HOST):
        missing(f"RabbitMQ at {AMQP_HOST}")
    if not (shutil.which("rabbitmqctl") or Path("/usr/sbin/rabbitmqctl").exists()):
        missing("rabbitmqctl (to create a test vhost)")
    vhost = f"vwtest-{uuid.uuid4().hex[:10]}"
    created = _rabbitmqctl("add_vhost", vhost)
    if created.returncode != 0:
        missing(f"a RabbitMQ vhost ({created.stderr.strip()})")
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@{AMQP_HOST}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def site(tmp_path: Path, redis_prefix: str, amqp_url: str) -> dict[str, object]:
    """An inbox, a state folder and a config file pointing at this test's prefix and vhost."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    port = free_port()
    config = tmp_path / "vidwatch.toml"
    config.write_text(
        f"""
[watch]
roots = ["{inbox}"]
settle_seconds = 1.0
rescan_seconds = 60

[paths]
state_dir = "{tmp_path / 'var'}"

[broker]
url = "{amqp_url}"

[redis]
url = "{REDIS_URL}"
prefix = "{redis_prefix}"

[api]
listen = "127.0.0.1:{port}"

[analysis]
fps = 5
size = 320
"""
    )
    return {"inbox": inbox, "config": config, "port": port, "prefix": redis_prefix, "tmp": tmp_path}
