"""Probe, normalize and decode with the real ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import moving_square_clip
from vidwatch.config import EngineConfig, NormalizeConfig
from vidwatch.engines import create_engine
from vidwatch.errors import NotReadyError, SourceError
from vidwatch.media import FrameReader, normalize, probe


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return moving_square_clip(tmp_path_factory.mktemp("clips") / "cam1" / "lobby.mp4")


def test_probe_facts(ffmpeg: str, clip: Path) -> None:
    facts = probe(clip)
    assert (facts.codec, facts.width, facts.height, facts.fps, facts.rotation) == ("h264", 320, 240, 25.0, 0)
    assert facts.duration_s == pytest.approx(6.0, abs=0.05)
    assert facts.has_audio is False


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"", SourceError, "empty file"),
        (b"this is a text file, not a video\n" * 20, SourceError, "not a (readable )?video"),
        (bytes(range(256)) * 64, SourceError, "not a (readable )?video"),
    ],
)
def test_bad_inputs_fail_with_a_reason(ffmpeg: str, tmp_path: Path, content: bytes, error: type, message: str) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(error, match=message):
        probe(bad)


def test_truncated_mp4_without_moov_is_not_ready_yet(ffmpeg: str, clip: Path, tmp_path: Path) -> None:
    half = tmp_path / "half.mp4"
    half.write_bytes(clip.read_bytes()[:1500])  # the moov atom comes last in this file
    with pytest.raises(NotReadyError, match="moov atom not found"):
        probe(half)


def test_hls_playlist_is_refused(ffmpeg: str, tmp_path: Path) -> None:
    playlist = tmp_path / "x.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/seg.ts\n#EXT-X-ENDLIST\n")
    with pytest.raises(SourceError):
        probe(playlist)


def test_remux_keeps_the_source_and_copies_the_stream(ffmpeg: str, clip: Path, tmp_path: Path) -> None:
    before = clip.read_bytes()
    facts = probe(clip)
    progress: list[float] = []
    result = normalize(clip, tmp_path / "spool" / "v.mp4", facts, NormalizeConfig(), on_progress=progress.append)
    assert result.method == "remux"
    assert clip.read_bytes() == before
    out = probe(result.path)
    assert (out.codec, out.width, out.height) == ("h264", 320, 240)
    assert out.duration_s == pytest.approx(6.0, abs=0.1)
    assert not list((tmp_path / "spool").glob(".*"))  # no partial file left behind


def test_non_conforming_input_is_transcoded(ffmpeg: str, tmp_path: Path) -> None:
    source = moving_square_clip(tmp_path / "a.avi", codec="mjpeg", seconds=2)
    facts = probe(source)
    result = normalize(source, tmp_path / "v.mp4", facts, NormalizeConfig())
    assert result.method == "transcode"
    assert probe(result.path).codec == "h264"


def test_decode_and_opencv_motion_find_the_moving_square(ffmpeg: str, clip: Path) -> None:
    engine = create_engine(EngineConfig(kind="opencv", detectors=["motion"]), fps=5)
    engine.load()
    frames = list(FrameReader(clip, fps=5, size=(320, 240)))
    assert len(frames) == 30
    assert [f.pts_s for f in frames[:3]] == [0.0, 0.2, 0.4]
    moving = [f.pts_s for f, found in zip(frames, engine.infer([f.image for f in frames]), strict=True) if found]
    assert moving and min(moving) >= 1.9 and max(moving) <= 4.5
    assert all(box.label == "motion" for found in engine.infer([frames[15].image]) for box in found)


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("a.mkv", []),
        ("a.mov", ["-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", "-shortest"]),
        ("a.m4v", ["-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", "-shortest"]),
    ],
)
def test_ordinary_containers_remux_into_mp4_without_audio(ffmpeg: str, tmp_path: Path, name: str, extra: list) -> None:
    base = moving_square_clip(tmp_path / "base.mp4", seconds=2)
    source = tmp_path / name
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(base), *extra, "-map", "0:v", *(["-map", "1:a"] if extra else []),
         "-c:v", "copy", str(source)],
        check=True, timeout=60,
    )
    facts = probe(source)
    assert facts.has_audio is bool(extra)
    result = normalize(source, tmp_path / "out.mp4", facts, NormalizeConfig())
    assert result.method == "remux"
    out = probe(result.path)
    assert (out.codec, out.has_audio) == ("h264", False)
