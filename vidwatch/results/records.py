"""Video records (``<prefix>:video:<id>``) and their states, changed atomically with their events.

States only move forward: seen → normalizing → queued → processing → done | failed.
A late or repeated transition (a daemon marking ``queued`` after a fast worker already
marked ``processing``, a redelivered task after ``done``) changes nothing.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from vidwatch.results.events import event_fields
from vidwatch.results.keys import Keys

STATES = ("seen", "normalizing", "queued", "processing", "done", "failed")
TERMINAL = ("done", "failed")

# KEYS: video hash, inflight set, events stream
# ARGV: new_state, video_id, events_maxlen, n, field/value pairs (n items), event field/value pairs
_TRANSITION = """
local rank = {seen=0, normalizing=1, queued=2, processing=3, done=4, failed=4}
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
if state == 'done' or state == 'failed' then return 0 end
if rank[ARGV[1]] < rank[state] then return 0 end
local n = tonumber(ARGV[4])
local fields = {'state', ARGV[1]}
for i = 5, 4 + n do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[1] == 'done' or ARGV[1] == 'failed' then redis.call('SREM', KEYS[2], ARGV[2]) end
if #ARGV > 4 + n then
  local event = {}
  for i = 5 + n, #ARGV do event[#event + 1] = ARGV[i] end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(event))
end
return 1
"""

# KEYS: video hash, inflight set, events stream; ARGV: video_id, events_maxlen, n, fields..., event...
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[3])
local fields = {}
for i = 4, 3 + n do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[2], ARGV[1])
if #ARGV > 3 + n then
  local event = {}
  for i = 4 + n, #ARGV do event[#event + 1] = ARGV[i] end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(event))
end
return 1
"""


# KEYS: video hash, inflight set, events stream; ARGV: video_id, events_maxlen, now, event field/value pairs...
# A finished video starts a new run: back to ``seen`` with ``run`` + 1. Its summary_id (and so what readers
# see) stays until the new run's summary replaces it in one step.
_RERUN = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
if state ~= 'done' and state ~= 'failed' then return 0 end
local run = tonumber(redis.call('HGET', KEYS[1], 'run') or '1') + 1
redis.call('HSET', KEYS[1], 'state', 'seen', 'run', run, 'owner', '', 'published', '', 'error', '',
           'seen_at', ARGV[3], 'updated_at', ARGV[3], 'rerun_of', state)
redis.call('SADD', KEYS[2], ARGV[1])
local event = {}
for i = 4, #ARGV do event[#event + 1] = ARGV[i] end
event[#event + 1] = 'run'
event[#event + 1] = tostring(run)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(event))
return run
"""


def _flat(mapping: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in mapping.items():
        out.extend((key, "" if value is None else str(value)))
    return out


class Records:
    """Reads and guarded writes of video records."""

    def __init__(self, client: redis.Redis, keys: Keys, *, events_maxlen: int) -> None:
        self.client = client
        self.keys = keys
        self.events_maxlen = events_maxlen
        self._transition = client.register_script(_TRANSITION)
        self._create = client.register_script(_CREATE)
        self._rerun = client.register_script(_RERUN)

    def get(self, video_id: str) -> dict[str, str]:
        return self.client.hgetall(self.keys.video(video_id))  # type: ignore[return-value]

    def create(self, video_id: str, fields: dict[str, Any], *, path: str, detail: Any = "") -> bool:
        """Claim: create the record in state ``seen`` unless one exists (atomic; one claimant wins)."""
        now = f"{time.time():.3f}"
        record = {**fields, "video_id": video_id, "state": "seen", "seen_at": now, "updated_at": now}
        flat = _flat(record)
        event = _flat(event_fields("detected", video_id, path, detail))
        args = [video_id, self.events_maxlen, len(flat), *flat, *event]
        keys = [self.keys.video(video_id), self.keys.inflight, self.keys.events]
        return bool(self._create(keys=keys, args=args))

    def transition(
        self,
        video_id: str,
        state: str,
        fields: dict[str, Any] | None = None,
        *,
        event: str | None = None,
        path: str = "",
        detail: Any = "",
    ) -> bool:
        """Move forward to ``state`` with ``fields`` and an optional event; False when not allowed."""
        if state not in STATES:
            raise ValueError(f"state: expected one of {STATES}, got {state!r}")
        flat = _flat({**(fields or {}), f"{state}_at": f"{time.time():.3f}", "updated_at": f"{time.time():.3f}"})
        event_flat = _flat(event_fields(event, video_id, path, detail)) if event else []
        args = [state, video_id, self.events_maxlen, len(flat), *flat, *event_flat]
        keys = [self.keys.video(video_id), self.keys.inflight, self.keys.events]
        return self._transition(keys=keys, args=args) == 1

    def fail(self, video_id: str, reason: str, *, path: str) -> bool:
        """End the video as ``failed`` with ``reason`` and a ``failed`` event (once)."""
        return self.transition(video_id, "failed", {"error": reason}, event="failed", path=path, detail=reason)

    def rerun(self, video_id: str, *, path: str) -> int | None:
        """Start a new run of a ``done``/``failed`` video (``submit --force``); returns the run number.

        None when the video has no record; 0 when it is still in flight (nothing changes).
        """
        event = _flat(event_fields("detected", video_id, path, {"forced": True}))
        keys = [self.keys.video(video_id), self.keys.inflight, self.keys.events]
        result = int(self._rerun(keys=keys, args=[video_id, self.events_maxlen, f"{time.time():.3f}", *event]))
        return None if result < 0 else result

    def mark_published(self, video_id: str) -> None:
        """The broker confirmed the video's task message."""
        self.client.hset(self.keys.video(video_id), mapping={"published": "1", "published_at": f"{time.time():.3f}"})

    def inflight(self) -> set[str]:
        return self.client.smembers(self.keys.inflight)  # type: ignore[return-value]
