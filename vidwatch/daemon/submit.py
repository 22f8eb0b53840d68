"""`vidwatch submit PATH... [--wait] [--force]`: process files now, the way a dropped file is.

How a path is handed over, simplest first:

1. A daemon answers on ``[api] listen`` and a token is configured: ``POST /jobs`` (the daemon
   claims it in its ledger at once).
2. Otherwise the claim runs here, with :class:`Ingestor` and this command's own ledger identity:
   when a daemon answers, the claimed video waits on the shared backlog and the daemon takes
   it over at its next resume check (owners without a heartbeat are taken over); when none
   answers, this command normalizes and publishes it itself.

``--force`` starts a new *run* of a video that is done or failed (:meth:`Records.rerun`): the
record goes back to ``seen`` with ``run`` + 1 while its ``summary_id`` keeps pointing at the
previous run's summary; the new run writes its detections (entries and index tagged with
``run``) and, in one script, its summary, the record's ``summary_id``/``summary_run`` and the
label indexes. A reader sees the old results or the new ones, never a mix.

``--wait`` follows the records until every video is done or failed and prints the outcome.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import redis

from vidwatch.config import Config
from vidwatch.daemon.compose import build
from vidwatch.daemon.ledger import Action
from vidwatch.daemon.source import Refused, Unreadable
from vidwatch.errors import PublishError, SourceError
from vidwatch.paths import file_in_roots
from vidwatch.results.records import State, VideoRecord

logger = logging.getLogger(__name__)

API_TIMEOUT_S = 3.0
WAIT_POLL_S = 0.5
PUBLISH_ATTEMPTS = 3


@dataclass
class Submitted:
    path: str
    video_id: str
    how: str  # daemon, claimed, processed, rerun, known


class Submitter:
    def __init__(self, config: Config, client: redis.Redis | None = None) -> None:
        self.config = config
        # this command's own ledger identity: a daemon takes its claims over (it has no heartbeat)
        self.parts = build(config, client=client, owner=f"submit:{socket.gethostname()}:{os.getpid()}")
        self.keys, self.client, self.records = self.parts.keys, self.parts.client, self.parts.records
        self.rules, self.ingestor = self.parts.rules, self.parts.ingestor
        self._daemon: bool | None = None

    # ------------------------------------------------------------------ hand-over
    def submit(self, path: str, *, force: bool = False) -> Submitted:
        """Hand ``path`` over (see the module's docstring); raise :class:`SourceError` for an unusable path."""
        configured = file_in_roots(path, self.rules.roots)
        resolved = configured.resolve()
        try:
            fp = self.ingestor.read(str(configured)).fingerprint  # a regular file in a root, never blocking
        except (Refused, Unreadable) as exc:
            raise SourceError(f"submit: {exc}") from exc
        except OSError as exc:
            raise SourceError(f"submit: {path}: cannot read: {exc.strerror or exc}") from exc
        version = self.ingestor.ledger.version_of(str(configured), fp)  # a changed file: its path's video
        video_id = version.video_id
        if self._daemon is None:  # asked once per command
            self._daemon = self.daemon_answers()
        daemon = self._daemon
        if version.action not in (Action.NEW, Action.SAME):  # a new version of its path's video
            self.ingestor.claim(str(configured), final_attempt=True)
            if version.action is Action.RERUN:
                self._hand_over(video_id, daemon)
                return Submitted(str(resolved), video_id, "rerun")
        record = self.records.record(video_id)
        if record is not None and record.terminal:
            if not force:
                return Submitted(str(resolved), video_id, "known")
            run = self.records.rerun(video_id, path=record.path or str(resolved))
            logger.info("submit: video=%s path=%s: run %s", video_id, resolved, run)
            self._hand_over(video_id, daemon)
            return Submitted(str(resolved), video_id, "rerun")
        if record is not None:
            return Submitted(str(resolved), video_id, "known")  # in flight already
        if daemon and self.config.api.token is not None:
            self._post_job(str(resolved))
            return Submitted(str(resolved), video_id, "daemon")
        self.ingestor.claim(str(configured), final_attempt=True)
        return Submitted(str(resolved), video_id, self._hand_over(video_id, daemon))

    def _hand_over(self, video_id: str, daemon: bool) -> str:
        """Leave a claimed video to the running daemon, or normalize and publish it here."""
        ingestor = self.ingestor
        if daemon:
            ingestor.ledger.enqueue(video_id)
            return "claimed"
        self.client.zrem(self.keys.backlog, video_id)
        self.config.paths.spool.mkdir(parents=True, exist_ok=True)
        for attempt in range(PUBLISH_ATTEMPTS):
            outcome = ingestor.process(video_id) if attempt == 0 else ingestor.publish(
                video_id, self._path_of(video_id), attempt
            )
            if outcome is None or outcome.confirmed:
                return "processed"
            time.sleep(outcome.retry_in_s)
        ingestor.ledger.enqueue(video_id)  # a daemon started later resumes it
        raise PublishError(f"submit: video {video_id}: the broker did not confirm after {PUBLISH_ATTEMPTS} attempts")

    def _path_of(self, video_id: str) -> str:
        record = self.records.record(video_id)
        return record.path if record is not None else ""

    def close(self) -> None:
        self.parts.publisher.close()

    # ------------------------------------------------------------------ waiting
    def wait(self, video_ids: list[str], *, timeout_s: float | None) -> dict[str, VideoRecord | None]:
        """Records of ``video_ids`` once each is done or failed (or at the deadline, as they stand)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            records = {vid: self.records.record(vid) for vid in video_ids}
            if all(r is not None and r.terminal for r in records.values()):
                return records
            if deadline is not None and time.monotonic() > deadline:
                return records
            time.sleep(WAIT_POLL_S)

    # ------------------------------------------------------------------ helpers
    def daemon_answers(self) -> bool:
        try:
            with urllib.request.urlopen(self._url("/healthz"), timeout=API_TIMEOUT_S):
                return True
        except urllib.error.HTTPError:
            return True  # it answered (unhealthy, but there)
        except OSError:
            return False

    def _post_job(self, path: str) -> None:
        token = self.config.api.token.get_secret_value() if self.config.api.token else ""
        request = urllib.request.Request(
            self._url("/jobs"), data=json.dumps({"path": path}).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT_S):
                return
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise SourceError(f"submit: {path}: the daemon refused it ({exc.code}): {detail}") from exc

    def _url(self, route: str) -> str:
        host = self.config.api.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.config.api.port}{route}"


def outcome_line(video_id: str, record: VideoRecord | None) -> str:
    if record is None:
        return f"{video_id}  {'unknown':<10}   still unknown (run 1)"
    state, run = record.state.value, record.run
    if record.state is State.DONE:
        extra = f"summary {record.summary_id} run {record.summary_run if record.summary_run is not None else run}"
    elif record.state is State.FAILED:
        extra = f"error: {record.error}"
    else:
        extra = f"still {state} (run {run})"
    return f"{video_id}  {state:<10} {record.path}  {extra}"


def run_submit(config: Config, paths: list[str], *, force: bool, wait: bool, timeout_s: float | None) -> int:
    """The command: 0 when every path was handed over (and, with ``wait``, every video is done)."""
    submitter = Submitter(config)
    submitted: list[Submitted] = []
    status = 0
    try:
        for path in paths:
            try:
                item = submitter.submit(path, force=force)
            except SourceError as exc:
                logger.error("%s", exc)
                status = 1
                continue
            submitted.append(item)
            note = {
                "daemon": "handed to the daemon", "claimed": "claimed; the daemon takes it over",
                "processed": "normalized and queued", "rerun": "new run started",
                "known": "already known (--force to analyse it again)",
            }[item.how]
            _out(f"{item.video_id}  {item.path}  {note}")
    finally:
        submitter.close()
    if wait and submitted:
        records = submitter.wait(sorted({s.video_id for s in submitted}), timeout_s=timeout_s)
        for video_id, record in records.items():
            _out(outcome_line(video_id, record))
            if record is None or record.state is not State.DONE:
                status = 1
    return status


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
