"""Forward each crop and its metadata to a site's HTTP service (OCR, recognition); keep its answer.

Each crop is POSTed to ``url`` — as ``multipart/form-data`` (a ``metadata`` JSON part and
the JPEG as a file part named ``file_field``) or as one JSON object (``metadata`` plus the
JPEG in base64) — and the JSON object the service answers becomes the track's
``http_forward`` fields. A non-object answer is kept as ``{"answer": value}``.

- **Timeout**: ``timeout_s`` bounds connecting and each read of one attempt.
- **Retries**: connection errors, timeouts, 429 and 5xx answers are retried up to
  ``retries`` times, waiting ``backoff_s × 2^n`` (at most ``max_backoff_s``, or the
  answer's ``Retry-After`` within that limit). Other 4xx answers are not retried.
- **Rate**: a token bucket (``rate_per_s``, ``burst``) is shared by every request of the
  stage, retries included, so a busy site service is never flooded.
- **Errors** never fail the summary: after the last attempt the fields are
  ``{"error": "...", "attempts": n}``.

Environment proxy variables are ignored: the service is on the site's network.

>>> now = [0.0]  # a clock that sleeping advances
>>> bucket = TokenBucket(rate_per_s=2, burst=1, clock=lambda: now[0], sleep=lambda s: now.append(now.pop() + s))
>>> [bucket.acquire() for _ in range(3)], bucket.waits
([0.0, 0.5, 0.5], 2)
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from vidwatch.stages.base import Crop, StageError, StageSettings, register

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class HttpForwardSettings(StageSettings):
    type: Literal["http_forward"] = Field("http_forward", description="POST each crop to an HTTP service.")
    url: AnyHttpUrl = Field(description="http:// or https:// URL the crops are POSTed to.")
    encoding: Literal["multipart", "json"] = Field(
        "multipart", description="multipart/form-data (metadata part + JPEG file part), or JSON with base64."
    )
    file_field: str = Field(
        "image", pattern=r"^[A-Za-z0-9_.-]+$", description="multipart: name of the part holding the JPEG."
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers (e.g. Authorization); never logged."
    )
    timeout_s: float = Field(10.0, gt=0, le=600, description="Limit on connecting and on each read of one attempt.")
    retries: int = Field(3, ge=0, le=10, description="Further attempts after a timeout, connection error, 429 or 5xx.")
    backoff_s: float = Field(0.5, ge=0, le=60, description="Wait before the first retry; doubled for each next one.")
    max_backoff_s: float = Field(30.0, ge=0, le=600, description="Longest wait between attempts.")
    rate_per_s: float = Field(5.0, gt=0, le=10_000, description="Sustained requests per second (token bucket).")
    burst: int = Field(5, ge=1, le=10_000, description="Requests that may go at once before the rate applies.")
    max_answer_bytes: int = Field(1_048_576, ge=2, description="Longest answer read; a longer one is an error.")

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if not name or any(c in name for c in " :\r\n") or any(c in secret.get_secret_value() for c in "\r\n"):
                raise ValueError(f"expected header names without spaces or colons and single-line values, got {name!r}")
        return value


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_s``; :meth:`acquire` waits for one and says how long.

    ``clock`` and ``sleep`` are injectable; with ``sleep=None`` the clock's own ``sleep``
    method is used (a test clock that advances instead of waiting). ``waits`` counts the acquisitions
    that had to wait. Thread-safe.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = time.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"expected rate_per_s > 0 and burst >= 1, got {rate_per_s}, {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.sleep = sleep if sleep is not None else clock.sleep  # type: ignore[attr-defined]
        self.waits = 0
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:
            now = self.clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate_per_s)
            self._stamp = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s
            if wait > 0:
                self.waits += 1
                self.sleep(wait)
        return wait


def _where(url: str) -> str:
    """The URL's host and path, without user info or query (which may carry secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}{parts.path}" if parts.port else f"{host}{parts.path}"


class _Attempt(Exception):
    """One failed attempt: why, whether another may succeed, and the server's Retry-After."""

    def __init__(self, reason: str, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class HttpForward:
    name = "http_forward"

    def __init__(
        self,
        settings: HttpForwardSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = time.sleep,
    ) -> None:
        self.settings = settings
        self.url = str(settings.url)
        self.where = _where(self.url)
        self.bucket = TokenBucket(settings.rate_per_s, settings.burst, clock=clock, sleep=sleep)
        self.sleep = self.bucket.sleep
        self.requests = 0  # attempts made, for metrics and tests
        self._opener: urllib.request.OpenerDirector | None = None

    def load(self) -> None:
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def close(self) -> None:
        self._opener = None

    def run(self, crop: Crop) -> dict[str, object]:
        try:
            jpeg = crop.path.read_bytes()
        except OSError as exc:
            raise StageError(f"http_forward: {crop.path}: cannot read: {exc.strerror}") from exc
        body, content_type = self._body(crop, jpeg)
        attempts, reason = 0, ""
        for attempt in range(self.settings.retries + 1):
            attempts = attempt + 1
            self.bucket.acquire()
            try:
                return self._answer(self._post(body, content_type))
            except _Attempt as failed:
                reason = str(failed)
                if not failed.retryable or attempt == self.settings.retries:
                    break
                wait = min(self.settings.max_backoff_s, self.settings.backoff_s * 2**attempt)
                if failed.retry_after_s is not None:
                    wait = min(self.settings.max_backoff_s, max(wait, failed.retry_after_s))
                logger.info("http_forward: %s track %s: %s; retry in %.1f s", self.where, crop.track, reason, wait)
                self.sleep(wait)
        logger.warning("http_forward: %s track %s: giving up after %d attempts: %s",
                       self.where, crop.track, attempts, reason)
        return {"error": f"{self.where}: {reason}", "attempts": attempts}

    def _body(self, crop: Crop, jpeg: bytes) -> tuple[bytes, str]:
        metadata = crop.metadata()
        filename = crop.path.name
        if self.settings.encoding == "json":
            doc = {"metadata": metadata, "filename": filename, "content_type": "image/jpeg",
                   "image_base64": base64.b64encode(jpeg).decode("ascii")}
            return json.dumps(doc).encode(), "application/json"
        boundary = f"vidwatch-{uuid.uuid4().hex}"
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n"
            f"Content-Type: application/json\r\n\r\n{json.dumps(metadata)}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{self.settings.file_field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode()
        return head + jpeg + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"

    def _post(self, body: bytes, content_type: str) -> bytes:
        if self._opener is None:
            raise StageError("http_forward: run before load")
        headers = {name: secret.get_secret_value() for name, secret in self.settings.headers.items()}
        headers.update({"Content-Type": content_type, "Accept": "application/json"})
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        self.requests += 1
        try:
            with self._opener.open(request, timeout=self.settings.timeout_s) as response:
                answer = response.read(self.settings.max_answer_bytes + 1)
        except urllib.error.HTTPError as exc:
            retry_after = _seconds(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            raise _Attempt(f"HTTP {exc.code} {exc.reason}", exc.code in RETRY_STATUSES, retry_after) from exc
        except urllib.error.URLError as exc:
            raise _Attempt(f"cannot connect: {exc.reason}", retryable=True) from exc
        except TimeoutError as exc:
            raise _Attempt(f"timed out after {self.settings.timeout_s:g} s", retryable=True) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise _Attempt(f"connection failed: {exc!r}", retryable=True) from exc
        if len(answer) > self.settings.max_answer_bytes:
            raise _Attempt(f"answer longer than {self.settings.max_answer_bytes} bytes", retryable=False)
        return answer

    @staticmethod
    def _answer(raw: bytes) -> dict[str, object]:
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _Attempt(f"answer is not JSON: {raw[:80]!r}", retryable=False) from exc
        return value if isinstance(value, dict) else {"answer": value}


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


register("http_forward", HttpForwardSettings)(HttpForward)
