"""``POST /jobs`` (bearer token) and ``GET /jobs/{video_id}``."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from vidwatch.api.bodies import StrictJsonRoute
from vidwatch.api.deps import VIDEO_ID, checked_video_id, daemon_of
from vidwatch.api.errors import ApiError, responses
from vidwatch.api.guard import write_refusal
from vidwatch.errors import SourceError
from vidwatch.ops.snapshot import progress

router = APIRouter(tags=["jobs"], route_class=StrictJsonRoute, responses=responses(422))
bearer = HTTPBearer(auto_error=False, description="The token configured as [api] token")
STAMPS = ("seen_at", "normalizing_at", "queued_at", "processing_at", "done_at", "failed_at", "updated_at")


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1, max_length=4096, description="Absolute path of a video file inside a watched root",
        examples=["/mnt/nvr/cam1/2026-11-24/12-00-00.mp4"],
    )


class JobAccepted(BaseModel):
    video_id: str = Field(description="Stable id of this file version")
    path: str
    status_url: str


class Job(BaseModel):
    video_id: str
    state: str = Field(description="seen, normalizing, queued, processing, done or failed")
    progress: float = Field(description="0..1: how far along the pipeline its state is")
    path: str
    camera: str
    error: str | None = None
    published: bool | None = Field(None, description="the broker confirmed the task message")
    timestamps: dict[str, float] = Field(description="epoch seconds each state was reached")
    summary_url: str | None = None


def require_token(request: Request, _credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
    """The guard's rule again (it already refused the request before its body was read): documents the scheme."""
    refusal = write_refusal(daemon_of(request).config.api, request.headers.get("authorization", ""))
    if refusal is not None:
        raise ApiError(*refusal)


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobAccepted,
    summary="Process a file now (the same path as a dropped file)",
    dependencies=[Depends(require_token)],
    responses=responses(400, 401, 403),
)
def submit_job(body: JobRequest, request: Request) -> JobAccepted:
    daemon = daemon_of(request)
    path = body.path
    if "\0" in path or not os.path.isabs(path):
        raise ApiError(400, "path: expected an absolute path without NUL characters")
    try:
        video_id = daemon.submit(path)
    except SourceError as exc:
        raise ApiError(400, f"path: {_reason(str(exc), path)}") from exc
    except (OSError, ValueError) as exc:  # an unusable name: too long, not encodable
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ApiError(400, f"path: not a usable file name ({why})") from exc
    return JobAccepted(video_id=video_id, path=path, status_url=f"/jobs/{video_id}")


def _reason(message: str, path: str) -> str:
    """``submit: /given/path: not a file`` → ``not a file``: an error says why, it does not repeat the input.

    >>> _reason("submit: /x/a.mp4: not inside a watched root (/nas)", "/x/a.mp4")
    'not inside a watched root (/nas)'
    >>> _reason("probe: /x/a.mp4 is odd", "/x/a.mp4")
    'probe: <path> is odd'
    """
    for prefix in (f"submit: {path}: ", f"{path}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message.replace(path, "<path>") if len(path) > 1 else message


@router.get("/jobs/{video_id}", response_model=Job, summary="Where a video stands", responses=responses(400, 404))
def get_job(request: Request, video_id: str = VIDEO_ID) -> Job:
    daemon = daemon_of(request)
    record: dict[str, Any] = daemon.client.hgetall(daemon.keys.video(checked_video_id(video_id)))  # type: ignore[assignment]
    if not record:
        raise ApiError(404, "video_id: no such video")
    return job_of(video_id, record)


def job_of(video_id: str, record: dict[str, str]) -> Job:
    state = record.get("state", "")
    stamps = {}
    for key in STAMPS:
        try:
            stamps[key.removesuffix("_at")] = float(record[key])
        except (KeyError, ValueError):
            continue
    published = record.get("published")
    return Job(
        video_id=video_id,
        state=state,
        progress=progress(state),
        path=record.get("path", ""),
        camera=record.get("camera", ""),
        error=record.get("error") or None,
        published=None if published is None else published == "1",
        timestamps=stamps,
        summary_url=f"/videos/{video_id}/summary" if state == "done" else None,
    )
