import struct
from pathlib import Path

import pytest

from vidwatch.daemon.completeness import incomplete_reason


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


WHOLE = box(b"ftyp", b"isom") + box(b"mdat", b"\0" * 100) + box(b"moov", b"\0" * 20)
FASTSTART = box(b"ftyp", b"isom") + box(b"moov", b"\0" * 20) + box(b"mdat", b"\0" * 100)
LARGE = box(b"ftyp", b"isom") + struct.pack(">I4sQ", 1, b"mdat", 16 + 50) + b"\0" * 50 + box(b"moov")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("a.mp4", WHOLE, None),
        ("a.mov", FASTSTART, None),
        ("a.mp4", LARGE, None),  # 64-bit box size
        ("a.mp4", WHOLE[:-5], "moov box runs 5 bytes past the end"),
        ("a.mp4", FASTSTART[:-30], "mdat box runs 30 bytes past the end"),  # truncated faststart copy
        ("a.mp4", box(b"ftyp", b"isom") + box(b"mdat", b"\0" * 10), "no moov box yet"),
        ("a.mp4", WHOLE + b"\0\0\0", "3 stray bytes"),
        ("a.mp4", b"", "empty file"),
        ("a.mkv", b"", "empty file"),
        ("a.mp4", b"plain text, not boxes at all", None),  # not an MP4: ffprobe says what it is
        ("a.ts", b"\x47" + b"\0" * 187, None),  # other containers: the settle period decides
    ],
)
def test_incomplete_reason(tmp_path: Path, name: str, content: bytes, reason: str | None) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    found = incomplete_reason(path)
    assert (found is None) if reason is None else (found is not None and reason in found), found
