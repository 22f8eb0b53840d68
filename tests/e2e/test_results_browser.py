"""The results browser in headless Chromium (Debian's decodes H.264): search finds the objects, the video plays."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.api_fixtures import serve
from tests.e2e.cdp import chromium_pipe
from tests.e2e.test_status_page import CHROMIUM_FLAGS, chromium  # noqa: F401 - the fixture
from tests.objects_fixtures import seed_objects

pytestmark = pytest.mark.e2e

# a muted <video> may start without a click; the page's own script calls play()
FLAGS = [*CHROMIUM_FLAGS, "--autoplay-policy=no-user-gesture-required"]


def browse(chromium: str, url: str, tmp_path: Path, name: str) -> str:  # noqa: F811 - the fixture's value
    """The DOM after the page's scripts ran (a screenshot beside it, to look at)."""
    result = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={tmp_path / ('chromium-' + name)}",
         f"--screenshot={tmp_path / (name + '.png')}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    print(f"screenshot: {tmp_path / (name + '.png')}")
    return result.stdout


def test_search_finds_objects_and_the_video_page_plays_one(site: dict, chromium: str, tmp_path: Path) -> None:  # noqa: F811
    with serve(site, token=None, run_daemon=False) as api:
        seeded = seed_objects(api)
        video_id = api.seeded.done
        status = browse(chromium, f"{api.url}/", tmp_path, "status")
        people = browse(chromium, f"{api.url}/browse?what=objects&camera=cam1&label=person", tmp_path, "people")
        timed = browse(chromium, f"{api.url}/browse?what=objects&since=2025-11-24T16:00:02Z&until=1764000003.5",
                       tmp_path, "timed")
        paged = browse(chromium, f"{api.url}/browse?what=objects&label=person&limit=2", tmp_path, "paged")
        videos = browse(chromium, f"{api.url}/browse?what=videos&camera=cam1", tmp_path, "videos")
        # virtual time does not wait for a video to load: the player is watched in real time, over the debugging pipe
        with chromium_pipe(chromium, FLAGS, tmp_path / "chromium-video") as browser:
            browser.open(f"{api.url}/browse/videos/{video_id}#play=object-2")
            played = browser.wait_for(
                "document.body.dataset.played === 'yes' && parseFloat(document.body.dataset.currentTime) > 0 "
                "&& document.body.dataset.currentTime", timeout_s=60)
            shot = browser.call("Page.captureScreenshot", {"format": "png"})["data"]
            (tmp_path / "video.png").write_bytes(base64.b64decode(shot))
            page = browser.evaluate("document.documentElement.outerHTML")
            state = browser.evaluate("JSON.stringify(document.body.dataset)")
    assert 'href="/browse"' in status, "the status page links to the browser"
    assert f'href="/browse/videos/{video_id}"' in status, "and each recent video to its page"
    assert 'data-searched="yes"' in people and 'data-results="3"' in people
    assert re.findall(r'data-object="([^"]+)"', people) == seeded.people  # newest first; the car is not a person
    assert 'src="/videos/' + video_id + '/crops/1.jpg"' in people
    # the form keeps whole seconds: until 16:00:03 takes the person at 3.0 s, since 16:00:02 leaves the car out
    assert re.findall(r'data-object="([^"]+)"', timed) == seeded.people[:2]
    assert re.findall(r'data-object="([^"]+)"', paged) == seeded.people[:2] and "(more below)" in paged
    assert re.findall(r'data-video="([^"]+)"', videos) == [video_id]
    assert played and float(played) > 0, state  # the <video> reached currentTime > 0
    assert 2.0 <= float(played) <= 4.5, state  # within the object's seconds (2.4 s to 3.9 s, stopped at its end)
    assert json.loads(state)["playingWhat"] == "object-2"
    assert 'id="object-4"' in page and 'src="/videos/' + video_id + '/crops/4.jpg"' in page
    assert f'src="/videos/{video_id}/timeline.svg"' in page
