"""The ledger: which file versions vidwatch has seen, who owns them, and where they stand.

The truth is in Redis (shared by every daemon on the same NAS); events and walks are
hints. A video's record is created with an atomic claim, so of two daemons that find
the same file, exactly one publishes it. Path hints (size + mtime per path) spare
re-reading files already known; identity is always the content fingerprint.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from pathlib import Path
from typing import Any

import redis

from vidwatch.daemon.fingerprint import Fingerprint
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records, VideoRecord

logger = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 15

# KEYS: video hash; ARGV: expected owner, new owner
_TAKE_OVER = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2])
return 1
"""


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

    def remember(self, path: str, fp: Fingerprint) -> None:
        self.client.hset(self.keys.paths, path, f"{fp.size}:{fp.mtime_ns}:{fp.video_id}")

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

    def pop(self) -> str | None:
        """Take the oldest video off the backlog and own it; None when the backlog is empty."""
        popped = self.client.zpopmin(self.keys.backlog)
        if not popped:
            return None
        video_id = str(popped[0][0])
        # Two commands, not a script that builds the video's key in Lua (refused by a Redis Cluster).
        # Dying between them leaves the record with its claimant as owner, which resumes it.
        self.client.hset(self.keys.video(video_id), "owner", self.daemon_id)
        return video_id

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
