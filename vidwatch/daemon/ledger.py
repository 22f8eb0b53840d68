"""The ledger: which file versions vidwatch has seen, who owns them, and where they stand.

The truth is in Redis (shared by every daemon on the same NAS); events and walks are
hints. A video's record is created with an atomic claim, so of two daemons that find
the same file, exactly one publishes it. Path hints (size + mtime per path) spare
re-reading files already known; identity is always the content fingerprint.

A file that changes at its path after it was claimed is a new *version of the same video*
(:meth:`Ledger.version_of`), never a second video: adopted before it is published, a new run
(the rerun mechanism of ``submit --force``) once its video ended. The backlog is a sorted set
by "not before" time, so a video whose source is still changing waits there (:meth:`Ledger.defer`).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import redis

from vidwatch.daemon.fingerprint import Fingerprint
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records, State, VideoRecord

logger = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 15

# KEYS: backlog zset; ARGV: this daemon's id, video key prefix, now (epoch s): the oldest entry that is due
_POP = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, 1)
if #due == 0 then return false end
redis.call('ZREM', KEYS[1], due[1])
redis.call('HSET', ARGV[2] .. due[1], 'owner', ARGV[1])
return due[1]
"""

# KEYS: video hash; ARGV: field/value pairs. Set them only while the video is not over (else 0).
_WHILE_IN_FLIGHT = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' or state == 'failed' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# KEYS: video hash; ARGV: expected owner, new owner
_TAKE_OVER = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2])
return 1
"""


class Action(StrEnum):
    """What a claim does with a file version (:meth:`Ledger.version_of`)."""

    NEW = "new"  # a video of its own (new content, or a path nobody ledgered)
    SAME = "same"  # the bytes its video was made from (only the mtime changed)
    ADOPT = "adopt"  # its video is not published yet: its normalize thread takes these bytes instead
    AFTER = "after"  # its video is at a worker: marked, and rerun with these bytes once it ends
    RERUN = "rerun"  # its video ended: a new run with these bytes now


@dataclass(frozen=True)
class Version:
    video_id: str
    action: Action
    record: VideoRecord | None = None


def daemon_id_for(state_dir: Path) -> str:
    """Stable per host and state folder, so a restarted daemon recognises its own records."""
    return f"{socket.gethostname()}:{hashlib.sha256(str(state_dir).encode()).hexdigest()[:8]}"


class Ledger:
    def __init__(self, client: redis.Redis, keys: Keys, records: Records, daemon_id: str) -> None:
        self.client = client
        self.keys = keys
        self.records = records
        self.daemon_id = daemon_id
        self._take_over = client.register_script(_TAKE_OVER)
        self._pop = client.register_script(_POP)
        self._while_in_flight = client.register_script(_WHILE_IN_FLIGHT)

    def known(self, path: str, size: int, mtime_ns: int) -> bool:
        """True when this path, at this size and mtime, was already ledgered."""
        return self.known_many([(path, size, mtime_ns)])[0]

    def known_many(self, stats: list[tuple[str, int, int]]) -> list[bool]:
        """:meth:`known` for each ``(path, size, mtime_ns)``, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for path, _, _ in stats:
            pipe.hget(self.keys.paths, path)
        hints = pipe.execute()
        return [
            bool(hint) and str(hint).startswith(f"{size}:{mtime_ns}:")
            for (_, size, mtime_ns), hint in zip(stats, hints, strict=True)
        ]

    def remember(self, path: str, fp: Fingerprint, video_id: str | None = None) -> None:
        """The path hint: at this size and mtime, ``path`` is video ``video_id`` (default: the fingerprint's)."""
        self.remember_stat(path, fp.size, fp.mtime_ns, video_id or fp.video_id)

    def remember_stat(self, path: str, size: int, mtime_ns: int, video_id: str) -> None:
        self.client.hset(self.keys.paths, path, f"{size}:{mtime_ns}:{video_id}")

    def video_of_path(self, path: str) -> str | None:
        """The video the path hint names for ``path``, if any."""
        hint = self.client.hget(self.keys.paths, path)
        parts = str(hint).split(":") if hint else []
        return parts[2] if len(parts) > 2 and parts[2] else None

    # ------------------------------------------------------------------ versions of one path
    def version_of(self, path: str, fp: Fingerprint) -> Version:
        """Whose version ``fp`` (read at ``path``) is: its own video, or the video ``path`` already has.

        The video ledgered for the path keeps the file when it is still in flight (not done or
        failed), when its change was noticed while it was in flight (``source_changed``), when the
        file grew (a writer that paused, then went on), or when it failed as truncated. Otherwise
        (a file replaced by one no longer, after its video ended) the path holds a new recording: a
        video of its own.
        """
        own = Version(fp.video_id, Action.NEW)
        video_id = self.video_of_path(path)
        if video_id is None or video_id == fp.video_id:
            return own
        record = self.records.record(video_id)
        if record is None or record.path != path or not record.fingerprint:
            return own
        if record.fingerprint == fp.digest:
            return Version(video_id, Action.SAME, record)
        if record.state in (State.SEEN, State.NORMALIZING):
            return Version(video_id, Action.ADOPT, record)
        if not record.terminal:
            return Version(video_id, Action.AFTER, record)
        grew = fp.size > (record.size or 0)
        cut_short = record.state is State.FAILED and record.failure_kind == "truncated"
        if record.extra.get("source_changed") or grew or cut_short:
            return Version(video_id, Action.RERUN, record)
        return own

    def take_version(self, video_id: str, path: str, fp: Fingerprint) -> None:
        """The video's record and the path hint now name the bytes of ``fp`` (a new segment plan follows)."""
        key = self.keys.video(video_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping={"fingerprint": fp.digest, "size": fp.size, "mtime_ns": fp.mtime_ns})
        pipe.hdel(key, "source_changed", "segments", "not_ready_checks")
        pipe.hset(self.keys.paths, path, f"{fp.size}:{fp.mtime_ns}:{video_id}")
        pipe.execute()

    def mark_changed(self, video_id: str, fp: Fingerprint) -> bool:
        """Note on a video in flight that its source changed (rerun once it ends); False when it ended meanwhile."""
        flat = ["source_changed", f"{fp.size}:{fp.mtime_ns}"]
        return bool(self._while_in_flight(keys=[self.keys.video(video_id)], args=flat))

    def claim(self, path: str, fp: Fingerprint, fields: dict[str, Any]) -> bool:
        """Create the video's record (state ``seen``, event ``detected``); False when another has it."""
        record = {
            **fields,
            "path": path,
            "fingerprint": fp.digest,
            "size": fp.size,
            "mtime_ns": fp.mtime_ns,
            "owner": self.daemon_id,
        }
        won = self.records.create(fp.video_id, record, path=path, detail={"size": fp.size})
        self.remember(path, fp)
        return won

    def enqueue(self, video_id: str) -> None:
        """Put a claimed video on the shared backlog (again), unless it is there already."""
        self.client.zadd(self.keys.backlog, {video_id: time.time()}, nx=True)

    def defer(self, video_id: str, delay_s: float) -> None:
        """Put a video back on the backlog, to be taken no sooner than ``delay_s`` from now."""
        self.client.zadd(self.keys.backlog, {video_id: time.time() + delay_s})

    def pop(self) -> str | None:
        """Take the oldest video that is due off the backlog and own it; None when none is due."""
        args = [self.daemon_id, self.keys.video(""), f"{time.time():.6f}"]
        popped = self._pop(keys=[self.keys.backlog], args=args)
        return str(popped) if popped else None

    def backlog_size(self) -> int:
        return int(self.client.zcard(self.keys.backlog))

    def heartbeat(self) -> None:
        self.client.set(self.keys.daemon(self.daemon_id), "1", ex=HEARTBEAT_TTL_S)

    def release(self) -> None:
        self.client.delete(self.keys.daemon(self.daemon_id))

    def resumable(self, *, include_own: bool) -> list[VideoRecord]:
        """Records not yet confirmed by the broker whose owner is gone (or is this daemon); now owned by us."""
        out = []
        video_ids = sorted(self.records.inflight())
        pipe = self.client.pipeline(transaction=False)
        for video_id in video_ids:
            pipe.hgetall(self.keys.video(video_id))
        for video_id, fields in zip(video_ids, pipe.execute(), strict=True):
            record = VideoRecord.from_redis(video_id, fields)
            if record is None or not (record.state.resumable or record.unconfirmed):
                continue
            owner = record.owner
            if owner == self.daemon_id and not include_own:
                continue
            if owner != self.daemon_id:
                if owner and self.client.exists(self.keys.daemon(owner)):
                    continue
                if not self._take_over(keys=[self.keys.video(video_id)], args=[owner, self.daemon_id]):
                    continue
                logger.info("ledger: taking over video=%s from %s", video_id, owner or "nobody")
            out.append(record)
        return out
