"""Analyse one spooled video: decode → engine → track → summary. No Celery in here."""

from __future__ import annotations

import logging
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
from vidwatch.engines.base import Detection, Engine
from vidwatch.engines.batcher import InlineStream, Stream
from vidwatch.engines.motion import MotionDetector
from vidwatch.media.decode import Frame, FrameReader, decode_size
from vidwatch.media.probe import Probe
from vidwatch.results.crops import BestCrops
from vidwatch.results.summary import SummaryBuilder
from vidwatch.results.writer import FrameResult
from vidwatch.tasks.track import Tracker

logger = logging.getLogger(__name__)

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
    feed: Feed = engine if isinstance(engine, Stream | InlineStream) else InlineStream(engine, config.engine.batch)
    fps = config.analysis.fps
    size = decode_size(facts.width, facts.height, config.analysis.size)
    sx, sy = facts.width / size[0], facts.height / size[1]
    started = time.monotonic()
    length_s = facts.duration_s - start_s if duration_s is None else duration_s
    first_index = round(start_s * fps)
    preroll_s = min(start_s, PREROLL_S)
    reader = FrameReader(
        path, fps=fps, size=size, start_s=start_s - preroll_s,
        duration_s=None if duration_s is None else duration_s + preroll_s,
        timeout_s=60.0 + DECODE_TIMEOUT_PER_MEDIA_S * (length_s + preroll_s),
    )
    if feed.stateful:
        feed.call(lambda e: e.reset())
    tracker = Tracker(max_age_frames=max(1, round(TRACK_MAX_AGE_S * fps)), first_id=track_base + 1)
    builder = SummaryBuilder(
        fps, min_gap_s=config.analysis.min_gap_seconds, min_activity_s=config.analysis.min_activity_seconds
    )
    result = Analysis([], builder, length_s, 0.0)
    best_area = 0.0
    frames_before, batches_before = feed.frames, feed.batches

    analyzers = build_analyzers(config.analyzers, AnalyzerContext(camera, fps))
    gate = None
    if config.analysis.motion_gate:
        gate = MotionDetector.from_config(config.engine, fps, max_side=MOTION_GATE_SIDE)
        gate.reset()

    def record(frame: Frame, found: list[Detection]) -> None:
        nonlocal best_area
        tracked = tracker.update(frame.index, [d.scaled(sx, sy) for d in found])
        for analyzer in analyzers:
            tracked = analyzer.annotate(tracked)
        builder.add(frame.pts_s, tracked)
        for det in tracked:
            if det.track is not None:
                result.track_first.setdefault(det.track, (det.label, det.box, frame.pts_s))
                result.track_last[det.track] = (det.label, det.box, frame.pts_s)
        if tracked:
            if crops is not None:
                crops.add(frame.image, frame.pts_s, tracked, image_scale=(1 / sx, 1 / sy))
            result.frames.append(FrameResult(frame.index, frame.pts_s, tracked))
            area = sum((d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in tracked)
            if area > best_area:
                best_area, result.best_frame, result.best_detections = area, frame.image, tracked

    # Frames in order, each with its engine result to come (None: the motion gate kept it
    # from the engine); a pre-roll frame (frame None) only teaches a stateful engine the scene.
    pending: deque[tuple[Frame | None, Future[list[Detection]] | None]] = deque()
    in_flight = 0

    def drain(final: bool = False) -> None:
        nonlocal in_flight
        while pending:
            frame, future = pending[0]
            if future is not None and not future.done():
                full = in_flight >= feed.window or len(pending) >= feed.window + STATIC_FLUSH_FRAMES
                if not (final or full):
                    return
                feed.result(future, check=check)
            pending.popleft()
            if future is not None:
                in_flight -= 1
                found = future.result()
            else:
                found = []
            if frame is not None:
                record(frame, found)

    expected_frames = max(1.0, length_s * fps)
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    for frame in reader:
        if check is not None:
            check()
        if frame.index < first_index:
            # Pre-roll: background models learn the scene before the segment starts, as they
            # would have in one pass; nothing is recorded for these frames.
            if gate is not None:
                gate.detect(frame.image)
            if feed.stateful:
                pending.append((None, feed.submit(frame.image)))
                in_flight += 1
                drain()
            continue
        if on_progress is not None and time.monotonic() >= next_progress:
            on_progress(min(1.0, (frame.index - first_index) / expected_frames))
            next_progress = time.monotonic() + PROGRESS_EVERY_S
        for analyzer in analyzers:
            analyzer.observe(frame.image, frame.pts_s)
        if gate is not None and not gate.detect(frame.image):
            # a static frame's pixels are not kept
            pending.append((Frame(frame.index, frame.pts_s, _NO_IMAGE), None))
        else:
            pending.append((frame, feed.submit(frame.image)))
            in_flight += 1
        drain()
    drain(final=True)
    result.engine_frames = feed.frames - frames_before
    result.engine_calls = round(feed.batches - batches_before, 3)
    result.analyzers = analyzer_summaries(analyzers)
    result.wall_s = time.monotonic() - started
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
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part.jpg")
    if not cv2.imwrite(str(partial), image):
        return None
    partial.replace(target)
    return target
