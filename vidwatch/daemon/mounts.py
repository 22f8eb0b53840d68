"""Whether a root is there to be read: present, a readable folder, and mounted when it must be.

An unmounted share usually leaves its mount point behind as an empty folder. Watching that
folder would report a healthy root with no files, and anything that looked for a source
there would find it gone. ``[watch] require_mount`` says which roots must be mount points:
``true`` every root, ``false`` none, ``"auto"`` each root that was one when first seen (at
start, or when it first appeared). A root that must be and is not, or whose device is now its
parent's, is an *outage*: reported (``/readyz``), not watched, nothing in it treated as
deleted, and rescanned once it is mounted again.

A root is a mount point when its device differs from its parent folder's, or when
``/proc/self/mountinfo`` lists it (a bind mount of a folder of the same filesystem).

>>> checks = RootChecks(require_mount="auto", mount_points=lambda: {"/nas": 40})
>>> checks.mount_rule("/nas", root_dev=5, parent_dev=5), checks.mount_rule("/nas", root_dev=5, parent_dev=5)
(None, None)
>>> print(checks.mount_rule("/nas", root_dev=5, parent_dev=5, listed=False))
not mounted: a mount point when first seen, now on its parent folder's filesystem
>>> RootChecks(require_mount=True, mount_points=dict).mount_rule("/data", root_dev=1, parent_dev=1)
'not mounted: [watch] require_mount is true and this folder is not a mount point'
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vidwatch.daemon.fsguard import FsGuard
from vidwatch.errors import RootStuck

logger = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")


def mount_points(mountinfo: Path = MOUNTINFO) -> dict[str, int]:
    """Mount point → id of the mount on top there, in this process's namespace (empty without /proc).

    (Mount ids are reused by the kernel: they say which mount is on top now, not whether it is new.)
    """
    try:
        text = mountinfo.read_text()
    except OSError:
        return {}
    points: dict[str, int] = {}
    for line in text.splitlines():  # in mount order: a later mount on the same point is the one on top
        fields = line.split()
        if len(fields) > 4 and fields[0].isdigit():
            points[_unescape(fields[4])] = int(fields[0])
    return points


def _unescape(field: str) -> str:
    r"""mountinfo escapes space, tab, newline and backslash as octal: ``\040``.

    >>> _unescape(r"/mnt/my\040share")
    '/mnt/my share'
    """
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class RootLook:
    """One look at a root: its identity (device, inode) when it can be watched, else why not."""

    identity: tuple[int, int] | None  # device, inode
    why: str | None = None  # None: fine
    missing: bool = False  # not there at all (as opposed to there but unusable)


class RootChecks:
    """Looks at roots (through :class:`FsGuard`) and applies ``[watch] require_mount``; safe from any thread."""

    def __init__(
        self,
        *,
        require_mount: bool | Literal["auto"],
        fs: FsGuard | None = None,
        mount_points: Callable[[], dict[str, int]] = mount_points,
    ) -> None:
        self.require_mount = require_mount
        self.fs = fs
        self._mount_points = mount_points
        self._required: dict[str, bool] = {}
        self._lock = threading.Lock()

    def look(self, root: Path) -> RootLook:
        """Present, a readable folder, mounted when it must be: its identity; else why not."""
        try:
            st, parent = self._call(root, lambda: (os.stat(root), os.stat(root.parent)))
        except FileNotFoundError:
            return RootLook(None, "missing", missing=True)
        except RootStuck as exc:
            return RootLook(None, f"stuck: {exc}")
        except OSError as exc:
            return RootLook(None, f"unreadable: {exc.strerror or exc}")
        if not stat.S_ISDIR(st.st_mode):
            return RootLook(None, "not a folder")
        if not os.access(root, os.R_OK | os.X_OK):
            return RootLook(None, "not readable (permissions)")
        points = self._mount_points()
        real = os.path.realpath(root)
        why = self.mount_rule(str(root), root_dev=st.st_dev, parent_dev=parent.st_dev,
                              listed=str(root) in points or real in points)
        if why is not None:
            return RootLook(None, why)
        return RootLook((st.st_dev, st.st_ino))

    def mount_rule(self, root: str, *, root_dev: int, parent_dev: int, listed: bool | None = None) -> str | None:
        """Why ``root`` breaks ``require_mount`` (None: it does not); ``listed``: in mountinfo (None: ask)."""
        if self.require_mount is False:
            return None
        if listed is None:
            listed = root in self._mount_points()
        mounted = listed or root_dev != parent_dev or root == "/"
        with self._lock:
            if root not in self._required:
                self._required[root] = mounted if self.require_mount == "auto" else True
                if self._required[root]:
                    logger.info("watch %s: a mount point; unmounted, it will be an outage", root)
            required = self._required[root]
        if not required or mounted:
            return None
        if self.require_mount is True:
            return "not mounted: [watch] require_mount is true and this folder is not a mount point"
        return "not mounted: a mount point when first seen, now on its parent folder's filesystem"

    def _call(self, root: Path, func: Callable[[], tuple[os.stat_result, os.stat_result]]) -> tuple[
            os.stat_result, os.stat_result]:
        return self.fs.call(str(root), func) if self.fs is not None else func()
