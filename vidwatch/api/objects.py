"""``GET /objects`` (what was seen, from the objects indexes) and ``GET /videos/{id}`` (a video with its objects).

The files these answers point at (crops, the timeline image, the clip) are served by
:mod:`vidwatch.api.media`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from vidwatch.api.deps import VIDEO_ID, checked_video_id, daemon_of
from vidwatch.api.errors import ApiError, responses
from vidwatch.api.media import clip_source, clip_spans
from vidwatch.results.objects import MAX_LIMIT, ObjectEntry, ObjectQuery, find_objects, objects_of
from vidwatch.results.query import TIME_FORMS, parse_time, summary_of

router = APIRouter(tags=["objects"], responses=responses(422))


class Object(BaseModel):
    object_id: str = Field(description="<video_id>:<track>")
    entry_id: str | None = Field(None, description="the entry in the objects stream")
    video_id: str
    track: int
    camera: str
    label: str
    start_ts: float = Field(description="first seen, recording time (epoch s)")
    end_ts: float = Field(description="last seen, recording time (epoch s)")
    start_pts: float = Field(description="first seen, seconds into the video")
    end_pts: float = Field(description="last seen, seconds into the video")
    crop: str | None = Field(None, description="URL of the best crop (JPEG); null: no crop")
    score: float | None = Field(None, description="detector confidence at the best crop's frame")
    box: list[float] | None = Field(None, description="[x1, y1, x2, y2] at that frame, source pixels")
    best_pts: float | None = None
    quality: float | None = None
    segment: int = Field(0, description="the analysis segment the track started in")
    run: int = 1
    attributes: dict[str, Any] = Field(default_factory=dict, description="what crop stages added")


class ObjectList(BaseModel):
    count: int
    objects: list[Object]
    next_cursor: str | None = Field(None, description="pass as cursor= for the next page; null: last page")


class Clip(BaseModel):
    kind: str = Field(description="spool (the analysed copy: video time = clip time) or condensed")
    url: str
    spans: list[list[float]] = Field(
        default_factory=list,
        description="condensed: [clip_start, clip_end, video_start, video_end] per kept span (s)")


class VideoDetail(BaseModel):
    video_id: str
    record: dict[str, str] = Field(description="the video's record (docs/streams.md)")
    summary: dict[str, Any] | None = Field(None, description="its summary entry, JSON fields decoded; null: none yet")
    objects: list[Object]
    timeline: str | None = Field(None, description="URL of the timeline image")
    clip: Clip | None = Field(None, description="a playable clip of the video, when one is kept")


def object_model(entry: ObjectEntry) -> Object:
    data = entry.as_json()
    data["crop"] = f"/videos/{entry.video_id}/crops/{entry.track}.jpg" if entry.crop else None
    return Object(**data)


@router.get(
    "/objects",
    response_model=ObjectList,
    summary="Objects (tracks of people, cars, …) by camera, label and recording time, newest first; paged",
    responses=responses(400),
)
def list_objects(
    request: Request,
    camera: str | None = Query(None, max_length=200, description="camera name"),
    label: str | None = Query(None, max_length=200, description="e.g. person, car"),
    since: str | None = Query(None, max_length=64, description=f"objects that start at or after: {TIME_FORMS}"),
    until: str | None = Query(None, max_length=64, description="objects that start at or before (same forms)"),
    cursor: str | None = Query(None, max_length=400, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
) -> ObjectList:
    daemon = daemon_of(request)
    try:
        query = ObjectQuery(camera=camera or None, label=label or None, since=_time("since", since),
                            until=_time("until", until), cursor=cursor or None, limit=limit)
    except ValueError as exc:
        message = "cursor: expected the previous page's next_cursor" if "cursor" in str(exc) else str(exc)
        raise ApiError(400, message) from exc
    page = find_objects(daemon.client, daemon.keys, query)
    return ObjectList(count=len(page.objects), objects=[object_model(o) for o in page.objects],
                      next_cursor=page.next_cursor)


def _time(name: str, text: str | None) -> float | None:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ApiError(400, f"{name}: expected {TIME_FORMS}") from exc


@router.get(
    "/videos/{video_id}",
    response_model=VideoDetail,
    summary="A video: its record, summary, objects and the URLs of its timeline and clip",
    responses=responses(400, 404),
)
def get_video(request: Request, video_id: str = VIDEO_ID) -> VideoDetail:
    daemon = daemon_of(request)
    record: dict[str, str] = daemon.client.hgetall(daemon.keys.video(checked_video_id(video_id)))  # type: ignore[assignment]
    if not record:
        raise ApiError(404, "video_id: no such video")
    summary = summary_of(daemon.client, daemon.keys, video_id)
    objects = [object_model(o) for o in objects_of(daemon.client, daemon.keys, video_id)]
    timeline = None
    if summary is not None:
        timeline = f"/videos/{video_id}/timeline.png" if summary.get("timeline") else f"/videos/{video_id}/timeline.svg"
    clip = None
    source = clip_source(daemon.config, record, summary)
    if source is not None:
        kind, _ = source
        spans = clip_spans(daemon.config, summary) if kind == "condensed" and summary else []
        clip = Clip(kind=kind, url=f"/videos/{video_id}/clip.mp4", spans=[list(s) for s in spans])
    return VideoDetail(video_id=video_id, record=record, summary=summary, objects=objects, timeline=timeline,
                       clip=clip)
