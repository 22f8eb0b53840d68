"""HTTP errors as ``{"error": "..."}`` JSON bodies."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vidwatch.errors import ApiError

__all__ = ["ApiError", "ErrorBody", "api_error_handler", "responses"]


class ErrorBody(BaseModel):
    error: str


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):  # registered for ApiError only
        raise exc
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


def responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` for error codes answered with :class:`ErrorBody`."""
    text = {
        400: "Bad request", 401: "Missing or wrong bearer token", 403: "Write endpoints disabled",
        404: "Not found", 503: "Redis unreachable",
    }
    return {code: {"model": ErrorBody, "description": text.get(code, "Error")} for code in codes}
