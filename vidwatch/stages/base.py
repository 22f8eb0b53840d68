"""The crop-stage interface and registry: analyzers run on each track's saved best crop.

A stage is one module holding its settings model (``type: Literal[...]``, configured as a
``[[stages]]`` table), its class, and an explicit :func:`register` call. At summary time
each configured stage sees each track's crop (:class:`Crop`: the JPEG's path, the
track's metadata and the video's :class:`Context`) and returns a JSON-able dict, stored in that track's entry under the
stage's name (``name.2``, ``name.3`` for repeats). A stage that fails for one crop raises
:class:`StageError`; :func:`apply` records ``{"error": ...}`` in its place and goes on, so
a stage never breaks a summary.

>>> class Size:
...     name = "size"
...     def load(self): pass
...     def run(self, crop): return {"w": crop.box[2] - crop.box[0]}
...     def close(self): pass
>>> tracks = {3: {"path": "t3.jpg", "label": "car", "pts": 1.0, "score": 9.0, "box": [0, 0, 40, 20]}}
>>> apply([Size()], tracks, Context(camera="cam1", video_id="v1"))[3]["size"]
{'w': 40.0}

Registering a plugin (``register("dominant_colour", DominantColourSettings)``) also
registers its settings model in :data:`vidwatch.registry.STAGE_SETTINGS`, through which the
configuration validates ``[[stages]]`` tables without importing this package itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vidwatch.errors import VidwatchError
from vidwatch.registry import STAGE_SETTINGS, PluginSettings, Registry

logger = logging.getLogger(__name__)


class StageError(VidwatchError):
    """A crop stage could not produce its fields for one crop."""


class StageSettings(PluginSettings):
    """Base of every stage's settings: unknown keys are refused, values frozen."""


@dataclass(frozen=True)
class Context:
    """What a stage knows of the video its crops come from."""

    camera: str
    video_id: str


@dataclass(frozen=True)
class Crop:
    """One track's best crop, as :meth:`vidwatch.results.crops.BestCrops.write` reported it."""

    track: int
    path: Path
    label: str
    pts: float
    score: float
    box: tuple[float, float, float, float]
    context: Context

    def metadata(self) -> dict[str, object]:
        """The crop's facts as JSON-able values (what a remote service is told)."""
        return {
            "video_id": self.context.video_id,
            "camera": self.context.camera,
            "track": self.track,
            "label": self.label,
            "pts": self.pts,
            "score": self.score,
            "box": list(self.box),
        }


class Stage(Protocol):
    name: str

    def load(self) -> None:
        """Acquire what the stage needs (models, connections) once, before the first crop."""

    def run(self, crop: Crop) -> dict[str, object]:
        """This crop's fields; raise :class:`StageError` when there are none to give."""

    def close(self) -> None: ...


Factory = Callable[[Any], Stage]  # takes its own settings model
_REGISTRY: Registry[Factory] = Registry("stage", settings=STAGE_SETTINGS)
register = _REGISTRY.register  # register("name", Settings)(factory): a duplicate is an error


def registered() -> list[str]:
    return _REGISTRY.names()


def build(settings: Sequence[PluginSettings]) -> list[Stage]:
    """One stage per configured ``[[stages]]`` table, in order (not loaded yet).

    Stages hold no per-video state (each crop carries its video's :class:`Context`):
    build them once per worker process and :func:`apply` them to every video, so that
    per-stage limits (``http_forward``'s request rate) hold across videos.
    """
    return [_REGISTRY[s.type](s) for s in settings]


def _keys(stages: list[Stage]) -> list[str]:
    keys: list[str] = []
    for stage in stages:
        key, n = stage.name, 1
        while key in keys:
            n += 1
            key = f"{stage.name}.{n}"
        keys.append(key)
    return keys


def apply(
    stages: list[Stage], tracks: Mapping[int, Mapping[str, object]], context: Context
) -> dict[int, dict[str, object]]:
    """Run every stage on every track's crop; each stage's fields go under its name.

    ``tracks`` is what ``BestCrops.write`` returned (merged over segments by ``tasks.join.best_crops``). The stages are
    loaded first and closed afterwards; a stage whose ``load`` fails records its error
    for every track.
    """
    keys = _keys(stages)
    out = {int(track): dict(entry) for track, entry in tracks.items()}
    for key, stage in zip(keys, stages, strict=True):
        try:
            stage.load()
        except StageError as exc:
            logger.warning("stage %s: cannot load: %s", key, exc)
            for entry in out.values():
                entry[key] = {"error": str(exc)}
            continue
        try:
            for track, entry in out.items():
                crop = Crop(
                    track=track,
                    path=Path(str(entry["path"])),
                    label=str(entry["label"]),
                    pts=float(entry["pts"]),  # type: ignore[arg-type]
                    score=float(entry["score"]),  # type: ignore[arg-type]
                    box=tuple(float(v) for v in entry["box"]),  # type: ignore[arg-type, attr-defined]
                    context=context,
                )
                try:
                    entry[key] = stage.run(crop)
                except StageError as exc:
                    logger.warning("stage %s: %s track %s: %s", key, context.video_id, track, exc)
                    entry[key] = {"error": str(exc)}
        finally:
            stage.close()
    return out
