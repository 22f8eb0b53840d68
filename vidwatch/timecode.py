"""Recording times from file paths: ``cam1/2026-11-24/12-00-00.mp4`` → epoch seconds.

A pattern is written with strftime directives and searched for in the path relative to its
root (``/`` separated). Directives: ``%Y`` (4-digit year), ``%y`` (2-digit year, 2000+),
``%m``, ``%d``, ``%H``, ``%M``, ``%S`` (2 digits each), ``%f`` (fraction of a second),
``%%``; ``*`` matches any characters within one path part. Everything else is literal. A
pattern needs a date (``%Y`` or ``%y``, ``%m``, ``%d``); missing time fields are 0.

>>> PathTime("%Y-%m-%d/%H-%M-%S").parse("cam1/2026-11-24/12-00-00.mp4")
1795521600.0
>>> PathTime("%Y%m%d_%H%M%S", "Europe/Berlin").parse("cam1/rec_20261124_130000.mp4")
1795521600.0
>>> PathTime("%Y-%m-%d/%H-%M-%S").parse("cam1/latest.mp4") is None
True
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DIRECTIVES = {
    "Y": r"(?P<Y>\d{4})",
    "y": r"(?P<y>\d{2})",
    "m": r"(?P<m>\d{2})",
    "d": r"(?P<d>\d{2})",
    "H": r"(?P<H>\d{2})",
    "M": r"(?P<M>\d{2})",
    "S": r"(?P<S>\d{2})",
    "f": r"(?P<f>\d{1,9})",
}


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression of ``pattern``; ValueError naming what is wrong."""
    parts: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "%":
            if i + 1 >= len(pattern):
                raise ValueError("a lone '%' at the end of the pattern")
            code = pattern[i + 1]
            if code == "%":
                parts.append("%")
            elif code in _DIRECTIVES:
                if code in seen:
                    raise ValueError(f"%{code} appears twice")
                seen.add(code)
                parts.append(_DIRECTIVES[code])
            else:
                raise ValueError(f"unsupported directive %{code}: expected one of %Y %y %m %d %H %M %S %f %%")
            i += 2
            continue
        parts.append("[^/]*" if char == "*" else re.escape(char))
        i += 1
    if not ({"Y", "y"} & seen and {"m", "d"} <= seen):
        raise ValueError("a time pattern needs a date: %Y (or %y), %m and %d")
    return re.compile("".join(parts))


def time_zone(name: str) -> tzinfo:
    """``UTC`` or an IANA zone name (``Europe/Berlin``); ValueError otherwise."""
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: expected UTC or an IANA name like Europe/Berlin") from exc


class PathTime:
    """Parse recording times out of paths with one pattern, in one time zone (the recorder's)."""

    def __init__(self, pattern: str, zone: str = "UTC") -> None:
        self.regex = compile_pattern(pattern)
        self.zone = time_zone(zone)

    def parse(self, relative_path: str) -> float | None:
        """Epoch seconds of the last match in ``relative_path``; None when nothing (valid) matches."""
        matches = list(self.regex.finditer(relative_path))
        for match in reversed(matches):
            fields = match.groupdict()
            year = int(fields["Y"]) if fields.get("Y") else 2000 + int(fields["y"])
            fraction = fields.get("f") or "0"
            try:
                stamp = datetime(
                    year, int(fields["m"]), int(fields["d"]),
                    int(fields.get("H") or 0), int(fields.get("M") or 0), int(fields.get("S") or 0),
                    int(fraction.ljust(6, "0")[:6]), tzinfo=self.zone,
                )
            except ValueError:  # 2026-13-45: not a time after all
                continue
            return stamp.timestamp()
        return None
