"""Request bodies read as strict JSON: UTF-8 that is valid Unicode, or a 400 in the error form.

``json.loads`` accepts ``"\\ud800"`` (an escaped lone surrogate) and makes a ``str`` that
cannot be encoded again: a path like that failed deep inside, or in the error message
that quoted it. Routes of :class:`StrictJsonRoute` refuse such a body at the door:

>>> strict_json(b'{"path": "/nvr/a.mp4"}')
{'path': '/nvr/a.mp4'}
>>> strict_json(b'{"path": "\\\\ud800"}')
Traceback (most recent call last):
...
starlette.exceptions.HTTPException: 400: body: a string holds a lone surrogate (\\ud800-\\udfff): not valid Unicode
>>> strict_json(b'{"path": "caf\\xe9"}')
Traceback (most recent call last):
...
starlette.exceptions.HTTPException: 400: body: not valid UTF-8
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

NOT_UTF8 = "body: not valid UTF-8"
SURROGATE = "body: a string holds a lone surrogate (\\ud800-\\udfff): not valid Unicode"


def strict_json(body: bytes) -> Any:
    """Parse ``body``; HTTPException 400 for bytes that are not UTF-8 or strings that are not Unicode.

    Malformed JSON raises :class:`json.JSONDecodeError`, which FastAPI answers 422 as before.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, NOT_UTF8) from exc
    value = json.loads(text)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # every key and string, in one pass
    except UnicodeEncodeError as exc:
        raise HTTPException(400, SURROGATE) from exc
    return value


class StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is parsed by :func:`strict_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictRequest(request.scope, request.receive))

        return strict_handler
