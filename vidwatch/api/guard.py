"""What every request passes before the app reads a byte of its body: Host, token, size.

:class:`RequestGuard` is the outermost part of the API (an ASGI middleware), and decides
from the request line and headers alone, in this order:

1. **Host** — the ``Host`` header must name the listen address's host, ``localhost``,
   ``127.0.0.1``, ``::1`` or one of ``[api] allowed_hosts`` (``*``: any), else 400. A page
   on another site that rebinds its DNS name to this machine sends its own name as Host,
   so it cannot read the API through a browser.
2. **Token** — ``GET``/``HEAD``/``OPTIONS`` need ``[api] read_token`` (as a bearer token, or
   as the password of HTTP Basic so a browser can open the status page and ``/docs``)
   when one is configured, except :data:`OPEN_PATHS`; the write token reads too. Every
   other method needs the bearer ``[api] token``: 401 without it, 403 when none is
   configured. A refused request's body is never read.
3. **Size** — a ``Content-Length`` over ``[api] max_body_bytes`` is 413 at once; a body
   without one (chunked) is counted as it streams, and the request is answered 413 as soon
   as it passes the limit: nothing past the limit is read, nothing is parsed.

It also answers an exception no handler took as 500 ``{"error": "internal error"}``
(logged here, with its traceback, through the daemon's logging).
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidwatch.api.errors import error_response
from vidwatch.config import ApiConfig

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapers: no token, no paths or summaries
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
NO_TOKEN = "write endpoints are disabled: no [api] token is configured"
WRONG_TOKEN = "missing or wrong bearer token"


class _BodyTooLarge(Exception):
    """Raised into the app by the counting ``receive``: the body passed ``[api] max_body_bytes``."""


Refusal = tuple[int, str, dict[str, str]]


def host_name(header: str) -> str:
    """The name in a ``Host`` header, lower case, without port, brackets or a final dot.

    >>> [host_name(h) for h in ("LocalHost:8787", "[::1]:8787", "nvr.example.com.", "10.0.0.5", "[::1")]
    ['localhost', '::1', 'nvr.example.com', '10.0.0.5', '']
    """
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else ""
    name, sep, port = value.rpartition(":")
    if sep and ":" not in name and (port.isdigit() or not port):
        value = name
    return value.rstrip(".")


def allowed_hosts(api: ApiConfig) -> frozenset[str] | None:
    """The Host names answered; None: any (``*`` in ``[api] allowed_hosts``)."""
    if "*" in api.allowed_hosts:
        return None
    return frozenset({host_name(api.host), *LOCAL_HOSTS, *api.allowed_hosts})


def _credentials(authorization: str) -> tuple[bytes, bytes]:
    """(bearer token, Basic password) from an ``Authorization`` header; empty where absent."""
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value.encode("latin-1"), b""
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.encode("latin-1"), validate=True)
        except (binascii.Error, ValueError):
            return b"", b""
        return b"", decoded.partition(b":")[2]
    return b"", b""


def _matches(given: bytes, token: bytes | None) -> bool:
    return bool(given) and token is not None and secrets.compare_digest(given, token)


def write_refusal(api: ApiConfig, authorization: str) -> Refusal | None:
    """Why a write (POST, DELETE, …) with this ``Authorization`` header is refused; None: allowed."""
    if api.token is None:
        return 403, NO_TOKEN, {}
    bearer, _ = _credentials(authorization)
    if not _matches(bearer, api.token.get_secret_value().encode()):
        return 401, WRONG_TOKEN, {"WWW-Authenticate": "Bearer"}
    return None


def read_refusal(api: ApiConfig, path: str, authorization: str) -> Refusal | None:
    """Why a read of ``path`` with this ``Authorization`` header is refused; None: allowed."""
    if api.read_token is None or path in OPEN_PATHS:
        return None
    bearer, password = _credentials(authorization)
    tokens = [t.get_secret_value().encode() for t in (api.read_token, api.token) if t is not None]
    if any(_matches(given, token) for given in (bearer, password) for token in tokens):
        return None
    return 401, f"{WRONG_TOKEN} (reads need [api] read_token)", {
        "WWW-Authenticate": 'Bearer, Basic realm="vidwatch", charset="UTF-8"'
    }


class RequestGuard:
    """The ASGI middleware described in the module's docstring."""

    def __init__(self, app: ASGIApp, api: ApiConfig) -> None:
        self.app = app
        self.api = api
        self.hosts = allowed_hosts(api)
        self.max_body_bytes = api.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message, extra = refusal
            if headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers:
                extra = {**extra, "Connection": "close"}  # its body is left unread: the connection cannot be reused
            await error_response(status, message, extra)(scope, receive, send)
            return
        await self._limited(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> Refusal | None:
        if self.hosts is not None and host_name(headers.get("host", "")) not in self.hosts:
            return 400, "Host header not allowed: add the name clients use to [api] allowed_hosts", {}
        authorization = headers.get("authorization", "")
        if scope["method"] in READ_METHODS:
            refusal = read_refusal(self.api, scope["path"], authorization)
        else:
            refusal = write_refusal(self.api, authorization)
        if refusal is not None:
            return refusal
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                return 400, "Content-Length: expected a number of bytes", {}
            if int(length) > self.max_body_bytes:
                return 413, self._too_large, {}
        return None

    @property
    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes ([api] max_body_bytes)"

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a ``receive`` that stops at the limit, and answer 413 once it did."""
        received = 0
        exceeded = started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app made of the interrupted body, the answer is 413
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _send(error_response(413, self._too_large, {"Connection": "close"}), scope, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if started:
                raise
            if exceeded:
                await _send(error_response(413, self._too_large, {"Connection": "close"}), scope, send)
                return
            logger.exception("api: %s %s: internal error", scope["method"], scope["path"])
            await _send(error_response(500, "internal error"), scope, send)
            return
        if exceeded and not started:
            await _send(error_response(413, self._too_large, {"Connection": "close"}), scope, send)


async def _send(response: Callable[[Scope, Receive, Send], Awaitable[None]], scope: Scope, send: Send) -> None:
    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)
