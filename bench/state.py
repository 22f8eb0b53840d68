"""State benchmark: what one camera costs in Redis and on disk, and Redis memory over days with retention on.

A figure of **one part**: the results as the project's own writers store them (``Records``,
``ResultWriter``, ``BestCrops``, ``render_timeline``, ``write_sidecar``), fed with synthetic scenes,
against a private Redis prefix (deleted afterwards). No daemon, broker, ffmpeg or engine runs: it
measures what the results cost, not what analysing costs.

Needs Redis at --redis-url (default redis://127.0.0.1:6379/0); for the Redis CPU figure, a private one:
  redis-server --port 6391 --save '' --appendonly no --daemonize yes
  .venv/bin/python bench/state.py --redis-url redis://127.0.0.1:6391/0 [--minutes 60] [--days 10] [--files-per-day 96]

Figures:
1. per camera-hour at ``--fps`` (5) in one-minute files, for a quiet, a typical and a busy camera
   (0, 2 and 20 objects moving through every frame): Redis bytes (``MEMORY USAGE`` of every key
   under the prefix, by kind) and disk bytes (thumbnail, best crop per track, timeline PNG; the
   optional sidecar JSON apart; no condensed clip, the spool or the sources);
2. bytes per analysed frame with detections and per extra detection in ``detections:<camera>``;
3. Redis memory after each of ``--days`` simulated days of a typical camera with retention on
   (``--keep-days``): it must stay flat once retention is reached. Recording time is simulated;
   stream ids are real write times, so the events stream's write-time trim (``XTRIM MINID``) is
   replayed at the write time each simulated day began;
4. the daemon's CPU per one-minute 1080p file: fingerprint, probe, remux (needs ffmpeg; skipped without);
5. ``detections:<camera>`` bytes per analysed frame in three layouts: schema 1 now (compact JSON), schema 1
   before December 2026, and a candidate schema 2 (one entry per second, detections as arrays).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidwatch.config import Config
from vidwatch.detection import Detection
from vidwatch.results.crops import BestCrops
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.results.retention import Cutoffs, Retention
from vidwatch.results.sidecar import write_sidecar
from vidwatch.results.summary import LabelSummary, Summary, SummaryBuilder, merge_activity
from vidwatch.results.timeline import render_timeline
from vidwatch.results.version import analysis_version
from vidwatch.results.writer import FrameResult, ResultWriter

SOURCE = (1920, 1080)
ANALYSED = (640, 360)
SCENES = {"quiet": 0, "typical": 2, "busy": 20}
FILE_S = 60.0
DAY_S = 86400.0


@dataclass
class Mover:
    label: str
    x: float
    y: float
    vx: float
    vy: float
    w: float
    h: float
    colour: tuple[int, int, int]

    def step(self, dt: float) -> None:
        self.x += self.vx * dt
        self.y += self.vy * dt
        if not 0 <= self.x <= SOURCE[0] - self.w:
            self.vx = -self.vx
            self.x = min(max(self.x, 0.0), SOURCE[0] - self.w)
        if not 0 <= self.y <= SOURCE[1] - self.h:
            self.vy = -self.vy
            self.y = min(max(self.y, 0.0), SOURCE[1] - self.h)


class Scene:
    """``n`` objects (people and cars) moving and bouncing through a textured 1080p view, seen at ``fps``."""

    def __init__(self, n: int, fps: float, seed: int = 1) -> None:
        rnd = random.Random(seed)
        noise = np.random.default_rng(seed).integers(0, 255, (ANALYSED[1], ANALYSED[0], 3), dtype=np.uint8)
        self.background = cv2.GaussianBlur(noise, (0, 0), 3)
        self.fps = fps
        self.rnd = rnd
        self.movers = []
        for k in range(n):
            person = k % 2 == 0
            w, h = (60.0, 150.0) if person else (180.0, 100.0)
            speed = rnd.uniform(40, 120) if person else rnd.uniform(150, 400)
            angle = rnd.uniform(0, 2 * math.pi)
            self.movers.append(Mover("person" if person else "car", rnd.uniform(0, SOURCE[0] - w),
                                     rnd.uniform(0, SOURCE[1] - h), speed * math.cos(angle),
                                     speed * math.sin(angle), w, h,
                                     (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))))

    def frame(self) -> tuple[np.ndarray, list[Detection]]:
        image = self.background.copy()
        detections = []
        sx, sy = ANALYSED[0] / SOURCE[0], ANALYSED[1] / SOURCE[1]
        for track, mover in enumerate(self.movers, start=1):
            box = (mover.x, mover.y, mover.x + mover.w, mover.y + mover.h)
            cv2.rectangle(image, (int(box[0] * sx), int(box[1] * sy)), (int(box[2] * sx), int(box[3] * sy)),
                          mover.colour, -1)
            detections.append(Detection(mover.label, self.rnd.uniform(0.4, 0.99), box, track))
            mover.step(1.0 / self.fps)
        return image, detections


def record_fields(camera: str, video_id: str, start_ts: float, path: str) -> dict[str, Any]:
    """What the daemon puts in a record at claim and normalize (the probe facts of a 1080p H.264 file)."""
    return {
        "path": path, "root": "/mnt/nvr", "camera": camera, "fingerprint": uuid.uuid4().hex + uuid.uuid4().hex,
        "size": 45_000_000, "mtime_ns": int((start_ts + FILE_S) * 1e9), "start_ts": f"{start_ts:.3f}",
        "probe_codec": "h264", "probe_width": "1920", "probe_height": "1080", "probe_fps": "25.0",
        "probe_duration_s": f"{FILE_S:.3f}", "probe_vfr": "0", "probe_rotation": "0", "probe_pix_fmt": "yuv420p",
        "probe_bit_rate": "6000000", "probe_has_audio": "0",
    }


class TimedRedis(redis.Redis):
    """A client that adds up the wall time of its commands: round trips, an upper bound of Redis CPU."""

    spent_s = 0.0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        began = time.perf_counter()
        try:
            return super().execute_command(*args, **options)
        finally:
            TimedRedis.spent_s += time.perf_counter() - began


class Camera:
    """One camera's one-minute files written the product's way: record, events, detections, summary, files."""

    def __init__(self, client: redis.Redis, config: Config, camera: str, objects: int, fps: float) -> None:
        self.client = client
        self.config = config
        self.keys = Keys(config.redis.prefix)
        self.records = Records(client, self.keys, events_maxlen=10**9)
        self.writer = ResultWriter(client, self.keys, events_maxlen=10**9, detections_maxlen=10**9,
                                   summaries_maxlen=10**9, analysis=analysis_version(config, engine_kind="onnx"))
        self.camera = camera
        self.scene = Scene(objects, fps)
        self.fps = fps
        self.frames = 0
        self.detections = 0

    def write_file(self, start_ts: float, *, files: bool = True) -> str:
        video_id = uuid.uuid4().hex[:20]
        path = f"/mnt/nvr/{self.camera}/{time.strftime('%Y-%m-%d/%H-%M-%S', time.gmtime(start_ts))}.mp4"
        records, state = self.records, self.config.paths.state_dir
        records.create(video_id, record_fields(self.camera, video_id, start_ts, path), path=path,
                       detail={"size": 45_000_000})
        records.transition(video_id, "normalizing", {"spool_path": f"/var/spool/vidwatch/{video_id}.mp4"},
                           event="normalized", path=path, detail={"method": "remux", "seconds": 0.4})
        records.transition(video_id, "queued", {"published": "1"}, event="queued", path=path, detail={"queue": "gpu"})
        records.transition(video_id, "processing", {"worker": "gpu1:4121"}, event="started", path=path,
                           detail={"worker": "gpu1:4121"})
        self.records.client.xadd(self.keys.events, {"type": "progress", "video_id": video_id, "path": path,
                                                    "ts": f"{time.time():.3f}", "schema": "1",
                                                    "detail": json.dumps({"segment": 0, "segments": 1,
                                                                          "percent": 50.0})})
        builder = SummaryBuilder()
        crops = BestCrops(min_side_px=self.config.summary.crop_min_px)
        frames, busiest, best = [], None, -1
        for i in range(int(FILE_S * self.fps)):
            pts = i / self.fps
            image, detections = self.scene.frame()
            builder.add(pts, detections)
            if files:
                crops.add(image, pts, detections, image_scale=(ANALYSED[0] / SOURCE[0], ANALYSED[1] / SOURCE[1]))
                if len(detections) > best:
                    busiest, best = image, len(detections)
            frames.append(FrameResult(i, pts, detections))
            self.frames += 1 if detections else 0
            self.detections += len(detections)
        self.writer.write_segment(video_id, 0, self.camera, start_ts, frames, partial={"start": 0.0})
        thumbnails, tracks, timeline = [], {}, None
        activity = merge_activity(builder.active_pts, 1 / self.fps, min_gap_s=1.0, min_activity_s=0.0)
        if files:
            if best > 0 and busiest is not None:
                thumb = state / "thumbnails" / f"{video_id}.jpg"
                thumb.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(thumb), cv2.resize(busiest, SOURCE))
                thumbnails.append(str(thumb))
            tracks = {str(t): e for t, e in crops.write(state / "crops" / video_id).items()}
            timeline = str(render_timeline(FILE_S, [list(a) for a in activity], {},
                                           state / "timelines" / f"{video_id}.png"))
        summary = Summary(
            video_id=video_id, path=path, camera=self.camera, duration_s=FILE_S, frames_analyzed=len(frames),
            labels={label: LabelSummary(len(s.tracks), s.max_simultaneous, s.first_pts, s.last_pts)
                    for label, s in builder.labels.items()},
            activity=tuple(activity), thumbnails=(*thumbnails, *(str(e["path"]) for e in tracks.values())),
            processing={"wall_s": 2.1, "fps": 142.9, "engine": "onnx", "worker": "gpu1:4121", "segments": 1,
                        "batch_fill": 1.0},
            tracks=tracks or None, timeline=timeline,
        )
        self.writer.write_video_summary(summary, start_ts)
        if files and self.config.results.sidecar_dir is not None:
            write_sidecar(self.config, video_id, summary.to_fields(), frames, start_ts=start_ts)
        return video_id


def redis_bytes(client: redis.Redis, prefix: str) -> Counter[str]:
    """MEMORY USAGE (exact: SAMPLES 0) of every key under the prefix, by kind (the key's second part)."""
    out: Counter[str] = Counter()
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = str(key).split(":")[1]
        out[kind] += int(client.memory_usage(key, samples=0) or 0)
    return out


def daemon_file_cpu(folder: Path, repeats: int = 5) -> dict[str, float]:
    """CPU seconds (this process + its ffmpeg/ffprobe children) of the daemon's per-file work on a one-minute
    1080p25 H.264 file at about 6 Mbit/s: fingerprint, probe, remux into the spool (the daemon's own functions)."""
    import resource
    import shutil
    import subprocess

    from vidwatch.config import NormalizeConfig
    from vidwatch.daemon.fingerprint import fingerprint
    from vidwatch.media.normalize import normalize
    from vidwatch.media.probe import probe

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return {}
    source = folder / "cam1.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=60",
                    "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "6M", "-g", "50", "-pix_fmt", "yuv420p",
                    str(source)], check=True, timeout=600)

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    settings = NormalizeConfig()
    spent = {"fingerprint": 0.0, "probe": 0.0, "remux": 0.0}
    for k in range(repeats):
        began = cpu()
        fingerprint(source)
        after_fp = cpu()
        facts = probe(source)
        after_probe = cpu()
        normalize(source, folder / f"spool-{k}.mp4", facts, settings)
        spent["fingerprint"] += after_fp - began
        spent["probe"] += after_probe - after_fp
        spent["remux"] += cpu() - after_probe
        (folder / f"spool-{k}.mp4").unlink()
    out = {name: round(value / repeats, 3) for name, value in spent.items()}
    out["size_mb"] = round(source.stat().st_size / 1e6, 1)
    return out


def encodings(client: redis.Redis, fps: float, frames: int = 3000) -> dict[str, dict[str, float]]:
    """Bytes per analysed frame of ``detections:<camera>`` entries under three layouts, by raw XADD of the same
    frames: schema 1 as written now, schema 1 as written before December 2026, and a candidate schema 2 (one
    entry per second, each detection a JSON array ``[label, score, x1, y1, x2, y2, track]``)."""
    from vidwatch.results.writer import compact_detections

    stamp = {"schema": "1", "analysis_version": "3cf33625544a", "run": "1"}
    video_id = uuid.uuid4().hex[:20]
    out: dict[str, dict[str, float]] = {}
    for scene, objects in (("typical", 2), ("busy", 20)):
        source = Scene(objects, fps)
        seen = [(i, i / fps, source.frame()[1]) for i in range(frames)]
        layouts = {
            "schema 1 (now)": compact_detections,
            "schema 1 (before)": lambda d: json.dumps([x.as_json() for x in d]),
        }
        out[scene] = {}
        for name, encode in layouts.items():
            key = f"vwbench-{uuid.uuid4().hex[:8]}:detections:cam1"
            for i, pts, dets in seen:
                client.xadd(key, {"video_id": video_id, "segment": "0", "frame": str(i), "pts": f"{pts:.3f}",
                                  "ts": f"{1.79e9 + pts:.3f}", "detections": encode(dets), **stamp})
            out[scene][name] = round(int(client.memory_usage(key, samples=0) or 0) / frames, 1)
            client.delete(key)
        key = f"vwbench-{uuid.uuid4().hex[:8]}:detections:cam1"
        per = max(1, int(fps))
        for start in range(0, frames, per):
            batch = [[i, round(pts, 3), [[x.label, round(x.score, 3), *(round(v) for v in x.box), x.track]
                                         for x in dets]] for i, pts, dets in seen[start:start + per]]
            client.xadd(key, {"video_id": video_id, "segment": "0", "ts": f"{1.79e9 + start / fps:.3f}",
                              "frames": json.dumps(batch, separators=(",", ":")), **{**stamp, "schema": "2"}})
        out[scene]["candidate schema 2 (per second, arrays)"] = round(
            int(client.memory_usage(key, samples=0) or 0) / frames, 1)
        client.delete(key)
    return out


def redis_cpu_s(client: redis.Redis) -> float:
    """The server's CPU seconds so far (user + sys): the difference is this bench's only on a private server."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def disk_bytes(*folders: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for folder in folders:
        if folder.exists():
            for path in folder.rglob("*"):
                if path.is_file():
                    kind = path.relative_to(folder).parts[0] if folder.name == "state" else "sidecars"
                    out[kind] = out.get(kind, 0) + path.stat().st_size
    return out


def cleanup(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


def config_for(prefix: str, url: str, folder: Path, **retention: float) -> Config:
    return Config.model_validate({
        "redis": {"url": url, "prefix": prefix}, "paths": {"state_dir": str(folder / "state")},
        "results": {"sidecar_dir": str(folder / "sidecars")}, "retention": retention,
    })


def per_camera_hour(client: redis.Redis, url: str, minutes: int, fps: float) -> dict[str, dict[str, Any]]:
    rows = {}
    start = 1_790_000_000.0
    for scene, objects in SCENES.items():
        prefix = f"vwbench-{uuid.uuid4().hex[:8]}"
        with tempfile.TemporaryDirectory(prefix="vwbench-") as tmp:
            config = config_for(prefix, url, Path(tmp))
            timed = TimedRedis.from_url(url, decode_responses=True)
            camera = Camera(timed, config, "cam1", objects, fps)
            TimedRedis.spent_s = 0.0
            cpu_before = redis_cpu_s(client)
            for m in range(minutes):
                camera.write_file(start + m * FILE_S)
            cpu = redis_cpu_s(client) - cpu_before
            wall = TimedRedis.spent_s
            kinds = redis_bytes(client, prefix)
            disk = disk_bytes(Path(tmp) / "state", Path(tmp) / "sidecars")
            scale = 60.0 / minutes
            rows[scene] = {
                "objects": objects,
                "redis_bytes": {k: round(v * scale) for k, v in sorted(kinds.items())},
                "redis_total": round(sum(kinds.values()) * scale),
                "disk_bytes": {k: round(v * scale) for k, v in sorted(disk.items())},
                "disk_total": round(sum(v for k, v in disk.items() if k != "sidecars") * scale),
                "frames_with_detections": round(camera.frames * scale),
                "detections": round(camera.detections * scale),
                "redis_s": round(wall * scale, 3),
                "redis_cpu_s": round(cpu * scale, 3),
            }
            cleanup(client, prefix)
    return rows


def flat_series(client: redis.Redis, url: str, days: int, files_per_day: int, keep_days: float,
                fps: float) -> list[tuple[int, int, int, int, float]]:
    """(day, Redis bytes, videos kept, videos removed, Redis CPU s of the day's retention pass) at the end of
    each simulated day of a typical camera, retention on."""
    prefix = f"vwbench-{uuid.uuid4().hex[:8]}"
    series = []
    with tempfile.TemporaryDirectory(prefix="vwbench-") as tmp:
        config = config_for(prefix, url, Path(tmp), summaries_days=keep_days, detections_days=keep_days)
        camera = Camera(client, config, "cam1", SCENES["typical"], fps)
        keys, retention = Keys(prefix), Retention(client, Keys(prefix), config)
        day0 = 1_790_000_000.0
        began_ids: list[str] = []
        for day in range(days):
            began_ids.append(f"{int(time.time() * 1000)}-0")
            for k in range(files_per_day):
                camera.write_file(day0 + day * DAY_S + k * DAY_S / files_per_day, files=False)
            now = day0 + (day + 1) * DAY_S
            began = redis_cpu_s(client)
            report = retention.run(Cutoffs.from_config(config, now))
            prune_s = redis_cpu_s(client) - began
            horizon_day = day + 1 - int(keep_days)
            if horizon_day > 0:  # the events' write-time trim, at the write time that simulated day began
                client.xtrim(keys.events, minid=began_ids[horizon_day], approximate=False)
            series.append((day + 1, sum(redis_bytes(client, prefix).values()), int(client.zcard(keys.index_time)),
                           int(report.counts["videos"]), round(prune_s, 3)))
        cleanup(client, prefix)
    return series


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--minutes", type=int, default=60, help="minutes recorded per scene (scaled to an hour)")
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--days", type=int, default=10, help="simulated days for the retention series")
    parser.add_argument("--files-per-day", type=int, default=96, help="one-minute files per simulated day")
    parser.add_argument("--keep-days", type=float, default=3.0, help="[retention] summaries_days = detections_days")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    client.ping()

    print(f"1. per camera-hour at {args.fps:g} fps, one-minute files ({args.minutes} min written, scaled to 60); "
          "the results only (writer against a private Redis prefix), not the full product")
    rows = per_camera_hour(client, args.redis_url, args.minutes, args.fps)
    for scene, row in rows.items():
        print(f"  {scene:8s} ({row['objects']:2d} objects): Redis {row['redis_total'] / 1e6:8.2f} MB "
              f"{row['redis_bytes']}")
        print(f"  {'':8s}               disk  {row['disk_total'] / 1e6:8.2f} MB {row['disk_bytes']} "
              f"(sidecars optional); {row['frames_with_detections']} frames with detections, "
              f"{row['detections']} detections; Redis CPU {row['redis_cpu_s']} s per camera-hour (the server's "
              f"used_cpu: exact on a private server), {row['redis_s']} s in round trips")
    typical, busy = rows["typical"], rows["busy"]
    per_detection = ((busy["redis_bytes"]["detections"] - typical["redis_bytes"]["detections"])
                     / max(1, busy["detections"] - typical["detections"]))
    per_frame = typical["redis_bytes"]["detections"] / max(1, typical["frames_with_detections"])
    print(f"2. detections:<camera>: {per_frame:.0f} B per analysed frame with 2 detections, "
          f"{per_detection:.0f} B per further detection; "
          f"{per_frame - 2 * per_detection:.0f} B per entry before its detections")

    print(f"3. Redis bytes at the end of each simulated day, typical camera, {args.files_per_day} one-minute files "
          f"a day, retention {args.keep_days:g} days (records, summaries, detections):")
    series = flat_series(client, args.redis_url, args.days, args.files_per_day, args.keep_days, args.fps)
    for day, total, videos, removed, prune_s in series:
        print(f"  day {day:3d}: {total / 1e6:8.3f} MB, {videos} videos indexed, "
              f"the day's retention pass removed {removed} videos with {prune_s:.3f} s of Redis CPU")
    steady = [total for day, total, *_ in series if day > args.keep_days + 1]
    if len(steady) >= 2:
        drift = (max(steady) - min(steady)) / max(steady)
        print(f"  after day {args.keep_days + 1:g}: max/min spread {drift:.1%} "
              f"({'flat' if drift < 0.05 else 'NOT flat'})")
    with tempfile.TemporaryDirectory(prefix="vwbench-") as tmp:
        daemon = daemon_file_cpu(Path(tmp))
    if daemon:
        total = daemon["fingerprint"] + daemon["probe"] + daemon["remux"]
        print(f"4. the daemon's per-file work on a one-minute 1080p H.264 file ({daemon['size_mb']} MB): "
              f"{total:.3f} CPU s (fingerprint {daemon['fingerprint']}, probe {daemon['probe']}, "
              f"remux {daemon['remux']}); one part, not the daemon's whole loop")
    layouts = encodings(client, args.fps)
    print("5. detections:<camera> bytes per analysed frame by layout (raw XADD of the same frames):")
    for scene, row in layouts.items():
        print(f"  {scene:8s} " + ", ".join(f"{name}: {value:.0f} B" for name, value in row.items()))
    print(json.dumps({"per_camera_hour": rows, "daemon_file_cpu_s": daemon, "layouts": layouts,
                      "bytes_per_frame": round(per_frame),
                      "bytes_per_detection": round(per_detection), "series": series}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
