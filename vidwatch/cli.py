"""The `vidwatch` command."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
from collections.abc import Sequence

import redis

from vidwatch import __version__
from vidwatch.config import Config, load_config
from vidwatch.errors import ConfigError, VidwatchError
from vidwatch.logs import setup_logging
from vidwatch.ops.commands import add_commands as add_ops_commands
from vidwatch.results.commands import add_commands as add_results_commands
from vidwatch.results.connection import translate_redis_error

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidwatch", description="Recorded video in, indexed analysis out.")
    parser.add_argument("--version", action="version", version=f"vidwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-c", "--config", help="TOML configuration (default: $VIDWATCH_CONFIG, /etc/vidwatch/…)")
        return p

    command("up", "daemon + one worker + API on this machine; starts Redis/RabbitMQ if none answers")
    command("daemon", "the watcher/normalizer/publisher with the HTTP API (what systemd runs)")
    worker = command("worker", "a Celery worker that analyses videos")
    worker.add_argument("-Q", "--queues", default="gpu,cpu,summary", help="queues to consume (comma-separated)")
    worker.add_argument("--concurrency", type=int, default=None, help="worker processes ([worker] concurrency)")
    worker.add_argument("--gpu", type=int, default=None, metavar="N",
                        help="pin this worker to GPU N (sets CUDA_VISIBLE_DEVICES; one process owns the GPU)")
    worker.add_argument("--pool", choices=["auto", "prefork", "threads"], default=None,
                        help="prefork: processes with an engine each; threads: one process, segments feed one "
                        "batcher ([worker] pool)")
    worker.add_argument("--threads", type=int, default=None, metavar="N",
                        help="segments a threads-pool worker analyses at once ([worker] threads)")
    submit = command("submit", "process files now, the way a dropped file is (through the running daemon if any)")
    submit.add_argument("paths", nargs="+", metavar="PATH", help="video files inside a watched root")
    submit.add_argument("--wait", action="store_true", help="wait until each video is done or failed; print it")
    submit.add_argument("--force", action="store_true",
                        help="analyse a done or failed file again as a new run (its results are replaced at once)")
    submit.add_argument("--timeout", type=float, default=None, help="with --wait: give up after this many seconds")
    tail = command("tail", "follow a results stream")
    tail.add_argument("stream", nargs="?", default="events", help="events, summaries or detections:<camera>")
    tail.add_argument("--group", help="read as this consumer group (created if missing; entries acknowledged once "
                      "printed; entries a dead member held are taken over)")
    tail.add_argument("--consumer", default="tail", help="consumer name within --group")
    tail.add_argument("--from-start", action="store_true", help="start at the oldest entry, not new ones")
    tail.add_argument("--json", action="store_true", help="one JSON object per line, as stored (summaries are "
                      "otherwise one readable line per video)")
    tail.add_argument("--count", type=int, default=None, help="exit after this many entries")
    tail.add_argument("--idle-timeout", type=float, default=None, help="exit after this many seconds without entries")
    prune = command("prune", "remove results older than [retention] allows now (by recording time); say what went")
    prune.add_argument("--dry-run", action="store_true", help="count what would be removed; change nothing")
    prune.add_argument("--before", metavar="T", help="remove every kind recorded before T (epoch s, ISO 8601, "
                       "or an age: 30d), whatever [retention] says")
    prune.add_argument("--json", action="store_true", help="the counts as one JSON object")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", help="TOML configuration (default: $VIDWATCH_CONFIG, /etc/vidwatch/…)")
    add_ops_commands(sub, common)  # systemd install, doctor, status
    add_results_commands(sub, common)  # query, show
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"vidwatch: {exc}", file=sys.stderr)  # noqa: T201 - logging is not set up yet
        return 2
    setup_logging(config.log.level, args.command)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: every thread's stack to stderr
    try:
        return _dispatch(args, config)
    except KeyboardInterrupt:
        return 130
    except VidwatchError as exc:
        logger.error("%s", exc)
        return 1
    except redis.RedisError as exc:  # a command that did not translate its own
        logger.error("%s", translate_redis_error(exc, "redis.url"))
        return 1


def _dispatch(args: argparse.Namespace, config: Config) -> int:
    if args.command in ("up", "daemon", "submit"):
        return _daemon_command(args, config)
    if args.command == "worker":
        from vidwatch.tasks.worker import choose_pool, run_worker

        queues = [q.strip() for q in args.queues.split(",") if q.strip()]
        unknown = sorted(set(queues) - {"gpu", "cpu", "summary"})
        if unknown or not queues:
            raise ConfigError(f"--queues: unknown queue(s) {unknown or queues}: expected gpu, cpu, summary")
        for flag, value in (("--concurrency", args.concurrency), ("--threads", args.threads)):
            if value is not None and value < 1:
                raise ConfigError(f"{flag}: expected at least 1, got {value}")
        if args.gpu is not None:
            if args.gpu < 0:
                raise ConfigError(f"--gpu: expected a GPU index >= 0, got {args.gpu}")
            # before anything can create a CUDA context: the engine loads in the pool process
            os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)
            os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        pool, concurrency = choose_pool(config, pool=args.pool, gpu=args.gpu is not None,
                                        concurrency=args.concurrency, threads=args.threads)
        return run_worker(config, queues, concurrency, pool=pool)
    if args.command == "tail":
        return _tail(args, config)
    if args.command == "prune":
        return _prune(args, config)
    if args.command in ("query", "show"):
        from vidwatch.results.commands import run as run_results_command

        return run_results_command(args, config)
    if args.command in ("systemd", "doctor", "status"):
        from vidwatch.ops.commands import run as run_ops_command

        return run_ops_command(args, config)
    return 2  # argparse only lets known commands through


def _daemon_command(args: argparse.Namespace, config: Config) -> int:
    """``up``, ``daemon`` and ``submit``: each builds the daemon's parts through :mod:`vidwatch.daemon.compose`."""
    if args.command == "up":
        from vidwatch.up import run_up

        return run_up(config, args.config)
    if args.command == "daemon":
        from vidwatch.daemon import run_daemon

        return run_daemon(config)
    from vidwatch.daemon.submit import run_submit

    return run_submit(config, args.paths, force=args.force, wait=args.wait, timeout_s=args.timeout)


def _prune(args: argparse.Namespace, config: Config) -> int:
    import json
    import time

    from vidwatch.results.connection import connect
    from vidwatch.results.keys import Keys
    from vidwatch.results.query import TIME_FORMS, parse_time
    from vidwatch.results.retention import Cutoffs, Retention

    if args.before is not None:
        try:
            before = parse_time(args.before)
        except ValueError as exc:
            raise ConfigError(f"--before: expected {TIME_FORMS}, got {args.before!r}") from exc
        cutoffs = Cutoffs.before(before) if before is not None else Cutoffs()
    else:
        cutoffs = Cutoffs.from_config(config, time.time())
    if not cutoffs.any:
        raise ConfigError("prune: every [retention] horizon is 0 (keep forever): nothing to do; give --before T")
    report = Retention(connect(config.redis), Keys(config.redis.prefix), config).run(cutoffs, dry_run=args.dry_run)
    lines = [json.dumps(report.as_dict(), sort_keys=True)] if args.json else report.lines()
    print("\n".join(lines))  # noqa: T201 - the command's output
    return 0


def _tail(args: argparse.Namespace, config: Config) -> int:
    from vidwatch.results.connection import connect
    from vidwatch.results.keys import Keys
    from vidwatch.results.report import browse_link
    from vidwatch.results.tail import entry_formatter, stream_key, tail

    try:
        key = stream_key(Keys(config.redis.prefix), args.stream)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    client = connect(config.redis)
    formatted = entry_formatter(client, Keys(config.redis.prefix), args.stream, as_json=args.json,
                                link=lambda video_id: browse_link(config, video_id))

    def emit(entry_id: str, fields: dict[str, str]) -> None:
        print(formatted(entry_id, fields), flush=True)  # noqa: T201 - the command's output

    tail(
        client, key, emit, from_start=args.from_start, group=args.group, consumer=args.consumer,
        count=args.count, idle_timeout_s=args.idle_timeout,
    )
    return 0
