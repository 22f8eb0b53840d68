"""Analyse one spooled video: decode → engine → track → summary. No Celery in here."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vidwatch.analyzers import Context as AnalyzerContext
from vidwatch.analyzers import build as build_analyzers
from vidwatch.analyzers import summaries as analyzer_summaries
from vidwatch.config import Config
from vidwatch.detection import Detection
from vidwatch.engines.base import Engine
from vidwatch.engines.batcher import InlineStream, Stream
from vidwatch.engines.motion import MotionDetector
from vidwatch.fileio import atomic_target
from vidwatch.media.decode import Frame, FrameReader, decode_size
from vidwatch.media.probe import Probe
from vidwatch.results.crops import BestCrops
from vidwatch.results.summary import SummaryBuilder
from vidwatch.results.writer import FrameResult
from vidwatch.tasks.track import Tracker

TRACK_MAX_AGE_S = 1.0
PROGRESS_EVERY_S = 5.0  # at most one progress report per segment this often
PREROLL_S = 6.0  # a segment decodes this much before its start, so background models have learnt the scene
DECODE_TIMEOUT_PER_MEDIA_S = 4.0
MOTION_GATE_SIDE = 320  # the motion gate looks at frames shrunk to this long side: a yes/no needs no detail
STATIC_FLUSH_FRAMES = 256  # motion gate: static frames queued behind a frame still waiting for its batch
_NO_IMAGE = np.zeros((0, 0, 3), dtype=np.uint8)


@dataclass
class Analysis:
    frames: list[FrameResult]
    summary: SummaryBuilder
    duration_s: float
    wall_s: float
    best_frame: np.ndarray | None = None
    best_detections: list[Detection] = field(default_factory=list)
    analyzers: dict[str, object] = field(default_factory=dict)  # each configured analyzer's summary
    # each track's first and last sighting: (label, box, pts) — what joins tracks across segments
    track_first: dict[int, tuple[str, tuple[float, float, float, float], float]] = field(default_factory=dict)
    track_last: dict[int, tuple[str, tuple[float, float, float, float], float]] = field(default_factory=dict)
    # engine batches this segment's frames rode in (its share of batches shared with other
    # segments), and those frames: frames ÷ (batches × [engine] batch) is the batch fill
    engine_calls: float = 0.0
    engine_frames: int = 0


Feed = Stream | InlineStream  # where frames go to the engine: a shared batcher's stream, or inline
# A frame in order with its engine result to come (None: the motion gate kept it from the engine);
# a pre-roll entry (frame None) only teaches a stateful engine the scene.
Pending = tuple[Frame | None, Future[list[Detection]] | None]


def analyze(
    path: Path,
    facts: Probe,
    config: Config,
    engine: Engine | Feed,
    *,
    camera: str = "default",
    start_s: float = 0.0,
    duration_s: float | None = None,
    track_base: int = 0,
    on_progress: Callable[[float], None] | None = None,
    crops: BestCrops | None = None,
    check: Callable[[], None] | None = None,
) -> Analysis:
    """Run the engine over every analysed frame of ``path`` (or of ``[start_s, start_s + duration_s)``).

    ``engine`` is an engine (run inline, ``[engine] batch`` frames a call) or a stream
    of a :class:`~vidwatch.engines.batcher.Batcher` shared with other segments. Up to
    ``window`` frames are in flight: the next batch gathers while one runs, and results
    are recorded in frame order as they come back. ``check`` runs once per frame and may
    raise to stop (a time limit, a cancellation).

    Boxes come back in source pixels; frame numbers and pts are the video's, not the
    segment's; track ids start above ``track_base`` so segments never share one.
    """
    feed = engine if isinstance(engine, Stream | InlineStream) else InlineStream(engine, config.engine.batch)
    pipeline = Pipeline(path, facts, config, feed, camera=camera, start_s=start_s, duration_s=duration_s,
                        track_base=track_base, on_progress=on_progress, crops=crops, check=check)
    return pipeline.run()


class Pipeline:
    """One pass over a file or a segment of it: decode, submit to the engine, collect in order, record.

    Built and run by :func:`analyze`; one instance per pass.
    """

    def __init__(
        self, path: Path, facts: Probe, config: Config, feed: Feed, *, camera: str, start_s: float,
        duration_s: float | None, track_base: int, on_progress: Callable[[float], None] | None,
        crops: BestCrops | None, check: Callable[[], None] | None,
    ) -> None:
        self.feed = feed
        self.crops = crops
        self.check = check
        self.on_progress = on_progress
        fps = config.analysis.fps
        size = decode_size(facts.width, facts.height, config.analysis.size)
        self.scale = (facts.width / size[0], facts.height / size[1])
        self.started = time.monotonic()
        length_s = facts.duration_s - start_s if duration_s is None else duration_s
        self.first_index = round(start_s * fps)
        preroll_s = min(start_s, PREROLL_S)
        self.reader = FrameReader(
            path, fps=fps, size=size, start_s=start_s - preroll_s,
            duration_s=None if duration_s is None else duration_s + preroll_s,
            timeout_s=60.0 + DECODE_TIMEOUT_PER_MEDIA_S * (length_s + preroll_s),
        )
        if feed.stateful:
            feed.call(lambda e: e.reset())
        self.tracker = Tracker(max_age_frames=max(1, round(TRACK_MAX_AGE_S * fps)), first_id=track_base + 1)
        self.result = Analysis([], SummaryBuilder(), length_s, 0.0)
        self.best_area = 0.0
        self.counts_before = (feed.frames, feed.batches)
        self.analyzers = build_analyzers(config.analyzers, AnalyzerContext(camera, fps))
        self.gate: MotionDetector | None = None
        if config.analysis.motion_gate:
            self.gate = MotionDetector.from_config(config.engine, fps, max_side=MOTION_GATE_SIDE)
            self.gate.reset()
        self.pending: deque[Pending] = deque()
        self.in_flight = 0
        self.expected_frames = max(1.0, length_s * fps)
        self.next_progress = time.monotonic() + PROGRESS_EVERY_S

    def run(self) -> Analysis:
        """Every frame of the range through the engine, recorded in order; the analysis."""
        for frame in self.reader:
            if self.check is not None:
                self.check()
            if frame.index < self.first_index:
                self.preroll(frame)
            else:
                self.report_progress(frame)
                self.submit(frame)
            self.collect()
        self.collect(final=True)
        return self.finish()

    def preroll(self, frame: Frame) -> None:
        """A frame before the segment: background models learn the scene, as in one pass; nothing recorded."""
        if self.gate is not None:
            self.gate.detect(frame.image)
        if self.feed.stateful:
            self.pending.append((None, self.feed.submit(frame.image)))
            self.in_flight += 1

    def report_progress(self, frame: Frame) -> None:
        if self.on_progress is not None and time.monotonic() >= self.next_progress:
            self.on_progress(min(1.0, (frame.index - self.first_index) / self.expected_frames))
            self.next_progress = time.monotonic() + PROGRESS_EVERY_S

    def submit(self, frame: Frame) -> None:
        """Queue a frame in order: to the engine, or (static behind the motion gate) with no result to wait for."""
        for analyzer in self.analyzers:
            analyzer.observe(frame.image, frame.pts_s)
        if self.gate is not None and not self.gate.detect(frame.image):
            # a static frame's pixels are not kept
            self.pending.append((Frame(frame.index, frame.pts_s, _NO_IMAGE), None))
        else:
            self.pending.append((frame, self.feed.submit(frame.image)))
            self.in_flight += 1

    def collect(self, final: bool = False) -> None:
        """Record the frames at the head of the queue whose results are in (all of them when ``final``).

        Waits for a result only when the window is full (or at the end), so the next batch
        gathers while one runs.
        """
        feed = self.feed
        while self.pending:
            frame, future = self.pending[0]
            if future is not None and not future.done():
                full = self.in_flight >= feed.window or len(self.pending) >= feed.window + STATIC_FLUSH_FRAMES
                if not (final or full):
                    return
                feed.result(future, check=self.check)
            self.pending.popleft()
            found: list[Detection] = []
            if future is not None:
                self.in_flight -= 1
                found = future.result()
            if frame is not None:
                self.record(frame, found)

    def record(self, frame: Frame, found: list[Detection]) -> None:
        """Track, annotate and count one frame's detections; keep the busiest frame and the crops."""
        sx, sy = self.scale
        tracked = self.tracker.update(frame.index, [d.scaled(sx, sy) for d in found])
        for analyzer in self.analyzers:
            tracked = analyzer.annotate(tracked)
        result = self.result
        result.summary.add(frame.pts_s, tracked)
        for det in tracked:
            if det.track is not None:
                result.track_first.setdefault(det.track, (det.label, det.box, frame.pts_s))
                result.track_last[det.track] = (det.label, det.box, frame.pts_s)
        if not tracked:
            return
        if self.crops is not None:
            self.crops.add(frame.image, frame.pts_s, tracked, image_scale=(1 / sx, 1 / sy))
        result.frames.append(FrameResult(frame.index, frame.pts_s, tracked))
        area = sum((d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in tracked)
        if area > self.best_area:
            self.best_area, result.best_frame, result.best_detections = area, frame.image, tracked

    def finish(self) -> Analysis:
        """The analysis, with this pass's share of the engine's batches and the analyzers' summaries."""
        frames_before, batches_before = self.counts_before
        result = self.result
        result.engine_frames = self.feed.frames - frames_before
        result.engine_calls = round(self.feed.batches - batches_before, 3)
        result.analyzers = analyzer_summaries(self.analyzers)
        result.wall_s = time.monotonic() - self.started
        return result


def save_thumbnail(analysis: Analysis, facts: Probe, target: Path) -> Path | None:
    """The busiest analysed frame with its boxes drawn, as a JPEG; None when nothing was detected."""
    if analysis.best_frame is None:
        return None
    image = cv2.resize(analysis.best_frame, (facts.width, facts.height)) if facts.width <= 1920 else None
    if image is None:
        image = analysis.best_frame.copy()
        scale = (analysis.best_frame.shape[1] / facts.width, analysis.best_frame.shape[0] / facts.height)
    else:
        scale = (1.0, 1.0)
    for det in analysis.best_detections:
        x1, y1, x2, y2 = (int(v * s) for v, s in zip(det.box, scale * 2, strict=True))
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 255, 0), 2)
        cv2.putText(image, f"{det.label} {det.track}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 255, 0), 1)
    try:
        with atomic_target(target, suffix=".part.jpg") as partial:  # OpenCV picks the format by extension
            if not cv2.imwrite(str(partial), image):
                raise _NotWritten
    except _NotWritten:
        return None
    return target


class _NotWritten(Exception):
    """OpenCV could not encode or write the image (it says no more than that)."""
