"""Video records (``<prefix>:video:<id>``) and their states, changed atomically with their events.

States only move forward: seen → normalizing → queued → processing → done | failed.
A late or repeated transition (a daemon marking ``queued`` after a fast worker already
marked ``processing``, a redelivered task after ``done``) changes nothing.

:class:`State` is the one definition of the states and their order (the Lua scripts get
their ranks from it); :class:`VideoRecord` is a record as Python sees it, read with
:meth:`Records.record`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis

from vidwatch.errors import FAILURE_KINDS, STAGES
from vidwatch.results.bridge import Bridge
from vidwatch.results.events import event_fields
from vidwatch.results.keys import Keys


class State(StrEnum):
    """A video's state; members compare and format as their value (``State.DONE == "done"``).

    >>> [s.value for s in State]
    ['seen', 'normalizing', 'queued', 'processing', 'done', 'failed']
    >>> State.QUEUED.rank < State.PROCESSING.rank, State.FAILED.terminal, State.in_flight()[-1]
    (True, True, <State.PROCESSING: 'processing'>)
    """

    SEEN = "seen"
    NORMALIZING = "normalizing"
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        """Position in the forward order; ``done`` and ``failed`` share the last rank."""
        return min(list(State).index(self), 4)

    @property
    def terminal(self) -> bool:
        return self in (State.DONE, State.FAILED)

    @property
    def resumable(self) -> bool:
        """A daemon that restarts normalizes a video in this state again."""
        return self in (State.SEEN, State.NORMALIZING)

    @classmethod
    def in_flight(cls) -> tuple[State, ...]:
        """The states before the end, in order."""
        return tuple(s for s in cls if not s.terminal)


_LUA_RANKS = "{" + ", ".join(f"{s.value}={s.rank}" for s in State) + "}"


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


# fields read into VideoRecord attributes of the same name (probe_*, *_at and the rest are grouped)
_TEXT = ("path", "root", "camera", "fingerprint", "spool_path", "owner", "worker", "error", "failure_stage",
         "failure_kind", "summary_id", "rerun_of")
_NUMBERS = {"size": _int, "mtime_ns": _int, "start_ts": _float, "summary_run": _int, "updated_at": _float}
_FLAGS = ("summary_trimmed",)


def _published(value: str | None) -> bool | None:
    return None if value in (None, "") else value == "1"


@dataclass(frozen=True)
class VideoRecord:
    """One ``video:<id>`` hash, typed. Build with :meth:`from_redis`; write with :meth:`to_redis`.

    ``timestamps``: epoch seconds by event (``seen``, ``queued``, ``published``, ...: the
    ``<name>_at`` fields); ``probe``: the ``probe_*`` facts as stored (text); ``extra``: any
    field this type has no attribute for (kept so a round trip loses nothing).

    >>> r = VideoRecord.from_redis("abc", {"state": "failed", "path": "/nvr/a.mp4", "run": "2",
    ...                                    "error": "probe: /nvr/a.mp4: empty file", "failure_stage": "probe",
    ...                                    "failure_kind": "empty_file", "failed_at": "12.5", "probe_codec": "h264"})
    >>> r.state, r.run, r.failure_kind, r.timestamps["failed"], r.probe["codec"]
    (<State.FAILED: 'failed'>, 2, 'empty_file', 12.5, 'h264')
    >>> VideoRecord.from_redis("abc", r.to_redis()) == r
    True
    >>> VideoRecord.from_redis("abc", {}) is None
    True

    ``published`` tells "never handed to the broker" (no field) from "not confirmed yet" ("0"):

    >>> [VideoRecord.from_redis("abc", {"state": "queued", **f}).published for f in ({}, {"published": "0"})]
    [None, False]
    >>> VideoRecord.from_redis("abc", {"state": "queued", "published": "0"}).unconfirmed
    True
    """

    video_id: str
    state: State
    path: str = ""
    root: str = ""
    camera: str = ""
    fingerprint: str = ""
    size: int | None = None
    mtime_ns: int | None = None
    start_ts: float | None = None  # recording start, epoch s
    spool_path: str = ""
    # the broker confirmed the task message: True ("1"); marked queued, not confirmed yet: False ("0");
    # never handed to the broker (or a new run started): None (no field)
    published: bool | None = None
    owner: str = ""  # daemon id
    worker: str = ""
    segments: tuple[tuple[float, float], ...] | None = None  # the analysis cut, once chosen
    error: str = ""
    failure_stage: str = ""  # one of vidwatch.errors.STAGES (failed videos)
    failure_kind: str = ""  # one of vidwatch.errors.FAILURE_KINDS (failed videos)
    summary_id: str = ""
    summary_run: int | None = None
    summary_trimmed: bool = False
    labels: tuple[str, ...] = ()
    run: int = 1
    rerun_of: str = ""
    updated_at: float | None = None
    timestamps: Mapping[str, float] = field(default_factory=dict)
    probe: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def unconfirmed(self) -> bool:
        """Marked ``queued`` but the broker never confirmed its message: publish it again."""
        return self.state is State.QUEUED and self.published is False

    @property
    def duration_s(self) -> float | None:
        """The source's duration from the probe, when known."""
        return _float(self.probe.get("duration_s"))

    @classmethod
    def from_redis(cls, video_id: str, fields: Mapping[str, str]) -> VideoRecord | None:
        """The record of a ``HGETALL``; None for a hash without a state (no such video: none at all, or
        a stray field written after it was deleted)."""
        if not fields.get("state"):
            return None
        values: dict[str, Any] = {name: fields[name] for name in _TEXT if name in fields}
        values.update({name: parse(fields.get(name)) for name, parse in _NUMBERS.items()})
        values.update({name: fields.get(name) == "1" for name in _FLAGS})
        values["published"] = _published(fields.get("published"))
        timestamps: dict[str, float] = {}
        probe: dict[str, str] = {}
        extra: dict[str, str] = {}
        known = {*_TEXT, *_NUMBERS, *_FLAGS, "published", "video_id", "state", "run", "labels", "segments"}
        for key, value in fields.items():
            if key in known:
                continue
            if key.startswith("probe_"):
                probe[key.removeprefix("probe_")] = value
            elif key.endswith("_at") and _is_number(value):
                timestamps[key.removesuffix("_at")] = float(value)
            else:
                extra[key] = value
        segments = json.loads(fields["segments"]) if fields.get("segments") else None
        return cls(
            video_id=video_id,
            state=State(fields["state"]),
            run=_int(fields.get("run")) or 1,
            labels=tuple(label for label in (fields.get("labels") or "").split(",") if label),
            segments=None if segments is None else tuple((float(a), float(b)) for a, b in segments),
            timestamps=timestamps,
            probe=probe,
            extra=extra,
            **values,
        )

    def to_redis(self) -> dict[str, str]:
        """The hash fields of this record (empty and default values left out)."""
        out: dict[str, str] = {"video_id": self.video_id, "state": self.state.value}
        out.update({name: getattr(self, name) for name in _TEXT if getattr(self, name)})
        for name in _NUMBERS:
            value = getattr(self, name)
            if value is not None:
                out[name] = f"{value:.3f}" if isinstance(value, float) else str(value)
        out.update({name: "1" for name in _FLAGS if getattr(self, name)})
        if self.published is not None:
            out["published"] = "1" if self.published else "0"
        if self.run != 1:
            out["run"] = str(self.run)
        if self.labels:
            out["labels"] = ",".join(self.labels)
        if self.segments is not None:
            out["segments"] = json.dumps([list(s) for s in self.segments])
        out.update({f"{name}_at": f"{ts:.3f}" for name, ts in self.timestamps.items()})
        out.update({f"probe_{name}": value for name, value in self.probe.items()})
        out.update(self.extra)
        return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# KEYS: video hash, inflight set, events stream, retention videos zset, retention files zset
# ARGV: new_state, video_id, events_maxlen, n, field/value pairs (n items), event field/value pairs
# An end (done/failed) enters the video in the retention indexes by its recording start (else the end's time).
_TRANSITION = """
local rank = RANKS
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
if state == 'done' or state == 'failed' then return 0 end
if rank[ARGV[1]] < rank[state] then return 0 end
local n = tonumber(ARGV[4])
local fields = {'state', ARGV[1]}
for i = 5, 4 + n do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[1] == 'done' or ARGV[1] == 'failed' then
  redis.call('SREM', KEYS[2], ARGV[2])
  local at = redis.call('HGET', KEYS[1], 'start_ts') or redis.call('HGET', KEYS[1], ARGV[1] .. '_at')
  if at and tonumber(at) then
    redis.call('ZADD', KEYS[4], at, ARGV[2])
    redis.call('ZADD', KEYS[5], at, ARGV[2])
  end
end
if #ARGV > 4 + n then
  local event = {}
  for i = 5 + n, #ARGV do event[#event + 1] = ARGV[i] end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', unpack(event))
end
return 1
""".replace("RANKS", _LUA_RANKS)

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
# see) stays until the new run's summary replaces it in one step. Its latency clock starts again (first_seen_at).
_RERUN = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
if state ~= 'done' and state ~= 'failed' then return 0 end
local run = tonumber(redis.call('HGET', KEYS[1], 'run') or '1') + 1
redis.call('HSET', KEYS[1], 'state', 'seen', 'run', run, 'owner', '', 'published', '', 'error', '',
           'failure_stage', '', 'failure_kind', '',
           'seen_at', ARGV[3], 'first_seen_at', ARGV[3], 'updated_at', ARGV[3], 'rerun_of', state)
redis.call('SADD', KEYS[2], ARGV[1])
local event = {}
for i = 4, #ARGV do event[#event + 1] = ARGV[i] end
event[#event + 1] = 'run'
event[#event + 1] = tostring(run)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(event))
return run
"""


def _flat(mapping: Mapping[str, Any]) -> list[str]:
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
        self._bridge = Bridge(client, keys)

    def record(self, video_id: str) -> VideoRecord | None:
        """The video's record, typed; None when there is none."""
        return VideoRecord.from_redis(video_id, self.client.hgetall(self.keys.video(video_id)))  # type: ignore[arg-type]

    def create(self, video_id: str, fields: dict[str, Any], *, path: str, detail: Any = "") -> bool:
        """Claim: create the record in state ``seen`` unless one exists (atomic; one claimant wins)."""
        now = f"{time.time():.3f}"
        # first_seen_at: when the daemon first saw the file (its settle wait starts there); default: now
        record = {"first_seen_at": now, **fields, "video_id": video_id, "state": "seen", "seen_at": now,
                  "updated_at": now}
        flat = _flat(record)
        event = _flat(event_fields("detected", video_id, path, detail))
        args: list[str | int] = [video_id, self.events_maxlen, len(flat), *flat, *event]
        keys = [self.keys.video(video_id), self.keys.inflight, self.keys.events]
        return bool(self._create(keys=keys, args=args))

    def transition(
        self,
        video_id: str,
        state: State | str,
        fields: Mapping[str, Any] | None = None,
        *,
        event: str | None = None,
        path: str = "",
        detail: Any = "",
        event_extra: Mapping[str, str] | None = None,
    ) -> bool:
        """Move forward to ``state`` with ``fields`` and an optional event; False when not allowed.

        ``event_extra``: fields added to the event beside the usual ones.
        """
        try:
            state = State(state)
        except ValueError:
            raise ValueError(f"state: expected one of {[s.value for s in State]}, got {state!r}") from None
        now = f"{time.time():.3f}"
        flat = _flat({**(fields or {}), f"{state.value}_at": now, "updated_at": now})
        event_flat = _flat({**event_fields(event, video_id, path, detail), **(event_extra or {})}) if event else []
        args = [state.value, video_id, self.events_maxlen, len(flat), *flat, *event_flat]
        keys = [self.keys.video(video_id), self.keys.inflight, self.keys.events, self.keys.retention_videos,
                self.keys.retention_files]
        moved = self._transition(keys=keys, args=args) == 1
        if moved and state.terminal:
            self._bridge.drop(video_id)  # right after the end; idempotent (see vidwatch.results.bridge)
        return moved

    def fail(self, video_id: str, reason: str, *, path: str, stage: str, kind: str) -> bool:
        """End the video as ``failed`` with ``reason`` and a ``failed`` event (once).

        ``stage`` (one of :data:`~vidwatch.errors.STAGES`) and ``kind`` (one of
        :data:`~vidwatch.errors.FAILURE_KINDS`, e.g. from :func:`~vidwatch.errors.failure_kind`)
        are stored as ``failure_stage`` / ``failure_kind`` in the record and its ``failed`` event,
        where metrics count them.
        """
        if stage not in STAGES:
            raise ValueError(f"stage: expected one of {STAGES}, got {stage!r}")
        if kind not in FAILURE_KINDS:
            raise ValueError(f"kind: expected one of {FAILURE_KINDS}, got {kind!r}")
        labels = {"failure_stage": stage, "failure_kind": kind}
        return self.transition(video_id, State.FAILED, {"error": reason, **labels}, event="failed", path=path,
                               detail=reason, event_extra=labels)

    def rerun(self, video_id: str, *, path: str, detail: Any = None) -> int | None:
        """Start a new run of a ``done``/``failed`` video (``submit --force``); returns the run number.

        None when the video has no record; 0 when it is still in flight (nothing changes).
        ``detail``: of the ``detected`` event (default ``{"forced": true}``; the daemon says why it reruns).
        """
        event = _flat(event_fields("detected", video_id, path, {"forced": True} if detail is None else detail))
        keys = [self.keys.video(video_id), self.keys.inflight, self.keys.events]
        result = int(self._rerun(keys=keys, args=[video_id, self.events_maxlen, f"{time.time():.3f}", *event]))
        return None if result < 0 else result

    def mark_published(self, video_id: str) -> None:
        """The broker confirmed the video's task message."""
        self.client.hset(self.keys.video(video_id), mapping={"published": "1", "published_at": f"{time.time():.3f}"})

    def inflight(self) -> set[str]:
        """Ids of the videos not done or failed yet."""
        return self.client.smembers(self.keys.inflight)  # type: ignore[return-value]
