"""HTTP errors as ``{"error": "..."}`` JSON bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from vidwatch.errors import ApiError
from vidwatch.textsafe import printable

MAX_MESSAGE_CHARS = 300
MAX_VALIDATION_ERRORS = 3

__all__ = ["ApiError", "ErrorBody", "api_error_handler", "responses"]


class ErrorBody(BaseModel):
    error: str


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):  # registered for ApiError only
        raise exc
    return error_response(exc.status, exc.message, exc.headers)


def responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` for error codes answered with :class:`ErrorBody`."""
    text = {
        400: "Bad request", 401: "Missing or wrong bearer token", 403: "Write endpoints disabled",
        404: "Not found", 413: "Request body too large", 422: "A parameter or the body does not fit the schema",
        503: "Redis unreachable",
    }
    return {code: {"model": ErrorBody, "description": text.get(code, "Error")} for code in codes}


class ErrorJSON(JSONResponse):
    """``{"error": ...}`` as ASCII JSON: any character (a lone surrogate too) is an escape, never a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> ErrorJSON:
    """The one error form: ``{"error": message}``, the message on one line and at most a few hundred characters."""
    text = printable(message)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return ErrorJSON({"error": text}, status_code=status, headers=dict(headers) if headers else None)


async def http_error_handler(_request: Request, exc: Exception) -> ErrorJSON:
    """Starlette's and FastAPI's own errors (404, 405, a body that cannot be parsed) in the error form."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    message = detail.lower() if detail == phrase else detail
    return error_response(exc.status_code, message, exc.headers)


async def validation_error_handler(_request: Request, exc: Exception) -> ErrorJSON:
    """A request that does not fit its schema: 422 naming each field and why, never the value given."""
    if not isinstance(exc, RequestValidationError):  # registered for RequestValidationError only
        raise exc
    errors = list(exc.errors())
    parts = [_validation_message(error) for error in errors[:MAX_VALIDATION_ERRORS]]
    if len(errors) > MAX_VALIDATION_ERRORS:
        parts.append(f"{len(errors) - MAX_VALIDATION_ERRORS} more")
    return error_response(422, "; ".join(parts) or "invalid request")


def _validation_message(error: Mapping[str, Any]) -> str:
    """``body.path: String should have at most 4096 characters``: the place (schema names only) and pydantic's why.

    >>> _validation_message({"type": "extra_forbidden", "loc": ("body", "x<script>"), "msg": "Extra inputs..."})
    'body: unexpected field'
    >>> _validation_message({"type": "json_invalid", "loc": ("body", 7), "msg": "JSON decode error"})
    'body: not valid JSON'
    >>> _validation_message({"type": "missing", "loc": ("body", "path"), "msg": "Field required"})
    'body.path: Field required'
    """
    loc = [str(part) for part in error.get("loc", ())]
    kind = error.get("type", "")
    if kind == "extra_forbidden":  # the last part is a name the client made up: not repeated
        return f"{'.'.join(loc[:-1]) or 'body'}: unexpected field"
    if kind == "json_invalid":
        return f"{loc[0] if loc else 'body'}: not valid JSON"
    return f"{'.'.join(loc) or 'request'}: {error.get('msg', 'invalid')}"
