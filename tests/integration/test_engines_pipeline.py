"""Model engines and the motion gate on real clips: decode (ffmpeg) → engine → boxes in source pixels."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import moving_square_clip
from tests.models import square_detector
from vidwatch.analyzers import EdgesSettings, GroundSettings, SharpnessSettings
from vidwatch.config import AnalysisConfig, Config, EngineConfig
from vidwatch.engines import Detection, create_engine
from vidwatch.engines.batcher import Batcher
from vidwatch.media import probe
from vidwatch.tasks.pipeline import analyze

SQUARE = 40  # the clip helper's white square, in source pixels, at y = 100


def expected_x(pts: float) -> float:
    """Where the clip helper draws the square's left edge: 20 until 2 s, then 100 px/s, 220 from 4 s."""
    return 20.0 if pts < 2 else 220.0 if pts >= 4 else 20.0 + (pts - 2) * 100


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return square_detector(tmp_path_factory.mktemp("models") / "squares.onnx")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        size: moving_square_clip(folder / f"squares-{size}.mp4", size=size) for size in ("320x240", "640x480")
    }


def _config(model: Path, *, batch: int, size: int = 320, motion_gate: bool = False) -> Config:
    return Config(
        analysis=AnalysisConfig(fps=5, size=size, motion_gate=motion_gate),
        engine=EngineConfig(kind="onnx", model=model, batch=batch),
    )


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("source", ["320x240", "640x480"])
def test_onnx_finds_the_square_in_every_frame(
    clips: dict[str, Path], model: Path, source: str, batch: int
) -> None:
    config = _config(model, batch=batch)
    engine = create_engine(config.engine, config.analysis.fps)
    engine.load()
    clip = clips[source]
    analysis = analyze(clip, probe(clip), config, engine)
    assert analysis.summary.frames == 30
    assert len(analysis.frames) == 30, "one detection in every analysed frame"
    for item in analysis.frames:
        (det,) = item.detections
        assert det.label == "square"
        x1, y1, x2, y2 = det.box
        # the fps filter picks a source frame near each pts: while moving, allow ±2.5 source frames of time
        earliest, latest = expected_x(item.pts_s - 0.1), expected_x(item.pts_s + 0.1)
        assert earliest - 2 <= x1 <= latest + 2, item
        assert (y1, x2 - x1, y2 - y1) == pytest.approx((100, SQUARE, SQUARE), abs=2.0), item
        if not 1.8 < item.pts_s < 4.2:
            assert x1 == pytest.approx(expected_x(item.pts_s), abs=2.0), item
    assert analysis.summary.labels["square"].summary().tracks == 1


class CountingEngine:
    """Wraps an engine and counts the frames it was asked to look at."""

    def __init__(self, engine: object) -> None:
        self.engine = engine
        self.kind = "counting"
        self.frames = 0

    def load(self) -> None:
        self.engine.load()

    def reset(self) -> None:
        self.engine.reset()

    def close(self) -> None:
        self.engine.close()

    def infer(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        self.frames += len(frames)
        return self.engine.infer(frames)


def test_motion_gate_runs_the_detector_only_while_something_moves(clips: dict[str, Path], model: Path) -> None:
    clip = clips["320x240"]
    facts = probe(clip)
    runs = {}
    for gated in (False, True):
        config = _config(model, batch=4, motion_gate=gated)
        engine = CountingEngine(create_engine(config.engine, config.analysis.fps))
        engine.load()
        runs[gated] = (analyze(clip, facts, config, engine), engine.frames)
    (ungated, ungated_frames), (gated, gated_frames) = runs[False], runs[True]
    assert ungated_frames == 30
    assert gated.summary.frames == 30  # every frame still counts as analysed
    # the square moves from 2 s to 4 s: about 10 of 30 frames at 5 fps
    assert 8 <= gated_frames <= 13
    pts = [item.pts_s for item in gated.frames]
    assert pts and min(pts) >= 1.9 and max(pts) <= 4.3
    moving = {item.frame: item.detections for item in ungated.frames if 2.0 <= item.pts_s < 4.0}
    for item in gated.frames:
        if item.frame in moving:
            assert [d.box for d in item.detections] == [d.box for d in moving[item.frame]]


def test_analyzers_reach_the_summary_and_the_detections(clips: dict[str, Path], model: Path) -> None:
    clip = clips["640x480"]
    cm_per_px = [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]
    config = _config(model, batch=8).model_copy(
        update={
            "analyzers": [
                SharpnessSettings(min_duration_s=1.0),
                GroundSettings(cameras={"cam1": cm_per_px}),
                EdgesSettings(),
            ]
        }
    )
    engine = create_engine(config.engine, config.analysis.fps)
    engine.load()
    analysis = analyze(clip, probe(clip), config, engine, camera="cam1")
    assert list(analysis.analyzers) == ["sharpness", "ground", "edges"]
    # a generated clip has no sensor noise: its still stretches (0-2 s, 4-6 s) are frozen frames
    frozen = analysis.analyzers["sharpness"]["frozen"]
    assert len(frozen) == 2 and frozen[0][0] <= 0.4 and frozen[1][1] == pytest.approx(6.0, abs=0.3)
    assert analysis.analyzers["ground"] == {"homography": True, "projected": 30}
    for item in analysis.frames:
        (det,) = item.detections
        x1, _, x2, y2 = det.box
        assert det.world == pytest.approx(((x1 + x2) / 2 * 0.01, y2 * 0.01))


def test_a_pipelined_engine_gets_several_batches_per_call(ffmpeg: str, tmp_path: Path) -> None:
    """tensorrt overlaps a batch's upload with the previous batch's inference inside one infer():
    the pipeline must hand it more than one batch at a time for that to happen."""

    class Recording:
        kind = "fake"
        pipelined_batches = 2

        def __init__(self) -> None:
            self.calls: list[int] = []

        def load(self) -> None: ...

        def reset(self) -> None: ...

        def close(self) -> None: ...

        def infer(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
            self.calls.append(len(frames))
            return [[] for _ in frames]

    clip = moving_square_clip(tmp_path / "c.mp4", seconds=4)
    config = Config(engine=EngineConfig(batch=4), analysis=AnalysisConfig(fps=5))
    engine = Recording()
    result = analyze(clip, probe(clip), config, engine)  # type: ignore[arg-type]
    assert result.summary.frames == 20
    assert engine.calls[:2] == [8, 8] and sum(engine.calls) == 20


def test_segments_in_threads_through_one_batcher_find_what_each_finds_alone(
    clips: dict[str, Path], model: Path
) -> None:
    """Two segments analysed at once in one process share the engine's batches; each result is unchanged."""
    config = _config(model, batch=8)
    clip = clips["320x240"]
    facts = probe(clip)
    engine = create_engine(config.engine, config.analysis.fps)
    engine.load()
    cuts = [(0.0, 3.0), (3.0, None)]
    alone = [analyze(clip, facts, config, engine, start_s=s, duration_s=d, track_base=1000 * k)
             for k, (s, d) in enumerate(cuts)]

    def load() -> object:
        shared = create_engine(config.engine, config.analysis.fps)
        shared.load()
        return shared

    batcher = Batcher(load, batch=8, timeout_s=0.05)
    batcher.start()
    together: dict[int, object] = {}

    def run(k: int) -> None:
        start_s, duration_s = cuts[k]
        with batcher.stream() as stream:
            together[k] = analyze(clip, facts, config, stream, start_s=start_s, duration_s=duration_s,
                                  track_base=1000 * k)

    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(len(cuts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        batcher.close()
    assert sorted(together) == [0, 1]
    for k, reference in enumerate(alone):
        result = together[k]
        assert [(f.frame, [(d.label, d.box, d.track) for d in f.detections]) for f in result.frames] == [
            (f.frame, [(d.label, d.box, d.track) for d in f.detections]) for f in reference.frames
        ]
        assert result.engine_frames == reference.engine_frames == len(reference.frames)
    assert batcher.stats.frames == sum(r.engine_frames for r in alone)
