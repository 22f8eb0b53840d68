"""Classical per-frame analyzers (edges, lines, sharpness, ground plane); importing this registers them."""

from typing import Annotated

from pydantic import Field

from vidwatch.analyzers.base import Analyzer, AnalyzerSettings, Context, build, register, registered, summaries
from vidwatch.analyzers.edges import EdgesSettings
from vidwatch.analyzers.ground import GroundSettings
from vidwatch.analyzers.lines import LinesSettings
from vidwatch.analyzers.sharpness import SharpnessSettings

AnalyzerConfig = Annotated[
    EdgesSettings | LinesSettings | SharpnessSettings | GroundSettings, Field(discriminator="type")
]

__all__ = [
    "Analyzer",
    "AnalyzerConfig",
    "AnalyzerSettings",
    "Context",
    "EdgesSettings",
    "GroundSettings",
    "LinesSettings",
    "SharpnessSettings",
    "build",
    "register",
    "registered",
    "summaries",
]
