"""One-shot: enter ended videos that predate ``retention:videos`` into it, so retention finds them.

Before ``[retention]`` existed a video that ended was not entered in ``retention:videos`` (nor
``retention:files``); a done one retention still finds through ``index:time``, a failed one it
never found (about 1.4 KB of record each, kept forever). :func:`backfill_step` walks the
``video:*`` records with ``SCAN … COUNT`` (never ``KEYS``), a bounded number of keys per call,
and adds each done or failed video missing from the two sets (``ZADD NX``, scored like the
transition script does: its ``start_ts``, else the time it ended). The SCAN cursor is kept in
``retention:backfill`` after every batch, so a restarted daemon carries on where it stopped,
and ``done`` is set there once the walk is complete: it runs once per Redis, not once per start.
In a cluster the records share the ``{prefix}`` slot, so the walk is over the one primary that holds
it (:func:`~vidwatch.results.connection.scan_step`).

The daemon's retention job takes a step before each pass until it is done (:mod:`vidwatch.daemon.retention`);
``vidwatch prune`` runs it to the end first (not with ``--dry-run``, which changes nothing).

Safe to run beside the writers: a video that ends meanwhile is entered by its own transition,
and ``NX`` keeps the score an entry already has.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis

from vidwatch.results.connection import scan_step
from vidwatch.results.keys import Keys

logger = logging.getLogger(__name__)

SCAN_COUNT = 1000
STEP_KEYS = 10_000  # keys looked at per step (the daemon's bound)
ENDED = ("done", "failed")


@dataclass(frozen=True)
class BackfillStep:
    added: int  # videos entered in this step
    done: bool  # the walk is complete (now or before)


def backfill_done(client: redis.Redis, keys: Keys) -> bool:
    return bool(client.hexists(keys.retention_backfill, "done"))


def backfill_step(client: redis.Redis, keys: Keys, *, max_keys: int | None = STEP_KEYS,
                  count: int = SCAN_COUNT) -> BackfillStep:
    """Walk on from the saved cursor over at most about ``max_keys`` keys (None: to the end)."""
    if backfill_done(client, keys):
        return BackfillStep(0, True)
    cursor = int(cast(str, client.hget(keys.retention_backfill, "cursor")) or 0)
    prefix = keys.video("")
    seen = added = 0
    while max_keys is None or seen < max_keys:
        cursor, names = scan_step(client, cursor, slot_of=prefix, match=f"{prefix}*", count=count)
        seen += count  # about the keys SCAN looked at (most of them may be no record)
        added += _enter(client, keys, [n for n in names if ":" not in n[len(prefix):]])
        if int(cursor) == 0:
            client.hset(keys.retention_backfill, mapping={"done": f"{time.time():.3f}", "cursor": "0"})
            client.hincrby(keys.retention_backfill, "added", added)
            logger.info("retention: backfill done: ended videos entered for retention (%d in the last step)", added)
            return BackfillStep(added, True)
        client.hset(keys.retention_backfill, "cursor", str(cursor))
    client.hincrby(keys.retention_backfill, "added", added)
    return BackfillStep(added, False)


def _enter(client: redis.Redis, keys: Keys, names: Sequence[str]) -> int:
    """Add the ended videos among the record keys ``names`` to the retention sets; how many were missing."""
    if not names:
        return 0
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hmget(name, ("state", "start_ts", "done_at", "failed_at"))
        pipe.zscore(keys.retention_videos, name.removeprefix(keys.video("")))
    replies = pipe.execute()
    missing: dict[str, float] = {}
    for name, (state, start_ts, done_at, failed_at), score in zip(names, replies[::2], replies[1::2], strict=True):
        if state not in ENDED or score is not None:
            continue
        at = _number(start_ts) if _number(start_ts) is not None else _number(done_at if state == "done" else failed_at)
        if at is not None:
            missing[name.removeprefix(keys.video(""))] = at
    if missing:
        pipe = client.pipeline(transaction=False)
        pipe.zadd(keys.retention_videos, missing, nx=True)
        pipe.zadd(keys.retention_files, missing, nx=True)
        pipe.execute()
    return len(missing)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
