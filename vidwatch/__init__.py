"""vidwatch: recorded video in, indexed analysis results out."""

__version__ = "0.1.0"

__all__ = ["__version__"]
