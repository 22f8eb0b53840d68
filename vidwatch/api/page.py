"""The status page at ``/``: one HTML page that refreshes its panel every few seconds.

The panel is rendered here, in one place: the page fetches ``/status/panel`` and swaps
it in, so the page works without scripts too (it is rendered whole on first load).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from vidwatch.api.deps import daemon_of
from vidwatch.ops.snapshot import Snapshot, take_snapshot
from vidwatch.status import DaemonStatus
from vidwatch.textsafe import printable

router = APIRouter(tags=["status"])
REFRESH_S = 5

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vidwatch status</title>
<style>
 body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.2em 2em; color: #111; background: #fafafa; }}
 h1 {{ font-size: 1.4em; margin: 0 0 .2em; }} h2 {{ font-size: 1.1em; margin: 1.2em 0 .4em; }}
 table {{ border-collapse: collapse; background: #fff; }}
 th, td {{ text-align: left; padding: 4px 10px; border-bottom: 1px solid #e5e7eb; vertical-align: middle; }}
 th {{ background: #f3f4f6; font-weight: 600; }}
 .cards {{ display: flex; gap: 12px; flex-wrap: wrap; }}
 .card {{ background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px 14px; min-width: 90px; }}
 .card b {{ display: block; font-size: 1.5em; }}
 .bad {{ color: #b91c1c; }} .ok {{ color: #15803d; }} .muted {{ color: #6b7280; }}
 progress {{ width: 140px; }} img.thumb {{ height: 54px; border-radius: 3px; }}
 code {{ font-size: 12px; }}
</style></head>
<body>
<h1>vidwatch</h1>
<div class="muted">updated <span id="updated">{updated}</span> · refreshes every {refresh} s ·
 <a href="/docs">API</a> · <a href="/metrics">metrics</a> · <a href="/readyz">readiness</a></div>
<div id="panel">{panel}</div>
<script>
async function refresh() {{
  try {{
    const response = await fetch("/status/panel", {{cache: "no-store"}});
    if (response.ok) {{
      document.getElementById("panel").innerHTML = await response.text();
      document.getElementById("updated").textContent = new Date().toLocaleTimeString() + " (live)";
      document.body.dataset.refreshed = "yes";
    }}
  }} catch (err) {{
    document.getElementById("updated").textContent = "unreachable: " + err;
  }}
}}
refresh();
setInterval(refresh, {refresh_ms});
</script>
</body></html>
"""


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "—"
    seconds = max(0, int(now - ts))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _e(value: object) -> str:
    """HTML-escaped, with control characters and bidi overrides shown as escapes."""
    return escape(printable(value))


def render_panel(snap: Snapshot, status: DaemonStatus) -> str:
    """The status page's panel: cards, queues, workers, roots, in-flight, recent videos, failures."""
    sections = (_cards(snap, status), _queues(snap), _workers(snap), _roots(status), _in_flight(snap),
                _recent(snap), _failures(snap))
    return "".join(part for section in sections for part in section)


def _cards(snap: Snapshot, status: DaemonStatus) -> list[str]:
    e = _e
    out = ['<div class="cards">']
    for state, count in snap.backlog.items():
        out.append(f'<div class="card" data-state="{e(state)}"><b>{count}</b>{e(state)}</div>')
    out.append(f'<div class="card"><b>{snap.done_indexed}</b>done</div>')
    out.append(f'<div class="card"><b>{status.settling}</b>settling</div>')
    out.append("</div>")
    return out


def _queues(snap: Snapshot) -> list[str]:
    e = _e
    out = ["<h2>Queues</h2>"]
    if isinstance(snap.queues, str):
        return [*out, f'<p class="bad">{e(snap.queues)}</p>']
    out.append("<table><tr><th>queue</th><th>messages</th><th>consumers</th></tr>")
    for name, q in snap.queues.items():
        out.append(f'<tr data-queue="{e(name)}"><td>{e(name)}</td><td>{q.messages}</td><td>{q.consumers}</td></tr>')
    out.append("</table>")
    return out


def _workers(snap: Snapshot) -> list[str]:
    e = _e
    out = ["<h2>Workers</h2>"]
    if snap.workers:
        out.append("<table><tr><th>worker</th><th>queues</th><th>engine</th><th>pid</th></tr>")
        for w in snap.workers:
            out.append(f"<tr><td>{e(w['name'])}</td><td>{e(', '.join(w['queues']))}</td>"
                       f"<td>{e(w['engine'])}</td><td>{e(w['pid'])}</td></tr>")
        out.append("</table>")
    else:
        out.append('<p class="bad">no live worker: videos stay queued</p>')
    if snap.throughput:
        out.append('<p class="muted">frames/s of each process\'s newest video: ' + ", ".join(
            f"{e(name)} {info['fps'] if info['fps'] is not None else '?'} ({e(str(info['engine']))})"
            for name, info in snap.throughput.items()) + "</p>")
    return out


def _roots(status: DaemonStatus) -> list[str]:
    problems = [f"{root}: observer dead" for root, ok in status.observers.items() if not ok]
    problems += [f"{root}: {why}" for root, why in status.root_errors.items()]
    return ["<h2>Roots</h2>", "".join(f'<p class="bad">{escape(p)}</p>' for p in problems)
            or f'<p class="ok">{len(status.observers)} root(s) watched</p>']


def _in_flight(snap: Snapshot) -> list[str]:
    e = _e
    out = [f"<h2>In flight ({len(snap.in_flight)})</h2>"]
    if not snap.in_flight:
        return [*out, '<p class="muted">nothing in flight</p>']
    # the bar marks the state's place in the pipeline (seen … processing), not the work done within it
    out.append("<table><tr><th>video</th><th>camera</th><th>state</th><th>stage</th><th>since</th></tr>")
    for row in snap.in_flight[:50]:
        marker = round(row["progress"] * 100)
        out.append(
            f"<tr><td title=\"{e(row['path'])}\"><code>{e(row['video_id'])}</code></td><td>{e(row['camera'])}</td>"
            f"<td>{e(row['state'])}</td><td title=\"stage: {e(row['state'])}\">"
            f"<progress max=\"100\" value=\"{marker}\">{e(row['state'])}</progress></td>"
            f"<td>{_ago(row['since'], snap.taken_at)}</td></tr>"
        )
    out.append("</table>")
    return out


def _recent(snap: Snapshot) -> list[str]:
    e = _e
    out = ["<h2>Recent videos</h2>"]
    if not snap.recent:
        return [*out, '<p class="muted">no video analysed yet</p>']
    out.append("<table><tr><th></th><th>camera</th><th>recorded</th><th>state</th><th>timeline</th>"
               "<th>path</th></tr>")
    for row in snap.recent:
        vid = e(row["video_id"])
        out.append(
            f'<tr class="video" data-video="{vid}">'
            f'<td><img class="thumb" alt="" src="/videos/{vid}/thumbnail" onerror="this.remove()"></td>'
            f"<td>{e(row['camera'])}</td><td>{_when(row['start_ts'])}</td><td>{e(row['state'])}</td>"
            f'<td><img alt="timeline" src="/videos/{vid}/timeline.svg" width="400"></td>'
            f"<td><code>{e(row['path'])}</code></td></tr>"
        )
    out.append("</table>")
    return out


def _failures(snap: Snapshot) -> list[str]:
    e = _e
    out = [f"<h2>Recent failures ({len(snap.failures)})</h2>"]
    if not snap.failures:
        return [*out, '<p class="ok">no recent failure</p>']
    out.append("<table><tr><th>when</th><th>path</th><th>reason</th></tr>")
    for f in snap.failures:
        out.append(f'<tr class="failure"><td>{_ago(f["ts"], snap.taken_at)}</td><td><code>{e(f["path"])}</code></td>'
                   f'<td class="bad">{e(f["reason"])}</td></tr>')
    out.append("</table>")
    return out


def _snapshot(request: Request) -> tuple[Snapshot, DaemonStatus]:
    daemon = daemon_of(request)
    return take_snapshot(daemon.client, daemon.keys, request.app.state.queues), daemon.status()


@router.get("/", response_class=HTMLResponse, summary="Status page (HTML, refreshes itself)")
def page(request: Request) -> HTMLResponse:
    snap, status = _snapshot(request)
    html = _PAGE.format(updated=escape(_when(time.time())), refresh=REFRESH_S, refresh_ms=REFRESH_S * 1000,
                        panel=render_panel(snap, status))
    return HTMLResponse(html)


@router.get("/status/panel", response_class=HTMLResponse, summary="The status page's panel (HTML fragment)")
def panel(request: Request) -> HTMLResponse:
    snap, status = _snapshot(request)
    return HTMLResponse(render_panel(snap, status), headers={"Cache-Control": "no-store"})


@router.get("/status", summary="Backlog, queues, workers, in-flight videos, failures (JSON)")
def status_json(request: Request) -> JSONResponse:
    snap, status = _snapshot(request)
    daemon = status.to_dict() if isinstance(status, DaemonStatus) else dict(status)
    return JSONResponse({**snap.as_json(), "daemon": daemon})
