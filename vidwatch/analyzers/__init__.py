"""Classical per-frame analyzers (edges, lines, sharpness, ground plane); importing this registers them."""

from vidwatch.analyzers.base import Analyzer, AnalyzerSettings, Context, build, register, registered, summaries
from vidwatch.analyzers.edges import EdgesSettings
from vidwatch.analyzers.ground import GroundSettings
from vidwatch.analyzers.lines import LinesSettings
from vidwatch.analyzers.sharpness import SharpnessSettings

__all__ = [
    "Analyzer",
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
