"""Redis streams, indexes, idempotent writer, consumer helpers."""

from vidwatch.results.keys import Keys
from vidwatch.results.tail import follow

__all__ = ["Keys", "follow"]
