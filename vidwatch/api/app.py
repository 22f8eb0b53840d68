"""The daemon's HTTP API: health and readiness (more endpoints build on this app)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from vidwatch import __version__

LOOP_STALE_S = 10.0


class DaemonView(Protocol):
    """What the API needs of the daemon."""

    def status(self) -> dict[str, Any]: ...


Check = Callable[[], tuple[bool, Any]]


def create_app(daemon: DaemonView, checks: dict[str, Check]) -> FastAPI:
    """``checks``: name → callable returning (ok, detail), run by /readyz."""
    app = FastAPI(
        title="vidwatch",
        version=__version__,
        description="Watches folders for recorded video, analyses it, and indexes the results in Redis.",
    )

    @app.get("/healthz", summary="The daemon process is alive: main loop ticking, observers running")
    def healthz() -> JSONResponse:
        status = daemon.status()
        reasons = []
        if status["loop_age_s"] > LOOP_STALE_S:
            reasons.append(f"main loop stalled for {status['loop_age_s']:.0f} s")
        dead = [root for root, alive in status["observers"].items() if not alive]
        if dead:
            reasons.append(f"observers dead: {', '.join(dead)}")
        body = {"status": "ok" if not reasons else "fail", "reasons": reasons, "pid": os.getpid()}
        return JSONResponse(body, status_code=200 if not reasons else 503)

    @app.get("/readyz", summary="Broker, Redis, roots and workers: per-check JSON")
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
        body = {"status": "ready" if ready else "not ready", "checks": results, "daemon": daemon.status()}
        return JSONResponse(body, status_code=200 if ready else 503)

    return app
