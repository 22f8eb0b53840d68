"""The summary building blocks together on a generated clip with two known objects.

Frames are decoded as the worker decodes them (smaller than the source); a trivial colour
detector stands in for the engine, so the expected crops, colours and spans are known.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidwatch.engines import Detection
from vidwatch.media import FrameReader, probe
from vidwatch.media.condense import condense
from vidwatch.results.crops import BestCrops
from vidwatch.results.summary import merge_activity
from vidwatch.results.timeline import Layout, render_timeline
from vidwatch.stages import Context, DominantColourSettings, apply, build

FPS = 5.0
SOURCE = (640, 360)
ANALYSED = (320, 180)
OBJECTS = {  # label: (colour for ffmpeg, BGR to find it, size, visible from, to)
    "red-thing": ("red", (0, 0, 255), "60x60", 2.0, 5.0),
    "blue-thing": ("blue", (255, 0, 0), "80x50", 7.0, 10.0),
}


def two_objects_clip(path: Path) -> Path:
    """12 s of grey; a red square moves across from 2 s to 5 s, a blue box from 7 s to 10 s."""
    (red, _, red_size, r0, r1), (blue, _, blue_size, b0, b1) = OBJECTS.values()
    graph = (
        f"[0][1]overlay=x='40+(t-{r0})*100':y=80:enable='between(t,{r0},{r1})'[a];"
        f"[a][2]overlay=x='500-(t-{b0})*100':y=220:enable='between(t,{b0},{b1})',format=yuv420p"
    )
    args = [
        "ffmpeg", "-v", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"color=c=0x606060:s={SOURCE[0]}x{SOURCE[1]}:d=12:r=25",
        "-f", "lavfi", "-i", f"color=c={red}:s={red_size}:r=25",
        "-f", "lavfi", "-i", f"color=c={blue}:s={blue_size}:r=25",
        "-filter_complex", graph, "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-t", "12", str(path),
    ]
    subprocess.run(args, check=True, timeout=60)
    return path


def find(image: np.ndarray, sx: float, sy: float) -> list[Detection]:
    """The colour detector: one detection per known colour, boxes in source pixels."""
    found = []
    for track, (label, (_, bgr, *_)) in enumerate(OBJECTS.items(), start=1):
        distance = np.abs(image.astype(np.int16) - np.array(bgr, np.int16)).sum(axis=2)
        ys, xs = np.nonzero(distance < 150)
        if len(xs) > 20:
            box = (xs.min() * sx, ys.min() * sy, (xs.max() + 1) * sx, (ys.max() + 1) * sy)
            found.append(Detection(label, 0.9, tuple(float(v) for v in box), track))
    return found


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_objects_clip(tmp_path_factory.mktemp("blocks") / "two.mp4")


def test_crops_stages_timeline_and_clip_of_a_known_clip(ffmpeg: str, clip: Path, tmp_path: Path) -> None:
    sx, sy = SOURCE[0] / ANALYSED[0], SOURCE[1] / ANALYSED[1]
    crops = BestCrops(min_side_px=32)
    active: list[float] = []
    presence: dict[str, list[float]] = {label: [] for label in OBJECTS}
    for frame in FrameReader(clip, fps=FPS, size=ANALYSED, timeout_s=60):
        detections = find(frame.image, sx, sy)
        crops.add(frame.image, frame.pts_s, detections, image_scale=(1 / sx, 1 / sy))
        if detections:
            active.append(frame.pts_s)
        for det in detections:
            presence[det.label].append(frame.pts_s)

    tracks = crops.write(tmp_path / "crops")
    assert sorted(tracks) == [1, 2]
    for track, (label, (_, _, size, start, end)) in enumerate(OBJECTS.items(), start=1):
        entry = tracks[track]
        assert entry["label"] == label and start <= entry["pts"] <= end
        x1, y1, x2, y2 = entry["box"]  # source pixels
        assert (round(x2 - x1), round(y2 - y1)) == pytest.approx(tuple(int(v) for v in size.split("x")), abs=6)
        assert Path(entry["path"]).is_file()

    out = apply(build([DominantColourSettings()]), tracks, Context(camera="cam1", video_id="v1"))
    assert out[1]["dominant_colour"]["name"] == "red"
    assert out[2]["dominant_colour"]["name"] == "blue"

    frame_s = 1 / FPS
    activity = merge_activity(active, frame_s, min_gap_s=1.0, min_activity_s=0.0)
    assert len(activity) == 2
    spans = {label: merge_activity(pts, frame_s, min_gap_s=1.0, min_activity_s=0.0) for label, pts in presence.items()}
    duration = probe(clip).duration_s
    png = render_timeline(duration, activity, spans, tmp_path / "timeline.png")
    image = cv2.imread(str(png))
    layout = Layout(duration_s=duration, rows=3)
    top, bottom = layout.row(1)  # the red-thing row
    middle = (top + bottom) // 2
    assert tuple(image[middle, layout.x(3.5)]) != tuple(image[middle, layout.x(8.5)])

    condensed = condense(clip, activity, tmp_path / "condensed.mp4", pad_s=0.5, timeout_s=120)
    padded = sum(min(duration, e + 0.5) - max(0.0, s - 0.5) for s, e in activity)
    assert padded - 0.3 <= condensed <= padded + 2 * 1.0 + 0.6  # stream copy: starts move back to a keyframe
