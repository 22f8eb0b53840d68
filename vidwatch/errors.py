"""One exception tree for vidwatch.

Every error a user can see derives from :class:`VidwatchError`. Families say where it
happened; :class:`Retryable` marks errors that a later attempt may not hit (a broker
or Redis blip), so callers retry those and fail fast on the rest.
"""


class VidwatchError(Exception):
    """Base of every vidwatch error."""


class Retryable:
    """Mixin: the operation may succeed if tried again later."""


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


class ResultsError(VidwatchError, Retryable):
    """Results could not be written to Redis."""


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is marked transient."""
    return isinstance(exc, Retryable)
