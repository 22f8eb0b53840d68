"""Pipeline benchmark: is the engine fed, is decode the floor, do segments scale, motion's in-process cost?

Run: ``.venv/bin/python bench/pipeline.py [--seconds 120] [--height 720]``
(``--seconds 600 --height 1080 --only 3`` for the issue's 10-minute 1080p video: about
15 minutes on 2 cores; ``--keep FILE`` keeps the clip, ``--video FILE`` reuses it).

Each ratio is measured in the same run, baseline and candidate interleaved, best of ``--repeats``:
1. onnx engine (YOLOv8n-sized model built by bench/engines.py, one core: the stand-in for a GPU),
   fed as a worker feeds it (a batcher thread): pipeline analysed frames/s ÷ the engine's own
   frames/s on the same frames already in memory — goal ≥ 0.9.
2. opencv motion at the full frame rate: pipeline frames/s ÷ ``ffmpeg -f null`` decode-only
   frames/s of the same file — goal ≥ 0.8 (decode is the floor). A second line shows the pipeline's own decode
   (FrameReader, no engine: it also scales and pipes BGR) and the CPU seconds of each run: where decode-only
   already keeps every core busy, the analysis cannot overlap with decode and the ratio is a sum of CPU costs.
3. the video in segments: 2 worker processes ÷ 1 worker process wall time — goal ≤ 0.6.
   (The processes run the segment code the Celery tasks run, without the broker round trips.)
4. one part, in-process: motion only (no people detector), vidwatch's ``analyze()`` called in this
   process (no daemon, broker, normalize, worker or result writing) ÷ the same motion detector in a
   hand-written single-process ``cv2.VideoCapture`` loop. It is not the product's speed against a
   user's script: that figure, end to end with ``vidwatch up``, is ``bench/backlog.py``'s.
5. writing a segment's results to Redis (one atomic script: detections, index, partial) ÷ the
   segment's analysis wall time — goal ≤ 0.05. Needs Redis at 127.0.0.1:6379 (a private key prefix).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines import best_of, yolov8n_sized  # bench/engines.py

from vidwatch.config import Config, load_config
from vidwatch.engines import load_engine
from vidwatch.engines.batcher import Batcher
from vidwatch.engines.motion import MotionDetector
from vidwatch.media.decode import FrameReader, decode_size
from vidwatch.media.probe import probe
from vidwatch.tasks.pipeline import analyze
from vidwatch.tasks.segments import keyframe_times, plan

MOTION_SIZE = 320  # full-frame-rate motion runs on small frames (as the motion gate does): a yes/no needs no detail


def make_video(path: Path, seconds: int, height: int) -> Path:
    width = height * 16 // 9 // 2 * 2
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
         f"testsrc2=s={width}x{height}:r=30:d={seconds}", "-f", "lavfi", "-i", "color=c=white:s=80x80:r=30",
         "-filter_complex", "[0][1]overlay=x='mod(t*120,W)':y='H/2+100*sin(t)':shortest=1,format=yuv420p",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", str(path)],
        check=True, timeout=3600,
    )
    return path


def config_for(**overrides: str) -> Config:
    return load_config(None, environ={f"VIDWATCH_{k.upper()}": v for k, v in overrides.items()})


def fed_engine(video: Path, repeats: int, folder: Path) -> None:
    model, _ = yolov8n_sized(folder / "yolov8n-sized.onnx")
    # The figure asks whether the engine is kept fed. On a CPU-only host the engine and the
    # decoder share the cores, so the engine gets one core (one intra-op thread), as an
    # accelerator is a device of its own; decode and the pipeline have the rest.
    config = config_for(engine__kind="onnx", engine__model=str(model), engine__batch="8", engine__threads="1",
                        analysis__fps="2", analysis__size="640")
    facts = probe(video)
    engine = load_engine(config.engine, config.analysis.fps)
    size = decode_size(facts.width, facts.height, config.analysis.size)
    frames = [f.image.copy() for f in FrameReader(video, fps=config.analysis.fps, size=size, duration_s=20)]
    engine.infer(frames[:8])  # warm up

    def engine_only() -> None:
        for start in range(0, len(frames), 8):
            engine.infer(frames[start : start + 8])

    # as a worker runs it: the engine in its batcher's thread, fed by the segment's stream
    batcher = Batcher(lambda: engine, batch=8, timeout_s=config.engine.batch_timeout_ms / 1000)
    batcher.start()

    def pipeline() -> None:
        with batcher.stream() as stream:
            analyze(video, facts, config, stream, duration_s=20)

    engine_s = pipeline_s = float("inf")
    try:
        for _ in range(repeats):
            engine_s = min(engine_s, best_of(1, engine_only))
            pipeline_s = min(pipeline_s, best_of(1, pipeline))
    finally:
        batcher.close()
    n = len(frames)
    print(f"1. onnx: pipeline {n / pipeline_s:.1f} frames/s, engine alone {n / engine_s:.1f} frames/s "
          f"-> ratio {engine_s / pipeline_s:.2f} (goal >= 0.9); batch fill {batcher.stats.fill(8)}")


def cpu_s(func: Callable[[], object]) -> tuple[float, float, float]:
    """Wall seconds of ``func``, and the CPU seconds it spent in this process and in its (waited-for) children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    func()
    wall_s = time.perf_counter() - started
    own2, kids2 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (wall_s, own2.ru_utime + own2.ru_stime - own.ru_utime - own.ru_stime,
            kids2.ru_utime + kids2.ru_stime - kids.ru_utime - kids.ru_stime)


def decode_floor(video: Path, repeats: int) -> None:
    facts = probe(video)
    config = config_for(engine__kind="opencv", engine__detectors="motion", analysis__fps=f"{facts.fps:g}",
                        analysis__size=str(MOTION_SIZE))
    engine = load_engine(config.engine, config.analysis.fps)
    size = decode_size(facts.width, facts.height, MOTION_SIZE)

    def decode() -> None:
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(video), "-f", "null", "-"], check=True)

    def reader() -> None:  # the pipeline's own decode (fps filter, scale, BGR through the pipe), no engine
        for _ in FrameReader(video, fps=facts.fps, size=size):
            pass

    def pipeline() -> None:
        analyze(video, facts, config, engine)

    runs: dict[str, list[tuple[float, float, float]]] = {"decode": [], "reader": [], "pipeline": []}
    for _ in range(repeats):
        for name, func in (("decode", decode), ("reader", reader), ("pipeline", pipeline)):
            runs[name].append(cpu_s(func))
    best = {name: min(times) for name, times in runs.items()}  # the fastest run, with its CPU seconds
    decode_s, reader_s, pipeline_s = (best[name][0] for name in ("decode", "reader", "pipeline"))
    frames = facts.duration_s * facts.fps
    print(f"2. motion at {facts.fps:g} fps on {MOTION_SIZE} px frames: pipeline {frames / pipeline_s:.0f} frames/s, "
          f"decode-only {frames / decode_s:.0f} frames/s -> ratio {decode_s / pipeline_s:.2f} (goal >= 0.8)")
    cpus = len(os.sched_getaffinity(0))
    print(f"   the pipeline's decode alone (FrameReader: + fps, scale, BGR pipe) {frames / reader_s:.0f} frames/s "
          f"-> ratio {decode_s / reader_s:.2f} of decode-only; CPU seconds (ffmpeg + Python) on {cpus} cores: "
          + ", ".join(f"{name} {best[name][2]:.1f} + {best[name][1]:.1f}" for name in runs))


def _segment_job(args: tuple[str, float, float | None, int]) -> int:
    video, start, length, k = args
    config = config_for(engine__kind="opencv", engine__detectors="motion,person", analysis__fps="5")
    engine = load_engine(config.engine, config.analysis.fps)
    facts = probe(Path(video))
    return analyze(Path(video), facts, config, engine, start_s=start, duration_s=length, track_base=k).summary.frames


def scaling(video: Path, repeats: int) -> None:
    facts = probe(video)
    segments = plan(facts.duration_s, 5, max(5.0, facts.duration_s / 8), keyframe_times(video))
    jobs = [(str(video), s, None if k == len(segments) - 1 else d, k) for k, (s, d) in enumerate(segments)]

    def run(processes: int) -> None:
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(_segment_job, jobs))

    one = two = float("inf")
    for _ in range(repeats):
        one = min(one, best_of(1, lambda: run(1)))
        two = min(two, best_of(1, lambda: run(2)))
    print(f"3. {len(segments)} segments: 1 worker process {one:.1f} s, 2 worker processes {two:.1f} s "
          f"-> ratio {two / one:.2f} (goal <= 0.6)")


def hand_loop(video: Path, fps: float, config: Config) -> int:
    """What a user would write: read every frame, keep every n-th, resize, run the same motion detector."""
    capture = cv2.VideoCapture(str(video))
    source_fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    step = max(1, round(source_fps / fps))
    detector = MotionDetector.from_config(config.engine, fps)
    detector.reset()
    index = analysed = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            height, width = frame.shape[:2]
            size = decode_size(width, height, config.analysis.size)
            detector.detect(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
            analysed += 1
        index += 1
    capture.release()
    return analysed


def versus_hand_loop(video: Path, repeats: int) -> None:
    config = config_for(engine__kind="opencv", engine__detectors="motion", analysis__fps="5", analysis__size="640")
    facts = probe(video)
    engine = load_engine(config.engine, config.analysis.fps)
    frames = [0]

    def ours() -> None:
        frames[0] = analyze(video, facts, config, engine).summary.frames

    hand_s = ours_s = float("inf")
    for _ in range(repeats):
        hand_s = min(hand_s, best_of(1, lambda: hand_loop(video, 5, config)))
        ours_s = min(ours_s, best_of(1, ours))
    print(f"4. one part, in-process, motion only at 5 fps, {frames[0]} frames: cv2.VideoCapture loop {hand_s:.1f} s, "
          f"vidwatch's analyze() {ours_s:.1f} s -> {hand_s / ours_s:.2f}x (not end to end: see bench/backlog.py)")


def write_cost(video: Path, repeats: int) -> None:
    import uuid

    import redis

    from vidwatch.results.keys import Keys
    from vidwatch.results.writer import ResultWriter
    from vidwatch.tasks import join

    config = config_for(engine__kind="opencv", engine__detectors="motion,person", analysis__fps="5")
    facts = probe(video)
    engine = load_engine(config.engine, config.analysis.fps)
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    keys = Keys(f"vwbench-{uuid.uuid4().hex[:8]}")
    writer = ResultWriter.from_config(client, keys, config)
    try:
        analyse_s = write_s = float("inf")
        frames = 0
        for attempt in range(repeats):
            started = time.perf_counter()
            analysis = analyze(video, facts, config, engine, duration_s=min(60.0, facts.duration_s))
            analyse_s = min(analyse_s, time.perf_counter() - started)
            partial = join.partial(analysis, start_s=0.0, end_s=analysis.duration_s, wall_s=analyse_s, worker="bench",
                                   thumbnail=None, thumbnail_area=0.0)
            frames = sum(1 for f in analysis.frames if f.detections)
            started = time.perf_counter()
            writer.write_segment(f"bench{attempt}", 0, "bench", time.time(), analysis.frames, partial=partial)
            write_s = min(write_s, time.perf_counter() - started)
    finally:
        stale = list(client.scan_iter(match=f"{keys.prefix}:*", count=1000))
        if stale:
            client.delete(*stale)
    print(f"5. results of a {min(60.0, facts.duration_s):.0f} s segment ({frames} entries): written in "
          f"{write_s * 1000:.1f} ms, analysed in {analyse_s:.1f} s -> ratio {write_s / analyse_s:.4f} (goal <= 0.05)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", type=int, choices=[1, 2, 3, 4, 5], help="run one figure")
    parser.add_argument("--video", type=Path, help="reuse this clip (made by an earlier run with --keep)")
    parser.add_argument("--keep", type=Path, help="make the clip here and keep it, for a later --video")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.video is not None:
            video = args.video
        else:
            video = make_video(args.keep or folder / "bench.mp4", args.seconds, args.height)
        facts = probe(video)
        print(f"video: {facts.duration_s:.0f} s at {facts.height}p{facts.fps:g}")
        steps = {1: lambda: fed_engine(video, args.repeats, folder), 2: lambda: decode_floor(video, args.repeats),
                 3: lambda: scaling(video, args.repeats), 4: lambda: versus_hand_loop(video, args.repeats),
                 5: lambda: write_cost(video, args.repeats)}
        for number, step in steps.items():
            if args.only in (None, number):
                step()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
