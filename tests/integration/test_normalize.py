"""Normalization with the real ffmpeg: facts, plans, integrity, limits, safety, hwaccel fallback."""

from __future__ import annotations

import importlib
import logging
import os
import re
import select
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import media_corpus as corpus
from tests.helpers import missing
from vidwatch.config import NormalizeConfig
from vidwatch.errors import MediaTimeout, NormalizeError, NotReadyError, SourceError
from vidwatch.media.hwaccel import cuda_support
from vidwatch.media.normalize import admit, build_args, normalize, plan
from vidwatch.media.probe import Probe, probe
from vidwatch.media.run import run_ffmpeg
from vidwatch.media.verify import verify_tail


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local TCP port that a crafted input points at; a test asserts nothing connected."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def nothing_connected(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


# file, builder, remux or transcode, (codec, width, height) of the spool copy, words expected in the plan's reason
CONVERTIBLE = [
    ("conforming.mp4", corpus.h264_mp4, "remux", ("h264", 320, 240), "conforming"),
    ("hevc.mkv", corpus.hevc_mkv, "remux", ("hevc", 320, 240), "conforming"),
    ("mjpeg.avi", corpus.mjpeg_avi, "transcode", ("h264", 320, 240), "codec mjpeg"),
    ("vfr.mkv", corpus.vfr_mkv, "transcode", ("h264", 320, 240), "variable frame rate"),
    ("rotated.mp4", corpus.rotated_mp4, "transcode", ("h264", 240, 320), "rotation 90"),
    ("uhd.mp4", corpus.uhd_mp4, "transcode", ("h264", 1920, 1080), "height 2160 > max_height 1080"),
    ("interlaced.mp4", corpus.interlaced_mp4, "transcode", ("h264", 320, 240), "interlaced"),
]


@pytest.mark.parametrize(("name", "build", "method", "out", "why"), CONVERTIBLE, ids=[c[0] for c in CONVERTIBLE])
def test_each_convertible_input_is_remuxed_or_transcoded_as_needed(
    ffmpeg: str, made: Path, tmp_path: Path, name: str, build: corpus.Builder, method: str, out: tuple, why: str
) -> None:
    source = build(made / name)
    before = source.read_bytes()
    facts = probe(source)
    verify_tail(source, facts)
    result = normalize(source, tmp_path / "spool" / "v.mp4", facts, NormalizeConfig())
    assert (result.method, why in result.why) == (method, True), result.why
    copy = probe(result.path)
    assert (copy.codec, *copy.display_size) == out
    assert (copy.rotation, copy.vfr, copy.interlaced, copy.has_audio) == (0, False, False, False)
    assert copy.duration_s == pytest.approx(facts.duration_s, abs=0.25)
    assert source.read_bytes() == before  # the source is only read
    assert [p.name for p in (tmp_path / "spool").iterdir()] == ["v.mp4"]  # no partial left behind


def test_vfr_is_judged_from_packet_timestamps_not_the_declared_rate(ffmpeg: str, made: Path) -> None:
    facts = probe(corpus.vfr_mkv(made / "vfr-facts.mkv"))
    assert facts.declared_fps == 25.0  # what r_frame_rate / avg_frame_rate claim
    assert (facts.vfr, facts.fps) == (True, 25.0)
    steady = probe(corpus.h264_mp4(made / "cfr-facts.mp4"))
    assert (steady.vfr, steady.fps) == (False, 25.0)


def test_probe_facts_include_rotation_interlacing_audio_and_pixel_format(ffmpeg: str, made: Path) -> None:
    rotated = probe(corpus.rotated_mp4(made / "rot-facts.mp4"))
    assert (rotated.rotation, rotated.display_size, rotated.pix_fmt) == (90, (240, 320), "yuv420p")
    interlaced = probe(corpus.interlaced_mp4(made / "il-facts.mp4"))
    assert (interlaced.interlaced, interlaced.field_order) == (True, "tt")
    record = interlaced.as_record()
    assert {"probe_vfr", "probe_interlaced", "probe_rotation", "probe_pix_fmt", "probe_has_audio"} <= set(record)


# builder, error kind, pattern of the message
REFUSED = [
    (corpus.zero_bytes, "empty", "empty file"),
    (corpus.text_file, "not_video", "not a video"),
    (corpus.random_bytes, "not_video", "not a (readable )?video"),
    (corpus.audio_only_mp4, "no_video_stream", r"no video stream \(audio only\)"),
    (corpus.huge_resolution, "too_large", "too large: 12000x12000"),
    (corpus.unknown_codec_avi, "unsupported_codec", r"unsupported codec \(QQQQ\)"),
]


@pytest.mark.parametrize(("build", "kind", "words"), REFUSED, ids=lambda v: getattr(v, "__name__", None))
def test_unusable_inputs_are_refused_with_a_reason(
    ffmpeg: str, made: Path, build: corpus.Builder, kind: str, words: str
) -> None:
    source = build(made / f"{build.__name__}.mp4")
    with pytest.raises(SourceError) as caught:
        probe(source, max_pixels=NormalizeConfig().max_pixels)
    assert not isinstance(caught.value, NotReadyError)
    assert caught.value.kind == kind
    assert re.search(words, str(caught.value))


def test_a_truncated_faststart_mp4_probes_whole_but_fails_the_tail_decode(ffmpeg: str, made: Path) -> None:
    source = corpus.truncated_mp4(made / "cut.mp4")
    facts = probe(source)
    assert facts.duration_s == pytest.approx(4.0, abs=0.1)  # the index still promises 4 s
    with pytest.raises(NotReadyError, match="truncated: decoded to") as caught:
        verify_tail(source, facts)
    assert caught.value.kind == "truncated"
    whole = corpus.h264_mp4(made / "whole.mp4", seconds=4, faststart=True)
    assert verify_tail(whole, probe(whole)).decoded_end_s == pytest.approx(4.0, abs=0.1)


@pytest.mark.parametrize("build", [corpus.hls_playlist, corpus.ffconcat_list], ids=lambda b: b.__name__)
def test_playlists_are_refused_and_open_no_connection(
    ffmpeg: str, tmp_path: Path, listener: socket.socket, build: corpus.Builder
) -> None:
    port = listener.getsockname()[1]
    source = build(tmp_path / "x.mp4", port)
    with pytest.raises(SourceError, match="refused") as caught:
        probe(source)
    assert caught.value.kind == "refused_reference"
    # Even handed straight to ffmpeg (no sniffing first), the demuxer allowlist refuses them.
    facts = Probe("mov", "h264", 320, 240, "yuv420p", 25.0, 2.0, 0, False, None, 100)
    args = build_args(source, tmp_path / "out.mp4", facts, NormalizeConfig(), plan(facts, NormalizeConfig()))
    result = run_ffmpeg(args, timeout_s=30)
    assert result.returncode != 0
    assert "not on whitelist" in result.stderr_tail
    assert nothing_connected(listener)


def test_limits_refuse_before_decoding(ffmpeg: str, made: Path) -> None:
    facts = probe(corpus.h264_mp4(made / "limits.mp4", seconds=2))
    admit(facts, NormalizeConfig())
    with pytest.raises(SourceError, match="too long: declares 2 s") as long_:
        admit(facts, NormalizeConfig(max_duration_seconds=1))
    assert long_.value.kind == "too_long"
    with pytest.raises(SourceError, match="too large: 320x240") as large:
        admit(facts, NormalizeConfig(max_pixels=320 * 200))
    assert large.value.kind == "too_large"


@pytest.mark.parametrize(("mode", "name", "build", "method"), [
    ("remux", "mode.avi", corpus.mjpeg_avi, "remux"),
    ("transcode", "mode.mp4", corpus.h264_mp4, "transcode"),
])
def test_mode_forces_the_method(
    ffmpeg: str, made: Path, tmp_path: Path, mode: str, name: str, build: corpus.Builder, method: str
) -> None:
    source = build(made / name)
    result = normalize(source, tmp_path / "v.mp4", probe(source), NormalizeConfig(mode=mode))
    assert result.method == method
    assert probe(result.path).duration_s == pytest.approx(1.0, abs=0.1)


def test_audio_is_dropped_unless_kept(ffmpeg: str, made: Path, tmp_path: Path) -> None:
    video = corpus.h264_mp4(made / "silent.mp4")
    source = made / "with-audio.mkv"
    subprocess.run([*corpus.FFMPEG, "-i", str(video), "-f", "lavfi", "-i", "sine=duration=1", "-map", "0:v",
                    "-map", "1:a", "-c:v", "copy", "-c:a", "libopus", str(source)], check=True, timeout=60)
    facts = probe(source)
    assert (facts.has_audio, facts.audio_codec) == (True, "opus")
    assert not probe(normalize(source, tmp_path / "a.mp4", facts, NormalizeConfig()).path).has_audio
    kept = probe(normalize(source, tmp_path / "b.mp4", facts, NormalizeConfig(keep_audio=True)).path)
    assert (kept.has_audio, kept.audio_codec) == (True, "opus")


def test_cuda_falls_back_to_the_cpu_with_a_warning(
    ffmpeg: str, made: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = NormalizeConfig(hwaccel="cuda")
    support = cuda_support(settings.gpu_encoder)
    if support.encode:
        missing("a host without NVENC (where the fallback happens)", ci_has_it=False)
    source = corpus.mjpeg_avi(made / "cuda.avi")
    importlib.import_module("vidwatch.media.normalize")._warned_cpu_fallback.discard(settings.gpu_encoder)
    with caplog.at_level(logging.WARNING, logger="vidwatch.media.normalize"):
        result = normalize(source, tmp_path / "v.mp4", probe(source), settings)
    assert (result.method, result.encoder) == ("transcode", "libx264")
    assert result.hwaccel == ("cuda" if support.decode else "none")
    assert any("hwaccel cuda" in r.message and "on the CPU" in r.message for r in caplog.records)
    assert probe(result.path).codec == "h264"


def test_a_run_past_its_timeout_is_killed_with_its_process_group(ffmpeg: str, tmp_path: Path) -> None:
    marker = tmp_path / f"endless-{uuid.uuid4().hex}.mp4"
    args = ["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=s=64x64:r=25",
            "-c:v", "libx264", "-preset", "ultrafast", "-progress", "pipe:1", "-nostats", "-y", str(marker)]
    with pytest.raises(MediaTimeout, match="timed out after 1 s"):
        run_ffmpeg(args, timeout_s=1, on_progress=lambda block: None)
    assert subprocess.run(["pgrep", "-f", marker.name], capture_output=True, check=False).returncode == 1


def test_a_run_that_stalls_is_killed(ffmpeg: str, tmp_path: Path) -> None:
    fifo = tmp_path / "never-written.mp4"
    os.mkfifo(fifo)
    args = ["ffmpeg", "-nostdin", "-v", "error", "-protocol_whitelist", "file", "-i", f"file:{fifo}",
            "-f", "null", "-"]
    with pytest.raises(MediaTimeout, match="stalled: no progress for 1 s"):
        run_ffmpeg(args, timeout_s=60, stall_s=1)


def test_a_normalization_past_its_scaled_timeout_fails_as_timed_out(ffmpeg: str, tmp_path: Path) -> None:
    source = tmp_path / "source.mp4"
    os.mkfifo(source)  # ffmpeg waits forever for its first byte
    facts = Probe("mov", "mjpeg", 320, 240, "yuvj420p", 25.0, 2.0, 0, False, None, 100)
    settings = NormalizeConfig(timeout_seconds=0.5, timeout_per_media_second=0.1)
    with pytest.raises(NormalizeError, match="transcode ffmpeg timed out after 1 s") as caught:
        normalize(source, tmp_path / "spool" / "v.mp4", facts, settings)
    assert caught.value.kind == "timed_out"
    assert not list((tmp_path / "spool").iterdir())
