"""The ``[api]`` keys of issue 13: refused at start with the key named, or accepted as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidwatch.api.guard import allowed_hosts, host_name
from vidwatch.cli import main
from vidwatch.config import load_config
from vidwatch.errors import ConfigError


@pytest.mark.parametrize(
    ("toml", "refused"),
    [  # [api] lines, the key named in the refusal (None: accepted)
        ('token = ""', "api.token"),
        ('token = "   "', "api.token"),
        ('read_token = ""', "api.read_token"),
        ('token = "s3cret"', None),
        ("", None),  # no token: writes refused, reads open (as before)
        ("max_body_bytes = 0", "api.max_body_bytes"),
        ("max_body_bytes = 1048576", None),
        ('allowed_hosts = ["nvr.example.com", "10.0.0.5", "fe80::1", "[::2]"]', None),
        ('allowed_hosts = ["nvr.example.com:8787"]', "api.allowed_hosts"),
        ('allowed_hosts = ["a b"]', "api.allowed_hosts"),
        ('allowed_hosts = ["*"]', None),
    ],
)
def test_api_keys_are_checked_at_start(toml: str, refused: str | None, tmp_path: Path) -> None:
    path = tmp_path / "vidwatch.toml"
    path.write_text(f"[api]\n{toml}\n")
    if refused is None:
        load_config(path, environ={})
        return
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert f"config: {refused} = " in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_the_daemon_refuses_an_empty_token_before_it_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDWATCH_API__TOKEN", "")
    (tmp_path / "vidwatch.toml").write_text("[api]\n")
    assert main(["daemon", "-c", str(tmp_path / "vidwatch.toml")]) == 2
    err = capsys.readouterr().err
    assert "config: api.token = ***: Value error, empty token" in err and "VIDWATCH_API__TOKEN" in err


@pytest.mark.parametrize(
    ("listen", "extra", "allowed"),
    [  # [api] listen, allowed_hosts, the Host names answered (None: any)
        ("127.0.0.1:8787", [], {"127.0.0.1", "localhost", "::1"}),
        ("[::1]:8787", [], {"127.0.0.1", "localhost", "::1"}),
        ("192.168.1.20:8787", ["NVR.example.com"], {"192.168.1.20", "nvr.example.com", "127.0.0.1", "localhost",
                                                    "::1"}),
        ("0.0.0.0:8787", ["*"], None),
    ],
)
def test_allowed_hosts(listen: str, extra: list[str], allowed: set[str] | None) -> None:
    config = load_config(None, environ={"VIDWATCH_API__LISTEN": listen,
                                        "VIDWATCH_API__ALLOWED_HOSTS": ",".join(extra)} if extra else
                         {"VIDWATCH_API__LISTEN": listen})
    hosts = allowed_hosts(config.api)
    assert hosts == (None if allowed is None else frozenset(allowed))


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8787", "localhost"),
        ("LOCALHOST", "localhost"),
        ("[::1]:8787", "::1"),
        ("[::1]", "::1"),
        ("nvr.example.com.:80", "nvr.example.com"),
        ("a@b:80", "a@b"),
        ("", ""),
        ("[::1", ""),
    ],
)
def test_host_names(header: str, name: str) -> None:
    assert host_name(header) == name
