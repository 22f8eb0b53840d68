"""GET /objects, GET /videos/{id} and a video's files (crops, timeline, clip with ranges) on a real port."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api_fixtures import START_TS, Served, serve
from tests.objects_fixtures import SeededObjects, seed_objects

READ = "read-token-456"


@pytest.fixture
def api(site: dict) -> Iterator[tuple[Served, SeededObjects]]:
    with serve(site, token=None, run_daemon=False) as served:
        yield served, seed_objects(served)


def get(api: Served, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(api.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


def test_objects_are_found_by_camera_label_and_time_page_by_page(api: tuple[Served, SeededObjects]) -> None:
    served, seeded = api
    people = seeded.people
    cases = [  # query, expected object ids (newest first)
        ("", [*people[:2], seeded.car, people[2]]),
        ("?label=person", people),
        ("?camera=cam1&label=car", [seeded.car]),
        ("?camera=cam2", []),
        (f"?label=person&since={START_TS + 1}&until={START_TS + 2.5}", [people[1]]),
        ("?label=person&since=2025-11-24T16:00:02Z", people[:2]),
    ]
    for query, expected in cases:
        response = get(served, "/objects" + query)
        assert response.status_code == 200, response.text
        assert [o["object_id"] for o in response.json()["objects"]] == expected, query
    pages, cursor = [], None
    while True:
        body = get(served, "/objects?label=person&limit=2" + (f"&cursor={cursor}" if cursor else "")).json()
        pages.append([o["object_id"] for o in body["objects"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [people[:2], people[2:]]
    first = get(served, "/objects?label=car").json()["objects"][0]
    assert first["crop"] == f"/videos/{served.seeded.done}/crops/4.jpg" and first["score"] == 0.8
    assert first["start_ts"] == START_TS + 1.0 and first["box"] == [10.0, 10.0, 42.0, 74.0]
    for bad, status in (("?cursor=nonsense", 400), ("?since=yesterday", 400), ("?limit=0", 422),
                        (f"?since={START_TS + 9}&until={START_TS}", 400)):
        response = get(served, "/objects" + bad)
        assert response.status_code == status, bad
        assert set(response.json()) == {"error"}, bad


def test_a_video_with_its_objects_and_files(api: tuple[Served, SeededObjects]) -> None:
    served, seeded = api
    video_id = served.seeded.done
    body = get(served, f"/videos/{video_id}").json()
    assert body["record"]["state"] == "done" and body["summary"]["camera"] == "cam1"
    assert [o["track"] for o in body["objects"]] == [1, 4, 2, 3]
    assert body["timeline"] == f"/videos/{video_id}/timeline.svg"
    assert body["clip"] == {"kind": "spool", "url": f"/videos/{video_id}/clip.mp4", "spans": []}
    crop = get(served, f"/videos/{video_id}/crops/1.jpg")
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg" and crop.content[:2] == b"\xff\xd8"
    size = seeded.clip.stat().st_size
    whole = get(served, f"/videos/{video_id}/clip.mp4")
    assert whole.status_code == 200 and len(whole.content) == size and whole.headers["accept-ranges"] == "bytes"
    part = get(served, f"/videos/{video_id}/clip.mp4", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == seeded.clip.read_bytes()[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    tail = get(served, f"/videos/{video_id}/clip.mp4", headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and len(tail.content) == 50
    cases = [  # path, headers, status
        (f"/videos/{video_id}/crops/2.jpg", {}, 404),  # an object without a crop
        (f"/videos/{video_id}/crops/99.jpg", {}, 404),
        (f"/videos/{video_id}/crops/x.jpg", {}, 422),
        (f"/videos/{video_id}/timeline.png", {}, 404),  # no timeline image was made
        (f"/videos/{video_id}/clip.mp4", {"Range": "lines=1-2"}, 400),
        (f"/videos/{video_id}/clip.mp4", {"Range": f"bytes={size + 10}-"}, 416),
        (f"/videos/{served.seeded.done_cam2}/clip.mp4", {}, 404),  # its spool path is outside the spool
        ("/videos/" + "f" * 20, {}, 404),
        ("/videos/bad$id", {}, 422),
    ]
    for path, headers, status in cases:
        response = get(served, path, headers=headers)
        assert response.status_code == status, path
        assert set(response.json()) == {"error"}, path
    assert get(served, f"/videos/{served.seeded.failed}").json()["objects"] == []


def test_a_file_outside_the_daemons_folders_is_never_served(api: tuple[Served, SeededObjects]) -> None:
    served, _ = api
    video_id = served.seeded.done
    client, keys = served.daemon.client, served.daemon.keys
    client.hset(keys.video(video_id), "spool_path", "/etc/passwd")
    assert get(served, f"/videos/{video_id}/clip.mp4").status_code == 404
    forged = client.xadd(f"{keys.prefix}:objects", {
        "video_id": video_id, "track": "1", "start_ts": "1", "end_ts": "2",
        "crop": str(served.config.paths.state_dir) + "/../../../../../../../../etc/passwd"})
    client.delete(f"{keys.prefix}:video-objects:{video_id}")
    client.hset(f"{keys.prefix}:video-objects:{video_id}", mapping={forged: "person", "run": "1"})
    assert get(served, f"/videos/{video_id}/crops/1.jpg").status_code == 404


def test_reads_follow_the_read_token(site: dict) -> None:
    config = site["config"]
    config.write_text(config.read_text().replace("[api]\n", f'[api]\nread_token = "{READ}"\n'))
    with serve(site, token=None, run_daemon=False) as served:
        seed_objects(served)
        video_id = served.seeded.done
        for path in ("/objects", f"/videos/{video_id}", f"/videos/{video_id}/clip.mp4",
                     f"/videos/{video_id}/crops/1.jpg", "/browse", f"/browse/videos/{video_id}", "/browse/app.js"):
            refused = get(served, path)
            assert refused.status_code == 401 and set(refused.json()) == {"error"}, path
            assert get(served, path, auth=("any", READ)).status_code == 200, path


def test_openapi_documents_the_new_endpoints(api: tuple[Served, SeededObjects]) -> None:
    served, _ = api
    paths = get(served, "/openapi.json").json()["paths"]
    for path in ("/objects", "/videos/{video_id}", "/videos/{video_id}/crops/{track}.jpg",
                 "/videos/{video_id}/timeline.png", "/videos/{video_id}/clip.mp4", "/browse",
                 "/browse/videos/{video_id}"):
        assert path in paths, path
    assert "cursor" in {p["name"] for p in paths["/objects"]["get"]["parameters"]}
    assert "206" in paths["/videos/{video_id}/clip.mp4"]["get"]["responses"]


def test_videos_page_by_cursor(api: tuple[Served, SeededObjects]) -> None:
    served, _ = api
    first = get(served, "/videos?limit=1").json()
    assert [v["video_id"] for v in first["videos"]] == [served.seeded.done_cam2] and first["next_cursor"]
    second = get(served, f"/videos?limit=1&cursor={first['next_cursor']}").json()
    assert [v["video_id"] for v in second["videos"]] == [served.seeded.done] and second["next_cursor"] is None
    bad = get(served, "/videos?cursor=nonsense")
    assert bad.status_code == 400 and set(bad.json()) == {"error"}


def test_without_the_spooled_copy_the_condensed_clip_plays_with_its_spans(
    api: tuple[Served, SeededObjects]
) -> None:
    served, seeded = api
    client, keys, config = served.daemon.client, served.daemon.keys, served.config
    video_id = served.seeded.done_cam2  # its spool path is outside the spool: no spooled copy
    condensed = config.paths.state_dir / "condensed" / f"{video_id}.mp4"
    condensed.parent.mkdir(parents=True)
    condensed.write_bytes(seeded.clip.read_bytes())
    (_, fields), = client.xrange(keys.summaries, client.hget(keys.video(video_id), "summary_id"), "+", count=1)
    client.hset(keys.video(video_id), "summary_id", client.xadd(keys.summaries, {**fields,
                                                                                 "condensed_clip": str(condensed)}))
    body = get(served, f"/videos/{video_id}").json()
    # activity 2.0-4.2 s padded by 1 s: the clip's 0-4.2 s are the video's 1.0-5.2 s
    assert body["clip"] == {"kind": "condensed", "url": f"/videos/{video_id}/clip.mp4", "spans": [[0.0, 4.2, 1.0, 5.2]]}
    clip = get(served, f"/videos/{video_id}/clip.mp4", headers={"Range": "bytes=0-9"})
    assert clip.status_code == 206 and clip.headers["x-vidwatch-clip"] == "condensed" and len(clip.content) == 10
