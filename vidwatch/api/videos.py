"""``GET /videos`` (from the index sorted sets), a video's summary, thumbnail and timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from vidwatch.api.deps import VIDEO_ID, DaemonView, checked_video_id, daemon_of
from vidwatch.api.errors import ApiError, responses
from vidwatch.results.query import MAX_LIMIT, TIME_FORMS, VideoQuery, find_videos, parse_time, summary_of
from vidwatch.results.timeline import timeline_svg

router = APIRouter(tags=["videos"], responses=responses(422))



class Video(BaseModel):
    video_id: str
    camera: str
    path: str
    state: str
    start_ts: float | None = Field(None, description="recording start, epoch seconds")
    duration_s: float | None = None
    summary_id: str | None = None
    error: str | None = None
    updated_at: float | None = None


class VideoList(BaseModel):
    count: int
    videos: list[Video]


@router.get(
    "/videos",
    response_model=VideoList,
    summary="Videos by camera, label and recording time, newest first (from the indexes)",
    responses=responses(400),
)
def list_videos(
    request: Request,
    camera: str | None = Query(None, max_length=200, description="camera name"),
    label: str | None = Query(None, max_length=200, description="a detected label, e.g. person"),
    since: str | None = Query(None, max_length=64, description=TIME_FORMS),
    until: str | None = Query(None, max_length=64, description=TIME_FORMS),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
) -> VideoList:
    daemon = daemon_of(request)
    try:
        query = VideoQuery(camera=camera or None, label=label or None, since=_time("since", since),
                           until=_time("until", until), limit=limit)
    except ValueError as exc:  # from the parsed numbers only: since after until
        raise ApiError(400, str(exc)) from exc
    rows = find_videos(daemon.client, daemon.keys, query)
    return VideoList(count=len(rows), videos=[Video(**row) for row in rows])


def _time(name: str, text: str | None) -> float | None:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ApiError(400, f"{name}: expected {TIME_FORMS}") from exc


@router.get("/videos/{video_id}/summary", summary="The video's summary entry", responses=responses(400, 404))
def get_summary(request: Request, video_id: str = VIDEO_ID) -> dict[str, Any]:
    return _summary(daemon_of(request), video_id)


@router.get(
    "/videos/{video_id}/thumbnail",
    summary="The busiest analysed frame with its boxes (JPEG)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, **responses(400, 404)},
)
def get_thumbnail(request: Request, video_id: str = VIDEO_ID) -> FileResponse:
    daemon = daemon_of(request)
    folder = (daemon.config.paths.state_dir / "thumbnails").resolve()
    candidates = [folder / f"{checked_video_id(video_id)}.jpg"]
    summary = summary_of(daemon.client, daemon.keys, video_id) or {}
    for name in summary.get("thumbnails") or []:
        candidates.append(Path(str(name)))
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.parent == folder and resolved.is_file():  # never a file outside the thumbnails
            return FileResponse(resolved, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
    raise ApiError(404, "video_id: the video has no thumbnail")


@router.get(
    "/videos/{video_id}/timeline.svg",
    summary="Activity and per-label spans over the video's duration (SVG)",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **responses(400, 404)},
)
def get_timeline(request: Request, video_id: str = VIDEO_ID) -> Response:
    summary = _summary(daemon_of(request), video_id)
    return Response(timeline_svg(summary), media_type="image/svg+xml")


def _summary(daemon: DaemonView, video_id: str) -> dict[str, Any]:
    record_state = cast(str | None, daemon.client.hget(daemon.keys.video(checked_video_id(video_id)), "state"))
    if record_state is None:
        raise ApiError(404, "video_id: no such video")
    summary = summary_of(daemon.client, daemon.keys, video_id)
    if summary is None:
        raise ApiError(404, f"video_id: the video has no summary yet (state {record_state})")
    return summary
