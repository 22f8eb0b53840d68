"""`vidwatch doctor`: is this host ready to run vidwatch? One line per finding, with the fix.

Checks are plain functions ``(Config) -> Iterable[Finding]`` listed in :data:`CHECKS`;
adding one is one line. Checks written as ``(Config) -> list[(level, name, detail)]``
(``vidwatch.engines.report.engine_checks``) go in through :func:`from_tuples`, e.g.
``from_tuples(engine_checks)`` in place of ``check_engine``. A check that raises is
reported as a FAIL of its own, never a crash of the command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import redis

from vidwatch.broker import connected
from vidwatch.config import Config
from vidwatch.filesystems import SPOOL_MIN_FREE_BYTES, choose_mode, existing_ancestor, filesystem_type, spool_space
from vidwatch.results.connection import connect

Level = Literal["OK", "WARN", "FAIL"]
TOOL_TIMEOUT_S = 10.0
SPOOL_WARN_FREE_BYTES = 5 * 1024**3
MIN_USER_WATCHES = 524_288
MIN_QUEUED_EVENTS = 65_536
DIR_COUNT_CAP = 200_000
REMOTE_MOUNT_HINTS = ("/mnt/", "/media/", "/net/", "/nas/", "/srv/")


@dataclass(frozen=True)
class Finding:
    level: Level
    name: str
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.level:<4} {self.name}: {self.message}"
        return f"{text}\n     fix: {self.fix}" if self.fix and self.level != "OK" else text


CheckFn = Callable[[Config], Iterable[Finding]]


def _tool(args: list[str]) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise OSError(f"{args[0]} exited with {result.returncode}: {result.stderr.strip()[-200:]}")
    return result.stdout


def check_ffmpeg(_config: Config) -> Iterable[Finding]:
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            yield Finding("FAIL", tool, "not installed", "apt-get install ffmpeg")
            continue
        first = _tool([tool, "-hide_banner", "-version"]).splitlines()[0]
        yield Finding("OK", tool, first)
    if shutil.which("ffmpeg"):
        lines = _tool(["ffmpeg", "-hide_banner", "-hwaccels"]).splitlines()
        accels = [line.strip() for line in lines[1:] if line.strip()]
        yield Finding("OK", "ffmpeg hwaccels", ", ".join(accels) or "none (software decoding only)")


def check_redis(config: Config) -> Iterable[Finding]:
    client = connect(config.redis, socket_timeout_s=5.0)
    try:
        info = client.info("server")
        memory = client.info("memory")
    except redis.RedisError as exc:
        yield Finding("FAIL", "redis", f"unreachable: {exc}",
                      "start Redis (systemctl start redis-server) or fix [redis] url")
        return
    yield Finding("OK", "redis", f"Redis {info.get('redis_version', '?')} answers (prefix {config.redis.prefix})")
    policy = str(memory.get("maxmemory_policy", "noeviction"))
    if int(memory.get("maxmemory", 0) or 0) > 0 and policy != "noeviction":
        yield Finding("WARN", "redis memory", f"maxmemory-policy {policy} may evict results and ledger records",
                      "redis-cli config set maxmemory-policy noeviction (and in redis.conf)")


def check_broker(config: Config) -> Iterable[Finding]:
    try:
        with connected(config.broker.url.get_secret_value(), timeout_s=5) as conn:
            props = getattr(conn.connection, "server_properties", {}) or {}
            product = props.get("product", "broker")
            version = props.get("version", "?")
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        yield Finding("FAIL", "broker", f"unreachable: {type(exc).__name__}: {exc}",
                      "start RabbitMQ (systemctl start rabbitmq-server) or fix [broker] url (vhost, user)")
        return
    yield Finding("OK", "broker", f"{_text(product)} {_text(version)} answers")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def mount_point(path: Path) -> Path:
    current = Path(os.path.realpath(path))
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def check_roots(config: Config) -> Iterable[Finding]:
    for root in config.watch.roots:
        name = f"root {root}"
        if not root.is_dir():
            yield Finding("FAIL", name, "missing or not a folder",
                          f"mount the share or create it (mkdir -p {root}); see docs/deploy.md for NAS mounts")
            continue
        if not os.access(root, os.R_OK | os.X_OK):
            yield Finding("FAIL", name, "not readable by this user",
                          f"give the service user read access (e.g. setfacl -R -m u:vidwatch:rX {root})")
            continue
        fstype = filesystem_type(root)
        mode = choose_mode(config.watch.mode, root)
        where = mount_point(root)
        message = f"readable, {fstype} mounted at {where}, watched with {mode}"
        if where == Path("/") and str(root).startswith(REMOTE_MOUNT_HINTS):
            yield Finding("WARN", name, f"{message}, but it is on the root filesystem: is the share mounted?",
                          "mount the share (fstab or a .mount unit, so RequiresMountsFor= can wait for it)")
        elif config.watch.mode == "inotify" and choose_mode("auto", root) == "poll":
            yield Finding("WARN", name, f"{message}: inotify sees no writes made by other hosts on {fstype}",
                          'set [watch] mode = "auto" (or "poll")')
        else:
            yield Finding("OK", name, message)


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _count_dirs(root: Path, cap: int) -> int:
    count = 0
    for _ in os.walk(root):
        count += 1
        if count >= cap:
            break
    return count


def check_inotify(config: Config) -> Iterable[Finding]:
    inotify_roots = [r for r in config.watch.roots if r.is_dir() and choose_mode(config.watch.mode, r) == "inotify"]
    if not inotify_roots:
        yield Finding("OK", "inotify", "no root uses inotify")
        return
    watches = _read_int("/proc/sys/fs/inotify/max_user_watches")
    queued = _read_int("/proc/sys/fs/inotify/max_queued_events")
    folders = sum(_count_dirs(r, DIR_COUNT_CAP) for r in inotify_roots)
    persist = "and persist it in /etc/sysctl.d/90-vidwatch.conf"
    if watches is None or queued is None:
        yield Finding("WARN", "inotify", "cannot read the limits in /proc/sys/fs/inotify")
        return
    needed = max(MIN_USER_WATCHES, 2 * folders)
    if watches < needed:
        yield Finding("WARN", "inotify max_user_watches", f"{watches} for {folders} folder(s) under inotify roots",
                      f"sysctl -w fs.inotify.max_user_watches={max(1_048_576, needed)} {persist}")
    else:
        yield Finding("OK", "inotify max_user_watches", f"{watches} for {folders} folder(s)")
    if queued < MIN_QUEUED_EVENTS:
        yield Finding("WARN", "inotify max_queued_events", f"{queued}: bursts overflow (the rescan catches up late)",
                      f"sysctl -w fs.inotify.max_queued_events={MIN_QUEUED_EVENTS * 4} {persist}")
    else:
        yield Finding("OK", "inotify max_queued_events", str(queued))


def check_spool(config: Config) -> Iterable[Finding]:
    spool = config.paths.spool
    for folder in dict.fromkeys((config.paths.state_dir, spool)):
        existing = existing_ancestor(folder)
        if not os.access(existing, os.W_OK | os.X_OK):
            yield Finding("FAIL", f"folder {folder}", f"not writable by this user ({existing})",
                          f"install -d -o vidwatch -g vidwatch {folder}")
            return
        if folder.exists():
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
                pass
    ok, detail = spool_space(spool)
    free_gib = detail["free_bytes"] / 1024**3
    message = f"{free_gib:.1f} GiB free ({detail['free_percent']}%) at {spool}"
    if not ok:
        yield Finding("FAIL", "spool space", message,
                      f"free space or move [paths] spool_dir (needs at least {SPOOL_MIN_FREE_BYTES // 1024**2} MiB)")
    elif detail["free_bytes"] < SPOOL_WARN_FREE_BYTES:
        yield Finding("WARN", "spool space", message, "normalized copies need room: free space or move spool_dir")
    else:
        yield Finding("OK", "spool space", message)


def from_tuples(check: Callable[[Config], Iterable[tuple[str, str, str]]]) -> CheckFn:
    """Adapt a check that yields ``(level, name, detail)`` tuples.

    >>> [f.line() for f in from_tuples(lambda _c: [("WARN", "gpu", "none found")])(None)]
    ['WARN gpu: none found']
    """

    def adapted(config: Config) -> Iterable[Finding]:
        for level, name, detail in check(config):
            if level not in ("OK", "WARN", "FAIL"):
                raise ValueError(f"check {name}: level: expected OK, WARN or FAIL, got {level!r}")
            yield Finding(level, name, detail)  # type: ignore[arg-type]

    adapted.__name__ = getattr(check, "__name__", "check")
    return adapted


def engine_checks(config: Config) -> Iterable[tuple[str, str, str]]:
    """The engine ``auto`` picks and why, GPU / TensorRT / pycuda / ONNX Runtime availability."""
    from vidwatch.engines.report import engine_checks as checks

    return checks(config)


CHECKS: list[CheckFn] = [
    check_ffmpeg,
    check_redis,
    check_broker,
    check_roots,
    check_inotify,
    from_tuples(engine_checks),
    check_spool,
]


def run_checks(config: Config, checks: Iterable[CheckFn] = CHECKS) -> list[Finding]:
    findings: list[Finding] = []
    for check in checks:
        name = check.__name__.removeprefix("check_")
        try:
            findings.extend(check(config))
        except Exception as exc:  # noqa: BLE001 - a broken check is a finding, not a crash
            findings.append(Finding("FAIL", name, f"the check itself failed: {type(exc).__name__}: {exc}"))
    return findings


def exit_code(findings: Iterable[Finding]) -> int:
    return 1 if any(f.level == "FAIL" for f in findings) else 0
