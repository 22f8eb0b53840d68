"""From a settled file to a confirmed task message, in two stages.

1. **Claim** (:meth:`Ingestor.claim`, cheap): fingerprint, check the container is whole,
   create the ledger record (``seen``, event ``detected``) and put the video on the
   shared backlog in Redis. A burst of thousands of files waits there, not in memory.
2. **Process** (:meth:`Ingestor.process`, bounded by ``[normalize] workers``): probe,
   normalize into the spool, mark ``queued`` and publish with a confirm.

Every step is idempotent and keyed by the video id, so a restarted daemon (or another
daemon on the same NAS) can pick any video up wherever it was left.

The source is only ever read through :mod:`vidwatch.daemon.source` (regular files inside a root,
opened non-blocking, under the :class:`FsGuard` deadline of its root); what cannot be read is
failed once, after ``probe_attempts`` looks, with the reason. A source that changed after its
claim stays the same video (:meth:`Ledger.version_of`): before it is published the new bytes are
taken (after a quiet ``settle_seconds`` on the backlog); a normalized copy is only published when
the source did not change while it was made and the copy is as long as the source.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from vidwatch.config import Config
from vidwatch.daemon import source
from vidwatch.daemon.fingerprint import Fingerprint
from vidwatch.daemon.fsguard import FsGuard
from vidwatch.daemon.ledger import Action, Ledger
from vidwatch.daemon.normalize import Normalizer
from vidwatch.daemon.publish import Publisher
from vidwatch.daemon.work import Kind
from vidwatch.errors import (
    NormalizeError,
    NotReadyError,
    PublishError,
    RootStuck,
    ShuttingDown,
    SourceError,
    VidwatchError,
    failure_kind,
)
from vidwatch.media.probe import Probe, probe
from vidwatch.paths import PathRules
from vidwatch.results.records import Records, VideoRecord
from vidwatch.timecode import PathTime

logger = logging.getLogger(__name__)

MAX_PUBLISH_BACKOFF_S = 10.0
COPY_SHORTFALL_S = 1.0  # a normalized copy may be this much shorter than the source (or 2 %), no more
COPY_SHORTFALL_FRACTION = 0.02
ROOT_WAIT_S = 5.0  # a video whose root is down looks again this often


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


class SourceChanged(Exception):
    """The source is not the version the video holds: taken, and the video waits a quiet period on the backlog."""


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
        fs: FsGuard | None = None,
    ) -> None:
        self.config = config
        self.normalizer = normalizer
        self.rules = rules
        self.records = records
        self.ledger = ledger
        self.publisher = publisher
        self.queue = queue
        self.fs = fs
        #: why the root holding a path cannot be read now (None: it can); the daemon's watchers answer
        self.outage_of: Callable[[str], str | None] = lambda path: None
        #: told (video id, path) when a source changed while its video is at a worker (the source watch)
        self.changed_in_flight: Callable[[str, str], None] = lambda video_id, path: None
        watch = config.watch
        self.path_time = PathTime(watch.time_pattern, watch.time_zone) if watch.time_pattern else None

    def time_in_path(self, path: str) -> float | None:
        """The recording time ``[watch] time_pattern`` finds in ``path`` (relative to its root), or None."""
        if self.path_time is None:
            return None
        source_path = Path(path)
        root = self.rules.root_of(source_path)
        return self.path_time.parse(source_path.relative_to(root).as_posix() if root else source_path.name)

    def read(self, path: str) -> source.SourceRead:
        """:func:`vidwatch.daemon.source.read` under the deadline of the path's root (:class:`RootStuck` past it)."""
        if self.fs is None:
            return source.read(path, self.rules.roots)
        root = str(self.rules.root_of(Path(path)) or "")
        return self.fs.call(root, lambda: source.read(path, self.rules.roots))

    def video_id_for(self, path: str, fp: Fingerprint) -> str:
        """The video ``path`` read as ``fp`` is (or will be) part of: its own, or its path's (a new version)."""
        return self.ledger.version_of(path, fp).video_id

    # ------------------------------------------------------------------ stage 1
    def claim(self, path: str, *, final_attempt: bool, first_seen: float | None = None) -> Kind:
        """Ledger a settled file: :attr:`Kind.NOT_READY` to be looked at again later, else :attr:`Kind.CLAIMED`
        (ledgered now, known already, refused or unreadable and failed, or gone). ``first_seen``: epoch s the
        daemon first saw the file (``first_seen_at``; default: the claim, no settle wait)."""
        try:
            read = self.read(path)
        except FileNotFoundError:
            return Kind.CLAIMED
        except (source.Refused, source.Unreadable) as exc:
            return self._unusable(path, exc, final_attempt=final_attempt)
        fp = read.fingerprint
        if self.ledger.known(path, fp.size, fp.mtime_ns):
            return Kind.CLAIMED
        version = self.ledger.version_of(path, fp)
        if version.action is not Action.NEW:
            self._new_version(path, fp, version.video_id, version.action, version.record)
            return Kind.CLAIMED
        reason = read.incomplete
        if reason is not None and not final_attempt:
            return Kind.NOT_READY
        fields = self._claim_fields(path, fp.mtime_ns)
        if first_seen is not None:
            fields["first_seen_at"] = f"{first_seen:.3f}"
        if not self.ledger.claim(path, fp, fields):
            logger.info("ingest: %s is already known as video %s", path, fp.video_id)
            return Kind.CLAIMED
        if reason is not None:
            attempts = self.config.normalize.probe_attempts
            self.records.fail(fp.video_id, f"ingest: {path}: {reason} after {attempts} checks", path=path,
                              stage="ingest", kind="truncated")
            return Kind.CLAIMED
        self.ledger.enqueue(fp.video_id)
        return Kind.CLAIMED

    def _claim_fields(self, path: str, mtime_ns: int) -> dict[str, Any]:
        return {
            "camera": self.rules.camera(Path(path)),
            "root": str(self.rules.root_of(Path(path)) or ""),
            "start_ts": f"{self.time_in_path(path) or mtime_ns / 1e9:.3f}",  # refined once probed
        }

    def _unusable(self, path: str, exc: SourceError, *, final_attempt: bool) -> Kind:
        """A special file, a link out of the roots, or a file that cannot be read: failed once, on the last look."""
        video_id = source.path_video_id(path)
        record = self.records.record(video_id)
        if record is None and not final_attempt:
            logger.debug("ingest: %s; looking again later", exc)
            return Kind.NOT_READY
        try:
            size, mtime_ns = source.hint_stat(path)
        except FileNotFoundError:
            return Kind.CLAIMED
        if record is None:
            attempts = self.config.normalize.probe_attempts
            reason = f"ingest: {exc}; failed after {attempts} checks"
            fields = {**self._claim_fields(path, mtime_ns), "path": path, "owner": self.ledger.daemon_id}
            if self.records.create(video_id, fields, path=path, detail={"size": size}):
                kind = exc.failure if isinstance(exc, source.Unreadable) else "refused"
                self.records.fail(video_id, reason, path=path, stage="ingest", kind=kind)
                logger.warning("%s", reason)
        self.ledger.remember_stat(path, size, mtime_ns, video_id)  # seen again unchanged: known, not failed again
        return Kind.CLAIMED

    def _new_version(self, path: str, fp: Fingerprint, video_id: str, action: Action,
                     record: VideoRecord | None) -> None:
        """``path`` changed after its video was claimed: the same video, never a second one."""
        if action is Action.SAME:  # only the mtime moved
            self.ledger.take_version(video_id, path, fp)
        elif action is Action.ADOPT:  # its normalize thread compares and takes the new bytes
            logger.debug("ingest: %s changed before video %s was published; it takes the new bytes", path, video_id)
        elif action is Action.AFTER:
            if self.ledger.mark_changed(video_id, fp):
                self.changed_in_flight(video_id, path)
                logger.info("ingest: %s changed while video %s is at a worker; a new run follows when it ends",
                            path, video_id)
            else:  # it ended meanwhile
                self._rerun(path, fp, video_id, record)
        else:
            self._rerun(path, fp, video_id, record)

    def _rerun(self, path: str, fp: Fingerprint, video_id: str, record: VideoRecord | None) -> None:
        """A new run of an ended video with the source's new bytes; its results replace the last run's in one step."""
        self.ledger.take_version(video_id, path, fp)
        (self.config.paths.spool / f"{video_id}.mp4").unlink(missing_ok=True)  # made from the old bytes
        old_size = record.size if record is not None else None
        run = self.records.rerun(video_id, path=path, detail={"source_changed": True, "size": fp.size,
                                                              "previous_size": old_size})
        if run:
            logger.info("ingest: %s changed after video %s ended; run %d with the new bytes", path, video_id, run)
            self.ledger.enqueue(video_id)

    # ------------------------------------------------------------------ stage 2
    def process(self, video_id: str) -> PublishOutcome | None:
        """Take a video from wherever it stands to a confirmed publish.

        Returns the publish outcome, or None when there was nothing (more) to do now (done,
        failed, or back on the backlog to wait for its source).
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
            before = None if spooled.exists() else self._current(record)
        except SourceChanged:
            return None
        except SourceError as exc:
            self._fail(record, exc, stage="ingest")
            return None
        facts = self._inspect(record, spooled)
        if facts is None:
            return None
        self.records.transition(
            video_id, "normalizing",
            {"start_ts": f"{recording_start(facts, record.mtime_ns or 0, self.time_in_path(path)):.3f}",
             **facts.as_record()},
        )
        if before is None:  # spool files appear whole (renamed into place): normalized before a restart
            detail: dict[str, Any] = {"method": "spooled before", **facts.as_record()}
            fields: dict[str, Any] = {"spool_path": str(spooled)}
        else:
            try:
                result = self.normalizer.normalize(video_id, path, facts, spooled)
                self._check_copy(record, facts, spooled)
            except SourceChanged:
                spooled.unlink(missing_ok=True)  # made from bytes that are no longer the source's
                return None
            except (NormalizeError, SourceError) as exc:
                spooled.unlink(missing_ok=True)
                self._fail(record, exc, stage="normalize" if isinstance(exc, NormalizeError) else "ingest")
                return None
            except ShuttingDown:
                return None  # still "normalizing": resumed at the next start
            seconds = round(time.monotonic() - started, 3)
            detail = {"method": result.method, "seconds": seconds, "why": result.why, "encoder": result.encoder,
                      "hwaccel": result.hwaccel, **facts.as_record()}
            fields = {"spool_path": str(spooled), "normalize_method": result.method, "normalize_s": seconds}
        self.records.transition(video_id, "normalizing", fields, event="normalized", path=path, detail=detail)
        return self.publish(video_id, path, attempt=0)

    def _current(self, record: VideoRecord) -> Fingerprint:
        """The source's fingerprint, when it is the version the record holds; else :class:`SourceChanged`.

        A source that changed since its claim is taken (the record and path hint name the new
        bytes) and the video waits ``settle_seconds`` on the backlog: it goes on once the source
        is quiet. Raises :class:`SourceError` for a source gone, refused or unreadable (unless its
        root is down: then the video waits for it).
        """
        path = record.path
        try:
            read = self.read(path)
        except FileNotFoundError as exc:
            self._wait_for_root(record)
            raise SourceError(f"ingest: {path}: source disappeared before it was normalized",
                              kind="missing") from exc
        except RootStuck as exc:
            self._wait_for_root(record)
            raise SourceError(f"ingest: {path}: {exc}", kind="unreadable") from exc
        fp = read.fingerprint
        if fp.digest != record.fingerprint:
            self.ledger.take_version(record.video_id, path, fp)
            logger.info("ingest: %s changed since video %s was claimed (%s → %d bytes); waiting for it to be quiet",
                        path, record.video_id, record.size, fp.size)
            self._defer(record.video_id)
        if read.incomplete is not None:
            checks = int(self.records.client.hincrby(self.ledger.keys.video(record.video_id), "not_ready_checks", 1))
            if checks < self.config.normalize.probe_attempts:
                self._defer(record.video_id)
            attempts = self.config.normalize.probe_attempts
            raise SourceError(f"ingest: {path}: {read.incomplete} after {attempts} checks", kind="truncated")
        return fp

    def _check_copy(self, record: VideoRecord, facts: Probe, spooled: Path) -> None:
        """After normalizing: the source is still the bytes normalized, and the copy is as long as the source."""
        self._current(record)  # raises SourceChanged when the source is no longer the bytes the record holds
        copy = probe(spooled)
        shortfall = facts.duration_s - copy.duration_s
        if shortfall > max(COPY_SHORTFALL_S, COPY_SHORTFALL_FRACTION * facts.duration_s):
            raise NormalizeError(
                f"normalize: {record.path}: the normalized copy is {copy.duration_s:.2f} s of a "
                f"{facts.duration_s:.2f} s source (cut short)"
            )

    def _defer(self, video_id: str) -> NoReturn:
        self.ledger.defer(video_id, self.config.watch.settle_seconds)
        raise SourceChanged(video_id)

    def _wait_for_root(self, record: VideoRecord) -> None:
        """When the source's root is down (unmounted, missing, stuck), the video waits: nothing counts as deleted."""
        why = self.outage_of(record.path)
        if why is not None:
            logger.info("ingest: video=%s waits for its root (%s)", record.video_id, why)
            self.ledger.defer(record.video_id, max(self.config.watch.settle_seconds, ROOT_WAIT_S))
            raise SourceChanged(record.video_id)

    def _inspect(self, record: VideoRecord, spooled: Path) -> Probe | None:
        """Probe facts of the spooled copy (normalized before a restart) or of the source; None when it failed."""
        try:
            return probe(spooled) if spooled.exists() else self.normalizer.inspect(Path(record.path))
        except NotReadyError as exc:
            why = str(exc) if exc.kind == "truncated" else f"{exc}: truncated or corrupt"
            self._fail(record, SourceError(why, kind="truncated"), stage="probe")
        except SourceError as exc:
            self._fail(record, exc, stage="probe")
        return None

    def _fail(self, record: VideoRecord, exc: VidwatchError, *, stage: str) -> None:
        if isinstance(exc, (NormalizeError, SourceError)) and self.outage_of(record.path) is not None:
            try:
                self._wait_for_root(record)
            except SourceChanged:
                return
        if isinstance(exc, source.Unreadable):
            kind = exc.failure
        elif isinstance(exc, source.Refused):
            kind = "refused"
        else:
            kind = failure_kind(exc)
        self.records.fail(record.video_id, str(exc), path=record.path, stage=stage, kind=kind)

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
