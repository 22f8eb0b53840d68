from pathlib import Path

import pytest

from vidwatch.config import load_config
from vidwatch.errors import ConfigError


def test_defaults_work_in_the_current_folder(tmp_path: Path) -> None:
    config = load_config(None, environ={}, cwd=tmp_path)
    assert config.watch.roots == [tmp_path / "inbox"]
    assert config.paths.state_dir == tmp_path / "var"
    assert config.paths.spool == tmp_path / "var" / "spool"
    assert config.redis.prefix == "vidwatch"
    assert config.api.listen == "127.0.0.1:8787"
    assert config.broker.url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672//"


def test_file_then_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "v.toml"
    path.write_text('[watch]\nroots = ["/nas/a"]\nsettle_seconds = 5\n[analysis]\nfps = 2\n')
    env = {"VIDWATCH_ANALYSIS__FPS": "10", "VIDWATCH_WATCH__PATTERNS": '["*.mp4"]', "VIDWATCH_REDIS__PREFIX": "x"}
    config = load_config(path, environ=env, cwd=tmp_path)
    assert config.watch.roots == [Path("/nas/a")]
    assert config.watch.settle_seconds == 5
    assert config.analysis.fps == 10
    assert config.watch.patterns == ["*.mp4"]
    assert config.redis.prefix == "x"


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "v.toml"
    path.write_text("[engine]\nbatch = 4\n")
    assert load_config(None, environ={"VIDWATCH_CONFIG": str(path)}).engine.batch == 4


def test_comma_separated_list_override(tmp_path: Path) -> None:
    config = load_config(None, environ={"VIDWATCH_WATCH__ROOTS": "/a, /b"}, cwd=tmp_path)
    assert config.watch.roots == [Path("/a"), Path("/b")]


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ("[watch]\nsettle_seconds = -1\n", {}, "watch.settle_seconds = -1: Input should be greater than 0"),
        ("[watch]\nmode = 'fast'\n", {}, "watch.mode = 'fast'"),
        ("[watch]\nsetle_seconds = 1\n", {}, "watch.setle_seconds: unknown key"),
        ("[nope]\nx = 1\n", {}, "nope: unknown key"),
        ("", {"VIDWATCH_ANALYSIS__FPS": "fast"}, "analysis.fps = 'fast'"),
        ("", {"VIDWATCH_ANALYSIS__FPS": "0"}, "from VIDWATCH_ANALYSIS__FPS"),
        ("[api]\nlisten = 'localhost'\n", {}, "api.listen = 'localhost': Value error, expected HOST:PORT"),
        ("[broker]\nurl = 'http://x'\n", {}, "broker.url = ***: Value error, expected an amqp://"),
        ("[watch]\ncamera_pattern = '('\n", {}, "watch.camera_pattern = '(': Value error, not a regular expression"),
        ("[watch]\ncamera_pattern = 'x'\n", {}, "needs a named group"),
        ("[redis]\nprefix = 'a b'\n", {}, "redis.prefix = 'a b'"),
        ("[engine]\nkind = 'cuda'\n", {}, "engine.kind = 'cuda'"),
        ("[watch\n", {}, "not valid TOML"),
    ],
)
def test_invalid_configuration_names_key_value_and_why(tmp_path: Path, toml: str, env: dict, expected: str) -> None:
    path = tmp_path / "v.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env, cwd=tmp_path)
    assert expected in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", environ={})


def test_configuration_is_frozen(tmp_path: Path) -> None:
    config = load_config(None, environ={}, cwd=tmp_path)
    with pytest.raises(ValueError, match="frozen"):
        config.analysis.fps = 3  # type: ignore[misc]
