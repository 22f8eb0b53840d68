"""Backlog benchmark: vidwatch end-to-end, as a user runs it, against the loop a user would write.

Run: ``.venv/bin/python bench/backlog.py`` (opencv engine, default settings) or
``.venv/bin/python bench/backlog.py --engine onnx``; ``--files 24`` for the scaling check.
Needs ffmpeg, Redis at 127.0.0.1:6379 and RabbitMQ at 127.0.0.1:5672 (guest/guest, with
``rabbitmqctl`` to make a private vhost), as the integration tests do.

1. Makes ``--files`` distinct synthetic CCTV-like clips (``--seconds`` long, ``--size``, 25 fps,
   H.264): a static scene per seed; people (figures HOG finds) walk through, some stop and
   sway a while, a vehicle-sized box drives by, and quiet stretches in between.
2. The hand-written loop: one process, the files one after the other, ``cv2.VideoCapture``,
   every 5th frame (25 fps → 5 fps), resized to 640 wide, the product's default detectors
   with its parameters (MOG2 gated by frame differencing, the default HOG people detector),
   or for ``--engine onnx`` a hand-written ONNX Runtime loop on the same model file.
3. The product: ``vidwatch up`` as a subprocess (real daemon, RabbitMQ, Redis, worker) with
   the default settings, except a private Redis prefix, a private RabbitMQ vhost, an API port
   and the inbox/state folders under a temporary folder (``--set section.key=value`` changes
   any other setting, e.g. ``--set worker.concurrency=1``). Once ``/readyz`` answers 200, all
   the files are renamed into the inbox at once; the clock runs from the first rename to the
   last entry in the ``summaries`` stream (its id is Redis's clock, on this same machine).

Prints both times, the speed-up (hand loop ÷ vidwatch, goal ≥ 1.5× for opencv, ≥ 1.2× for
onnx) and, per file, how far the results agree: frames with motion and frames with people
(onnx: frames with detections, and detections), vidwatch against the hand loop.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_HOST = "127.0.0.1:5672"
SOURCE_FPS = 25
FPS = 5.0  # [analysis] fps default
LONG_SIDE = 640  # [analysis] size default
READY_TIMEOUT_S = 180.0
CAMERA = "cam1"
DETECTIONS_PER_FRAME = 10  # onnx: what the random-weight model is calibrated to let through on a sample frame


# --------------------------------------------------------------------------- clips
@dataclass
class Actor:
    kind: str  # walker | stander | vehicle
    start_s: float
    duration_s: float
    height: float
    y: float  # feet (walker, stander) or top (vehicle) in pixels
    leftward: bool
    colour: tuple[int, int, int]
    stop_s: float = 0.0  # stander: seconds it stands still (swaying) in the middle


def _figure(img: np.ndarray, x: float, y: float, h: float, phase: float, colour: tuple[int, int, int]) -> None:
    """A walking person ``h`` pixels tall, feet at (x, y); ``phase`` swings the legs and arms."""
    u = h / 8.0
    cv2.circle(img, (int(x), int(y - 7.3 * u)), max(2, int(0.6 * u)), colour, -1)
    cv2.ellipse(img, (int(x), int(y - 5.0 * u)), (max(1, int(0.9 * u)), max(1, int(1.6 * u))), 0, 0, 360, colour, -1)
    swing = np.sin(phase)
    for side in (-1, 1):
        knee = (int(x + side * swing * 0.7 * u), int(y - 1.8 * u))
        cv2.line(img, (int(x), int(y - 3.6 * u)), knee, colour, max(2, int(0.55 * u)))
        cv2.line(img, knee, (int(x + side * swing * 1.2 * u), int(y)), colour, max(2, int(0.5 * u)))
        cv2.line(img, (int(x), int(y - 6.0 * u)), (int(x - side * swing * 1.0 * u), int(y - 3.3 * u)), colour,
                 max(2, int(0.35 * u)))


def _script(rng: np.random.Generator, seconds: float, width: int, height: int) -> list[Actor]:
    """Events one after another with quiet gaps: about half of the clip has something moving."""
    actors: list[Actor] = []
    t = float(rng.uniform(1.0, 4.0))
    while t < seconds - 2:
        kind = str(rng.choice(["walker", "walker", "stander", "vehicle"]))
        person_h = float(rng.uniform(0.5, 0.8)) * height
        colour = tuple(int(c) for c in rng.integers(10, 70, 3))
        if kind == "vehicle":
            box_h = float(rng.uniform(0.15, 0.3)) * height
            actor = Actor(kind, t, float(rng.uniform(2.0, 4.0)), box_h, float(rng.uniform(0.5, 0.8)) * height - box_h,
                          bool(rng.integers(2)), tuple(int(c) for c in rng.integers(120, 250, 3)))
        else:
            y = min(height - 4.0, float(rng.uniform(0.85, 0.98)) * height)
            stop = float(rng.uniform(2.0, 5.0)) if kind == "stander" else 0.0
            actor = Actor(kind, t, float(rng.uniform(4.0, 8.0)) + stop, person_h, y, bool(rng.integers(2)), colour,
                          stop)
        actors.append(actor)
        if rng.random() < 0.3:  # sometimes two at once
            t += float(rng.uniform(0.5, 2.0))
        else:
            t += actor.duration_s + float(rng.uniform(2.0, 8.0))
    return actors


def _draw(img: np.ndarray, actor: Actor, t: float, width: int) -> None:
    local = t - actor.start_s
    if not 0 <= local < actor.duration_s:
        return
    if actor.kind == "vehicle":
        length = actor.height * 2.5
        x = -length + (width + length) * local / actor.duration_s
        x = width - x - length if actor.leftward else x
        cv2.rectangle(img, (int(x), int(actor.y)), (int(x + length), int(actor.y + actor.height)), actor.colour, -1)
        return
    walk_s = actor.duration_s - actor.stop_s
    if actor.stop_s and walk_s / 2 <= local < walk_s / 2 + actor.stop_s:
        progress, phase = 0.5, 0.15 * np.sin(2 * np.pi * 0.7 * local)  # standing: a slight sway
        x_shift = 2.0 * np.sin(2 * np.pi * 0.4 * local)
    else:
        walked = local if local < walk_s / 2 else local - actor.stop_s
        progress, phase, x_shift = walked / walk_s, walked * 2 * np.pi * 1.6, 0.0
    margin = actor.height * 0.3
    x = -margin + (width + 2 * margin) * progress
    _figure(img, (width - x if actor.leftward else x) + x_shift, actor.y, actor.height, phase, actor.colour)


def make_clip(path: Path, seed: int, seconds: float, width: int, height: int) -> Path:
    """A distinct clip per ``seed``: its own static scene and its own script of events."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(60, 200, (height // 4, width // 4, 3), dtype=np.uint8)
    scene = cv2.GaussianBlur(cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC), (0, 0), 3)
    for _ in range(int(rng.integers(3, 7))):  # static furniture: walls, doors, windows
        x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height // 2))
        cv2.rectangle(scene, (x, y), (x + int(rng.integers(30, width // 3)), y + int(rng.integers(20, height // 2))),
                      tuple(int(c) for c in rng.integers(40, 220, 3)), -1)
    actors = _script(rng, seconds, width, height)
    grain = [rng.integers(-3, 4, (height, width, 3), dtype=np.int16) for _ in range(8)]  # sensor noise
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
         "-r", str(SOURCE_FPS), "-i", "pipe:0", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "50",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)],
        stdin=subprocess.PIPE,
    )
    if proc.stdin is None:
        raise RuntimeError("ffmpeg: no stdin pipe")
    base = scene.astype(np.int16)
    for n in range(int(seconds * SOURCE_FPS)):
        t = n / SOURCE_FPS
        img = np.clip(base + grain[n % len(grain)], 0, 255).astype(np.uint8)
        for actor in actors:
            _draw(img, actor, t, width)
        proc.stdin.write(img.tobytes())
    proc.stdin.close()
    if proc.wait(timeout=600) != 0:
        raise RuntimeError(f"ffmpeg failed making {path}")
    return path


# --------------------------------------------------------------------------- hand-written loops
@dataclass
class FileResult:
    frames: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # frames with a label (onnx: also "detections")


def _frames(path: Path) -> Iterator[np.ndarray]:
    """Every 5th frame of 25 (grab() skips the colour conversion of the others), 640 wide."""
    capture = cv2.VideoCapture(str(path))
    step = max(1, round((capture.get(cv2.CAP_PROP_FPS) or SOURCE_FPS) / FPS))
    index = 0
    while True:
        if index % step == 0:
            ok, frame = capture.read()
            if not ok:
                break
            height, width = frame.shape[:2]
            scale = min(1.0, LONG_SIDE / max(height, width))
            if scale < 1.0:
                frame = cv2.resize(frame, (round(width * scale / 2) * 2, round(height * scale / 2) * 2),
                                   interpolation=cv2.INTER_AREA)
            yield frame
        elif not capture.grab():
            break
        index += 1
    capture.release()


def hand_opencv(path: Path) -> FileResult:
    """MOG2 gated by frame differencing + the default HOG people detector, parameters as vidwatch's."""
    mog = cv2.createBackgroundSubtractorMOG2(history=max(10, int(30 * FPS)), varThreshold=16, detectShadows=True)
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    result = FileResult(counts={"motion": 0, "person": 0})
    previous = None
    for frame in _frames(path):
        result.frames += 1
        mask = mog.apply(frame)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        moving = False
        if previous is not None:
            _, changed = cv2.threshold(cv2.absdiff(grey, previous), 12, 1, cv2.THRESH_BINARY)
            if cv2.countNonZero(changed):
                _, fg = cv2.threshold(mask, 254, 1, cv2.THRESH_BINARY)
                fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)
                count, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
                for x, y, w, h, area in stats[1:count].tolist():
                    if area >= 64 and cv2.countNonZero(changed[y : y + h, x : x + w]) / (w * h) >= 0.02:
                        moving = True
                        break
        previous = grey
        rects, weights = hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)
        people = len(rects) > 0 and len(cv2.dnn.NMSBoxes(
            [list(map(int, r)) for r in rects], [float(w) for w in np.ravel(weights)], 0.5, 0.45)) > 0
        result.counts["motion"] += moving
        result.counts["person"] += people
    return result


class HandOnnx:
    """A plain ONNX Runtime loop: letterbox one frame, run, YOLO decode, class-aware NMS."""

    def __init__(self, model: Path, confidence: float = 0.25, iou: float = 0.45) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0]
        self.side = int(self.input.shape[2]) if isinstance(self.input.shape[2], int) else 640
        self.confidence, self.iou = confidence, iou

    def __call__(self, path: Path) -> FileResult:
        result = FileResult(counts={"with detections": 0, "detections": 0})
        side = self.side
        for frame in _frames(path):
            result.frames += 1
            height, width = frame.shape[:2]
            scale = min(side / width, side / height)
            new_w, new_h = round(width * scale), round(height * scale)
            pad_x, pad_y = (side - new_w) // 2, (side - new_h) // 2
            canvas = np.full((side, side, 3), 114, np.uint8)
            canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = cv2.resize(frame, (new_w, new_h))
            blob = canvas[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255
            out = self.session.run(None, {self.input.name: blob})[0][0]  # [4 + C, N]
            scores = out[4:].max(axis=0)
            keep = scores > self.confidence
            if not keep.any():
                continue
            cx, cy, w, h = out[:4, keep]
            boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
            classes = out[4:, keep].argmax(axis=0)
            kept = cv2.dnn.NMSBoxesBatched(boxes.tolist(), scores[keep].tolist(), classes.tolist(), self.confidence,
                                           self.iou)
            result.counts["with detections"] += len(kept) > 0
            result.counts["detections"] += min(len(kept), 300)
        return result


# --------------------------------------------------------------------------- the product
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    return subprocess.run([ctl, "-q", *args], capture_output=True, text=True, timeout=60, check=False)


def _toml_value(text: str) -> str:
    """``--set`` values: numbers, booleans, lists and quoted strings as written, anything else quoted."""
    try:
        json.loads(text)
        return text
    except ValueError:
        return json.dumps(text)


@dataclass
class Site:
    folder: Path
    inbox: Path
    config: Path
    port: int
    prefix: str
    vhost: str
    pid: int  # vidwatch up's


@contextmanager
def vidwatch_up(folder: Path, settings: dict[str, dict[str, str]]) -> Iterator[Site]:
    """``vidwatch up`` with a private prefix and vhost, ready (``/readyz`` 200); stopped and cleaned after."""
    vhost, prefix = f"vwbench-{uuid.uuid4().hex[:8]}", f"vwbench-{uuid.uuid4().hex[:8]}"
    if _rabbitmqctl("add_vhost", vhost).returncode != 0:
        raise SystemExit("backlog: cannot create a RabbitMQ vhost (rabbitmqctl add_vhost failed)")
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    inbox, port = folder / "inbox", _free_port()
    (inbox / CAMERA).mkdir(parents=True)
    sections: dict[str, dict[str, str]] = {
        "watch": {"roots": json.dumps([str(inbox)])},
        "paths": {"state_dir": json.dumps(str(folder / "var"))},
        "broker": {"url": json.dumps(f"amqp://guest:guest@{AMQP_HOST}/{vhost}")},
        "redis": {"url": json.dumps(REDIS_URL), "prefix": json.dumps(prefix)},
        "api": {"listen": json.dumps(f"127.0.0.1:{port}")},
    }
    for section, values in settings.items():
        sections.setdefault(section, {}).update(values)
    config = folder / "vidwatch.toml"
    config.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) + "\n"
                              for s, kv in sections.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDWATCH_")}
    log = open(folder / "up.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "vidwatch", "up", "-c", str(config)], stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=folder, start_new_session=True)
    site = Site(folder, inbox, config, port, prefix, vhost, proc.pid)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"backlog: vidwatch up never got ready; its log:\n{_tail(folder / 'up.log')}")
            time.sleep(0.2)
        yield site
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
        _rabbitmqctl("delete_vhost", vhost)
        client = redis.Redis.from_url(REDIS_URL)
        stale = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(stale), 1000):
            client.delete(*stale[start : start + 1000])


def tree_cpu(pid: int) -> dict[int, tuple[str, float, float]]:
    """``pid`` and every live process below it: (role, own CPU seconds, CPU seconds of the children it waited for).

    Sampled at the first drop and at the last summary, the difference is what vidwatch spent on
    the backlog (ffmpeg runs that ended in between are in their waiting parent's counts).
    """
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue  # ended while we looked
    found: dict[int, tuple[str, float, float]] = {}
    todo = [(pid, "up")]
    while todo:
        parent, role = todo.pop()
        if parent not in stats:
            continue
        fields = stats[parent]  # after the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14)
        found[parent] = (role, (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick)
        for child, child_fields in stats.items():
            if int(child_fields[1]) == parent and child not in found:
                command = commands.get(child, "")
                child_role = ("pool processes" if role == "worker" else "daemon" if " daemon" in command
                              else "worker" if " worker" in command else f"{role} child")
                todo.append((child, child_role))
    return found


def cpu_between(before: dict[int, tuple[str, float, float]], after: dict[int, tuple[str, float, float]]
                ) -> dict[str, tuple[float, float]]:
    """CPU seconds spent between two samples, by role: (own, in children waited for, e.g. ffmpeg)."""
    roles: dict[str, tuple[float, float]] = {}
    for pid, (role, own, kids) in after.items():
        _, own0, kids0 = before.get(pid, (role, 0.0, 0.0))
        total_own, total_kids = roles.get(role, (0.0, 0.0))
        roles[role] = (total_own + own - own0, total_kids + kids - kids0)
    return roles


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


@dataclass
class ProductRun:
    wall_s: float
    results: dict[str, FileResult]  # by file name
    summaries: dict[str, dict[str, object]]  # by file name
    latency_s: dict[str, float]  # first drop → this file's summary
    cpu_s: float  # CPU seconds vidwatch's processes spent from the first drop to the last summary
    cpu_by_role: dict[str, tuple[float, float]]  # of which, by process: (own, in the ffmpeg runs it waited for)


def run_product(site: Site, clips: list[Path], engine: str, timeout_s: float) -> ProductRun:
    """Rename every clip into the inbox at once; wait for their summaries; count what vidwatch found."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    summaries_key, events_key = f"{site.prefix}:summaries", f"{site.prefix}:events"
    staged = site.folder / "staged"  # the same file system as the inbox: a rename is instant
    staged.mkdir()
    moves = []
    for clip in clips:
        shutil.copyfile(clip, staged / clip.name)
        moves.append((staged / clip.name, site.inbox / CAMERA / clip.name))
    cpu_before = tree_cpu(site.pid)
    started = time.time()
    for source, target in moves:
        os.rename(source, target)
    summaries: dict[str, dict[str, object]] = {}
    latency: dict[str, float] = {}
    last_id, last_event = "0", "0"
    deadline = time.monotonic() + timeout_s
    while len(summaries) < len(clips):
        if time.monotonic() > deadline:
            raise SystemExit(f"backlog: {len(summaries)}/{len(clips)} summaries after {timeout_s:.0f} s; "
                             f"log:\n{_tail(site.folder / 'up.log')}")
        for _, entries in client.xread({summaries_key: last_id}, block=1000) or []:
            for entry_id, fields in entries:
                last_id = entry_id
                name = Path(fields["path"]).name
                summaries[name] = {k: _json(v) for k, v in fields.items()}
                latency[name] = int(entry_id.split("-")[0]) / 1000 - started
        for entry_id, fields in client.xrange(events_key, f"({last_event}" if last_event != "0" else "-", "+"):
            last_event = entry_id
            if fields.get("type") == "failed":
                raise SystemExit(f"backlog: vidwatch failed {fields.get('path')}: {fields.get('detail')}")
    cpu_by_role = cpu_between(cpu_before, tree_cpu(site.pid))
    cpu_s = sum(own + kids for own, kids in cpu_by_role.values())
    wall_s = max(latency.values())
    results = count_found(client, site, summaries, engine)
    return ProductRun(wall_s, results, summaries, latency, cpu_s, cpu_by_role)


def count_found(
    client: redis.Redis, site: Site, summaries: dict[str, dict[str, object]], engine: str
) -> dict[str, FileResult]:
    """Per file: the frames vidwatch analysed and the frames its detections stream holds each finding in."""
    names = {str(s["video_id"]): name for name, s in summaries.items()}
    results = {name: FileResult(frames=int(str(s["frames_analyzed"])), counts={}) for name, s in summaries.items()}
    keys = ("with detections", "detections") if engine == "onnx" else ("motion", "person")
    for result in results.values():
        result.counts = dict.fromkeys(keys, 0)
    for _, fields in client.xrange(f"{site.prefix}:detections:{CAMERA}", "-", "+"):
        name = names.get(fields.get("video_id", ""))
        if name is None:
            continue
        found = json.loads(fields["detections"])
        counts = results[name].counts
        if engine == "onnx":
            counts["with detections"] += bool(found)
            counts["detections"] += len(found)
        else:
            labels = {d["label"] for d in found}
            counts["motion"] += "motion" in labels
            counts["person"] += "person" in labels
    return results


def _json(value: str) -> object:
    try:
        return json.loads(value)
    except ValueError:
        return value


# --------------------------------------------------------------------------- report
def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _agreement(hand: int, ours: int) -> str:
    if hand == ours:
        return "0.0%"
    return f"{100 * (ours - hand) / max(hand, 1):+.1f}%"


def report(engine: str, clips: list[Path], hand_s: float, hand_cpu_s: float, hand: dict[str, FileResult],
           run: ProductRun) -> bool:
    keys = list(next(iter(hand.values())).counts) if hand else []
    print("\nper file (hand loop / vidwatch, difference relative to the hand loop; goal within 5 %;"
          "\n analysis s: the summary's processing.wall_s; latency s: first drop → this file's summary):")
    print(f"  {'file':<14} {'frames':>9} " + " ".join(f"{k:>26}" for k in keys)
          + f" {'analysis s':>10} {'latency s':>9}")
    worst = 0.0
    for clip in clips:
        h, o = hand[clip.name], run.results[clip.name]
        cells = []
        for k in keys:
            a, b = h.counts[k], o.counts[k]
            worst = max(worst, abs(b - a) / max(a, 1))
            cells.append(f"{a:>7} / {b:<7} {_agreement(a, b):>8}")
        processing = run.summaries[clip.name].get("processing") or {}
        wall = processing.get("wall_s", float("nan")) if isinstance(processing, dict) else float("nan")
        print(f"  {clip.name:<14} {h.frames:>4}/{o.frames:<4} " + " ".join(f"{c:>26}" for c in cells)
              + f" {wall:>10.1f} {run.latency_s[clip.name]:>9.1f}")
    goal = 1.2 if engine == "onnx" else 1.5
    speedup = hand_s / run.wall_s
    print(f"\n{engine}: {len(clips)} files: hand-written loop {hand_s:.1f} s, vidwatch (first drop → last summary) "
          f"{run.wall_s:.1f} s -> speed-up {speedup:.2f}x (goal >= {goal}x); worst per-file difference "
          f"{100 * worst:.1f}% (goal <= 5%)")
    print(f"CPU seconds (less sensitive than wall time to other load on the machine): hand-written loop "
          f"{hand_cpu_s:.1f}, vidwatch {run.cpu_s:.1f} -> {hand_cpu_s / max(run.cpu_s, 1e-9):.2f}x; "
          f"{cores_used(hand_s, hand_cpu_s)} for the loop, "
          f"{cores_used(run.wall_s, run.cpu_s)} for vidwatch")
    return speedup >= goal and worst <= 0.05


def cores_used(wall_s: float, cpu_s: float) -> str:
    """Cores kept busy on average (CPU seconds ÷ wall seconds)."""
    return f"{cpu_s / max(wall_s, 1e-9):.2f} cores busy"


def parse_settings(pairs: list[str]) -> dict[str, dict[str, str]]:
    settings: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        section, dot, name = key.partition(".")
        if not (sep and dot and section and name):
            raise SystemExit(f"--set: expected section.key=value, got {pair!r}")
        settings.setdefault(section, {})[name] = _toml_value(value)
    return settings


def onnx_model(folder: Path, sample: Path) -> Path:
    """bench/engines.py's YOLOv8n-sized model (random weights), its class scores scaled so that about
    ``DETECTIONS_PER_FRAME`` anchors of a frame of ``sample`` pass the default confidence (0.25),
    not thousands.

    Random weights give every anchor a score near 0.5 whatever the picture: the figure is about
    the cost of running the model and handling a realistic handful of detections, not what it finds.
    """
    import onnx
    import onnxruntime as ort
    from engines import yolov8n_sized  # bench/engines.py
    from onnx import numpy_helper

    path, _ = yolov8n_sized(folder / "yolov8n-sized.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    frames = list(_frames(sample))
    frame = frames[len(frames) // 2]
    canvas = np.full((640, 640, 3), 114, np.uint8)
    scale = min(640 / frame.shape[1], 640 / frame.shape[0])
    resized = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)))
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    blob = canvas[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255
    scores = session.run(None, {session.get_inputs()[0].name: blob})[0][0, 4:].max(axis=0)
    cut = float(np.sort(scores)[-DETECTIONS_PER_FRAME])
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name == "scale":
            factors = numpy_helper.to_array(init).copy()
            factors[0, 4:, 0] = 0.2501 / cut
            init.CopyFrom(numpy_helper.from_array(factors, "scale"))
    onnx.save(model, str(path))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["opencv", "onnx"], default="opencv")
    parser.add_argument("--files", type=int, default=6, help="clips in the backlog (default 6)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each clip (default 60)")
    parser.add_argument("--size", default="640x272", help="WxH of the clips (default 640x272)")
    parser.add_argument("--seed", type=int, default=0, help="first clip's seed; clip k uses seed + k")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a vidwatch setting for this run (repeatable), e.g. worker.concurrency=1")
    parser.add_argument("--skip-hand", action="store_true", help="time vidwatch only (no comparison)")
    parser.add_argument("--keep", type=Path, help="keep the work folder (clips, config, up.log) here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    settings = parse_settings(args.set)
    np.seterr(all="ignore")
    with tempfile.TemporaryDirectory(prefix="vwbacklog-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        clips_dir = folder / "clips"
        clips_dir.mkdir(exist_ok=True)
        print(f"making {args.files} clips of {args.seconds:g} s at {width}x{height} {SOURCE_FPS} fps ...", flush=True)
        clips = [make_clip(clips_dir / f"clip{k:03d}.mp4", args.seed + k, args.seconds, width, height)
                 for k in range(args.files)]
        if args.engine == "onnx":
            model = onnx_model(folder, clips[0])
            settings.setdefault("engine", {}).update({"kind": '"onnx"', "model": json.dumps(str(model))})
            loop = HandOnnx(model)
        else:
            loop = hand_opencv
        cores = len(os.sched_getaffinity(0))
        print(f"{cores} cores; load average {_load()}; vidwatch settings changed: "
              f"{json.dumps(settings) if settings else 'none'}", flush=True)
        hand: dict[str, FileResult] = {}
        hand_s = hand_cpu_s = float("nan")
        if not args.skip_hand:
            started, cpu_started = time.perf_counter(), time.process_time()
            for clip in clips:
                hand[clip.name] = loop(clip)
            hand_s = time.perf_counter() - started
            hand_cpu_s = time.process_time() - cpu_started
            print(f"hand-written loop: {hand_s:.1f} s (load average {_load()})", flush=True)
        run_folder = folder / "run"
        if run_folder.exists():
            shutil.rmtree(run_folder)
        run_folder.mkdir()
        with vidwatch_up(run_folder, settings) as site:
            print(f"vidwatch up is ready (load average {_load()}); dropping {len(clips)} files", flush=True)
            run = run_product(site, clips, args.engine, timeout_s=max(600.0, 20 * args.files * args.seconds))
        print(f"vidwatch: {run.wall_s:.1f} s, {run.cpu_s:.1f} CPU s (load average {_load()}); CPU s by process "
              "(own + in the processes it ran and waited for, e.g. ffmpeg): "
              + ", ".join(f"{role} {own:.1f} + {kids:.1f}" for role, (own, kids) in sorted(run.cpu_by_role.items())))
        if args.skip_hand:
            return 0
        return 0 if report(args.engine, clips, hand_s, hand_cpu_s, hand, run) else 1


if __name__ == "__main__":
    sys.exit(main())
