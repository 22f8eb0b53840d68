"""Results as a person reads them: one line per video (``vidwatch tail summaries``), a short report
(``vidwatch show VIDEO_ID``), one line per object (``vidwatch query --objects``).

Everything that came from outside (paths, camera names, labels) goes through
:func:`~vidwatch.textsafe.printable`: one line stays one line, a name cannot drive the terminal.

>>> fields = {"video_id": "3f2a", "camera": "cam1", "duration": "6.000",
...           "labels": '{"person": {"tracks": 2, "max_simultaneous": 1, "first_pts": 0.5, "last_pts": 4.0},'
...                     ' "motion": {"tracks": 0, "max_simultaneous": 1, "first_pts": 0.4, "last_pts": 4.2}}',
...           "activity": "[[0.4, 4.4]]"}
>>> summary_line(fields, start_ts=1764000000.0, link="http://127.0.0.1:8787/browse/videos/3f2a")
'2025-11-24 16:00:00Z  cam1  6.0 s  person ×2 · motion  activity 0:00.4–0:04.4 (4.0 s)  http://127.0.0.1:8787/browse/videos/3f2a'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from vidwatch.config import Config
from vidwatch.results.objects import NOT_OBJECTS, ObjectEntry
from vidwatch.textsafe import printable

MAX_SPANS_SHOWN = 3
MAX_OBJECTS_SHOWN = 12  # `vidwatch show` stays on one screen


def when(ts: float | None, *, ms: bool = False) -> str:
    """``2025-11-24 16:00:00Z`` (UTC); ``-`` for no time."""
    if ts is None:
        return "-"
    text = datetime.fromtimestamp(ts, UTC).isoformat(sep=" ", timespec="milliseconds" if ms else "seconds")
    return text.replace("+00:00", "Z")


def clock(seconds: float) -> str:
    """``m:ss.s`` (``h:mm:ss`` past an hour).

    >>> clock(4.25), clock(75.0), clock(3725.0)
    ('0:04.2', '1:15.0', '1:02:05')
    """
    if seconds >= 3600:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    minutes, rest_s = divmod(seconds, 60)
    return f"{int(minutes)}:{rest_s:04.1f}"


def browse_link(config: Config, video_id: str) -> str:
    """The video's page in the results browser, at the configured API address."""
    host = config.api.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # a wildcard: this machine
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.api.port}/browse/videos/{video_id}"


def _json(value: Any, default: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return default if value is None else value


def seen_text(labels: Mapping[str, Any]) -> str:
    """``person ×2, car ×1 · motion``: things with their track counts, then what only marks activity.

    >>> seen_text({"car": {"tracks": 1}, "person": {"tracks": 3}, "motion": {"tracks": 40}})
    'person ×3, car ×1 · motion'
    >>> seen_text({})
    'nothing'
    """
    things = sorted(((str(name), int((stats or {}).get("tracks") or 0)) for name, stats in labels.items()
                     if name not in NOT_OBJECTS), key=lambda item: (-item[1], item[0]))
    parts = [", ".join(f"{printable(name)} ×{count}" for name, count in things)] if things else []
    parts += [printable(name) for name in sorted(labels) if name in NOT_OBJECTS]
    return " · ".join(parts) or "nothing"


def activity_text(activity: Sequence[Sequence[float]]) -> str:
    """``0:02.0–0:04.2 (2.2 s)``, the first few spans and the total active time.

    >>> activity_text([[1, 2], [3, 4], [5, 6], [7, 9]])
    '0:01.0–0:02.0, 0:03.0–0:04.0, 0:05.0–0:06.0 +1 more (5.0 s)'
    >>> activity_text([])
    'none'
    """
    spans = [(float(a), float(b)) for a, b in activity]
    if not spans:
        return "none"
    shown = ", ".join(f"{clock(a)}–{clock(b)}" for a, b in spans[:MAX_SPANS_SHOWN])
    more = f" +{len(spans) - MAX_SPANS_SHOWN} more" if len(spans) > MAX_SPANS_SHOWN else ""
    return f"{shown}{more} ({sum(b - a for a, b in spans):.1f} s)"


def summary_line(fields: Mapping[str, Any], *, start_ts: float | None, link: str) -> str:
    """One line for a summaries entry: recorded when, camera, duration, what was seen, activity, link."""
    labels = _json(fields.get("labels"), {})
    activity = _json(fields.get("activity"), [])
    duration = float(fields.get("duration") or 0.0)
    return "  ".join((
        when(start_ts), printable(fields.get("camera") or "default"), f"{duration:.1f} s",
        seen_text(labels if isinstance(labels, dict) else {}),
        f"activity {activity_text(activity if isinstance(activity, list) else [])}", printable(link),
    ))


def object_line(entry: ObjectEntry) -> str:
    """One line per object: when, camera, label, how long, score, video and track, crop path."""
    score = f"{entry.score:.2f}" if entry.score is not None else "-"
    return (f"{when(entry.start_ts)}  {printable(entry.camera)}  {printable(entry.label)}  {entry.duration_s:.1f} s  "
            f"score {score}  {entry.video_id} #{entry.track} at {clock(entry.start_pts)}  "
            f"{printable(entry.crop or 'no crop')}")


def video_report(
    video_id: str,
    record: Mapping[str, str],
    summary: Mapping[str, Any] | None,
    objects: Sequence[ObjectEntry],
    *,
    link: str,
) -> str:
    """``vidwatch show``: a video on one screen."""
    start = float(record["start_ts"]) if record.get("start_ts") else None
    duration = (summary or {}).get("duration") or record.get("probe_duration_s")
    head = f"video {video_id}  {printable(record.get('camera') or 'default')}  recorded {when(start)}"
    if duration:
        head += f"  duration {float(duration):.1f} s"
    lines = [f"{head}  state {printable(record.get('state', '?'))}", f"path      {printable(record.get('path', ''))}"]
    if record.get("error"):
        lines.append(f"error     {printable(record['error'])}")
    progress = progress_text(record)
    if progress:
        lines.append(f"progress  {progress}")
    if summary is None:
        lines.append("no summary yet" if record.get("state") != "failed" else "no summary: the video failed")
        lines.append(f"browse    {printable(link)}")
        return "\n".join(lines)
    labels: dict[str, Any] = summary["labels"] if isinstance(summary.get("labels"), dict) else {}
    lines.append(f"seen      {seen_text(labels)}")
    for name, stats in sorted(labels.items()):
        if not isinstance(stats, dict) or stats.get("first_pts") is None:
            continue
        most = f", at most {stats.get('max_simultaneous')} at once" if (stats.get("max_simultaneous") or 0) > 1 else ""
        lines.append(f"          {printable(name)}: {clock(float(stats['first_pts']))}–"
                     f"{clock(float(stats.get('last_pts') or stats['first_pts']))}{most}")
    activity: list[Any] = summary["activity"] if isinstance(summary.get("activity"), list) else []
    lines.append(f"activity  {len(activity)} span(s): {activity_text(activity)}")
    lines.append(f"objects   {len(objects)}")
    for entry in objects[:MAX_OBJECTS_SHOWN]:
        score = f"score {entry.score:.2f}" if entry.score is not None else "no crop"
        lines.append(f"  #{entry.track:<8} {printable(entry.label):<10} {clock(entry.start_pts)}–{clock(entry.end_pts)}"
                     f"  {score}  {printable(entry.crop or '')}".rstrip())
    if len(objects) > MAX_OBJECTS_SHOWN:
        lines.append(f"  … {len(objects) - MAX_OBJECTS_SHOWN} more: vidwatch show --json, or the browse link")
    lines.extend(processing_lines(summary))
    for name in ("timeline", "condensed_clip"):
        if summary.get(name):
            lines.append(f"{name.replace('_', ' '):<9} {printable(summary[name])}")
    lines.append(f"browse    {printable(link)}")
    return "\n".join(lines)


def processing_lines(summary: Mapping[str, Any]) -> list[str]:
    """How the video was analysed, and where its time went (when measured)."""
    processing = summary.get("processing") if isinstance(summary.get("processing"), dict) else {}
    if not processing:
        return []
    worker = processing.get("worker")
    workers = ", ".join(worker) if isinstance(worker, list) else worker
    lines = [f"analysed  {summary.get('frames_analyzed', '?')} frames by {printable(processing.get('engine'))} "
             f"in {processing.get('wall_s', '?')} s ({processing.get('fps', '?')} fps) on "
             f"{printable(workers)}, run {summary.get('run', '1')}"]
    latency = latency_text(processing)
    if latency:
        lines.append(f"latency   {latency}")
    return lines


_LATENCY_NAMES = {"settle_s": "settle", "normalize_s": "normalize", "queue_wait_s": "queue", "analysis_s": "analysis",
                  "writing_s": "writing", "total_s": "total"}


def latency_text(processing: Mapping[str, Any]) -> str:
    """The latency breakdown on one line (the figures measured, in stage order); empty when none was.

    >>> latency_text({"wall_s": 2.0, "settle_s": 1.5, "normalize_s": 0.25, "analysis_s": 2.0, "total_s": 5.5})
    'settle 1.5 s, normalize 0.25 s, analysis 2.0 s; total 5.5 s'
    >>> latency_text({"wall_s": 2.0})
    ''
    """
    figures = {key: processing[key] for key in _LATENCY_NAMES if isinstance(processing.get(key), int | float)}
    stages = ", ".join(f"{_LATENCY_NAMES[key]} {value} s" for key, value in figures.items() if key != "total_s")
    total = f"total {figures['total_s']} s" if "total_s" in figures else ""
    return "; ".join(part for part in (stages, total) if part)


def progress_text(record: Mapping[str, str]) -> str:
    """``120/300 frames (40 %)`` from the measured counts in the record; empty when nothing measured them."""
    done, planned = record.get("frames_done"), record.get("frames_planned")
    if not done or not planned or float(planned) <= 0:
        return ""
    return f"{int(float(done))}/{int(float(planned))} frames ({min(100.0, 100 * float(done) / float(planned)):.0f} %)"
