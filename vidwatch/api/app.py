"""The daemon's HTTP API: health, readiness, metrics, jobs, videos and the status page."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from vidwatch import __version__
from vidwatch.api import browser, jobs, media, metrics, objects, page, removal, videos
from vidwatch.api.deps import DaemonView
from vidwatch.api.errors import (
    ApiError,
    api_error_handler,
    error_response,
    http_error_handler,
    validation_error_handler,
)
from vidwatch.api.guard import RequestGuard
from vidwatch.api.metrics import Metrics
from vidwatch.errors import ResultsUnavailable
from vidwatch.ops.queues import QueueProbe
from vidwatch.results.connection import TRANSIENT_REDIS_ERRORS

logger = logging.getLogger(__name__)

LOOP_STALE_S = 10.0

Check = Callable[[], tuple[bool, Any]]


async def _redis_down(_request: Request, exc: Exception) -> JSONResponse:
    logger.warning("api: Redis unreachable: %s", exc)
    return error_response(503, f"Redis unreachable: {type(exc).__name__}")


def create_app(daemon: DaemonView, checks: dict[str, Check], *, metrics_registry: Metrics | None = None) -> FastAPI:
    """``checks``: name → callable returning (ok, detail), run by /readyz.

    Every request passes :class:`~vidwatch.api.guard.RequestGuard` first (Host, token, body size);
    every error, the framework's own included, is ``{"error": "..."}`` (:mod:`vidwatch.api.errors`).
    """
    app = FastAPIOffline(  # /docs with Swagger UI's files from the package, not a CDN
        redoc_url=None,
        title="vidwatch",
        version=__version__,
        description="Watches folders for recorded video, analyses it, and indexes the results in Redis.",
    )
    app.state.daemon = daemon
    app.state.queues = QueueProbe(daemon.config.broker.url.get_secret_value())
    app.state.metrics = metrics_registry or Metrics(daemon.client, daemon.keys, daemon.status, app.state.queues)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(HTTPException, http_error_handler)  # 404, 405, a body FastAPI cannot parse
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_middleware(RequestGuard, api=daemon.config.api)  # Host, token and size, before any body is read
    for unavailable in (*TRANSIENT_REDIS_ERRORS, ResultsUnavailable):
        app.add_exception_handler(unavailable, _redis_down)

    @app.get("/healthz", tags=["operations"],
             summary="The daemon process is alive: main loop ticking, observers running, no claim stuck")
    def healthz() -> JSONResponse:
        status = daemon.status()
        reasons = []
        if status.loop_age_s > LOOP_STALE_S:
            reasons.append(f"main loop stalled for {status.loop_age_s:.0f} s")
        dead = [root for root, alive in status.observers.items() if not alive]
        if dead:
            reasons.append(f"observers dead: {', '.join(dead)}")
        reasons.extend(f"stuck: {part}: {why}" for part, why in status.stuck.items())
        body = {"status": "ok" if not reasons else "fail", "reasons": reasons, "pid": os.getpid()}
        return JSONResponse(body, status_code=200 if not reasons else 503)

    @app.get("/readyz", tags=["operations"],
             summary="Broker, Redis, roots, workers per queue, spool space: per-check JSON")
    def readyz() -> JSONResponse:
        results: dict[str, Any] = {}
        ready = True
        for name, check in checks.items():
            started = time.monotonic()
            try:
                ok, detail = check()
            except Exception as exc:  # noqa: BLE001 - a failing check is reported, not raised
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            results[name] = {"ok": ok, "detail": detail, "ms": round((time.monotonic() - started) * 1000, 1)}
            ready = ready and ok
        body = {"status": "ready" if ready else "not ready", "checks": results, "daemon": daemon.status().to_dict()}
        return JSONResponse(body, status_code=200 if ready else 503)

    for module in (metrics, jobs, videos, removal, objects, media, page, browser):
        app.include_router(module.router)
    return app
