"""Segment partials and their merge into one video summary.

Each segment task reduces its analysis to a small JSON *partial* (frame count, per-label
track ids and times, active pts, the first and last sighting of each track, its best
thumbnail). The summary task merges the partials: tracks that cross a cut are joined
(same label, overlapping or nearby boxes within the tracker's age), so counts come from
tracks, as in a single pass.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from vidwatch.results.summary import merge_activity
from vidwatch.tasks.pipeline import TRACK_MAX_AGE_S, Analysis
from vidwatch.tasks.track import affinity

TRACK_ID_STRIDE = 1_000_000  # segment k's tracks are numbered from k * stride + 1


def track_base(segment: int) -> int:
    return segment * TRACK_ID_STRIDE


def partial(analysis: Analysis, *, start_s: float, end_s: float, wall_s: float, worker: str,
            thumbnail: str | None, thumbnail_area: float) -> dict[str, Any]:
    """The JSON-able summary of one segment."""
    builder = analysis.summary
    labels = {
        label: {
            "tracks": sorted(stats.tracks),
            "max_simultaneous": stats.max_simultaneous,
            "first_pts": stats.first_pts,
            "last_pts": stats.last_pts,
        }
        for label, stats in builder.labels.items()
    }
    return {
        "start": start_s,
        "end": end_s,
        "frames": builder.frames,
        "active_pts": builder.active_pts,
        "labels": labels,
        "first": {str(t): [lab, list(box), pts] for t, (lab, box, pts) in analysis.track_first.items()},
        "last": {str(t): [lab, list(box), pts] for t, (lab, box, pts) in analysis.track_last.items()},
        "thumbnail": thumbnail,
        "thumbnail_area": thumbnail_area,
        "wall_s": wall_s,
        "worker": worker,
        "analyzers": analysis.analyzers,
    }


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(b)] = self.find(a)


@dataclass(frozen=True)
class Merged:
    frames: int
    labels: dict[str, dict[str, Any]]
    activity: list[tuple[float, float]]
    track_map: dict[int, int]  # segment-local track id -> the video's track id
    thumbnail: str | None
    wall_s: float
    workers: list[str]
    analyzers: dict[str, Any]


def join_tracks(parts: list[dict[str, Any]], fps: float) -> dict[int, int]:
    """Map every track id to the id of the track it continues across cuts."""
    uf = _UnionFind()
    max_gap_s = TRACK_MAX_AGE_S + 1.0 / fps
    for before, after in itertools.pairwise(parts):
        ends = [(int(t), lab, tuple(box), pts) for t, (lab, box, pts) in before["last"].items()
                if pts >= before["end"] - max_gap_s]
        starts = [(int(t), lab, tuple(box), pts) for t, (lab, box, pts) in after["first"].items()
                  if pts <= after["start"] + max_gap_s]
        pairs = sorted(
            ((affinity(a_box, b_box), a, b) for a, a_lab, a_box, _ in ends for b, b_lab, b_box, _ in starts
             if a_lab == b_lab),
            reverse=True,
        )
        used_a: set[int] = set()
        used_b: set[int] = set()
        for score, a, b in pairs:
            if score <= 0 or a in used_a or b in used_b:
                continue
            used_a.add(a)
            used_b.add(b)
            uf.union(a, b)
    mapping: dict[int, int] = {}
    for part in parts:
        for stats in part["labels"].values():
            for track in stats["tracks"]:
                mapping[int(track)] = uf.find(int(track))
    return mapping


def merge(parts: list[dict[str, Any]], fps: float, *, min_gap_s: float, min_activity_s: float) -> Merged:
    """One summary from the partials of consecutive segments (ordered by start)."""
    parts = sorted(parts, key=lambda p: p["start"])
    track_map = join_tracks(parts, fps)
    labels: dict[str, dict[str, Any]] = {}
    for part in parts:
        for label, stats in part["labels"].items():
            merged = labels.setdefault(label, {"tracks": set(), "max_simultaneous": 0, "first_pts": None,
                                               "last_pts": None})
            merged["tracks"].update(track_map[int(t)] for t in stats["tracks"])
            merged["max_simultaneous"] = max(merged["max_simultaneous"], stats["max_simultaneous"])
            if stats["first_pts"] is not None:
                first = merged["first_pts"]
                merged["first_pts"] = stats["first_pts"] if first is None else min(first, stats["first_pts"])
                last = merged["last_pts"]
                merged["last_pts"] = stats["last_pts"] if last is None else max(last, stats["last_pts"])
    labels_json = {
        label: {
            "tracks": len(stats["tracks"]),
            "max_simultaneous": stats["max_simultaneous"],
            "first_pts": None if stats["first_pts"] is None else round(stats["first_pts"], 3),
            "last_pts": None if stats["last_pts"] is None else round(stats["last_pts"], 3),
        }
        for label, stats in sorted(labels.items())
    }
    active = [pts for part in parts for pts in part["active_pts"]]
    activity = merge_activity(active, 1.0 / fps, min_gap_s=min_gap_s, min_activity_s=min_activity_s)
    best = max(parts, key=lambda p: p.get("thumbnail_area") or 0.0)
    if len(parts) == 1:
        analyzers = dict(parts[0].get("analyzers") or {})
    else:
        names = sorted({name for part in parts for name in (part.get("analyzers") or {})})
        analyzers = {
            name: [{"segment_start": p["start"], "value": p["analyzers"][name]} for p in parts
                   if name in (p.get("analyzers") or {})]
            for name in names
        }
    return Merged(
        frames=sum(p["frames"] for p in parts),
        labels=labels_json,
        activity=activity,
        track_map=track_map,
        thumbnail=best.get("thumbnail") if best.get("thumbnail_area") else None,
        wall_s=sum(p["wall_s"] for p in parts),
        workers=sorted({p["worker"] for p in parts}),
        analyzers=analyzers,
    )
