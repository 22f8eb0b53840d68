"""What the endpoints need of the daemon, and how they get it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

import redis
from fastapi import Path as PathParam
from fastapi import Request

from vidwatch.api.errors import ApiError
from vidwatch.config import Config
from vidwatch.results.keys import Keys
from vidwatch.status import DaemonStatus

VIDEO_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_VIDEO_ID = re.compile(VIDEO_ID_PATTERN)
VIDEO_ID = PathParam(pattern=VIDEO_ID_PATTERN, description="a video id, as POST /jobs and GET /videos give it")


class DaemonView(Protocol):
    """The parts of :class:`vidwatch.daemon.Daemon` the API uses."""

    config: Config
    client: redis.Redis
    keys: Keys

    def status(self) -> DaemonStatus:
        """What the daemon reports about itself."""

    def submit(self, path: str | Path) -> str: ...


def daemon_of(request: Request) -> DaemonView:
    daemon: DaemonView = request.app.state.daemon
    return daemon


def checked_video_id(video_id: str) -> str:
    if not _VIDEO_ID.match(video_id):
        raise ApiError(400, "video_id: expected 1 to 64 letters, digits, '.', '_' or '-'")
    return video_id
