"""Benchmark normalization against plain ffmpeg, baseline and candidate in the same run.

    .venv/bin/python bench/normalize.py [--seconds 60] [--repeat 5]

1. Conforming 1080p30 H.264 (``--seconds`` long): ``normalize()`` (a remux) ÷ ``ffmpeg -i
   in -c copy out.mp4`` of the same file. Goal ≤ 1.2: no hidden re-encode, no double read.
   Also shown: the whole ingest (probe + tail decode + remux) ÷ the same copy.
2. Non-conforming input (MJPEG AVI, VFR MKV; 720p): ``normalize()`` (a transcode) ÷ the
   equivalent plain ffmpeg CLI transcode with the same settings. Goal ≤ 1.05.
3. A mixed set (conforming, MJPEG, VFR): auto mode ÷ "transcode everything" (what
   Tdarr/Unmanic-style tools do), total time.

Inputs are generated here. Runs are interleaved (baseline, candidate, baseline, ...),
repeated, and the median taken, after one warm-up round each.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vidwatch.config import NormalizeConfig
from vidwatch.media.normalize import admit, normalize
from vidwatch.media.probe import probe
from vidwatch.media.verify import verify_tail

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]


def make(path: Path, *args: str) -> Path:
    if not path.exists():
        subprocess.run([*FFMPEG, *args, str(path)], check=True, timeout=1800)
    return path


def inputs(folder: Path, seconds: float) -> dict[str, Path]:
    short = max(5.0, seconds / 3)
    src = "testsrc2=s={s}:r=30:d={d}"
    return {
        "conforming": make(folder / "conforming-1080p30.mp4", "-f", "lavfi", "-i", src.format(s="1920x1080", d=seconds),
                           "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p"),
        "mjpeg": make(folder / "mjpeg-720p30.avi", "-f", "lavfi", "-i", src.format(s="1280x720", d=short),
                      "-c:v", "mjpeg", "-q:v", "4", "-f", "avi"),
        "vfr": make(folder / "vfr-720p.mkv", "-f", "lavfi", "-i", src.format(s="1280x720", d=short),
                    "-vf", r"select='not(eq(mod(n\,5)\,2))'", "-fps_mode", "vfr",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
    }


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (ffmpeg): what other load on the host does not add."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    started, cpu = time.perf_counter(), _cpu_s()
    run()
    return time.perf_counter() - started, _cpu_s() - cpu


def compare(name: str, baseline: Callable[[], object], candidate: Callable[[], object], repeat: int) -> float:
    """Median wall and CPU time of each, interleaved; returns the wall-time ratio candidate / baseline."""
    timed(baseline)
    timed(candidate)  # warm-up: page cache, ffmpeg's first start
    base, cand = [], []
    for _ in range(repeat):
        base.append(timed(baseline))
        cand.append(timed(candidate))
    b, c = statistics.median(w for w, _ in base), statistics.median(w for w, _ in cand)
    bc, cc = statistics.median(u for _, u in base), statistics.median(u for _, u in cand)
    print(f"{name:<46} wall {b:7.3f} s -> {c:7.3f} s  ratio {c / b:6.3f}   "
          f"cpu {bc:7.3f} s -> {cc:7.3f} s  ratio {cc / bc:6.3f}")
    return c / b


def cli(*args: str) -> Callable[[], object]:
    return lambda: subprocess.run([*FFMPEG, *args], check=True, timeout=1800)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the conforming 1080p30 clip")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs of each, interleaved")
    parser.add_argument("--keep", type=Path, help="folder to generate (and keep) the inputs in")
    options = parser.parse_args()
    folder = options.keep or Path(tempfile.mkdtemp(prefix="vidwatch-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "out"
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    clips = inputs(folder, options.seconds)
    print(f"inputs generated in {time.perf_counter() - started:.1f} s under {folder}")
    settings = NormalizeConfig()
    facts = {name: probe(path) for name, path in clips.items()}
    for name, f in facts.items():
        print(f"  {name:<11} {f.codec} {f.width}x{f.height} {f.fps:g} fps vfr={f.vfr} {f.duration_s:.1f} s "
              f"{f.size_bytes / 1e6:.1f} MB")
    repeat = options.repeat
    print(f"\nmedian of {repeat} interleaved runs, baseline -> candidate (wall time is noisy on shared cores; "
          "CPU time is not)")

    conforming = clips["conforming"]
    copy = cli("-i", str(conforming), "-c", "copy", str(out / "copy.mp4"))
    remux = compare("1. conforming: normalize (remux) / -c copy",
                    copy, lambda: normalize(conforming, out / "remux.mp4", facts["conforming"], settings), repeat)

    def ingest() -> None:
        f = probe(conforming, max_pixels=settings.max_pixels)
        admit(f, settings, conforming)
        verify_tail(conforming, f, tail_s=settings.verify_tail_seconds, max_pixels=settings.max_pixels)
        normalize(conforming, out / "ingest.mp4", f, settings)

    whole = compare("   conforming: probe+verify+remux / -c copy", copy, ingest, repeat)

    ratios = {}
    for name in ("mjpeg", "vfr"):
        source, f = clips[name], facts[name]
        plain = cli("-i", str(source), "-map", "0:v:0", "-vf", "format=yuv420p", "-c:v", settings.encoder,
                    "-preset", settings.preset, "-crf", str(settings.crf), "-r", f"{f.fps:g}", "-fps_mode", "cfr",
                    "-movflags", "+faststart", "-f", "mp4", str(out / f"plain-{name}.mp4"))
        ratios[name] = compare(f"2. {name}: normalize (transcode) / plain CLI", plain,
                               lambda s=source, f=f, n=name: normalize(s, out / f"norm-{n}.mp4", f, settings),
                               repeat)

    everything = NormalizeConfig(mode="transcode")

    def mixed(config: NormalizeConfig) -> Callable[[], object]:
        return lambda: [normalize(clips[n], out / f"mixed-{n}.mp4", facts[n], config) for n in clips]

    mix = compare("3. mixed set: auto / transcode everything", mixed(everything), mixed(settings), max(1, repeat - 2))

    print("\nsummary (wall-time ratios)")
    print(f"  remux / copy                 {remux:6.3f}   (goal <= 1.2)")
    print(f"  probe+verify+remux / copy    {whole:6.3f}   (the whole ingest; informative)")
    for name, ratio in ratios.items():
        print(f"  transcode {name:<5} / CLI       {ratio:6.3f}   (goal <= 1.05)")
    print(f"  auto / transcode everything  {mix:6.3f}")


if __name__ == "__main__":
    main()
