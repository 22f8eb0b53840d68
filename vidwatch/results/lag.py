"""How far each consumer group is behind, and how close that is to losing entries to trimming.

A stream is trimmed to about ``MAXLEN`` entries (``[redis] *_maxlen``): a group more than
that many entries behind loses the oldest ones before it reads them. ``lag_report`` gives
every group's lag as a number, and a warning once a group is past ``warn_fraction`` of its
stream's ``MAXLEN``.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from vidwatch.config import RedisConfig, RetentionConfig
from vidwatch.results.keys import Keys
from vidwatch.results.trim import entry_id_tuple

WARN_FRACTION = 0.5
MAX_DETECTION_STREAMS = 1000
RETENTION_AHEAD_S = 3600.0  # warn this long (plus a retention period) before entries are removed
RETENTION_PEEK = 100  # old index members looked at per stream: a warning needs one


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
        last = info.get("last-delivered-id")
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
                "last_delivered_id": str(last) if last is not None else "0-0",
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
    client: redis.Redis, keys: Keys, config: RedisConfig, *, warn_fraction: float = WARN_FRACTION,
    retention: RetentionConfig | None = None, now: float | None = None,
) -> dict[str, Any]:
    """``{"groups": [{stream, group, lag, pending, consumers, exact, maxlen}], "warnings": [text]}``.

    With ``retention``, also a warning for each group that has not read (or not acknowledged) entries
    retention removes within the next hour and a pass (:func:`retention_risk`).
    """
    groups: list[dict[str, Any]] = []
    warnings: list[str] = []
    for stream, maxlen in result_streams(client, keys, config).items():
        short = stream.removeprefix(f"{keys.prefix}:")
        for row in group_lags(client, stream):
            last = row.pop("last_delivered_id")
            groups.append({"stream": short, **row, "maxlen": maxlen})
            if row["lag"] + row["pending"] > warn_fraction * maxlen:
                warnings.append(
                    f"group {row['group']} on {short} is {row['lag'] + row['pending']} entries behind; "
                    f"the stream is trimmed at about {maxlen}: it will lose entries unless it catches up"
                )
            if retention is not None:
                risk = retention_risk(client, keys, retention, short, str(row["group"]), last,
                                      time.time() if now is None else now)
                if risk:
                    warnings.append(f"group {row['group']} on {short}: {risk}")
    return {"groups": groups, "warnings": warnings}


def retention_risk(
    client: redis.Redis, keys: Keys, retention: RetentionConfig, short: str, group: str, last_delivered: str,
    now: float,
) -> str | None:
    """Why ``group`` would lose entries of stream ``short`` to retention soon; None when it would not.

    Looks at what the next passes remove (recorded before ``now + ahead - horizon``): entries written
    before that (``XTRIM MINID``) and, through the time indexes, the detections spans and summaries
    recorded before it; a group loses one when it is past its last delivered id (or still pending).
    Bounded: one ``XRANGE … COUNT 1``, one ``XPENDING`` and at most :data:`RETENTION_PEEK` index members.
    """
    kind = "detections" if short.startswith("detections:") else "summaries"
    horizon = retention.horizon_s(kind)
    if horizon is None:
        return None
    cut = now + RETENTION_AHEAD_S + retention.every_seconds - horizon
    cut_id = f"{int(cut * 1000)}-0"
    stream = keys.stream(short)
    behind = entry_id_tuple(last_delivered)
    unread = entry_id_tuple(last_delivered) < entry_id_tuple(cut_id) and bool(client.xrange(
        stream, min=f"({last_delivered}", max=f"({cut_id}", count=1))
    if not unread:
        unread = any(entry_id_tuple(i) > behind for i in _recorded_before(client, keys, short, cut))
    pending = client.xpending(stream, group)
    oldest = pending.get("min") if pending and pending.get("pending") else None
    late = oldest is not None and entry_id_tuple(str(oldest)) < entry_id_tuple(cut_id)
    if not (unread or late):
        return None
    what = "has not read" if unread else "has not acknowledged"
    return (f"{what} entries that retention ({kind}_days = {horizon / 86400:g}) removes within the hour: "
            "it will lose them unless it catches up")


def _recorded_before(client: redis.Redis, keys: Keys, short: str, cut: float) -> list[str]:
    """Entry ids of the oldest recordings due for removal (at most :data:`RETENTION_PEEK`)."""
    if short.startswith("detections:"):
        index = keys.index_detections(short.removeprefix("detections:"))
        members = client.zrangebyscore(index, "-inf", f"({cut!r}", start=0, num=RETENTION_PEEK)
        return [str(m).split("|")[1] for m in members if str(m).count("|") == 5]
    if short != "summaries":
        return []
    ids = client.zrangebyscore(keys.retention_videos, "-inf", f"({cut!r}", start=0, num=RETENTION_PEEK)
    pipe = client.pipeline(transaction=False)
    for video_id in ids:
        pipe.hget(keys.video(str(video_id)), "summary_id")
    return [str(s) for s in pipe.execute() if s]
