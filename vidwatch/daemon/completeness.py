"""Cheap structural checks that a container is whole, before anything is ledgered.

An MP4/MOV is a sequence of boxes, each starting with its size. While a recorder writes
one (or when a copy was cut short), the last box runs past the end of the file, or the
``moov`` box, which such writers put last, is not there yet. Checking the box chain
costs a few small reads; ffprobe would happily report a truncated *faststart* file as
complete.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

MP4_SUFFIXES = {".mp4", ".m4v", ".mov", ".3gp"}
BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"moof", b"mfra", b"styp",
             b"sidx", b"meta", b"udta", b"pdin", b"prft"}
MAX_BOXES = 100_000


def incomplete_reason(path: Path) -> str | None:
    """Why ``path`` is not complete yet, or None when it looks whole (or is not an MP4/MOV)."""
    with open(path, "rb") as handle:
        return incomplete_reason_of(handle, handle.seek(0, 2), path.suffix)


def incomplete_reason_of(handle: BinaryIO, size: int, suffix: str) -> str | None:
    """:func:`incomplete_reason` of an open file of ``size`` bytes whose name ends in ``suffix``."""
    if size == 0:
        return "empty file (0 bytes)"
    handle.seek(0)
    head = handle.read(8)
    if suffix.lower() not in MP4_SUFFIXES and head[4:8] not in BOX_TYPES:
        return None
    if head[4:8] not in BOX_TYPES:
        return None  # not an MP4 after all: ffprobe will say what it is
    return _walk_boxes(handle, size)


def _walk_boxes(handle: BinaryIO, size: int) -> str | None:
    """Follow the top-level boxes to the end of the file: why they do not add up, or None."""
    offset, seen_moov = 0, False
    for _ in range(MAX_BOXES):
        if offset == size:
            break
        if size - offset < 8:
            return f"truncated: {size - offset} stray bytes after the last box"
        handle.seek(offset)
        box_size, box_type = struct.unpack(">I4s", handle.read(8))
        if box_size == 1:
            extended = handle.read(8)
            if len(extended) < 8:
                return "truncated inside a box header"
            box_size = struct.unpack(">Q", extended)[0]
        elif box_size == 0:
            box_size = size - offset  # "to the end of the file"
        if box_size < 8:
            return f"corrupt box {box_type!r} of size {box_size}"
        if offset + box_size > size:
            return f"truncated: {box_type.decode('latin-1')} box runs {offset + box_size - size} bytes past the end"
        seen_moov = seen_moov or box_type == b"moov"
        offset += box_size
    if not seen_moov:
        return "no moov box yet (still being written, or truncated)"
    return None
