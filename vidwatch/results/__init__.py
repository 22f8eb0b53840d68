"""Redis streams, indexes, idempotent writer, consumer helpers."""

from vidwatch.results.connection import connect
from vidwatch.results.consumer import StreamConsumer, ensure_group
from vidwatch.results.keys import Keys
from vidwatch.results.lag import group_lags, lag_report
from vidwatch.results.tail import follow
from vidwatch.results.version import SCHEMA_VERSION, analysis_version

__all__ = [
    "SCHEMA_VERSION",
    "Keys",
    "StreamConsumer",
    "analysis_version",
    "connect",
    "ensure_group",
    "follow",
    "group_lags",
    "lag_report",
]
