"""Crop stages: registry, dominant colour, and http_forward against a local test server."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fakes.clock import FakeClock
from vidwatch.config import load_config
from vidwatch.errors import ConfigError
from vidwatch.stages import (
    Context,
    DominantColourSettings,
    HttpForwardSettings,
    StageError,
    apply,
    build,
    register,
    registered,
)
from vidwatch.stages.colour import dominant
from vidwatch.stages.http_forward import HttpForward, TokenBucket

CONTEXT = Context(camera="cam1", video_id="v123")


def crop_file(folder: Path, name: str, bgr: tuple[int, int, int]) -> Path:
    image = np.full((80, 60, 3), 200, np.uint8)  # light background at the edges
    image[8:72, 6:54] = bgr
    path = folder / name
    cv2.imwrite(str(path), image)
    return path


def tracks_for(paths: list[Path]) -> dict[int, dict[str, object]]:
    return {
        i + 1: {"path": str(p), "label": "car", "pts": 1.5 * i, "score": 10.0, "confidence": 0.9, "box": [1, 2, 61, 82]}
        for i, p in enumerate(paths)
    }


def test_registry() -> None:
    assert {"dominant_colour", "http_forward"} <= set(registered())
    with pytest.raises(ValueError, match="registered twice"):
        register("dominant_colour")(object)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bgr", "name"),
    [
        ((30, 30, 200), "red"),
        ((200, 60, 30), "blue"),
        ((50, 160, 40), "green"),
        ((40, 220, 235), "yellow"),
        ((15, 15, 15), "black"),
        ((245, 245, 245), "white"),
        ((128, 128, 128), "grey"),
    ],
)
def test_dominant_colour_names(bgr: tuple[int, int, int], name: str) -> None:
    image = np.full((50, 50, 3), bgr, np.uint8)
    found = dominant(image)
    assert found["name"] == name
    assert found["rgb"] == list(bgr[::-1])
    assert found["share"] == 1.0


def test_dominant_colour_ignores_the_background_rim_and_noise(tmp_path: Path) -> None:
    path = crop_file(tmp_path, "t1.jpg", (160, 40, 30))  # a blue object on a light background
    rng = np.random.default_rng(0)
    image = cv2.imread(str(path))
    image = cv2.add(image, rng.integers(0, 12, image.shape, dtype=np.uint8))
    cv2.imwrite(str(path), image)
    out = apply(build([DominantColourSettings()]), tracks_for([path]), CONTEXT)
    assert out[1]["dominant_colour"]["name"] == "blue"
    assert out[1]["dominant_colour"]["share"] > 0.5


def test_a_failing_stage_is_recorded_not_raised(tmp_path: Path) -> None:
    good = crop_file(tmp_path, "good.jpg", (30, 30, 200))
    tracks = tracks_for([good, tmp_path / "missing.jpg"])
    stages = build([DominantColourSettings(), DominantColourSettings(clusters=1)])
    out = apply(stages, tracks, CONTEXT)
    assert out[1]["dominant_colour"]["name"] == "red" and out[1]["dominant_colour.2"]["name"] == "red"
    assert "not a readable image" in out[2]["dominant_colour"]["error"]
    assert out[2]["label"] == "car"  # the entry's own fields stay


# --- http_forward against a local server ---------------------------------------------------


class Service:
    """A local HTTP service: answers each request from a script of (status, body) and records the requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, object]] = []
        self.requests: list[dict[str, object]] = []
        self.release = threading.Event()  # a 'hang' answer waits for this (set at teardown)
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                service.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                status, answer = service.script.pop(0) if service.script else (200, {"ok": True})
                if answer == "hang":
                    service.release.wait(30)
                    return
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/recognize?key=secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    yield svc
    svc.stop()


def forward(service: Service, clock: FakeClock, **settings: object) -> HttpForward:
    stage = HttpForward(HttpForwardSettings(url=service.url, **settings), clock=clock, sleep=None)
    return stage


def multipart(request: dict[str, object]) -> dict[str, bytes]:
    headers = request["headers"]
    raw = f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + request["body"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()}


def test_multipart_forward_merges_the_answer(service: Service, tmp_path: Path) -> None:
    path = crop_file(tmp_path, "track-1.jpg", (30, 30, 200))
    service.script = [(200, {"plate": "AB-123", "confidence": 0.8})]
    clock = FakeClock()
    stage = forward(service, clock, headers={"Authorization": "Bearer t0ken"})
    out = apply([stage], tracks_for([path]), CONTEXT)
    assert out[1]["http_forward"] == {"plate": "AB-123", "confidence": 0.8}
    (request,) = service.requests
    assert request["path"] == "/recognize?key=secret"
    assert request["headers"]["Authorization"] == "Bearer t0ken"
    parts = multipart(request)
    assert parts["image"] == path.read_bytes()
    meta = json.loads(parts["metadata"])
    assert meta == {"video_id": "v123", "camera": "cam1", "track": 1, "label": "car", "pts": 0.0, "score": 10.0,
                    "box": [1.0, 2.0, 61.0, 82.0]}
    assert clock.slept == []


def test_json_forward_and_a_non_object_answer(service: Service, tmp_path: Path) -> None:
    import base64

    path = crop_file(tmp_path, "track-1.jpg", (30, 30, 200))
    service.script = [(200, ["a", "b"])]
    stage = forward(service, FakeClock(), encoding="json")
    out = apply([stage], tracks_for([path]), CONTEXT)
    assert out[1]["http_forward"] == {"answer": ["a", "b"]}
    doc = json.loads(service.requests[0]["body"])
    assert service.requests[0]["headers"]["Content-Type"] == "application/json"
    assert base64.b64decode(doc["image_base64"]) == path.read_bytes()
    assert doc["metadata"]["track"] == 1


def test_retries_on_500_with_backoff(service: Service, tmp_path: Path) -> None:
    path = crop_file(tmp_path, "track-1.jpg", (30, 30, 200))
    service.script = [(500, {"e": 1}), (503, {"e": 2}), (200, {"text": "hello"})]
    clock = FakeClock()
    stage = forward(service, clock, backoff_s=0.5, retries=3)
    out = apply([stage], tracks_for([path]), CONTEXT)
    assert out[1]["http_forward"] == {"text": "hello"}
    assert len(service.requests) == 3 and stage.requests == 3
    assert clock.slept == [0.5, 1.0]  # exponential backoff, no rate waits (burst 5)


@pytest.mark.parametrize(
    ("script", "attempts", "error"),
    [
        ([(500, {})] * 3, 3, "HTTP 500"),  # retries exhausted
        ([(400, {"bad": 1})], 1, "HTTP 400"),  # a client error is not retried
        ([(200, b"<html>")], 1, "not JSON"),
        ([(429, {}), (429, {}), (429, {})], 3, "HTTP 429"),
    ],
)
def test_errors_are_recorded_as_a_field(
    service: Service, tmp_path: Path, script: list, attempts: int, error: str
) -> None:
    path = crop_file(tmp_path, "track-1.jpg", (30, 30, 200))
    service.script = list(script)
    out = apply([forward(service, FakeClock(), retries=2)], tracks_for([path]), CONTEXT)
    fields = out[1]["http_forward"]
    assert fields["attempts"] == attempts and error in fields["error"]
    assert "secret" not in fields["error"]  # the query string is not repeated
    assert len(service.requests) == attempts


def test_timeout_is_retried_then_recorded(service: Service, tmp_path: Path) -> None:
    path = crop_file(tmp_path, "track-1.jpg", (30, 30, 200))
    service.script = [(200, "hang"), (200, {"late": False})]
    clock = FakeClock()
    out = apply([forward(service, clock, timeout_s=0.2, retries=1)], tracks_for([path]), CONTEXT)
    assert out[1]["http_forward"] == {"late": False}
    service.script = [(200, "hang"), (200, "hang")]
    out = apply([forward(service, clock, timeout_s=0.2, retries=1)], tracks_for([path]), CONTEXT)
    assert "timed out" in out[1]["http_forward"]["error"] and out[1]["http_forward"]["attempts"] == 2


def test_connection_refused_is_an_error_field(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = crop_file(tmp_path, "track-1.jpg", (30, 30, 200))
    settings = HttpForwardSettings(url=f"http://127.0.0.1:{port}/x", retries=1)
    clock = FakeClock()
    out = apply([HttpForward(settings, clock=clock, sleep=None)], tracks_for([path]), CONTEXT)
    assert "cannot connect" in out[1]["http_forward"]["error"]
    assert clock.slept == [0.5]


def test_the_rate_is_bounded(service: Service, tmp_path: Path) -> None:
    paths = [crop_file(tmp_path, f"track-{i}.jpg", (30, 30, 200)) for i in range(10)]
    clock = FakeClock()
    stage = forward(service, clock, rate_per_s=2.0, burst=3)
    out = apply([stage], tracks_for(paths), CONTEXT)
    assert all(entry["http_forward"] == {"ok": True} for entry in out.values())
    assert stage.bucket.waits == 7  # the first 3 go at once, each later one waits for a token
    assert sum(clock.slept) == pytest.approx(7 / 2.0)  # 7 requests at 2 per second (fake seconds)
    apply([stage], tracks_for(paths[:2]), CONTEXT)  # the next video: the same stage, the same bucket
    assert stage.bucket.waits == 9 and len(service.requests) == 12


def test_token_bucket_refills_with_time() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10, burst=2, clock=clock, sleep=None)
    assert [bucket.acquire() for _ in range(2)] == [0.0, 0.0]
    clock.now += 1.0  # refilled to the burst, not beyond
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]
    assert bucket.waits == 1


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('type = "http_forward"\nurl = "ftp://x/y"\n', "stages.0.http_forward.url = ***"),
        ('type = "http_forward"\nurl = "not a url"\n', "stages.0.http_forward.url = ***"),
        ('type = "http_forward"\nurl = "http://ocr:8080/"\nretrys = 2\n', "stages.0.http_forward.retrys: unknown key"),
        ('type = "http_forward"\n', "stages.0.http_forward.url"),
        ('type = "http_forward"\nurl = "http://ocr/"\nrate_per_s = 0\n', "rate_per_s = 0"),
        ('type = "dominant_colour"\nclusters = 20\n', "stages.0.dominant_colour.clusters = 20"),
        ('type = "colour"\n', "stages.0"),
    ],
)
def test_stage_configuration_is_validated(tmp_path: Path, table: str, expected: str) -> None:
    path = tmp_path / "vidwatch.toml"
    path.write_text(f"[[stages]]\n{table}")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={}, cwd=tmp_path)
    assert expected in str(info.value)


def test_stage_configuration_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "vidwatch.toml"
    path.write_text(
        '[summary]\ncondensed_clip = true\ncrop_min_px = 48\n'
        '[[stages]]\ntype = "dominant_colour"\n'
        '[[stages]]\ntype = "http_forward"\nurl = "https://ocr.site.local:8443/v1/read"\nrate_per_s = 2\n'
        'headers = { Authorization = "Bearer x" }\n'
    )
    config = load_config(path, environ={}, cwd=tmp_path)
    assert config.summary.condensed_clip and config.summary.crop_min_px == 48 and config.summary.timeline
    assert [s.type for s in config.stages] == ["dominant_colour", "http_forward"]
    assert str(config.stages[1].url) == "https://ocr.site.local:8443/v1/read"
    assert "Bearer x" not in repr(config.stages[1])
    stages = build(list(config.stages))
    assert [s.name for s in stages] == ["dominant_colour", "http_forward"]


def test_run_before_load_is_a_stage_error(tmp_path: Path) -> None:
    path = crop_file(tmp_path, "t.jpg", (30, 30, 200))
    stage = HttpForward(HttpForwardSettings(url="http://127.0.0.1:9/"), clock=FakeClock(), sleep=None)
    from vidwatch.stages import Crop

    with pytest.raises(StageError, match="before load"):
        stage.run(Crop(1, path, "car", 0.0, 1.0, (0, 0, 1, 1), CONTEXT))


def test_a_stage_that_cannot_load_is_recorded_for_every_track(tmp_path: Path) -> None:
    class Broken:
        name = "broken"

        def load(self) -> None:
            raise StageError("broken: the model file is missing")

        def run(self, crop: object) -> dict[str, object]:
            raise AssertionError("never run")

        def close(self) -> None:
            """Nothing to release."""

    path = crop_file(tmp_path, "t.jpg", (30, 30, 200))
    out = apply([Broken(), *build([DominantColourSettings()])], tracks_for([path, path]), CONTEXT)
    assert [entry["broken"] for entry in out.values()] == [{"error": "broken: the model file is missing"}] * 2
    assert all(entry["dominant_colour"]["name"] == "red" for entry in out.values())
