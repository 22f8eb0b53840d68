"""Which files are candidates, which camera a file belongs to, and whether a path is inside a root."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path, PurePath
from urllib.parse import unquote_to_bytes

from vidwatch.config import WatchConfig
from vidwatch.errors import SourceError

DEFAULT_CAMERA = "default"
_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_ENCODED = re.compile(r"(?:[A-Za-z0-9_.-]|%[0-9A-F]{2})+")
_DOTS = (".", "..")
MAX_COMPONENT_CHARS = 200  # well below NAME_MAX (255 bytes on Linux file systems)


def encode_camera(name: str) -> str:
    r"""The camera's key: percent-encoding of each UTF-8 byte outside ``[A-Za-z0-9_.-]``.

    Reversible (:func:`decode_camera`), so two folders never share a key; a name made of
    those characters only is its own key, so existing keys stay as they were; ``.`` and
    ``..`` are encoded whole, so a key used as a path component never leaves its folder.
    Undecodable bytes of a file name (``surrogateescape``) are encoded as the bytes they were.

    >>> [encode_camera(n) for n in ("cam1", "Gate_2.north-east", "a b", "a*b", "a:b", "a_b")]
    ['cam1', 'Gate_2.north-east', 'a%20b', 'a%2Ab', 'a%3Ab', 'a_b']
    >>> [encode_camera(n) for n in (".", "..", "...", "a/b", "100%", "caméra", "x\n")]
    ['%2E', '%2E%2E', '...', 'a%2Fb', '100%25', 'cam%C3%A9ra', 'x%0A']
    """
    if not name:
        raise ValueError("camera: expected a non-empty name")
    if name in _DOTS:
        return "%2E" * len(name)
    raw = name.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b in _SAFE_BYTES else f"%{b:02X}" for b in raw)


def decode_camera(key: str) -> str:
    """The folder name a camera key came from: ``decode_camera(encode_camera(n)) == n``.

    >>> decode_camera("a%20b"), decode_camera("%2E%2E"), decode_camera("cam1")
    ('a b', '..', 'cam1')
    """
    if not is_camera_key(key):
        raise ValueError(f"camera: not an encoded camera name: {key!r}")
    return unquote_to_bytes(key).decode("utf-8", "surrogateescape")


def is_camera_key(key: str) -> bool:
    """True for what :func:`encode_camera` can return (and so for every name safe as one path component)."""
    return key not in _DOTS and _ENCODED.fullmatch(key) is not None


def camera_component(camera: str) -> str:
    """``camera`` as one path component inside its folder: a key as it is, anything else encoded.

    A key too long for a file name (a long non-ASCII folder name triples in length) is cut and
    ends with ``~`` and a hash of the whole key: ``~`` is never in a key, so it stays distinct.

    >>> camera_component("cam1"), camera_component("a%20b"), camera_component(".."), camera_component("")
    ('cam1', 'a%20b', '%2E%2E', 'default')
    >>> long = camera_component("東" * 40)
    >>> len(long), long[:9], long[-17]
    (200, '%E6%9D%B1', '~')
    """
    if not camera:
        return DEFAULT_CAMERA
    key = camera if is_camera_key(camera) else encode_camera(camera)
    if len(key) <= MAX_COMPONENT_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[: MAX_COMPONENT_CHARS - len(digest) - 1]}~{digest}"


def is_inside(path: PurePath, root: PurePath) -> bool:
    """``path`` is ``root`` or below it (lexically: resolve both first where symlinks matter).

    >>> is_inside(PurePath("/nas/cam1/a.mp4"), PurePath("/nas")), is_inside(PurePath("/nas2/a"), PurePath("/nas"))
    (True, False)
    """
    return path == root or root in path.parents


def deepest_root(path: PurePath, roots: Sequence[PurePath]) -> PurePath | None:
    """The root in ``roots`` that holds ``path`` (the deepest one where roots nest), or None."""
    best: PurePath | None = None
    for root in roots:
        if is_inside(path, root) and (best is None or len(root.parts) > len(best.parts)):
            best = root
    return best


def file_in_roots(path: str | Path, roots: Sequence[Path], *, what: str = "submit") -> Path:
    """The file ``path`` names, as a path below its root *as configured* (how the daemon ledgers paths).

    ``path`` must resolve (symlinks included) to a file inside one of ``roots``;
    else :class:`SourceError` says why (``what`` starts the message).
    """
    try:
        resolved = Path(path).resolve()
    except RuntimeError as exc:  # Python < 3.13 raises this for a symbolic link loop
        raise SourceError(f"{what}: {path}: cannot read: a symbolic link loop") from exc
    resolved_roots = {root: root.resolve() for root in roots}
    holder = deepest_root(resolved, list(resolved_roots.values()))
    if holder is None:
        shown = ", ".join(map(str, resolved_roots.values()))
        raise SourceError(f"{what}: {path}: not inside a watched root ({shown})")
    if not resolved.is_file():
        raise SourceError(f"{what}: {path}: not a file")
    root = next(root for root, real in resolved_roots.items() if real == holder)
    return root / resolved.relative_to(holder)


class PathRules:
    """Candidate and camera rules of one ``[watch]`` section.

    >>> rules = PathRules(WatchConfig(roots=[Path("/nas")]))
    >>> rules.is_candidate(Path("/nas/cam1/a.MP4")), rules.is_candidate(Path("/nas/cam1/.a.mp4"))
    (True, False)
    >>> rules.camera(Path("/nas/cam1/2026-11-24/12-00-00.mp4"))
    'cam1'
    >>> rules.camera(Path("/nas/front door/12-00-00.mp4"))  # the key: see encode_camera
    'front%20door'
    """

    def __init__(self, watch: WatchConfig) -> None:
        self.roots = [Path(root) for root in watch.roots]
        self._patterns = [p.lower() for p in watch.patterns]
        self._ignore = [p.lower() for p in watch.ignore]
        self._camera = re.compile(watch.camera_pattern) if watch.camera_pattern else None

    def root_of(self, path: Path) -> Path | None:
        """The configured root that holds ``path`` (the deepest one), or None."""
        root = deepest_root(path, self.roots)
        return None if root is None else Path(root)

    def is_ignored_name(self, name: str) -> bool:
        lowered = name.lower()
        return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in self._ignore)

    def is_candidate(self, path: Path) -> bool:
        """Matches a pattern, and neither the name nor a folder below its root is ignored."""
        root = self.root_of(path)
        if root is None or path == root:
            return False
        relative = path.relative_to(root)
        if any(self.is_ignored_name(part) for part in relative.parts):
            return False
        lowered = path.name.lower()
        return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in self._patterns)

    def camera(self, path: Path) -> str:
        """Camera name from the path relative to its root."""
        root = self.root_of(path)
        relative = PurePath(path.relative_to(root)) if root else PurePath(path.name)
        if self._camera is not None:
            match = self._camera.search(relative.as_posix())
            name = match.group("camera") if match else None
        else:
            name = relative.parts[0] if len(relative.parts) > 1 else None
        if not name:
            return DEFAULT_CAMERA
        return encode_camera(name)
