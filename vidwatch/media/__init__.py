"""ffmpeg and ffprobe, run safely: probe, verify, normalize (remux or transcode), decode."""

from vidwatch.media.decode import FrameReader, decode_size
from vidwatch.media.normalize import Normalized, admit, normalize, plan
from vidwatch.media.probe import Probe, probe
from vidwatch.media.run import FFmpegResult, run_ffmpeg
from vidwatch.media.verify import verify_tail

__all__ = [
    "FFmpegResult",
    "FrameReader",
    "Normalized",
    "Probe",
    "admit",
    "decode_size",
    "normalize",
    "plan",
    "probe",
    "run_ffmpeg",
    "verify_tail",
]
