"""How far each consumer group is behind, and how close that is to losing entries to trimming.

A stream is trimmed to about ``MAXLEN`` entries (``[redis] *_maxlen``): a group more than
that many entries behind loses the oldest ones before it reads them. ``lag_report`` gives
every group's lag as a number, and a warning once a group is past ``warn_fraction`` of its
stream's ``MAXLEN``.
"""

from __future__ import annotations

from typing import Any

import redis

from vidwatch.config import RedisConfig
from vidwatch.results.keys import Keys

WARN_FRACTION = 0.5
MAX_DETECTION_STREAMS = 1000


def group_lags(client: redis.Redis, stream: str) -> list[dict[str, Any]]:
    """One dict per group: ``group``, ``lag`` (entries not yet delivered), ``pending`` (delivered, not
    acknowledged), ``consumers``, ``exact`` (False when Redis cannot count the lag and ``lag`` is the
    stream's length, an upper bound). Empty when the stream does not exist."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return []
    out = []
    length = None
    for info in groups:
        lag = info.get("lag")
        exact = lag is not None
        if lag is None:
            length = client.xlen(stream) if length is None else length
            lag = length
        out.append(
            {
                "group": info["name"],
                "lag": int(lag),
                "pending": int(info.get("pending", 0)),
                "consumers": int(info.get("consumers", 0)),
                "exact": exact,
            }
        )
    return out


def result_streams(client: redis.Redis, keys: Keys, config: RedisConfig) -> dict[str, int]:
    """Every results stream that exists, with its MAXLEN."""
    streams = {keys.events: config.events_maxlen, keys.summaries: config.summaries_maxlen}
    for found, key in enumerate(client.scan_iter(match=keys.detections("*"), count=1000, _type="STREAM")):
        if found >= MAX_DETECTION_STREAMS:
            break
        streams[str(key)] = config.detections_maxlen
    return streams


def lag_report(
    client: redis.Redis, keys: Keys, config: RedisConfig, *, warn_fraction: float = WARN_FRACTION
) -> dict[str, Any]:
    """``{"groups": [{stream, group, lag, pending, consumers, exact, maxlen}], "warnings": [text]}``."""
    groups: list[dict[str, Any]] = []
    warnings: list[str] = []
    for stream, maxlen in result_streams(client, keys, config).items():
        short = keys.short(stream)
        for row in group_lags(client, stream):
            groups.append({"stream": short, **row, "maxlen": maxlen})
            if row["lag"] + row["pending"] > warn_fraction * maxlen:
                warnings.append(
                    f"group {row['group']} on {short} is {row['lag'] + row['pending']} entries behind; "
                    f"the stream is trimmed at about {maxlen}: it will lose entries unless it catches up"
                )
    return {"groups": groups, "warnings": warnings}
