"""systemd units rendered with this install's paths: `vidwatch systemd install`.

Three units and one drop-in:

- ``vidwatch-daemon.service``: ``Type=notify`` with a watchdog; ordered after the
  network, RabbitMQ and Redis; ``RequiresMountsFor=`` the roots and the state folder.
- ``vidwatch-worker@.service``: ``vidwatch-worker@0`` … one per GPU
  (``CUDA_VISIBLE_DEVICES=%i``), and ``vidwatch-worker@cpu`` (its drop-in hides the
  GPUs and consumes the cpu queue).
- ``vidwatch.target``: starts and stops them together.

Hardening: the system has read-only access everywhere but the state and spool
folders (so the roots are only read), a private /tmp, no new privileges.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from vidwatch.config import Config
from vidwatch.fileio import atomic_write

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
WATCHDOG_S = 30
WORKER_STOP_S = 30 * 60  # above the task time limit: a stop lets the running video finish
HOME_PREFIXES = ("/home", "/root", "/run/user")
TMP_PREFIXES = ("/tmp", "/var/tmp")


def user_unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def quote(value: str | Path) -> str:
    """A word for a unit file: ``%`` escaped; quoted when it holds spaces, quotes or backslashes.

    >>> quote("/mnt/nvr")
    '/mnt/nvr'
    >>> quote("/mnt/my nvr/100%")
    '"/mnt/my nvr/100%%"'
    """
    text = str(value).replace("%", "%%")
    if any(c.isspace() or c in "\"'\\;" for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def single(value: str | Path) -> str:
    """A whole-line value (``WorkingDirectory=``): taken as it is, quotes included; only ``%`` escaped."""
    return str(value).replace("%", "%%")


def _under(path: Path, prefixes: tuple[str, ...]) -> bool:
    text = str(path)
    return any(text == p or text.startswith(p + "/") for p in prefixes)


@dataclass(frozen=True)
class Install:
    """What the units need to know about this install."""

    command: tuple[str, ...]
    config_file: Path | None
    working_dir: Path
    roots: tuple[Path, ...]
    state_dir: Path
    spool_dir: Path
    user_mode: bool = False
    service_user: str = "vidwatch"

    @classmethod
    def from_config(cls, config: Config, *, user_mode: bool = False, service_user: str = "vidwatch") -> Install:
        script = Path(sys.executable).with_name("vidwatch")
        command = (str(script),) if script.exists() else (sys.executable, "-m", "vidwatch")
        source = None if config.source == "defaults" else Path(config.source).absolute()
        return cls(
            command=command,
            config_file=source,
            # the built-in defaults are relative to the current folder; a configuration file
            # should use absolute paths, and the services then start in the state folder
            working_dir=Path.cwd() if source is None else config.paths.state_dir,
            roots=tuple(config.watch.roots),
            state_dir=config.paths.state_dir,
            spool_dir=config.paths.spool,
            user_mode=user_mode,
            service_user=service_user,
        )

    def exec_start(self, *args: str) -> str:
        words = [*self.command, *args]
        if self.config_file is not None:
            words[len(self.command) + 1 : len(self.command) + 1] = ["-c", str(self.config_file)]
        return " ".join(quote(w) for w in words)

    def paths(self) -> list[Path]:
        return [*self.roots, self.state_dir, self.spool_dir, self.working_dir, Path(self.command[0])]


def _sandbox(install: Install, *, devices: str) -> list[str]:
    """Hardening lines shared by the daemon and the workers."""
    if install.user_mode:
        return ["# per-user manager: sandboxing needs privileges it does not have", "NoNewPrivileges=yes"]
    writable = " ".join(quote(p) for p in dict.fromkeys((install.state_dir, install.spool_dir)))
    lines = [
        f"User={install.service_user}",
        f"Group={install.service_user}",
        "UMask=0027",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={writable}",
    ]
    if any(_under(p, HOME_PREFIXES) for p in install.paths()):
        lines += ["# a path of this install is under /home: readable, and writable only where listed above",
                  "ProtectHome=read-only"]
    else:
        lines.append("ProtectHome=yes")
    tmp = [str(p) for p in install.paths() if _under(p, TMP_PREFIXES)]
    if tmp:
        lines += [f"# PrivateTmp= off: {', '.join(tmp)} would be hidden by a private /tmp", "PrivateTmp=no"]
    else:
        lines.append("PrivateTmp=yes")
    lines += [
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    ]
    if devices == "none":
        lines += ["PrivateDevices=yes", "SystemCallFilter=@system-service"]
    else:
        lines += [
            "# the GPU nodes (/dev/nvidia*, /dev/nvidia-uvm, /dev/nvidia-caps/*): PrivateDevices= would hide them",
            "DevicePolicy=closed",
            "DeviceAllow=char-nvidia* rw",
        ]
    return lines


def _unit_section(install: Install, description: str, mounts: list[Path]) -> list[str]:
    lines = ["[Unit]", f"Description={description}"]
    if not install.user_mode:
        lines += [
            "Wants=network-online.target",
            "After=network-online.target rabbitmq-server.service redis-server.service",
        ]
    lines += [
        "# only mounts systemd knows (fstab, .mount units, automounts) are waited for: see docs/deploy.md",
        "RequiresMountsFor=" + " ".join(quote(p) for p in dict.fromkeys(mounts)),
        "PartOf=vidwatch.target",
    ]
    return lines


def daemon_unit(install: Install) -> str:
    lines = _unit_section(install, "vidwatch daemon: watch, normalize, publish; HTTP API",
                          [*install.roots, install.state_dir, install.spool_dir])
    lines += [
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={install.exec_start('daemon')}",
        f"WorkingDirectory={single(install.working_dir)}",
        "Environment=PYTHONUNBUFFERED=1",
        f"WatchdogSec={WATCHDOG_S}",
        "Restart=on-failure",
        "RestartSec=5",
        "# READY=1 waits for Redis and the broker",
        "TimeoutStartSec=300",
        "TimeoutStopSec=90",
        *_sandbox(install, devices="none"),
        "",
        "[Install]",
        "WantedBy=vidwatch.target",
    ]
    return "\n".join(lines) + "\n"


def worker_unit(install: Install) -> str:
    lines = _unit_section(install, "vidwatch worker %i (a GPU index, or cpu)", [install.state_dir, install.spool_dir])
    lines += [
        "",
        "[Service]",
        "Type=exec",
        "Environment=PYTHONUNBUFFERED=1",
        "Environment=CUDA_DEVICE_ORDER=PCI_BUS_ID",
        "Environment=CUDA_VISIBLE_DEVICES=%i",
        "# vidwatch-worker@cpu.service.d/queues.conf sets cpu,summary",
        "Environment=VIDWATCH_QUEUES=gpu,summary",
        f"ExecStart={install.exec_start('worker')} -Q ${{VIDWATCH_QUEUES}}",
        f"WorkingDirectory={single(install.working_dir)}",
        "Restart=on-failure",
        "RestartSec=5",
        "# SIGTERM to Celery's main process only (a warm shutdown: the running video finishes);",
        "# whatever is still running when the timeout ends is killed and redelivered (acks_late)",
        "KillMode=mixed",
        f"TimeoutStopSec={WORKER_STOP_S}",
        *_sandbox(install, devices="gpu"),
        "",
        "[Install]",
        "WantedBy=vidwatch.target",
    ]
    return "\n".join(lines) + "\n"


def cpu_dropin() -> str:
    return "\n".join([
        "# vidwatch-worker@cpu: no GPU, the cpu queue",
        "[Service]",
        "Environment=CUDA_VISIBLE_DEVICES=",
        "Environment=VIDWATCH_QUEUES=cpu,summary",
    ]) + "\n"


def target_unit(install: Install) -> str:
    wanted_by = "default.target" if install.user_mode else "multi-user.target"
    return "\n".join([
        "[Unit]",
        "Description=vidwatch: the daemon and its workers",
        "Wants=vidwatch-daemon.service",
        "",
        "[Install]",
        f"WantedBy={wanted_by}",
    ]) + "\n"


HEADER = "# Written by `vidwatch systemd install`; running it again overwrites this file.\n"


def render(install: Install) -> dict[str, str]:
    """Relative file name → content."""
    units = {
        "vidwatch-daemon.service": daemon_unit(install),
        "vidwatch-worker@.service": worker_unit(install),
        "vidwatch-worker@cpu.service.d/queues.conf": cpu_dropin(),
        "vidwatch.target": target_unit(install),
    }
    return {name: HEADER + text for name, text in units.items()}


REFERENCE = Install(
    command=("/opt/vidwatch/bin/vidwatch",),
    config_file=Path("/etc/vidwatch/vidwatch.toml"),
    working_dir=Path("/var/lib/vidwatch"),
    roots=(Path("/mnt/nvr"),),
    state_dir=Path("/var/lib/vidwatch"),
    spool_dir=Path("/var/lib/vidwatch/spool"),
)
"""The install the units in the repository's ``systemd/`` folder are rendered for (a venv in
/opt/vidwatch, config/vidwatch.toml copied to /etc/vidwatch): regenerate them with
``python -c 'from vidwatch.ops.units import *; write_units(REFERENCE, Path("systemd"))'``."""


def write_units(install: Install, prefix: Path) -> list[Path]:
    written = []
    for name, text in render(install).items():
        written.append(atomic_write(prefix / name, text, mode=0o644))
    return written


def next_steps(install: Install, prefix: Path) -> str:
    ctl = "systemctl --user" if install.user_mode else "systemctl"
    lines = []
    if not install.user_mode:
        lines += [
            f"useradd --system --home-dir {quote(install.state_dir)} --shell /usr/sbin/nologin "
            f"{install.service_user}   # once",
            f"install -d -o {install.service_user} -g {install.service_user} {quote(install.state_dir)} "
            f"{quote(install.spool_dir)}",
        ]
    lines += [
        f"{ctl} daemon-reload",
        f"{ctl} enable vidwatch.target vidwatch-daemon.service vidwatch-worker@0.service   # or vidwatch-worker@cpu",
        f"{ctl} start vidwatch.target",
        f"journalctl {'--user ' if install.user_mode else ''}-u vidwatch-daemon -f",
    ]
    if install.config_file is None:
        lines.insert(0, f"# no configuration file: the units use the built-in defaults, from {install.working_dir}")
    if prefix not in (SYSTEM_UNIT_DIR, user_unit_dir()):
        home = user_unit_dir() if install.user_mode else SYSTEM_UNIT_DIR
        lines.insert(0, f"# written to {prefix}: copy them into {home}")
    return "\n".join(lines)
