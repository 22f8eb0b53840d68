"""The status page in headless Chromium (Debian's chromium): rendered, refreshed by its script, screenshotted."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api_fixtures import serve
from tests.helpers import missing

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
    "--window-size=1400,1300",
    "--virtual-time-budget=4000",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing("chromium", "apt-get install chromium")
    return path


def browse(chromium: str, url: str, tmp_path: Path, screenshot: Path) -> subprocess.CompletedProcess[str]:
    """Load ``url``, let its scripts run, save a screenshot; stdout is the DOM after the scripts."""
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={screenshot}",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_status_page_shows_videos_queues_workers_and_failures(
    site: dict, chromium: str, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    screenshot = tmp_path / "status-page.png"
    with serve(site, token=None) as api:
        result = browse(chromium, f"{api.url}/", tmp_path, screenshot)
        docs = browse(chromium, f"{api.url}/docs", tmp_path, tmp_path / "docs.png")
    dom = result.stdout
    record_property("screenshot", str(screenshot))
    print(f"status page screenshot: {screenshot}")  # where to look (shown with -rA or -s)
    assert 'data-refreshed="yes"' in dom, "the page's script did not refresh the panel"
    for words in (
        f'data-video="{api.seeded.done}"', f"/videos/{api.seeded.done}/thumbnail",
        f"/videos/{api.seeded.done}/timeline.svg", 'data-queue="cpu"', "no live worker",
        "truncated (moov atom not found)", "/nvr/cam3/wait.mp4", "root(s) watched",
    ):
        assert words in dom, words
    assert screenshot.stat().st_size > 10_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Swagger UI renders from the package's own files (no CDN: this browser has no network)
    assert "opblock" in docs.stdout and "/videos/{video_id}/summary" in docs.stdout
