"""The rendered systemd units pass `systemd-analyze verify` with no output at all."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import missing
from vidwatch.config import load_config
from vidwatch.ops.units import Install, render, write_units


@pytest.fixture(scope="module")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        missing("systemd-analyze", "apt-get install systemd")
    return path


def verify(analyze: str, folder: Path, *, user: bool, tmp_path: Path) -> str:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    units = ["vidwatch-daemon.service", "vidwatch.target", "./vidwatch-worker@0.service",
             "./vidwatch-worker@cpu.service"]
    args = [analyze, *(["--user"] if user else []), "verify", "--man=no", *units]
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    result = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=60, env=env, check=False)
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}".strip()


def install_for(tmp_path: Path, roots: list[str], state_dir: str, *, user_mode: bool = False) -> Install:
    config_file = tmp_path / "conf dir" / "vidwatch.toml"
    config_file.parent.mkdir(exist_ok=True)
    roots_toml = ", ".join(f'"{r}"' for r in roots)
    config_file.write_text(f'[watch]\nroots = [{roots_toml}]\n[paths]\nstate_dir = "{state_dir}"\n')
    return Install.from_config(load_config(config_file, environ={}), user_mode=user_mode)


CASES = [  # roots, state dir, user mode
    (["/srv/nvr", "/mnt/nas two"], "/var/lib/vidwatch", False),
    (["/home/ops/recordings"], "/home/ops/vidwatch state", False),
    (["/tmp/inbox"], "/tmp/var/100%", False),
    (["/srv/nvr"], "/var/lib/vidwatch", True),
]


@pytest.mark.parametrize(("roots", "state_dir", "user_mode"), CASES)
def test_rendered_units_verify_clean(
    analyze: str, tmp_path: Path, roots: list[str], state_dir: str, user_mode: bool
) -> None:
    install = install_for(tmp_path, roots, state_dir, user_mode=user_mode)
    out = tmp_path / "units"
    write_units(install, out)
    assert verify(analyze, out, user=user_mode, tmp_path=tmp_path) == "exit 0"


def test_verify_reports_what_it_would_ignore(analyze: str, tmp_path: Path) -> None:
    """The check is only worth something if a bad key shows up (verify exits 0 on those)."""
    install = install_for(tmp_path, ["/srv/nvr"], "/var/lib/vidwatch")
    out = tmp_path / "units"
    write_units(install, out)
    daemon = out / "vidwatch-daemon.service"
    daemon.write_text(daemon.read_text().replace("WatchdogSec=30", "WatchdogSec=30\nWatchDogSec=abc"))
    assert "Unknown key" in verify(analyze, out, user=False, tmp_path=tmp_path)


def test_units_carry_this_install(tmp_path: Path) -> None:
    install = install_for(tmp_path, ["/srv/nvr", "/mnt/nas two"], "/var/lib/vidwatch")
    # where this checkout lives (a clone under /tmp, say) must not change what is asserted
    install = dataclasses.replace(install, command=("/opt/vidwatch/bin/vidwatch",))
    units = render(install)
    daemon, worker = units["vidwatch-daemon.service"], units["vidwatch-worker@.service"]
    config = f'"{tmp_path / "conf dir" / "vidwatch.toml"}"'
    for line in (
        "Type=notify", "WatchdogSec=30", "Restart=on-failure", "ProtectSystem=strict", "NoNewPrivileges=yes",
        "PrivateTmp=yes", "ProtectHome=yes", "PrivateDevices=yes",
        'RequiresMountsFor=/srv/nvr "/mnt/nas two" /var/lib/vidwatch /var/lib/vidwatch/spool',
        "After=network-online.target rabbitmq-server.service redis-server.service",
        "ReadWritePaths=/var/lib/vidwatch /var/lib/vidwatch/spool",
        f"ExecStart={install.command[0]} daemon -c {config}",
        "WorkingDirectory=/var/lib/vidwatch",
    ):
        assert line in daemon.splitlines(), line
    for line in (
        "Environment=CUDA_VISIBLE_DEVICES=%i", "Environment=CUDA_DEVICE_ORDER=PCI_BUS_ID", "KillMode=mixed",
        "TimeoutStopSec=1800", "DeviceAllow=char-nvidia* rw", f"ExecStart={install.command[0]} worker -c {config} "
        "-Q ${VIDWATCH_QUEUES}",
    ):
        assert line in worker.splitlines(), line
    assert "PrivateDevices=yes" not in worker
    assert "Environment=VIDWATCH_QUEUES=cpu,summary" in units["vidwatch-worker@cpu.service.d/queues.conf"]

    home = render(install_for(tmp_path, ["/home/ops/rec"], "/var/lib/vidwatch"))["vidwatch-daemon.service"]
    assert "ProtectHome=read-only" in home.splitlines()
    tmp = render(install_for(tmp_path, ["/tmp/in"], "/var/lib/vidwatch"))["vidwatch-daemon.service"]
    assert "PrivateTmp=no" in tmp.splitlines()
    user = render(install_for(tmp_path, ["/srv/nvr"], "/var/lib/v", user_mode=True))
    assert "User=" not in user["vidwatch-daemon.service"] and "WantedBy=default.target" in user["vidwatch.target"]


def test_the_reference_units_in_the_repository_are_current() -> None:
    """systemd/ holds the units for a standard install (see REFERENCE); they must match the renderer."""
    from vidwatch.ops.units import REFERENCE

    folder = Path(__file__).resolve().parents[2] / "systemd"
    for name, text in render(REFERENCE).items():
        assert (folder / name).read_text() == text, f"systemd/{name} is stale: regenerate it (see units.REFERENCE)"
