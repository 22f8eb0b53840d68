"""A video's files over HTTP: each object's best crop, the timeline image, a playable clip (with ranges).

Only files inside the daemon's own folders are served (the state folder and the spool),
whatever path a record or summary names: a path that resolves elsewhere is a 404.
The clip is the spooled copy while it is kept (``[normalize] spool_retention_seconds``; its
time is the video's), else the condensed clip (``[summary] condensed_clip``: only the active
spans, mapped back by :func:`clip_spans`). Both are MP4 that a browser plays; ``Range``
requests are answered 206 (seeking in ``<video>``), a malformed one 400, one past the end 416.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from vidwatch.api.deps import VIDEO_ID, DaemonView, checked_video_id, daemon_of
from vidwatch.api.errors import ApiError, responses
from vidwatch.config import Config
from vidwatch.media.condense import padded_spans
from vidwatch.results.objects import object_of
from vidwatch.results.query import summary_of

router = APIRouter(tags=["objects"], responses=responses(422))

_RANGE = re.compile(r"^bytes=\s*(\d*)\s*-\s*(\d*)\s*(,\s*\d*\s*-\s*\d*\s*)*$")


def inside(path: str | Path | None, *folders: Path) -> Path | None:
    """``path`` resolved, when it is a file inside one of ``folders``; else None."""
    if not path:
        return None
    resolved = Path(path).resolve()
    for folder in folders:
        if resolved.is_relative_to(folder.resolve()) and resolved.is_file():
            return resolved
    return None


def clip_source(config: Config, record: dict[str, str], summary: dict[str, Any] | None) -> tuple[str, Path] | None:
    """``("spool" | "condensed", file)`` of the video's playable clip; None when none is kept."""
    spool = inside(record.get("spool_path"), config.paths.spool)
    if spool is not None:
        return "spool", spool
    condensed = inside((summary or {}).get("condensed_clip"), config.paths.state_dir)
    return ("condensed", condensed) if condensed is not None else None


def clip_spans(config: Config, summary: dict[str, Any]) -> list[tuple[float, float, float, float]]:
    """``(clip_start, clip_end, video_start, video_end)`` of each span the condensed clip keeps.

    The spans are the activity padded as the clip was made (``docs/summaries.md``); a cut that
    copied the stream starts at the keyframe before, so a position can be early by up to one
    keyframe interval.

    >>> from vidwatch.config import Config
    >>> clip_spans(Config(), {"activity": [[2.0, 3.0], [10.0, 11.0]], "duration": 20.0})
    [(0.0, 3.0, 1.0, 4.0), (3.0, 6.0, 9.0, 12.0)]
    """
    activity = summary.get("activity") or []
    duration = float(summary.get("duration") or 0.0)
    spans = padded_spans(activity, pad_s=config.summary.condensed_pad_seconds, duration_s=duration)
    out = []
    at = 0.0
    for start, end in spans:
        out.append((round(at, 3), round(at + end - start, 3), round(start, 3), round(end, 3)))
        at += end - start
    return out


def _record(daemon: DaemonView, video_id: str) -> dict[str, str]:
    record: dict[str, str] = daemon.client.hgetall(daemon.keys.video(checked_video_id(video_id)))  # type: ignore[assignment]
    if not record:
        raise ApiError(404, "video_id: no such video")
    return record


def _file(path: Path, media_type: str, request: Request, *, cache_s: int = 3600) -> FileResponse:
    header = request.headers.get("range")
    if header is not None:
        match = _RANGE.match(header.strip())
        if match is None:
            raise ApiError(400, "Range: expected bytes=START-END")
        start = match.group(1)
        size = path.stat().st_size
        if start and int(start) >= size:
            raise ApiError(416, "Range: starts past the end of the file", {"Content-Range": f"bytes */{size}"})
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": f"max-age={cache_s}"})


@router.get(
    "/videos/{video_id}/crops/{track}.jpg",
    summary="An object's best crop (JPEG)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, **responses(400, 404)},
)
def get_crop(request: Request, track: int, video_id: str = VIDEO_ID) -> FileResponse:
    daemon = daemon_of(request)
    _record(daemon, video_id)
    entry = object_of(daemon.client, daemon.keys, video_id, track)
    path = entry.crop if entry is not None else None
    if path is None:  # a track that is no object (motion with crops on) still has its crop in the summary
        tracks = (summary_of(daemon.client, daemon.keys, video_id) or {}).get("tracks") or {}
        path = (tracks.get(str(track)) or {}).get("path") if isinstance(tracks, dict) else None
    found = inside(path, daemon.config.paths.state_dir)
    if found is None:
        raise ApiError(404, "track: the video has no crop of this track")
    return _file(found, "image/jpeg", request)


@router.get(
    "/videos/{video_id}/timeline.png",
    summary="The timeline image of activity and per-label presence (PNG, [summary] timeline)",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, **responses(400, 404)},
)
def get_timeline_png(request: Request, video_id: str = VIDEO_ID) -> FileResponse:
    daemon = daemon_of(request)
    _record(daemon, video_id)
    summary = summary_of(daemon.client, daemon.keys, video_id) or {}
    found = inside(summary.get("timeline"), daemon.config.paths.state_dir)
    if found is None:
        raise ApiError(404, "video_id: the video has no timeline image (see /videos/{video_id}/timeline.svg)")
    return _file(found, "image/png", request)


@router.get(
    "/videos/{video_id}/clip.mp4",
    summary="A playable clip (MP4; Range requests): the spooled copy while kept, else the condensed clip",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "the requested byte range"},
               **responses(400, 404, 416)},
)
def get_clip(request: Request, video_id: str = VIDEO_ID) -> FileResponse:
    daemon = daemon_of(request)
    record = _record(daemon, video_id)
    source = clip_source(daemon.config, record, summary_of(daemon.client, daemon.keys, video_id))
    if source is None:
        raise ApiError(404, "video_id: no clip is kept of this video (spool copy gone, no condensed clip)")
    kind, path = source
    response = _file(path, "video/mp4", request, cache_s=60)
    response.headers["X-Vidwatch-Clip"] = kind
    return response
