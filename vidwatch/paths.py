"""Which files are candidates, which camera a file belongs to, and whether a path is inside a root."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from pathlib import Path, PurePath

from vidwatch.config import WatchConfig
from vidwatch.errors import SourceError

DEFAULT_CAMERA = "default"
_SAFE_CAMERA = re.compile(r"[^A-Za-z0-9_.-]+")


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
    resolved = Path(path).resolve()
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
        return _SAFE_CAMERA.sub("_", name)
