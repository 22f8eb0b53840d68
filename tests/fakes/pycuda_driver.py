"""A fake of the part of ``pycuda.driver`` the tensorrt engine uses, on host memory.

Written from pycuda's documented API: ``mem_alloc(bytes) -> DeviceAllocation`` (``int()``
gives the device pointer, ``free()``), ``pagelocked_empty(shape, dtype)``,
``memcpy_htod_async(dest, src, stream)``, ``memcpy_dtoh_async(dest, src, stream)``,
``Stream`` (``handle``, ``synchronize``, ``wait_for_event``), ``Event`` (``record``,
``synchronize``, ``query``), ``Device.name()`` / ``compute_capability()``.

Copies happen at once; every call is appended to ``STATE.log`` so tests can check what
was enqueued on which stream, in which order. Async copies refuse host memory that was
not page-locked (real CUDA would silently make them synchronous).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np


@dataclass
class State:
    log: list[tuple] = field(default_factory=list)
    memory: dict[int, np.ndarray] = field(default_factory=dict)  # device pointer -> bytes
    pinned: list[np.ndarray] = field(default_factory=list)
    allocations: list[DeviceAllocation] = field(default_factory=list)
    next_ptr: itertools.count = field(default_factory=lambda: itertools.count(0x7F00_0000_0000, 0x1000_0000))
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))


STATE = State()


def reset() -> None:
    global STATE  # noqa: PLW0603 - the fake's one process-wide state, like the driver's
    STATE = State()


class Error(Exception):
    """pycuda.driver.Error: base of the driver's exceptions."""


class LogicError(Error):
    """pycuda.driver.LogicError: misuse of the API."""


class DeviceAllocation:
    def __init__(self, nbytes: int) -> None:
        if nbytes <= 0:
            raise LogicError(f"cuMemAlloc failed: invalid size {nbytes}")
        self.ptr = next(STATE.next_ptr)
        self.nbytes = nbytes
        self.freed = False
        STATE.memory[self.ptr] = np.zeros(nbytes, dtype=np.uint8)
        STATE.allocations.append(self)

    def __int__(self) -> int:
        return self.ptr

    def free(self) -> None:
        STATE.memory.pop(self.ptr, None)
        self.freed = True


def mem_alloc(nbytes: int) -> DeviceAllocation:
    STATE.log.append(("mem_alloc", nbytes))
    return DeviceAllocation(int(nbytes))


def pagelocked_empty(shape: object, dtype: object) -> np.ndarray:
    array = np.empty(shape, dtype=dtype)
    STATE.pinned.append(array)
    return array


def device_view(ptr: int, nbytes: int) -> np.ndarray:
    """The fake device bytes at ``ptr`` (inside one allocation)."""
    for base, memory in STATE.memory.items():
        if base <= ptr and ptr + nbytes <= base + memory.nbytes:
            return memory[ptr - base : ptr - base + nbytes]
    raise LogicError(f"invalid device pointer {ptr:#x} (+{nbytes} bytes)")


def _check_host(array: np.ndarray) -> None:
    if not array.flags.c_contiguous:
        raise LogicError("host buffer is not contiguous")
    if not any(np.may_share_memory(array, pinned) for pinned in STATE.pinned):
        raise LogicError("async copy from/to host memory that is not page-locked")


class Stream:
    def __init__(self) -> None:
        self.handle = next(STATE.ids)

    def synchronize(self) -> None:
        STATE.log.append(("stream_sync", self.handle))

    def wait_for_event(self, event: Event) -> None:
        STATE.log.append(("wait", self.handle, event.id))


class Event:
    def __init__(self) -> None:
        self.id = next(STATE.ids)

    def record(self, stream: Stream | None = None) -> Event:
        STATE.log.append(("record", stream.handle if stream else 0, self.id))
        return self

    def synchronize(self) -> Event:
        STATE.log.append(("event_sync", self.id))
        return self

    def query(self) -> bool:
        return True


def memcpy_htod_async(dest: DeviceAllocation | int, src: np.ndarray, stream: Stream | None = None) -> None:
    _check_host(src)
    device_view(int(dest), src.nbytes)[:] = src.reshape(-1).view(np.uint8)
    STATE.log.append(("htod", stream.handle if stream else 0, int(dest), src.nbytes))


def memcpy_dtoh_async(dest: np.ndarray, src: DeviceAllocation | int, stream: Stream | None = None) -> None:
    _check_host(dest)
    dest.reshape(-1).view(np.uint8)[:] = device_view(int(src), dest.nbytes)
    STATE.log.append(("dtoh", stream.handle if stream else 0, int(src), dest.nbytes))


class Device:
    def __init__(self, name: str = "NVIDIA Fake GPU", capability: tuple[int, int] = (8, 9)) -> None:
        self._name, self._capability = name, capability

    def name(self) -> str:
        return self._name

    def compute_capability(self) -> tuple[int, int]:
        return self._capability


class Context:
    def __init__(self, device: Device) -> None:
        self.device = device

    def get_device(self) -> Device:
        return self.device
