"""From a settled file to a confirmed task message, in two stages.

1. **Claim** (:meth:`Ingestor.claim`, cheap): fingerprint, check the container is whole,
   create the ledger record (``seen``, event ``detected``) and put the video on the
   shared backlog in Redis. A burst of thousands of files waits there, not in memory.
2. **Process** (:meth:`Ingestor.process`, bounded by ``[normalize] workers``): probe,
   normalize into the spool, mark ``queued`` and publish with a confirm.

Every step is idempotent and keyed by the video id, so a restarted daemon (or another
daemon on the same NAS) can pick any video up wherever it was left.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vidwatch.config import Config
from vidwatch.daemon.completeness import incomplete_reason
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.daemon.ledger import Ledger
from vidwatch.daemon.normalize import Normalizer
from vidwatch.daemon.publish import Publisher
from vidwatch.daemon.work import Kind
from vidwatch.errors import NormalizeError, NotReadyError, PublishError, ShuttingDown, SourceError, failure_kind
from vidwatch.media.probe import Probe, probe
from vidwatch.paths import PathRules
from vidwatch.results.records import Records, VideoRecord
from vidwatch.timecode import PathTime

logger = logging.getLogger(__name__)

MAX_PUBLISH_BACKOFF_S = 10.0


def recording_start(facts: Probe | None, mtime_ns: int, path_ts: float | None = None) -> float:
    """Epoch seconds the recording started: the container's creation_time, else the time in its path
    (``[watch] time_pattern``, parsed by the caller into ``path_ts``), else mtime − duration."""
    if facts is not None and facts.creation_time:
        try:
            stamp = datetime.fromisoformat(facts.creation_time.replace("Z", "+00:00"))
            if stamp.tzinfo is None:  # MP4/MOV creation_time is UTC
                stamp = stamp.replace(tzinfo=UTC)
            if stamp.year > 1970:
                return stamp.timestamp()
        except ValueError:
            logger.debug("unparsable creation_time %r", facts.creation_time)
    if path_ts is not None:
        return path_ts
    return mtime_ns / 1e9 - (facts.duration_s if facts else 0.0)


@dataclass(frozen=True)
class PublishOutcome:
    confirmed: bool
    retry_in_s: float = 0.0


class Ingestor:
    def __init__(
        self,
        config: Config,
        rules: PathRules,
        records: Records,
        ledger: Ledger,
        publisher: Publisher,
        queue: str,
        *,
        normalizer: Normalizer,
    ) -> None:
        self.config = config
        self.normalizer = normalizer
        self.rules = rules
        self.records = records
        self.ledger = ledger
        self.publisher = publisher
        self.queue = queue
        watch = config.watch
        self.path_time = PathTime(watch.time_pattern, watch.time_zone) if watch.time_pattern else None

    def time_in_path(self, path: str) -> float | None:
        """The recording time ``[watch] time_pattern`` finds in ``path`` (relative to its root), or None."""
        if self.path_time is None:
            return None
        source = Path(path)
        root = self.rules.root_of(source)
        return self.path_time.parse(source.relative_to(root).as_posix() if root else source.name)

    # ------------------------------------------------------------------ stage 1
    def claim(self, path: str, *, final_attempt: bool, first_seen: float | None = None) -> Kind:
        """Ledger a settled file: :attr:`Kind.NOT_READY` to be looked at again later, else :attr:`Kind.CLAIMED`
        (ledgered now, known already, or gone). ``first_seen``: epoch s the daemon first saw the file
        (``first_seen_at``; default: the claim, no settle wait)."""
        source = Path(path)
        try:
            fp = fingerprint(source)
        except FileNotFoundError:
            return Kind.CLAIMED
        if self.ledger.known(path, fp.size, fp.mtime_ns):
            return Kind.CLAIMED
        reason = incomplete_reason(source)
        if reason is not None and not final_attempt:
            return Kind.NOT_READY
        fields: dict[str, Any] = {
            "camera": self.rules.camera(source),
            "root": str(self.rules.root_of(source) or ""),
            "start_ts": f"{self.time_in_path(path) or fp.mtime_ns / 1e9:.3f}",  # refined once probed
        }
        if first_seen is not None:
            fields["first_seen_at"] = f"{first_seen:.3f}"
        if not self.ledger.claim(path, fp, fields):
            logger.info("ingest: %s is already known as video %s", path, fp.video_id)
            return Kind.CLAIMED
        if reason is not None:
            attempts = self.config.normalize.probe_attempts
            self.records.fail(fp.video_id, f"ingest: {path}: {reason} after {attempts} checks", path=path,
                              stage="ingest", kind="empty_file" if fp.size == 0 else "truncated")
            return Kind.CLAIMED
        self.ledger.enqueue(fp.video_id)
        return Kind.CLAIMED

    # ------------------------------------------------------------------ stage 2
    def process(self, video_id: str) -> PublishOutcome | None:
        """Take a video from wherever it stands to a confirmed publish.

        Returns the publish outcome, or None when there was nothing (more) to do.
        """
        record = self.records.record(video_id)
        if record is None:
            return None
        path = record.path
        if record.unconfirmed:
            return self.publish(video_id, path, attempt=1)
        if not record.state.resumable:
            return None
        spooled = self.config.paths.spool / f"{video_id}.mp4"
        started = time.monotonic()
        try:
            facts = self._probe_source(video_id, record, spooled)
        except SourceError as exc:
            stage = "ingest" if exc.kind in ("gone", "changed") else "probe"
            self.records.fail(video_id, str(exc), path=path, stage=stage, kind=failure_kind(exc))
            return None
        if facts is None:
            return None
        self.records.transition(
            video_id, "normalizing",
            {"start_ts": f"{recording_start(facts, record.mtime_ns or 0, self.time_in_path(path)):.3f}",
             **facts.as_record()},
        )
        if spooled.exists():  # spool files appear whole (renamed into place): normalized before a restart
            detail: dict[str, Any] = {"method": "spooled before", **facts.as_record()}
            fields: dict[str, Any] = {"spool_path": str(spooled)}
        else:
            try:
                result = self.normalizer.normalize(video_id, path, facts, spooled)
            except NormalizeError as exc:
                self.records.fail(video_id, str(exc), path=path, stage="normalize", kind=failure_kind(exc))
                return None
            except ShuttingDown:
                return None  # still "normalizing": resumed at the next start
            seconds = round(time.monotonic() - started, 3)
            detail = {"method": result.method, "seconds": seconds, "why": result.why, "encoder": result.encoder,
                      "hwaccel": result.hwaccel, **facts.as_record()}
            fields = {"spool_path": str(spooled), "normalize_method": result.method, "normalize_s": seconds}
        self.records.transition(video_id, "normalizing", fields, event="normalized", path=path, detail=detail)
        return self.publish(video_id, path, attempt=0)

    def _probe_source(self, video_id: str, record: VideoRecord, spooled: Path) -> Probe | None:
        path = record.path
        source = Path(path)
        if spooled.exists():
            return probe(spooled)
        try:
            current = fingerprint(source)
        except FileNotFoundError as exc:
            raise SourceError(f"ingest: {path}: source disappeared before it was normalized", kind="gone") from exc
        if current.video_id != video_id:
            raise SourceError(f"ingest: {path}: source changed before it was normalized (a new version follows)",
                              kind="changed")
        try:
            return self.normalizer.inspect(source)
        except NotReadyError as exc:
            if exc.kind == "truncated":
                raise SourceError(str(exc), kind=exc.kind) from exc
            raise SourceError(f"{exc}: truncated or corrupt", kind="truncated") from exc

    def publish(self, video_id: str, path: str, attempt: int) -> PublishOutcome:
        """Mark ``queued`` (first attempt), then publish; ``published`` is "0" until the broker confirms.

        Marking first keeps events in order even when a worker starts at once; a restart
        republishes what was never confirmed.
        """
        if attempt == 0:
            self.records.transition(
                video_id, "queued", {"published": "0"}, event="queued", path=path, detail={"queue": self.queue}
            )
        try:
            self.publisher.publish(video_id)
        except PublishError as exc:
            delay = min(MAX_PUBLISH_BACKOFF_S, 0.5 * 2**attempt)
            if attempt <= 1 or attempt % 5 == 0:
                logger.warning("%s; retrying in %.1f s (attempt %d)", exc, delay, attempt + 1)
            return PublishOutcome(False, delay)
        self.records.mark_published(video_id)
        return PublishOutcome(True)
