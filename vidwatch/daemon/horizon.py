"""Files recorded before the ``[retention] summaries_days`` horizon are not claimed.

Such a file would be analysed and its results removed by the next retention pass: the work,
the events and the records would be for nothing. The claim pool asks :meth:`Horizon.too_old`
for every settled file before it claims it; the recording time known then is the time in the
path (``[watch] time_pattern``), else the file's mtime (the container's ``creation_time`` is
only read later, when the video is probed). A skipped file gets no record and no event (no
``failed``): it is logged once per file version (path and mtime) at INFO with the reason, and
seen again by a rescan it is skipped silently (a new mtime logs it again). The memory of what
was logged is bounded (:data:`REMEMBER`, oldest forgotten first).

>>> from types import SimpleNamespace as S
>>> config = S(retention=S(horizon_s=lambda kind: 30 * 86400.0))
>>> horizon = Horizon(config, lambda path: None, clock=lambda: 100 * 86400.0)
>>> horizon.too_old("/nvr/cam1/a.mp4", int(60 * 86400 * 1e9)), horizon.too_old("/nvr/cam1/b.mp4", int(80 * 86400e9))
(True, False)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from vidwatch.config import Config

logger = logging.getLogger(__name__)

REMEMBER = 100_000  # skipped file versions remembered (not logged again)
DAY_S = 86400.0


class Horizon:
    """Whether a settled file is recorded too long ago to be worth analysing; logs each one once."""

    def __init__(self, config: Config, time_in_path: Callable[[str], float | None], *,
                 clock: Callable[[], float] = time.time, remember: int = REMEMBER) -> None:
        self.retention = config.retention
        self.time_in_path = time_in_path
        self.clock = clock
        self.remember = remember
        self._logged: dict[str, int] = {}  # path -> mtime_ns of the version logged as skipped

    def too_old(self, path: str, mtime_ns: int) -> bool:
        """True (and logged once per path and mtime) when ``path`` was recorded before the horizon."""
        horizon_s = self.retention.horizon_s("summaries")
        if horizon_s is None:
            return False
        in_path = self.time_in_path(path)
        recorded = in_path if in_path is not None else mtime_ns / 1e9
        if recorded >= self.clock() - horizon_s:
            return False
        if self._logged.get(path) != mtime_ns:
            source = "path time" if in_path is not None else "mtime"
            logger.info("watch: %s: skipped, not analysed: recorded %s (%s), %.1f days ago, before the "
                        "[retention] summaries_days = %g horizon: its results would be removed at once", path,
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(recorded)), source,
                        (self.clock() - recorded) / DAY_S, horizon_s / DAY_S)
            self._logged.pop(path, None)
            self._logged[path] = mtime_ns
            while len(self._logged) > self.remember:
                self._logged.pop(next(iter(self._logged)))
        return True
