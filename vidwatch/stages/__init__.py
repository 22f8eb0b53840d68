"""Crop stages: analyzers run at summary time on each track's best crop; importing this registers them."""

from vidwatch.stages.base import Context, Crop, Stage, StageError, StageSettings, apply, build, register, registered
from vidwatch.stages.colour import DominantColourSettings
from vidwatch.stages.http_forward import HttpForwardSettings

__all__ = [
    "Context",
    "Crop",
    "DominantColourSettings",
    "HttpForwardSettings",
    "Stage",
    "StageError",
    "StageSettings",
    "apply",
    "build",
    "register",
    "registered",
]
