"""The filesystems under vidwatch's folders: what kind of mount holds a path, and how much room is left.

Neutral ground for the daemon (which chooses a root's watch mode), ``doctor`` and the
readiness check (which report the same facts).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

NETWORK_FILESYSTEMS = {
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse", "fuseblk", "sshfs", "9p", "ceph", "glusterfs",
    "lustre", "gpfs", "afs", "davfs", "virtiofs",
}
SPOOL_MIN_FREE_BYTES = 512 * 1024**2


def filesystem_type(path: Path, mountinfo: str | None = None) -> str:
    """The filesystem type of the mount holding ``path``, from /proc/self/mountinfo.

    >>> info = "36 1 8:1 / / rw - ext4 /dev/sda1 rw\\n40 36 0:50 / /nas rw - nfs4 srv:/v rw"
    >>> filesystem_type(Path("/nas/cam1"), info), filesystem_type(Path("/home"), info)
    ('nfs4', 'ext4')
    """
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return "unknown"
    target = os.path.realpath(path)
    best, best_type = "", "unknown"
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount_point = fields[4].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, right.split()[0]
    return best_type


def choose_mode(mode: str, root: Path, mountinfo: str | None = None) -> str:
    """"inotify" or "poll" for a root; ``auto`` polls on network and FUSE filesystems."""
    if mode != "auto":
        return mode
    fstype = filesystem_type(root, mountinfo)
    base = fstype.split(".")[0]
    return "poll" if base in NETWORK_FILESYSTEMS or base.startswith("fuse") else "inotify"


def existing_ancestor(path: Path) -> Path:
    """``path`` itself, or its nearest parent that exists (where a folder not made yet will be)."""
    return next((p for p in (path, *path.parents) if p.exists()), Path(path.anchor or "/"))


def spool_space(spool: Path) -> tuple[bool, dict[str, Any]]:
    """Free space where normalized copies go; not ready below :data:`SPOOL_MIN_FREE_BYTES`."""
    usage = shutil.disk_usage(existing_ancestor(spool))
    detail = {
        "path": str(spool),
        "free_bytes": usage.free,
        "total_bytes": usage.total,
        "free_percent": round(100 * usage.free / usage.total, 1) if usage.total else 0.0,
        "min_free_bytes": SPOOL_MIN_FREE_BYTES,
    }
    return usage.free >= SPOOL_MIN_FREE_BYTES, detail
