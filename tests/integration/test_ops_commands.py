"""`vidwatch doctor`, `vidwatch status` and `vidwatch systemd install` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.api_fixtures import seed
from vidwatch.config import load_config
from vidwatch.ops.doctor import CHECKS, Finding, exit_code, run_checks


def vidwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("vidwatch")), *args]
    environ = {**os.environ, "COLUMNS": "160", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=environ, check=False)


def test_doctor_passes_on_a_good_host_and_fails_with_the_fix(site: dict, ffmpeg: str) -> None:
    good = vidwatch("doctor", "-c", str(site["config"]))
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.splitlines()
    for start in ("OK   ffmpeg: ffmpeg version", "OK   ffprobe:", "OK   ffmpeg hwaccels:", "OK   redis: Redis ",
                  "OK   broker: RabbitMQ", f"OK   root {site['inbox']}: readable", "OK   engine: opencv",
                  "OK   spool space:"):
        assert any(line.startswith(start) for line in lines), (start, good.stdout)
    assert "watched with inotify" in good.stdout or "watched with poll" in good.stdout

    bad = vidwatch("doctor", "-c", str(site["config"]), "--json",
                   env={"VIDWATCH_WATCH__ROOTS": f'["{site["tmp"]}/nowhere"]',
                        "VIDWATCH_BROKER__URL": "amqp://guest:guest@127.0.0.1:1//"})
    assert bad.returncode == 1, bad.stdout + bad.stderr
    findings = {f["name"]: f for f in json.loads(bad.stdout)}
    assert findings[f"root {site['tmp']}/nowhere"]["level"] == "FAIL"
    assert "mkdir -p" in findings[f"root {site['tmp']}/nowhere"]["fix"]
    assert findings["broker"]["level"] == "FAIL" and "rabbitmq-server" in findings["broker"]["fix"]


def test_a_broken_check_is_a_failure_not_a_crash(site: dict) -> None:
    def check_exploding(_config: object) -> list[Finding]:
        raise RuntimeError("boom")

    config = load_config(site["config"], environ={})
    findings = run_checks(config, [*CHECKS[-2:], check_exploding])
    assert findings[-1] == Finding("FAIL", "exploding", "the check itself failed: RuntimeError: boom")
    assert exit_code(findings) == 1


def test_status_shows_backlog_queues_in_flight_and_failures(site: dict, redis_client: redis.Redis) -> None:
    config = load_config(site["config"], environ={})
    seeded = seed(config, redis_client)
    shown = vidwatch("status", "-c", str(site["config"]))
    assert shown.returncode == 0, shown.stderr
    for words in ("Backlog", "Queues", "Live workers (0)", "In flight (1)", "/nvr/cam3/wait.mp4", "queued",
                  "Recent failures (1)", "truncated (moov atom not found)", "━"):
        assert words in shown.stdout, (words, shown.stdout)
    data = json.loads(vidwatch("status", "-c", str(site["config"]), "--json").stdout)
    assert data["backlog"]["queued"] == 1 and data["done_indexed"] == 2
    assert [row["video_id"] for row in data["in_flight"]] == [seeded.queued]
    assert data["in_flight"][0]["progress"] is None  # measured by workers only: a queued video has none yet
    assert data["queues"]["cpu"] == {"messages": 0, "consumers": 0, "exists": False}


def test_systemd_install_writes_units_for_this_config(site: dict, tmp_path: Path) -> None:
    done = vidwatch("systemd", "install", "-c", str(site["config"]), "--prefix", str(tmp_path / "units"))
    assert done.returncode == 0, done.stderr
    assert "systemctl daemon-reload" in done.stdout
    daemon = (tmp_path / "units" / "vidwatch-daemon.service").read_text()
    assert f"daemon -c {site['config']}" in daemon and f"RequiresMountsFor={site['inbox']} " in daemon
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == [
        "vidwatch-daemon.service", "vidwatch-worker@.service", "vidwatch-worker@cpu.service.d", "vidwatch.target"]


def test_systemd_install_user_units_go_to_the_user_manager_folder(site: dict, tmp_path: Path) -> None:
    done = vidwatch("systemd", "install", "--user", "-c", str(site["config"]),
                    env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert done.returncode == 0, done.stderr
    assert "systemctl --user daemon-reload" in done.stdout and "useradd" not in done.stdout
    target = (tmp_path / "xdg" / "systemd" / "user" / "vidwatch.target").read_text()
    assert "WantedBy=default.target" in target
