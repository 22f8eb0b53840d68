"""The on-disk cache of serialized TensorRT engines.

An engine is only valid for the model, TensorRT version, GPU model (and compute
capability), precision and optimization-profile shapes it was built with; all of them
form the :class:`CacheKey`. The file name carries the key's digest, and a JSON sidecar
carries the key itself and the engine bytes' hash, so a file copied from another host,
truncated, or written by another version is a miss. Writes are atomic (temporary file
+ rename) and builds happen under an exclusive lock, so worker processes starting
together build once and never read a half-written engine.

>>> profile = ("images", (1, 3, 640, 640), (8, 3, 640, 640), (8, 3, 640, 640))
>>> key = CacheKey("ab" * 32, "10.8.0", "NVIDIA H100", "9.0", "fp16", (profile,))
>>> engine_path(Path("/var/cache"), Path("/models/yolo11n.onnx"), key).name
'yolo11n-cecdccbbecc9b54d.engine'
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from vidwatch.errors import EngineError
from vidwatch.fileio import atomic_write

logger = logging.getLogger(__name__)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class CacheKey:
    model_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profiles: tuple[tuple[str, Shape, Shape, Shape], ...]  # (input name, min, opt, max)

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["profiles"] = [[name, list(lo), list(opt), list(hi)] for name, lo, opt, hi in self.profiles]
        return data

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()


def engine_path(cache_dir: Path, model: Path, key: CacheKey) -> Path:
    return cache_dir / f"{model.stem}-{key.digest()[:16]}.engine"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for ``path`` (a ``.lock`` file beside it) while building or reading it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_name(path.name + ".lock"), "a+b")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise EngineError(f"engine cache {path.parent}: cannot create: {exc.strerror}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def load(path: Path, key: CacheKey) -> bytes | None:
    """The cached engine for ``key``, or None (absent, foreign, stale or damaged: a miss)."""
    try:
        meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("engine cache %s: unreadable (%s): rebuilding", path, exc)
        return None
    if meta.get("key") != key.as_json():
        logger.warning("engine cache %s: built for another model, TensorRT, GPU or shape: rebuilding", path)
        return None
    if meta.get("sha256") != hashlib.sha256(data).hexdigest():
        logger.warning("engine cache %s: damaged (hash mismatch): rebuilding", path)
        return None
    return data


def store(path: Path, key: CacheKey, data: bytes) -> None:
    """Write the engine, then its sidecar (the sidecar last: an engine without one is a miss)."""
    meta = {"key": key.as_json(), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    try:
        atomic_write(path, data, unique=True, fsync=True)
        atomic_write(_sidecar(path), json.dumps(meta, indent=1, sort_keys=True), unique=True, fsync=True)
    except OSError as exc:
        raise EngineError(f"engine cache {path}: cannot write: {exc.strerror}") from exc


def discard(path: Path) -> None:
    """Remove a cached engine that could not be deserialized."""
    for item in (_sidecar(path), path):
        with contextlib.suppress(FileNotFoundError):
            item.unlink()
