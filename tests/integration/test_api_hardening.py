"""The API as a careless or hostile client meets it (issue 13, item 7), on a real port with real Redis.

Body limit and auth before the body is read, one error form that never repeats the input, strict
JSON, an optional read token, the allowed-Host list.
"""

from __future__ import annotations

import base64
import json
import re
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api_fixtures import Served, serve

TOKEN = "write-token-0123"
READ_TOKEN = "read-token-4567"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MARK = "ECHO7f3a"  # put into requests; must never come back in an error
MB = 2**20


def configure(site: dict, **api: object) -> None:
    """Add keys to the site's ``[api]`` table."""
    path: Path = site["config"]
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in api.items())
    path.write_text(path.read_text().replace("[api]\n", f"[api]\n{lines}", 1))


@pytest.fixture
def api(site: dict) -> Iterator[Served]:
    with serve(site, token=TOKEN, run_daemon=False) as served:
        yield served


@pytest.fixture
def read_protected(site: dict) -> Iterator[Served]:
    configure(site, read_token=READ_TOKEN, allowed_hosts=["nvr.example.com"])
    with serve(site, token=TOKEN, run_daemon=False) as served:
        yield served


def call(api: Served, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, api.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


def assert_error_form(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"error"} and words in body["error"], body
    assert MARK not in response.text and "Traceback" not in response.text, response.text


def test_every_error_has_one_form_and_never_repeats_the_input(api: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    json_type = {**AUTH, "content-type": "application/json"}
    bad_token = {"Authorization": f"Bearer {MARK}"}
    long_path, list_path = {"path": MARK * 600}, {"path": [MARK]}
    cases = [  # method, path, request kwargs, status, words in the error
        ("GET", f"/{MARK}", {}, 404, "not found"),
        ("DELETE", "/healthz", {"headers": AUTH}, 405, "method not allowed"),
        ("GET", f"/jobs/{MARK}", {}, 404, "video_id: no such video"),
        ("GET", f"/videos/{MARK}%20x/summary", {}, 422, "path.video_id: String should match pattern"),
        ("GET", f"/videos?since={MARK}", {}, 400, "since: expected epoch seconds"),
        ("GET", "/videos?limit=0", {}, 422, "query.limit:"),
        ("GET", f"/videos?limit={MARK}", {}, 422, "query.limit: Input should be a valid integer"),
        ("POST", "/jobs", {"content": b'{"path": "\\ud800"}', "headers": json_type}, 400, "lone surrogate"),
        ("POST", "/jobs", {"content": b'{"path": "/x\\udc00y"}', "headers": json_type}, 400, "lone surrogate"),
        ("POST", "/jobs", {"content": b'{"\\ud800": 1}', "headers": json_type}, 400, "lone surrogate"),
        ("POST", "/jobs", {"content": b'{"path": "/nvr/caf\xe9.mp4"}', "headers": json_type}, 400, "not valid UTF-8"),
        ("POST", "/jobs", {"content": f'{{"path": "{MARK}'.encode(), "headers": json_type}, 422, "not valid JSON"),
        ("POST", "/jobs", {"json": {"path": "/x.mp4", MARK: 1}, "headers": AUTH}, 422, "body: unexpected field"),
        ("POST", "/jobs", {"json": {}, "headers": AUTH}, 422, "body.path: Field required"),
        ("POST", "/jobs", {"json": long_path, "headers": AUTH}, 422, "body.path: String should have at most"),
        ("POST", "/jobs", {"json": list_path, "headers": AUTH}, 422, "body.path: Input should be a valid string"),
        ("POST", "/jobs", {"json": {"path": f"{MARK}.mp4"}, "headers": AUTH}, 400, "path: expected an absolute path"),
        ("POST", "/jobs", {"json": {"path": f"/nowhere/{MARK}.mp4"}, "headers": AUTH}, 400,
         "path: not inside a watched root"),
        ("POST", "/jobs", {"json": {"path": f"/{MARK}"}}, 401, "bearer token"),
        ("POST", "/jobs", {"json": {"path": "/x"}, "headers": bad_token}, 401, "bearer token"),
        ("POST", "/jobs", {"content": b"x" * (64 * 1024 + 1), "headers": json_type}, 413, "[api] max_body_bytes"),
        ("GET", "/healthz", {"headers": {"Host": f"{MARK}.example"}}, 400, "[api] allowed_hosts"),
    ]
    for method, path, kwargs, status, words in cases:
        response = call(api, method, path, **kwargs)
        try:
            assert_error_form(response, status, words)
        except AssertionError as exc:
            raise AssertionError(f"{method} {path} {kwargs}: {exc}") from exc

    def broken() -> dict:
        raise RuntimeError(f"internal detail {MARK}")

    monkeypatch.setattr(api.daemon, "status", broken)
    assert_error_form(call(api, "GET", "/status"), 500, "internal error")
    monkeypatch.undo()
    assert call(api, "GET", "/status").status_code == 200  # the server goes on


def test_reads_need_the_read_token_when_one_is_configured(read_protected: Served) -> None:
    api = read_protected
    basic = base64.b64encode(f"anyone:{READ_TOKEN}".encode()).decode()
    wrong_basic = base64.b64encode(b"anyone:nope").decode()
    as_reader = {"Authorization": f"Bearer {READ_TOKEN}"}
    done = api.seeded.done
    cases = [  # method, path, headers, status
        ("GET", "/videos", {}, 401),
        ("GET", "/videos", as_reader, 200),
        ("GET", "/videos", AUTH, 200),  # the write token reads too
        ("GET", "/videos", {"Authorization": f"Basic {basic}"}, 200),  # a browser's prompt
        ("GET", "/videos", {"Authorization": f"Basic {wrong_basic}"}, 401),
        ("GET", "/videos", {"Authorization": "Bearer wrong"}, 401),
        ("GET", "/videos", {"Authorization": f"Basic {READ_TOKEN}"}, 401),  # not base64
        ("GET", f"/jobs/{done}", {}, 401),
        ("GET", f"/videos/{done}/summary", {}, 401),
        ("GET", f"/videos/{done}/thumbnail", {}, 401),
        ("GET", f"/videos/{done}/summary", as_reader, 200),
        ("GET", "/", {}, 401),
        ("GET", "/status", {}, 401),
        ("GET", "/status/panel", {}, 401),
        ("GET", "/docs", {}, 401),
        ("GET", "/openapi.json", {}, 401),
        ("GET", "/docs", {"Authorization": f"Basic {basic}"}, 200),
        ("GET", "/nowhere", {}, 401),  # nothing learnt without the token, not even what exists
        ("HEAD", "/videos", {}, 401),
        ("GET", "/healthz", {}, 200),  # probes and scrapers need no token
        ("GET", "/readyz", {}, 503),  # (no worker)
        ("GET", "/metrics", {}, 200),
        ("POST", "/jobs", as_reader, 401),  # the read token does not write
    ]
    for method, path, headers, status in cases:
        response = call(api, method, path, headers=headers)
        assert response.status_code == status, (method, path, headers, response.text)
        if status == 401:
            assert "Basic" in response.headers["www-authenticate"] or method == "POST", response.headers
            if method != "HEAD":
                assert set(response.json()) == {"error"} and "bearer token" in response.json()["error"]


def test_only_the_allowed_hosts_are_answered(read_protected: Served) -> None:
    api = read_protected
    port = int(api.url.rsplit(":", 1)[1])
    cases = [  # Host header, status of GET /healthz
        (f"127.0.0.1:{port}", 200),
        ("127.0.0.1", 200),
        (f"localhost:{port}", 200),
        (f"LOCALHOST:{port}", 200),
        (f"[::1]:{port}", 200),
        (f"nvr.example.com:{port}", 200),  # [api] allowed_hosts
        ("nvr.example.com.", 200),
        (f"attacker.example:{port}", 400),  # a rebound DNS name
        (f"localhost.attacker.example:{port}", 400),
        (f"127.0.0.1.nip.io:{port}", 400),
        (f"nvr.example.com@attacker.example:{port}", 400),
        ("", 400),
    ]
    for host, status in cases:
        response = call(api, "GET", "/healthz", headers={"Host": host})
        assert response.status_code == status, (host, response.text)
        if status == 400:
            assert response.json() == {"error": "Host header not allowed: add the name clients use to "
                                                "[api] allowed_hosts"}
    refused = call(api, "GET", "/videos", headers={"Host": "attacker.example", "Authorization": f"Bearer {READ_TOKEN}"})
    assert refused.status_code == 400  # a token does not make another Host acceptable


def _rss_bytes() -> int:
    """Resident memory of this process, which serves the API from a thread."""
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    assert match
    return int(match.group(1)) * 1024


def _stream_post(api: Served, headers: dict[str, str], total: int, *, chunked: bool) -> tuple[int, dict, int]:
    """POST /jobs with a ``total``-byte body sent as fast as the server takes it, until it answers.

    Returns (status, JSON body, bytes of body sent). The server must answer without reading it all.
    """
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        head = ["POST /jobs HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        piece = b'{"path": "' + b"a" * (MB - 10)
        block = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
        sent = 0
        sock.setblocking(False)
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable or not writable:
                break  # the answer came (or nothing moves: read what there is)
            try:
                sent += sock.send(block[: max(0, min(len(block), total - sent))] if not chunked else block)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            assert more, f"connection closed without an answer after {sent} bytes"
            data += more
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        status = int(head_bytes.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head_bytes).group(1))  # type: ignore[union-attr]
        while len(rest) < length:
            more = sock.recv(65536)
            if not more:
                break
            rest += more
        return status, json.loads(rest[:length]), sent
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("headers", "chunked", "status", "words"),
    [  # a 100 MB body: refused before it is read
        ({}, False, 401, "bearer token"),  # no token: auth comes first
        ({"Authorization": "Bearer wrong"}, True, 401, "bearer token"),
        (AUTH, False, 413, "[api] max_body_bytes"),  # Content-Length over the limit: at once
        (AUTH, True, 413, "[api] max_body_bytes"),  # no Content-Length: counted as it streams
    ],
)
def test_a_huge_body_is_refused_before_it_is_read(
    api: Served, headers: dict[str, str], chunked: bool, status: int, words: str
) -> None:
    before = _rss_bytes()
    started = time.monotonic()
    got, body, sent = _stream_post(api, headers, 100 * MB, chunked=chunked)
    elapsed = time.monotonic() - started
    grown = _rss_bytes() - before
    assert (got, set(body)) == (status, {"error"}) and words in body["error"], body
    assert sent < 20 * MB, f"{sent} bytes were taken before the answer"  # socket buffers, not the body
    assert elapsed < 5, f"{elapsed:.1f} s to refuse"
    assert grown < 30 * MB, f"the process grew by {grown / MB:.0f} MiB"
    assert httpx.get(f"{api.url}/healthz", timeout=5).status_code == 200  # and it answers the next request


def test_the_body_limit_is_configurable_and_exact(site: dict) -> None:
    configure(site, max_body_bytes=2048)
    with serve(site, token=TOKEN, run_daemon=False) as api:
        path = "/nowhere/" + "a" * (2048 - len('{"path": "/nowhere/"}'))
        at_limit = json.dumps({"path": path}).encode()
        assert len(at_limit) == 2048
        cases = [  # body, status
            (at_limit, 400),  # read and handled: not inside a watched root
            (at_limit + b" ", 413),
        ]
        for body, status in cases:
            response = call(api, "POST", "/jobs", content=body, headers={**AUTH, "content-type": "application/json"})
            assert response.status_code == status, response.text
            chunked = call(api, "POST", "/jobs", content=iter([body[:1000], body[1000:]]),
                           headers={**AUTH, "content-type": "application/json"})
            assert chunked.status_code == status, chunked.text
