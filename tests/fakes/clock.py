"""A clock for tests: ``sleep`` advances it instead of waiting."""

from __future__ import annotations


class FakeClock:
    """Pass as ``clock`` (and, with ``sleep=None``, it supplies its own ``sleep``)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
