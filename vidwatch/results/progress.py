"""Measured analysis progress in the video's record: frames done and frames planned, per segment and in all.

Each segment task reports as it goes (:class:`ProgressReporter`: at most once per
``every_s`` per segment, plus once at its end); one Lua script stores the segment's two
numbers and the video's sums, so segments running on several workers at once add up:

- ``frames_done_<k>``, ``frames_planned_<k>``: segment ``k``;
- ``frames_done``, ``frames_planned``: the video (sum over its segments; ``frames_planned``
  counts a segment not yet started by its share of the plan).

Only measured numbers: a video none of whose segments has started has no such fields, and
readers (``vidwatch status``, the status page, ``GET /jobs/{id}``) then show none.
A redelivered segment starts its count again (the fields are set, not added to). A late
report after the video ended changes nothing.

>>> fraction({"frames_done": "30", "frames_planned": "120"}), fraction({"state": "queued"})
(0.25, None)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import redis

from vidwatch.results.keys import Keys

DEFAULT_EVERY_S = 1.0

# KEYS: video hash. ARGV: segment k, done, planned, then each segment's planned frames from the plan
# (a segment that has not reported counts by the plan; one that has, by what it reported)
_REPORT = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'done' or state == 'failed' then return 0 end
local k = ARGV[1]
redis.call('HSET', KEYS[1], 'frames_done_' .. k, ARGV[2], 'frames_planned_' .. k, ARGV[3])
local done, planned = 0, 0
for s = 0, #ARGV - 4 do
  done = done + tonumber(redis.call('HGET', KEYS[1], 'frames_done_' .. s) or '0')
  planned = planned + tonumber(redis.call('HGET', KEYS[1], 'frames_planned_' .. s) or ARGV[4 + s])
end
redis.call('HSET', KEYS[1], 'frames_done', tostring(done), 'frames_planned', tostring(planned))
return 1
"""


def fraction(record: Mapping[str, str]) -> float | None:
    """0..1 from the record's measured counts; None when nothing measured them yet."""
    done, planned = record.get("frames_done"), record.get("frames_planned")
    try:
        if done is None or planned is None or float(planned) <= 0:
            return None
        return round(min(1.0, float(done) / float(planned)), 3)
    except ValueError:
        return None


def counts(record: Mapping[str, str]) -> tuple[int, int] | None:
    """``(frames done, frames planned)`` of the video; None when nothing measured them yet."""
    if fraction(record) is None:
        return None
    return int(float(record["frames_done"])), int(float(record["frames_planned"]))


def segment_counts(record: Mapping[str, str]) -> dict[int, tuple[int, int]]:
    """Per segment that reported: ``(frames done, frames planned)``.

    >>> segment_counts({"frames_done_1": "5", "frames_planned_1": "50", "frames_done": "5"})
    {1: (5, 50)}
    """
    out = {}
    for key, value in record.items():
        if key.startswith("frames_done_") and key.removeprefix("frames_done_").isdigit():
            k = int(key.removeprefix("frames_done_"))
            out[k] = (int(float(value)), int(float(record.get(f"frames_planned_{k}") or 0)))
    return dict(sorted(out.items()))


class ProgressReporter:
    """Reports one segment's frames at a bounded rate: call :meth:`frame` per analysed frame, :meth:`close` at the end.

    ``plan``: every segment's planned frames (from the segment plan: length × ``[analysis] fps``);
    this segment's is ``plan[segment]``. At :meth:`close`, a segment that ran to its end reports
    the frames it really had as its planned count, so the video's sums meet at its end.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        video_id: str,
        segment: int,
        *,
        plan: list[int],
        every_s: float = DEFAULT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = keys.video(video_id)
        self.segment = segment
        self.plan = [max(1, int(n)) for n in plan]
        self.planned = self.plan[segment]
        self.every_s = every_s
        self.clock = clock
        self.done = 0
        self.reports = 0
        self._script = client.register_script(_REPORT)
        self._next = clock()  # the first frame reports at once: the count is measured from the start

    def frame(self, done: int) -> None:
        """``done`` frames of this segment are analysed; reported when ``every_s`` has passed since the last."""
        self.done = done
        if self.clock() >= self._next:
            self.report()

    def report(self) -> None:
        self._next = self.clock() + self.every_s
        self.reports += 1
        self._script(keys=[self.key], args=[self.segment, min(self.done, self.planned), self.planned, *self.plan])

    def close(self, *, complete: bool = True) -> None:
        """The segment is over: its last count; ``complete`` (it ran to its end): its frames are all it had."""
        if complete and self.done > 0:
            self.planned = self.done
        self.report()
