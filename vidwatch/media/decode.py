"""Decode a video to raw BGR frames through a pipe, in a reader thread.

ffmpeg applies the frame-rate decimation and the scaling, so Python only sees the frames
it analyses. Frames wait in a bounded queue: memory stays flat whatever the length.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import ffmpeg
import numpy as np

from vidwatch.errors import SourceError
from vidwatch.media.run import STDERR_TAIL_LINES, close_pipes, kill_group

_END = object()


def decode_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Frame size with its long side at most ``long_side``, aspect kept, both even.

    >>> decode_size(1920, 1080, 640)
    (640, 360)
    >>> decode_size(320, 240, 640)
    (320, 240)
    """
    scale = min(1.0, long_side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


@dataclass(frozen=True)
class Frame:
    index: int
    pts_s: float
    image: np.ndarray  # HxWx3 uint8, BGR


class FrameReader:
    """Iterate the frames of ``path`` at ``fps``, scaled to ``size``.

    Example (not run: needs a model or a video)::

        for frame in FrameReader(path, fps=5, size=(640, 360)): ...
    """

    def __init__(
        self,
        path: Path,
        *,
        fps: float,
        size: tuple[int, int],
        start_s: float = 0.0,
        duration_s: float | None = None,
        queue_frames: int = 16,
        timeout_s: float = 3600.0,
    ) -> None:
        self.path = path
        self.fps = fps
        self.size = size
        self.start_s = start_s
        self.duration_s = duration_s
        self.timeout_s = timeout_s
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_frames)
        self._stderr: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        # frames are numbered on the video's analysis grid (frame n at n / fps), also in a segment
        self.first_index = round(start_s * fps)

    def _args(self) -> list[str]:
        width, height = self.size
        input_opts: dict[str, object] = {"protocol_whitelist": "file"}
        if self.start_s:
            input_opts["ss"] = f"{self.start_s:.3f}"
        if self.duration_s is not None:
            input_opts["t"] = f"{self.duration_s:.3f}"
        stream = ffmpeg.input(f"file:{self.path}", **input_opts)["v:0"]
        stream = stream.filter("fps", fps=f"{self.fps:.6g}").filter("scale", width, height, flags="area")
        out = ffmpeg.output(stream, "pipe:1", format="rawvideo", pix_fmt="bgr24")
        return ffmpeg.compile(out.global_args("-nostdin", "-hide_banner", "-v", "error"), cmd="ffmpeg")

    def __iter__(self) -> Iterator[Frame]:
        width, height = self.size
        frame_bytes = width * height * 3
        self._proc = subprocess.Popen(
            self._args(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        proc = self._proc
        timer = threading.Timer(self.timeout_s, kill_group, args=(proc,))
        timer.daemon = True
        timer.start()
        stderr_thread = threading.Thread(target=self._drain_stderr, args=(proc,), daemon=True)
        stderr_thread.start()
        reader = threading.Thread(target=self._read, args=(proc, frame_bytes), daemon=True, name="frame-reader")
        reader.start()
        index = 0
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    break
                image = np.frombuffer(cast(bytes, item), np.uint8).reshape(height, width, 3)
                yield Frame(self.first_index + index, (self.first_index + index) / self.fps, image)
                index += 1
        finally:
            if proc.poll() is None:
                kill_group(proc)
            self._drain_queue()
            self.returncode = proc.wait()
            timer.cancel()
            stderr_thread.join(timeout=5)
            reader.join(timeout=5)
            close_pipes(proc)
        if self.returncode != 0:
            last = self._stderr[-1] if self._stderr else f"exit {self.returncode}"
            raise SourceError(f"decode: {self.path}: ffmpeg failed: {last}")

    def _read(self, proc: subprocess.Popen[bytes], frame_bytes: int) -> None:
        stream = proc.stdout
        try:
            while stream is not None:
                data = stream.read(frame_bytes)
                if len(data) < frame_bytes:
                    break
                self._queue.put(data)
        finally:
            self._queue.put(_END)

    def _drain_queue(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.stderr is None:
            return
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr = [*self._stderr[-(STDERR_TAIL_LINES - 1) :], line]
