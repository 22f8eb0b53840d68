r"""Logging set-up; called only by the CLI.

Every record is one line: its message is passed through :func:`~vidwatch.textsafe.printable`
(a file name with a newline or an escape sequence cannot forge a line or drive the
terminal), and the lines of a traceback that follow it are indented, so no line but a
record's first starts at the left margin.

>>> import io
>>> stream = io.StringIO()
>>> handler = logging.StreamHandler(stream)
>>> handler.setFormatter(OneLineFormatter("%(levelname)s %(message)s"))
>>> log = logging.getLogger("vidwatch.doctest")
>>> log.propagate = False
>>> log.addHandler(handler)
>>> log.warning("ingest: %s: %s", "cam1/x.mp4\nINFO done", "\x1b]0;owned\x07")
>>> print(stream.getvalue(), end="")
WARNING ingest: cam1/x.mp4\nINFO done: \x1b]0;owned\x07
"""

from __future__ import annotations

import logging
import sys

from vidwatch.textsafe import printable

CONTINUATION = "\n    "


class OneLineFormatter(logging.Formatter):
    """A record's message escaped to one line; a traceback after it indented, its controls escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        first, newline, rest = text.partition("\n")
        if not newline:
            return text
        return first + CONTINUATION + CONTINUATION.join(printable(line) for line in rest.split("\n"))


def setup_logging(level: str, name: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("watchdog", "amqp", "kombu", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))
