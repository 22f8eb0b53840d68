"""One exception tree for vidwatch.

Every error vidwatch raises on purpose derives from :class:`VidwatchError`. Families say
where it happened; :class:`Retryable` marks errors that a later attempt may not hit (a
broker or Redis blip, a file still being written), so callers retry those and fail fast
on the rest. Decide with :func:`is_retryable`, never by catching a dependency's classes:
a dependency's exceptions are translated where vidwatch calls it
(:func:`vidwatch.results.connection.redis_errors`, :func:`vidwatch.broker.broker_errors`)
and chained with ``from exc``.

::

    VidwatchError
    ├── ConfigError                      invalid configuration (key, value, why)
    ├── SourceError (kind)               a source file is unusable
    │   └── NotReadyError  [Retryable]   still being written: probe again later
    ├── NormalizeError (kind)            ffmpeg could not normalize into the spool
    │   └── MediaTimeout                 an ffmpeg/ffprobe run passed its deadline
    ├── PublishError  [Retryable]        the broker did not confirm a message
    ├── EngineError                      an engine failed to load or to run
    │   └── EngineUnavailable            its runtime is missing on this host
    ├── ResultsError                     Redis refused a read or write (permanent)
    │   └── ResultsUnavailable [Retryable]  Redis unreachable, loading, read-only, timed out
    ├── Poison                           a task message delivered too often: fail its video
    ├── Cancelled                        a running task was cancelled: its message comes again
    ├── ShuttingDown                     the daemon is stopping: resume at the next start
    ├── RootStuck (also OSError)         a filesystem call on a root did not return in time
    └── ApiError (status)                an HTTP answer ``{"error": message}``

``Retryable`` is a mixin, not a family: ``isinstance(exc, Retryable)`` asks "try again?",
the family asks "where?".

>>> is_retryable(ResultsUnavailable("redis: connection refused"))
True
>>> is_retryable(SourceError("probe: a.mp4: not a video", kind="not_video"))
False
>>> isinstance(RootStuck("/nvr: stat did not return"), OSError)
True
"""

from __future__ import annotations


class VidwatchError(Exception):
    """Base of every vidwatch error."""


class Retryable:
    """Mixin: the operation may succeed if tried again later."""


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is marked transient (or was raised from one that is)."""
    return isinstance(exc, Retryable)


class ConfigError(VidwatchError):
    """The configuration is invalid: the message names the key, the value and why."""


class SourceError(VidwatchError):
    """A source file cannot be read or is not a usable video; ``kind`` says why in one word."""

    kind = "unreadable"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class NotReadyError(SourceError, Retryable):
    """The file may still be being written: probe again later."""

    kind = "incomplete"


class NormalizeError(VidwatchError):
    """ffmpeg could not normalize a source into the spool."""

    kind = "normalize_failed"


class MediaTimeout(NormalizeError):
    """An ffmpeg/ffprobe run exceeded its wall-clock or stall deadline."""

    kind = "timed_out"


class PublishError(VidwatchError, Retryable):
    """A task message could not be confirmed by the broker."""


class EngineError(VidwatchError):
    """An engine failed to load or to run."""


class EngineUnavailable(EngineError):
    """The engine's runtime is missing on this host (e.g. TensorRT without a GPU)."""


class ResultsError(VidwatchError):
    """Redis refused a read or write for a reason another attempt will not change (a script error, a wrong type)."""


class ResultsUnavailable(ResultsError, Retryable):
    """Redis could not be reached, is loading its data, is a read-only replica, or timed out."""


class Poison(VidwatchError):
    """A task message delivered more often than ``max_deliveries``: its video fails instead of looping."""


class Cancelled(VidwatchError):
    """The task was cancelled (its broker connection was lost): its message will be delivered again."""


class ShuttingDown(VidwatchError):
    """The daemon is stopping: the waiting normalization is resumed at the next start."""


class RootStuck(VidwatchError, OSError):
    """A filesystem call on this root did not return within its deadline.

    Also an :class:`OSError`, so code that treats an unreadable root as an OS error keeps doing so.
    """


class ApiError(VidwatchError):
    """Answer HTTP ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


# Failure labels: every failed video records where it failed (``stage``) and why (``kind``),
# each from a small fixed set, so metrics count them without reading the error's text.
STAGES = ("probe", "normalize", "analyze", "summary", "ingest", "publish", "submit")
FAILURE_KINDS = (
    "not_a_video", "empty_file", "truncated", "timeout", "source_gone", "source_changed", "missing",
    "unreachable", "permission", "unreadable", "internal", "engine", "refused", "too_large", "other",
)
# SourceError/NormalizeError ``kind`` → failure kind
_KIND_OF_SOURCE_KIND = {
    "not_video": "not_a_video", "no_video_stream": "not_a_video", "unsupported_codec": "not_a_video",
    "empty": "empty_file", "truncated": "truncated", "corrupt": "truncated", "timed_out": "timeout",
    "refused_reference": "refused", "too_large": "too_large", "too_long": "too_large",
    "unreadable": "unreadable", "incomplete": "truncated", "normalize_failed": "other", "missing": "missing",
    "gone": "source_gone", "changed": "source_changed",
}


def failure_kind(exc: BaseException) -> str:
    """The failure kind (one of :data:`FAILURE_KINDS`) an exception stands for.

    >>> failure_kind(SourceError("probe: a.mp4: empty file (0 bytes)", kind="empty"))
    'empty_file'
    >>> failure_kind(ResultsUnavailable("redis: connection refused"))
    'unreachable'
    >>> failure_kind(KeyError("x"))
    'internal'
    """
    if isinstance(exc, SourceError | NormalizeError):
        return _KIND_OF_SOURCE_KIND.get(exc.kind, "other")
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ResultsUnavailable | PublishError):
        return "unreachable"
    if isinstance(exc, EngineError):
        return "engine"
    if isinstance(exc, PermissionError):
        return "permission"
    if isinstance(exc, FileNotFoundError):
        return "source_gone"
    if isinstance(exc, VidwatchError):
        return "other"
    return "internal"
