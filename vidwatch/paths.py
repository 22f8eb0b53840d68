"""Which files are candidates, and which camera a file belongs to."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path, PurePath

from vidwatch.config import WatchConfig

DEFAULT_CAMERA = "default"
_SAFE_CAMERA = re.compile(r"[^A-Za-z0-9_.-]+")


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
        best: Path | None = None
        for root in self.roots:
            inside = path == root or root in path.parents
            if inside and (best is None or len(root.parts) > len(best.parts)):
                best = root
        return best

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
