"""The operating commands: `vidwatch systemd install`, `vidwatch doctor`, `vidwatch status`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidwatch.config import Config


def add_commands(command: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the subcommands; ``common`` carries ``-c/--config``."""
    systemd = command.add_parser("systemd", help="systemd units for this install",
                                 description="systemd units for this install")
    actions = systemd.add_subparsers(dest="systemd_action", required=True, metavar="ACTION")
    install = actions.add_parser("install", parents=[common], help="write the units with this install's paths",
                                 description="Write vidwatch-daemon.service, vidwatch-worker@.service and "
                                 "vidwatch.target with this install's paths and configuration.")
    install.add_argument("--prefix", type=Path, default=None,
                         help="folder to write to (default /etc/systemd/system, with --user ~/.config/systemd/user)")
    install.add_argument("--user", action="store_true", help="units for the per-user service manager")
    install.add_argument("--service-user", default="vidwatch", help="system user the services run as")
    doctor = command.add_parser("doctor", parents=[common], help="check this host: tools, services, roots, limits",
                                description="Check ffmpeg, Redis, the broker, the roots, inotify limits, the engine "
                                "and spool space; exit 1 on any FAIL.")
    doctor.add_argument("--json", action="store_true", help="one JSON object")
    doctor.add_argument("--model", type=Path, help="load this ONNX model: inputs, outputs, classes and a timing")
    status = command.add_parser("status", parents=[common], help="backlog, queues, workers, in-flight videos",
                                description="Backlog by state, queue depths, live workers, in-flight videos with "
                                "progress, recent failures.")
    status.add_argument("--json", action="store_true", help="one JSON object")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.command == "systemd":
        return _systemd_install(args, config)
    if args.command == "doctor":
        return _doctor(args, config)
    return _status(args, config)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _systemd_install(args: argparse.Namespace, config: Config) -> int:
    from vidwatch.ops.units import SYSTEM_UNIT_DIR, Install, next_steps, user_unit_dir, write_units

    install = Install.from_config(config, user_mode=args.user, service_user=args.service_user)
    prefix = args.prefix or (user_unit_dir() if args.user else SYSTEM_UNIT_DIR)
    for path in write_units(install, prefix):
        _out(f"wrote {path}")
    _out("next:\n  " + next_steps(install, prefix).replace("\n", "\n  "))
    return 0


def _doctor(args: argparse.Namespace, config: Config) -> int:
    from vidwatch.ops.doctor import exit_code, run_checks

    if args.model is not None:
        from vidwatch.engines.report import model_report

        _out(model_report(args.model, config.engine.batch, labels=config.engine.labels))
    findings = run_checks(config)
    if args.json:
        _out(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for finding in findings:
            _out(finding.line())
        counts = {level: sum(1 for f in findings if f.level == level) for level in ("OK", "WARN", "FAIL")}
        _out(f"{counts['OK']} ok, {counts['WARN']} warning(s), {counts['FAIL']} failure(s)")
    return exit_code(findings)


def _status(args: argparse.Namespace, config: Config) -> int:
    from vidwatch.ops.queues import QueueProbe
    from vidwatch.ops.snapshot import take_snapshot
    from vidwatch.ops.status_view import print_status
    from vidwatch.results.connection import connect
    from vidwatch.results.keys import Keys

    client = connect(config.redis)
    snap = take_snapshot(client, Keys.for_config(config.redis), QueueProbe(config.broker.url.get_secret_value()))
    if args.json:
        _out(json.dumps(snap.as_json(), indent=2))
    else:
        print_status(snap)
    return 0
