"""Crop stages: analyzers run at summary time on each track's best crop; importing this registers them."""

from typing import Annotated

from pydantic import Field

from vidwatch.stages.base import Context, Crop, Stage, StageError, StageSettings, apply, build, register, registered
from vidwatch.stages.colour import DominantColourSettings
from vidwatch.stages.http_forward import HttpForwardSettings

StageConfig = Annotated[DominantColourSettings | HttpForwardSettings, Field(discriminator="type")]

__all__ = [
    "Context",
    "Crop",
    "DominantColourSettings",
    "HttpForwardSettings",
    "Stage",
    "StageConfig",
    "StageError",
    "StageSettings",
    "apply",
    "build",
    "register",
    "registered",
]
