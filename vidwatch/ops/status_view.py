"""`vidwatch status`: the snapshot as tables and progress bars (rich), or JSON."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from vidwatch.ops.snapshot import Snapshot
from vidwatch.textsafe import printable

MAX_IN_FLIGHT_ROWS = 30


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "—"
    seconds = max(0, int(now - ts))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"


def _plain(value: object, style: str = "") -> Text:
    """A cell from the records: controls escaped, and never read as rich markup (``[red]``, ``[/x]``)."""
    return Text(printable(value), style=style)


def render(snap: Snapshot) -> Group:
    now = snap.taken_at
    backlog = Table(title="Backlog", title_justify="left")
    for state in snap.backlog:
        backlog.add_column(state, justify="right")
    backlog.add_column("done (indexed)", justify="right")
    backlog.add_row(*(str(n) for n in snap.backlog.values()), str(snap.done_indexed))

    if isinstance(snap.queues, str):
        queues: Table | Text = _plain(f"Queues: {snap.queues}", "red")
    else:
        queues = Table(title="Queues", title_justify="left")
        queues.add_column("queue")
        queues.add_column("messages", justify="right")
        queues.add_column("consumers", justify="right")
        for name, depth in snap.queues.items():
            queues.add_row(_plain(name), str(depth.messages), str(depth.consumers))

    workers = Table(title=f"Live workers ({len(snap.workers)})", title_justify="left")
    for column in ("worker", "queues", "engine", "pid"):
        workers.add_column(column)
    for w in snap.workers:
        workers.add_row(_plain(w["name"]), _plain(",".join(w["queues"])), _plain(w["engine"]), _plain(w["pid"]))
    if not snap.workers:
        workers.add_row(Text("none: videos stay queued", style="red"), "", "", "")

    flight = Table(title=f"In flight ({len(snap.in_flight)})", title_justify="left")
    for column in ("video", "camera", "state", "stage", "for", "path"):  # stage: the state's place, not work done
        flight.add_column(column)
    for row in snap.in_flight[:MAX_IN_FLIGHT_ROWS]:
        bar = ProgressBar(total=100, completed=round(row["progress"] * 100), width=20)
        flight.add_row(_plain(row["video_id"][:12]), _plain(row["camera"]), _plain(row["state"]), bar,
                       _ago(row["since"], now), _plain(row["path"]))

    failures = Table(title=f"Recent failures ({len(snap.failures)})", title_justify="left")
    for column in ("ago", "path", "reason"):
        failures.add_column(column)
    for f in snap.failures:
        failures.add_row(_ago(f["ts"], now), _plain(f["path"]), _plain(f["reason"], "red"))

    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Group(Text(f"vidwatch status at {stamp}", style="bold"), backlog, queues, workers, flight, failures)


def print_status(snap: Snapshot, console: Console | None = None) -> None:
    (console or Console()).print(render(snap))


