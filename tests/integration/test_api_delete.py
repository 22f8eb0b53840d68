"""``DELETE /videos/{id}``: the write token, a video in flight refused (409), a done one removed with its files."""

from __future__ import annotations

import httpx

from tests.api_fixtures import serve, thumbnail_path

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_delete_removes_a_finished_video_and_refuses_one_in_flight(site: dict) -> None:
    with serve(site, token=TOKEN, run_daemon=False) as api:
        client, keys, seeded = api.daemon.client, api.daemon.keys, api.seeded

        def delete(video_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
            return httpx.delete(f"{api.url}/videos/{video_id}", headers=headers, timeout=10)

        cases = [  # video, headers, status, error text (None: success)
            (seeded.done, None, 401, "bearer token"),
            (seeded.queued, AUTH, 409, "still queued"),
            ("f" * 20, AUTH, 404, "no such video"),
            ("bad id!", AUTH, 422, "video_id"),
        ]
        for video_id, headers, status, error in cases:
            response = delete(video_id, headers)
            assert response.status_code == status, (video_id, response.text)
            assert "error" in response.json() and (error is None or error in response.json()["error"])
        assert client.hget(keys.video(seeded.queued), "state") == "queued"
        assert client.exists(keys.video(seeded.done)) and thumbnail_path(api.config, seeded.done).exists()

        response = delete(seeded.done, AUTH)
        assert response.status_code == 200, response.text
        removed = response.json()["removed"]
        assert removed["videos"] == 1 and removed["summaries"] == 1 and removed["files"] == 1
        assert not client.exists(keys.video(seeded.done)) and not thumbnail_path(api.config, seeded.done).exists()
        assert client.zscore(keys.index_time, seeded.done) is None
        assert httpx.get(f"{api.url}/videos/{seeded.done}/summary", timeout=10).status_code == 404
        assert delete(seeded.done, AUTH).status_code == 404  # once
        assert delete(seeded.failed, AUTH).status_code == 200
        spec = httpx.get(f"{api.url}/openapi.json", timeout=10).json()
        assert "409" in spec["paths"]["/videos/{video_id}"]["delete"]["responses"]
