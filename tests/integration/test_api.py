"""The daemon's HTTP API on a real port, against real Redis and RabbitMQ."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import httpx
import pytest

from tests.api_fixtures import START_TS, Served, serve
from tests.helpers import moving_square_clip, wait_for
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.results.keys import Keys

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(site: dict) -> Iterator[Served]:
    with serve(site, token=TOKEN) as served:
        yield served


def get(api: Served, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(api.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


def post(api: Served, path: str, **kwargs: object) -> httpx.Response:
    return httpx.post(api.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [v["video_id"] for v in response.json()["videos"]]


def test_videos_are_found_through_the_indexes(api: Served) -> None:
    done, cam2 = api.seeded.done, api.seeded.done_cam2
    cases = [  # query, expected ids (newest first)
        ("", [cam2, done]),
        ("?camera=cam1", [done]),
        ("?camera=cam2", [cam2]),
        ("?camera=nowhere", []),
        ("?label=person", [done]),
        ("?label=motion", [cam2, done]),
        ("?camera=cam2&label=person", []),
        ("?camera=cam1&label=person", [done]),
        (f"?since={START_TS + 1}", [cam2]),
        (f"?until={START_TS + 1}", [done]),
        ("?since=2025-11-24T16:30:00Z", [cam2]),
        ("?limit=1", [cam2]),
    ]
    for query, expected in cases:
        assert ids(get(api, "/videos" + query)) == expected, query
    first = get(api, "/videos?camera=cam1").json()["videos"][0]
    assert first["path"] == f"/nvr/cam1/{done}.mp4" and first["state"] == "done" and first["start_ts"] == START_TS
    for bad in ("?since=yesterday", "?since=nan", f"?since={START_TS + 10}&until={START_TS}", "?limit=0"):
        response = get(api, "/videos" + bad)
        assert 400 <= response.status_code < 500, (bad, response.text)


def test_summary_thumbnail_and_timeline(api: Served) -> None:
    done = api.seeded.done
    summary = get(api, f"/videos/{done}/summary").json()
    assert summary["camera"] == "cam1" and summary["frames_analyzed"] == 30
    assert set(summary["labels"]) == {"motion", "person"} and summary["activity"] == [[2.0, 4.2]]
    thumb = get(api, f"/videos/{done}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:3] == b"\xff\xd8\xff"
    timeline = get(api, f"/videos/{done}/timeline.svg")
    assert timeline.status_code == 200 and timeline.headers["content-type"].startswith("image/svg+xml")
    assert "person" in timeline.text and timeline.text.startswith("<svg")
    cases = [  # path, status
        (f"/videos/{api.seeded.queued}/summary", 404),
        (f"/videos/{api.seeded.failed}/thumbnail", 404),
        ("/videos/0123456789abcdef0123/summary", 404),
        ("/videos/..%2F..%2Fetc/thumbnail", 404),
        ("/videos/a%20b/summary", 422),
    ]
    for path, status in cases:
        response = get(api, path)
        assert response.status_code == status, (path, response.text)
        if "summary" in path:
            assert set(response.json()) in ({"error"}, {"detail"}), response.text


def test_jobs_need_the_token_and_a_file_inside_a_root(api: Served, site: dict, ffmpeg: str) -> None:
    clip = moving_square_clip(site["tmp"] / "elsewhere" / "x.mp4", seconds=2)
    inside = shutil.copy(clip, site["inbox"] / "cam9.mp4")
    (site["inbox"] / "escape").symlink_to(clip.parent)
    cases = [  # headers, body, status, words in the error
        ({}, {"path": str(inside)}, 401, "bearer token"),
        ({"Authorization": "Bearer wrong"}, {"path": str(inside)}, 401, "bearer token"),
        ({"Authorization": f"Basic {TOKEN}"}, {"path": str(inside)}, 401, "bearer token"),
        (AUTH, {"path": "cam9.mp4"}, 400, "absolute path"),
        (AUTH, {"path": str(clip)}, 400, "not inside a watched root"),
        (AUTH, {"path": str(site["inbox"] / "escape" / "x.mp4")}, 400, "not inside a watched root"),
        (AUTH, {"path": str(site["inbox"] / "missing.mp4")}, 400, "not a file"),
        (AUTH, {"path": str(site["inbox"])}, 400, "not a file"),
        (AUTH, {"path": str(site["inbox"]) + "/a\u0000b"}, 400, "absolute path"),
    ]
    for headers, body, status, words in cases:
        response = post(api, "/jobs", json=body, headers=headers)
        assert response.status_code == status, (body, headers, response.text)
        assert words in response.json()["error"], response.text
    assert post(api, "/jobs", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
                ).status_code == 422
    assert post(api, "/jobs", json={"path": str(inside), "extra": 1}, headers=AUTH).status_code == 422
    assert post(api, "/jobs", json={}, headers=AUTH).status_code == 422

    response = post(api, "/jobs", json={"path": str(inside)}, headers=AUTH)
    assert response.status_code == 202, response.text
    video_id = response.json()["video_id"]
    assert video_id == fingerprint(clip).video_id
    def published() -> dict | None:
        response = get(api, f"/jobs/{video_id}")
        return response.json() if response.status_code == 200 and response.json()["published"] else None

    job = wait_for(published, timeout_s=30, what="the submitted job to be published")
    assert job["state"] == "queued" and job["path"] == str(site["inbox"] / "cam9.mp4") and job["camera"] == "default"
    assert {"seen", "queued"} <= set(job["timestamps"])
    assert get(api, "/jobs/0123456789abcdef0123").status_code == 404


def test_write_endpoints_are_refused_without_a_configured_token(site: dict) -> None:
    with serve(site, token=None, run_daemon=False) as api:
        response = post(api, "/jobs", json={"path": str(site["inbox"] / "x.mp4")}, headers=AUTH)
        assert response.status_code == 403 and "no [api] token" in response.json()["error"]
        assert get(api, f"/jobs/{api.seeded.done}").json()["state"] == "done"  # reads stay open


def test_readyz_metrics_and_status_page(api: Served, redis_client: object) -> None:
    keys = Keys(api.config.redis.prefix)
    ready = get(api, "/readyz")
    assert ready.status_code == 503  # no worker
    checks = ready.json()["checks"]
    assert set(checks) == {"redis", "broker", "roots", "workers", "spool", "consumers"}
    assert checks["consumers"] == {**checks["consumers"], "ok": True, "detail": {"groups": [], "warnings": []}}
    assert checks["workers"]["detail"]["per_queue"] == {"gpu": [], "cpu": [], "summary": []}
    assert checks["spool"]["ok"] and checks["spool"]["detail"]["free_bytes"] > 0
    assert checks["roots"] == {**checks["roots"], "ok": True, "detail": {str(api.config.watch.roots[0]): "ok"}}
    api.daemon.client.hset(keys.worker("w9@host"), mapping={"name": "w9@host", "queues": '["cpu", "summary"]',
                                                            "engine": "opencv", "pid": "9"})
    api.daemon.client.expire(keys.worker("w9@host"), 60)
    ready = get(api, "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["workers"]["detail"]["per_queue"]["cpu"] == ["w9@host"]

    api.daemon.records.fail(api.seeded.queued, "analyze: /nvr/cam3/wait.mp4: time limit exceeded",
                            path="/nvr/cam3/wait.mp4", stage="analyze", kind="timeout")
    text = get(api, "/metrics").text
    expected = [
        'vidwatch_videos{state="done"} 2.0',
        'vidwatch_videos{state="queued"} 0.0',
        'vidwatch_failures_total{reason="timeout",stage="analyze"} 1.0',
        'vidwatch_events_total{type="failed"} 1.0',
        'vidwatch_workers{queue="cpu"} 1.0',
        'vidwatch_queue_messages{queue="cpu"}',
        'vidwatch_worker_frames_per_second{engine="opencv",worker="w1:1"} 20.0',
        "vidwatch_publish_seconds_bucket",
        "vidwatch_normalize_seconds_bucket",
        "vidwatch_redis_up 1.0",
        "vidwatch_broker_up 1.0",
    ]
    for line in expected:
        assert line in text, line
    assert 'vidwatch_events_total{type="failed"} 1.0' in get(api, "/metrics").text  # each event counted once

    status = get(api, "/status").json()
    assert status["done_indexed"] == 2 and status["workers"][0]["name"] == "w9@host"
    assert [f["video_id"] for f in status["failures"]] == [api.seeded.queued, api.seeded.failed]
    page = get(api, "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for words in ("truncated (moov atom not found)", f'data-video="{api.seeded.done}"', "w9@host", "/status/panel"):
        assert words in page.text, words
    assert json.loads(get(api, "/openapi.json").text)["paths"].keys() >= {
        "/healthz", "/readyz", "/metrics", "/jobs", "/jobs/{video_id}", "/videos", "/videos/{video_id}/summary",
        "/videos/{video_id}/thumbnail", "/videos/{video_id}/timeline.svg", "/",
    }
    assert "swagger-ui" in get(api, "/docs").text
