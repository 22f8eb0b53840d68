r"""Text from the outside (file names, stream fields) made safe to print on one line.

A file name may hold any byte but ``/`` and NUL: a newline that forges a log line, an
escape sequence that retitles or clears the terminal, a right-to-left override that shows
the rest of a name backwards, bytes that are not UTF-8 at all. :func:`printable`
writes each such character as an escape, and leaves everything else as it is:

>>> printable("cam1/a.mp4")
'cam1/a.mp4'
>>> printable("a\nb\tc\rd")
'a\\nb\\tc\\rd'
>>> printable("\x1b]0;owned\x07x.mp4")
'\\x1b]0;owned\\x07x.mp4'
>>> printable("x\u202egpj.exe")
'x\\u202egpj.exe'
>>> printable(b"caf\xe9.mp4".decode("utf-8", "surrogateescape"))  # a Latin-1 name, as os.listdir gives it
'caf\\xe9.mp4'

The escapes: ``\n``, ``\r``, ``\t``; ``\xNN`` for the other C0 controls, DEL, the C1
controls (U+0080–U+009F) and undecodable bytes (``surrogateescape``); ``\uNNNN`` for the
bidirectional controls, the Unicode line and paragraph separators and other lone surrogates.
Backslashes are kept as they are, so an ordinary Windows-style name still reads naturally.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def printable(text: object) -> str:
    """``str(text)`` with control, bidi and undecodable characters escaped (see the module's doc)."""
    value = text if isinstance(text, str) else str(text)
    if _UNSAFE.search(value) is None:
        return value
    return _UNSAFE.sub(_escape, value)
