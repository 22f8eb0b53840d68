"""What a running daemon reports about itself: :class:`DaemonStatus`.

Neutral ground: the daemon builds it, the API (health, readiness, metrics, the status
page) and ``ops`` (the systemd STATUS line) read it, none of them importing the others.

>>> status = DaemonStatus(settling=2, observers={"/nvr": True}, root_errors={"/nas": "stuck"})
>>> status.dead_roots, status.to_dict()["settling"]
(['/nas'], 2)
>>> DaemonStatus.from_dict(status.to_dict()) == status
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class PollerStatus:
    """A polling observer's last pass over its root."""

    folder_stats: int = 0  # folders stat()ed
    listings: int = 0  # folders listed
    seconds: float = 0.0
    outage: str | None = None  # why the root looks down (missing, empty), None when fine

    def to_dict(self) -> dict[str, Any]:
        return {"folder_stats": self.folder_stats, "listings": self.listings, "seconds": self.seconds,
                "outage": self.outage}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PollerStatus:
        return cls(int(data.get("folder_stats", 0)), int(data.get("listings", 0)), float(data.get("seconds", 0.0)),
                   data.get("outage") or None)


@dataclass(frozen=True)
class DaemonStatus:
    """Counters for health checks, metrics and STATUS lines (the shape of ``Daemon.status()``)."""

    settling: int = 0  # files waiting to settle
    claiming: int = 0  # settled files being fingerprinted, probed and claimed
    videos_in_progress: int = 0  # videos this daemon is normalizing or publishing
    publish_retries: int = 0  # videos waiting for the broker to confirm
    observers: Mapping[str, bool] = field(default_factory=dict)  # root -> its observer is alive
    pollers: Mapping[str, PollerStatus] = field(default_factory=dict)  # polled roots only
    root_errors: Mapping[str, str] = field(default_factory=dict)  # root -> why it is not watched
    redis_ok: bool = True
    loop_age_s: float = 0.0  # since the main loop last ticked
    normalize: Mapping[str, Any] = field(default_factory=dict)  # the normalizer's counters (NormalizeMetrics)
    stuck: Mapping[str, str] = field(default_factory=dict)  # a wedged part (a claim past its deadline) -> why

    @property
    def dead_roots(self) -> list[str]:
        """Roots whose observer died or that report an error."""
        return [root for root, alive in self.observers.items() if not alive] + list(self.root_errors)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (as ``/readyz`` shows it)."""
        return {
            "settling": self.settling,
            "claiming": self.claiming,
            "videos_in_progress": self.videos_in_progress,
            "publish_retries": self.publish_retries,
            "observers": dict(self.observers),
            "pollers": {root: poller.to_dict() for root, poller in self.pollers.items()},
            "root_errors": dict(self.root_errors),
            "redis_ok": self.redis_ok,
            "loop_age_s": self.loop_age_s,
            "normalize": dict(self.normalize),
            "stuck": dict(self.stuck),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DaemonStatus:
        """From :meth:`to_dict`'s shape; missing keys take their defaults."""
        return cls(
            settling=int(data.get("settling", 0)),
            claiming=int(data.get("claiming", 0)),
            videos_in_progress=int(data.get("videos_in_progress", 0)),
            publish_retries=int(data.get("publish_retries", 0)),
            observers={str(k): bool(v) for k, v in (data.get("observers") or {}).items()},
            pollers={str(k): PollerStatus.from_dict(v) for k, v in (data.get("pollers") or {}).items()},
            root_errors={str(k): str(v) for k, v in (data.get("root_errors") or {}).items()},
            redis_ok=bool(data.get("redis_ok", True)),
            loop_age_s=float(data.get("loop_age_s", 0.0)),
            normalize=dict(data.get("normalize") or {}),
            stuck={str(k): str(v) for k, v in (data.get("stuck") or {}).items()},
        )


class PublishMetrics(Protocol):
    """Where a publisher reports each confirmed publish (the API's ``Metrics`` implements it).

    The daemon's ``Publisher`` takes one (``None``: not measured) and calls it after the
    broker confirmed; failed publishes show in ``DaemonStatus.publish_retries`` instead.
    """

    def publish_confirmed(self, seconds: float) -> None:
        """One task message confirmed ``seconds`` after the publish began."""
