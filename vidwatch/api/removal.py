"""``DELETE /videos/{video_id}`` (write token): remove one video's results and files now."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from vidwatch.api.deps import VIDEO_ID, checked_video_id, daemon_of
from vidwatch.api.errors import ApiError, ErrorBody, responses
from vidwatch.api.jobs import require_token
from vidwatch.results.retention import NoSuchVideo, Retention, VideoInFlight

router = APIRouter(tags=["videos"], responses=responses(422))


class Removed(BaseModel):
    video_id: str
    removed: dict[str, int] = Field(
        description="what went, per kind: videos (records), summaries (entries), index_members, detections "
        "(entries), detection_spans (index members), files, file_bytes, bridge_keys"
    )


@router.delete(
    "/videos/{video_id}",
    response_model=Removed,
    summary="Remove a done or failed video's record, summary, index members, detections and files",
    description="The lifecycle events stay until retention trims them by time; the source file is never touched "
    "(and is not analysed again by a rescan: its path hint stays). A video still in flight is refused (409).",
    dependencies=[Depends(require_token)],
    responses={**responses(400, 401, 403, 404),
               409: {"model": ErrorBody, "description": "The video is still in flight (not done or failed)"}},
)
def delete_video(request: Request, video_id: str = VIDEO_ID) -> Removed:
    daemon = daemon_of(request)
    retention = Retention(daemon.client, daemon.keys, daemon.config)
    try:
        counts = retention.delete_video(checked_video_id(video_id))
    except VideoInFlight as exc:
        raise ApiError(409, f"video_id: {exc}") from exc
    except NoSuchVideo as exc:
        raise ApiError(404, "video_id: no such video") from exc
    return Removed(video_id=video_id, removed={kind: int(n) for kind, n in sorted(counts.items())})
