"""ffmpeg and ffprobe, run safely: probe, normalize (remux or transcode), decode."""

from vidwatch.media.decode import FrameReader, decode_size
from vidwatch.media.normalize import normalize
from vidwatch.media.probe import Probe, probe
from vidwatch.media.run import FFmpegResult, run_ffmpeg

__all__ = ["FFmpegResult", "FrameReader", "Probe", "decode_size", "normalize", "probe", "run_ffmpeg"]
