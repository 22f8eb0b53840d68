"""The results browser, next to the status page: find objects and videos, look at one video.

- ``/browse``: search objects (people, cars, … with their best crop) or videos by camera,
  label and recording-time range, newest first, page by page (the API's cursors). The
  search is in the address (``/browse?what=objects&camera=cam1&label=person&since=…``), so a
  search can be bookmarked or sent.
- ``/browse/videos/{id}``: the video's facts, timeline, its objects with their crops, and a
  player: each object's seconds and each activity span play from the spooled copy (or the
  condensed clip, mapped to its own time). ``#play=object-12`` / ``#play=activity-0`` plays at
  once; ``#object-12`` marks the object.

The pages are small HTML shells; the script (:mod:`vidwatch.api.browser_assets`) reads the
JSON API, so reads follow ``[api] read_token`` like every other read (a browser passes it as
the password of HTTP Basic).
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from vidwatch.api.browser_assets import SCRIPT, STYLE
from vidwatch.api.deps import VIDEO_ID, checked_video_id

router = APIRouter(tags=["browser"])

_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/browse/app.css">
<script src="/browse/app.js"></script>
</head>
"""

_SEARCH = _HEAD.format(title="vidwatch · results") + """<body>
<h1>Results</h1>
<div class="muted"><a href="/">status</a> · <a href="/docs">API</a></div>
<form id="search" class="search">
 <label>what <select name="what"><option value="objects">objects</option>
  <option value="videos">videos</option></select></label>
 <label>camera <input name="camera" placeholder="any" size="12"></label>
 <label>label <input name="label" placeholder="any (person, car, …)" size="16"></label>
 <label>from <input name="since" type="datetime-local" step="1"></label>
 <label>to <input name="until" type="datetime-local" step="1"></label>
 <label>per page <input name="limit" type="number" min="1" max="1000" value="24" style="width:5em"></label>
 <button type="submit">Search</button>
</form>
<p id="status" class="muted"></p>
<div id="results"></div>
<button id="more" type="button" hidden>more</button>
<script>initSearch();</script>
</body></html>
"""

_VIDEO = _HEAD.format(title="vidwatch · video") + """<body>
<h1 id="title">video</h1>
<div class="muted"><a href="/browse">results</a> · <a href="/">status</a> · <code>{video_id}</code></div>
<div id="video"><p class="muted">loading…</p></div>
<script>initVideo("{video_id}");</script>
</body></html>
"""


@router.get("/browse", response_class=HTMLResponse, summary="Results browser: search objects and videos (HTML)")
def search_page() -> HTMLResponse:
    return HTMLResponse(_SEARCH)


@router.get("/browse/videos/{video_id}", response_class=HTMLResponse,
            summary="Results browser: one video with its timeline, objects and player (HTML)")
def video_page(video_id: str = VIDEO_ID) -> HTMLResponse:
    # the id matched VIDEO_ID (letters, digits, . _ -): safe in a JS string and in HTML; escaped all the same
    return HTMLResponse(_VIDEO.format(video_id=escape(checked_video_id(video_id))))


@router.get("/browse/app.js", include_in_schema=False)
def script() -> Response:
    return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "max-age=300"})


@router.get("/browse/app.css", include_in_schema=False)
def style() -> Response:
    return Response(STYLE, media_type="text/css", headers={"Cache-Control": "max-age=300"})
