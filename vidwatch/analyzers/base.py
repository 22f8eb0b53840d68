"""The analyzer interface and registry: optional classical per-frame stages beside the engine.

An analyzer is one module holding its settings model (``type: Literal[...]``, configured
as a ``[[analyzers]]`` table), its class, and an explicit :func:`register` call. It sees
every decoded frame (``observe``, before the motion gate), may annotate each frame's
detections in source pixels (``annotate``), and reports one JSON-able ``summary()`` per
video, which lands in the summary entry's ``analyzers`` field.

Registering a plugin (``register("edges", EdgesSettings)``) also registers its settings
model in :data:`vidwatch.registry.ANALYZER_SETTINGS`, through which the configuration
validates ``[[analyzers]]`` tables without importing this package itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from vidwatch.registry import ANALYZER_SETTINGS, PluginSettings, Registry

if TYPE_CHECKING:
    from vidwatch.detection import Detection


class AnalyzerSettings(PluginSettings):
    """Base of every analyzer's settings: unknown keys are refused, values frozen."""


@dataclass(frozen=True)
class Context:
    """What an analyzer knows of the video it is built for."""

    camera: str
    fps: float


class Analyzer(Protocol):
    name: str

    def observe(self, frame: np.ndarray, pts_s: float) -> None:
        """Measure one decoded BGR frame (every frame, in order)."""

    def annotate(self, detections: list[Detection]) -> list[Detection]:
        """The frame's detections (source pixels), possibly with more facts attached."""

    def summary(self) -> dict[str, object]:
        """What this analyzer found over the whole video."""


Factory = Callable[[Any, Context], Analyzer]  # takes its own settings model
_REGISTRY: Registry[Factory] = Registry("analyzer", settings=ANALYZER_SETTINGS)
register = _REGISTRY.register  # register("name", Settings)(factory): a duplicate is an error


def registered() -> list[str]:
    return _REGISTRY.names()


def build(settings: Sequence[PluginSettings], context: Context) -> list[Analyzer]:
    """One fresh analyzer per configured ``[[analyzers]]`` table, in order."""
    return [_REGISTRY[s.type](s, context) for s in settings]


def grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame


def intervals(flags: list[tuple[float, bool]], frame_s: float, min_duration_s: float) -> list[list[float]]:
    """``[start, end)`` spans of consecutive flagged frames lasting at least ``min_duration_s``.

    >>> intervals([(0.0, True), (0.5, True), (1.0, False), (1.5, True)], 0.5, 1.0)
    [[0.0, 1.0]]
    """
    spans: list[list[float]] = []
    start: float | None = None
    last = 0.0
    for pts, flagged in flags:
        if flagged and start is None:
            start = pts
        elif not flagged and start is not None:
            spans.append([start, pts])
            start = None
        last = pts
    if start is not None:
        spans.append([start, last + frame_s])
    return [[round(s, 3), round(e, 3)] for s, e in spans if e - s >= min_duration_s - 1e-9]


def summaries(analyzers: list[Analyzer]) -> dict[str, object]:
    """Each analyzer's summary under its name (``name.2``, ``name.3`` for repeats)."""
    out: dict[str, object] = {}
    for analyzer in analyzers:
        key, n = analyzer.name, 1
        while key in out:
            n += 1
            key = f"{analyzer.name}.{n}"
        out[key] = analyzer.summary()
    return out
