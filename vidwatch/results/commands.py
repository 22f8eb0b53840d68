"""`vidwatch query` (videos, detections or objects in a recording-time range, from the indexes) and
`vidwatch show VIDEO_ID` (one video's summary as a short report)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from vidwatch.config import Config
from vidwatch.errors import ConfigError
from vidwatch.results.query import TIME_FORMS
from vidwatch.textsafe import printable


def add_commands(command: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``query``; ``common`` carries ``-c/--config``."""
    query = command.add_parser(
        "query", parents=[common], help="videos and detections by camera, label and recording time",
        description="Videos (by recording start) and detections (by recorded moment) from the indexes; "
        f"--since/--until accept {TIME_FORMS}. Both edges are inclusive.",
    )
    query.add_argument("--camera", help="one camera (default: all)")
    query.add_argument("--label", help="a detected label, e.g. person")
    query.add_argument("--since", help="from this time (inclusive)")
    query.add_argument("--until", help="to this time (inclusive)")
    query.add_argument("--what", choices=("videos", "detections", "both"), default="both", help="what to list")
    query.add_argument("--objects", action="store_true",
                       help="list objects (each track of a person, car, …: when, where, best crop) instead")
    query.add_argument("--cursor", help="with --objects: the next_cursor of the previous page (--json shows it)")
    query.add_argument("--limit", type=int, default=100, help="at most this many of each (default 100)")
    query.add_argument("--json", action="store_true", help="one JSON object")
    show = command.add_parser(
        "show", parents=[common], help="a video's summary as a short report",
        description="What was seen in one video (objects with their times and crops, activity, how it was "
        "analysed), or where it stands when it is not done.",
    )
    show.add_argument("video_id", metavar="VIDEO_ID", help="as `vidwatch submit`, `tail` and `query` show it")
    show.add_argument("--json", action="store_true", help="the record, summary and objects as one JSON object")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.command == "show":
        return show(args, config)
    if args.objects:
        return query_objects(args, config)
    from vidwatch.results.connection import connect
    from vidwatch.results.detections import DetectionQuery, find_detections
    from vidwatch.results.keys import Keys
    from vidwatch.results.query import VideoQuery, find_videos, parse_time

    try:
        since, until = parse_time(args.since), parse_time(args.until)
        videos_q = VideoQuery(camera=args.camera, label=args.label, since=since, until=until,
                              limit=min(args.limit, 1000))
        detections_q = DetectionQuery(camera=args.camera, label=args.label, since=since, until=until,
                                      limit=args.limit)
    except ValueError as exc:
        raise ConfigError(f"query: {exc}") from exc
    client, keys = connect(config.redis), Keys.for_config(config.redis)
    result: dict[str, Any] = {"since": since, "until": until}
    if args.what in ("videos", "both"):
        result["videos"] = find_videos(client, keys, videos_q)
    if args.what in ("detections", "both"):
        result["detections"] = find_detections(client, keys, detections_q)
    _out(json.dumps(result) if args.json else render(result))
    return 0


def render(result: dict[str, Any]) -> str:
    lines = []
    if "videos" in result:
        lines.append(f"videos ({len(result['videos'])}):")
        for row in result["videos"]:
            lines.append(f"  {row['video_id']}  {row['camera']:<10} {_when(row['start_ts'])}  {row['state']:<10} "
                         f"{row['path']}")
    if "detections" in result:
        lines.append(f"detections ({len(result['detections'])}):")
        for row in result["detections"]:
            labels = ",".join(sorted({str(d.get("label")) for d in row["detections"]}))
            lines.append(f"  {_when(row['ts'])}  {row['camera']:<10} {row['video_id']}  "
                         f"frame {row.get('frame', '?'):>6}  {labels}")
    return "\n".join(printable(line) for line in lines)  # a path's controls escaped: one line per row


def _when(ts: float | None) -> str:
    if ts is None:
        return "-" * 23
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def query_objects(args: argparse.Namespace, config: Config) -> int:
    from vidwatch.results.connection import connect
    from vidwatch.results.keys import Keys
    from vidwatch.results.objects import ObjectQuery, find_objects
    from vidwatch.results.query import parse_time
    from vidwatch.results.report import object_line

    try:
        since, until = parse_time(args.since), parse_time(args.until)
        query = ObjectQuery(camera=args.camera, label=args.label, since=since, until=until, cursor=args.cursor,
                            limit=min(args.limit, 1000))
    except ValueError as exc:
        raise ConfigError(f"query: {exc}") from exc
    page = find_objects(connect(config.redis), Keys(config.redis.prefix), query)
    if args.json:
        _out(json.dumps({"since": since, "until": until, "objects": [o.as_json() for o in page.objects],
                         "next_cursor": page.next_cursor}))
        return 0
    lines = [f"objects ({len(page.objects)}):", *(f"  {object_line(o)}" for o in page.objects)]
    if page.next_cursor:
        lines.append(f"more: --cursor {page.next_cursor}")
    _out("\n".join(lines))
    return 0


def show(args: argparse.Namespace, config: Config) -> int:
    from vidwatch.results.connection import connect
    from vidwatch.results.keys import Keys
    from vidwatch.results.objects import objects_of
    from vidwatch.results.query import summary_of
    from vidwatch.results.report import browse_link, video_report

    client, keys = connect(config.redis), Keys(config.redis.prefix)
    video_id = args.video_id
    record: dict[str, str] = client.hgetall(keys.video(video_id))  # type: ignore[assignment]
    if not record:
        raise ConfigError(f"show: no video {printable(video_id)} (ids are 20 hex digits; `vidwatch query` lists them)")
    summary = summary_of(client, keys, video_id)
    objects = objects_of(client, keys, video_id)
    if args.json:
        _out(json.dumps({"video_id": video_id, "record": record, "summary": summary,
                         "objects": [o.as_json() for o in objects]}))
    else:
        _out(video_report(video_id, record, summary, objects, link=browse_link(config, video_id)))
    return 0
