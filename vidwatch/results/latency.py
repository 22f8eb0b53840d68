"""Where a video's time went: the latency breakdown in its summary's ``processing``.

Each figure is the difference of two epoch stamps (``time.time()``), each written by the
process that saw the moment: the daemon (the file's first sighting, its claim, the video
marked ``queued``), the worker (each segment's analysis start and end, the summary's write).
A difference is clamped at 0 (the daemon's and the workers' clocks may differ a little).
A figure whose stamps are missing (a record or partial from before the stamps existed) is
left out: never 0, never a guess.

The five stages follow one another without overlap, so they add up to no more than
``total_s``; what they leave out is the time between the segments of a video cut in
segments that waited in the queue one after another.

>>> stamps = Stamps(first_seen=100.0, claimed=101.5, queued=102.0, analysis=((103.0, 105.0),), written=105.5)
>>> breakdown(stamps)
{'settle_s': 1.5, 'normalize_s': 0.5, 'queue_wait_s': 1.0, 'analysis_s': 2.0, 'writing_s': 0.5, 'total_s': 5.5}
>>> breakdown(Stamps(first_seen=None, claimed=101.5, queued=None, analysis=None, written=105.5))
{}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vidwatch.results.partials import SegmentPartial
from vidwatch.results.records import VideoRecord

#: the stages, in the order a video passes them, then the whole
KEYS = ("settle_s", "normalize_s", "queue_wait_s", "analysis_s", "writing_s", "total_s")


@dataclass(frozen=True)
class Stamps:
    """The moments of one video's run, epoch seconds (None: not measured)."""

    first_seen: float | None  # daemon: first sighting of the file (a watch event, a scan, a submit)
    claimed: float | None  # daemon: judged complete and claimed (the record's ``seen_at``)
    queued: float | None  # daemon: spooled copy in place, marked ``queued`` (``queued_at``)
    analysis: tuple[tuple[float, float], ...] | None  # worker: each segment's analyze() start and return
    written: float  # worker: the summary about to be written


def breakdown(stamps: Stamps) -> dict[str, float]:
    """The measured figures (``KEYS``), seconds to 3 decimals; unmeasured ones left out."""
    spans = stamps.analysis or ()
    start = min((a for a, _ in spans), default=None)
    end = max((b for _, b in spans), default=None)
    figures = {
        "settle_s": _between(stamps.first_seen, stamps.claimed),
        "normalize_s": _between(stamps.claimed, stamps.queued),
        "queue_wait_s": _between(stamps.queued, start),
        "analysis_s": covered(spans) if spans else None,
        "writing_s": _between(end, stamps.written),
        "total_s": _between(stamps.first_seen, stamps.written),
    }
    return {key: round(value, 3) for key, value in figures.items() if value is not None}


def covered(spans: Sequence[tuple[float, float]]) -> float:
    """Seconds in which at least one span ran: segments analysed side by side count once.

    >>> covered([(0.0, 4.0), (1.0, 3.0), (6.0, 7.0)])
    5.0
    """
    total, reach = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


def stamps_of(record: VideoRecord, parts: Sequence[SegmentPartial], *, written: float) -> Stamps:
    """The stamps in a video's record and its segments' partials; the analysis spans only when every
    segment carries them."""
    spans = [(p.started_at, p.analyzed_at) for p in parts]
    analysis = tuple((a, b) for a, b in spans if a is not None and b is not None)
    times = record.timestamps
    return Stamps(
        first_seen=times.get("first_seen"),
        claimed=times.get("seen"),
        queued=times.get("queued"),
        analysis=analysis if analysis and len(analysis) == len(spans) else None,
        written=written,
    )


def _between(earlier: float | None, later: float | None) -> float | None:
    if earlier is None or later is None:
        return None
    return max(0.0, later - earlier)
