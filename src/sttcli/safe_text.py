"""Text that is safe to write: valid UTF-8, and no terminal control where text is shown.

Plain functions with no dependencies: the CLI's error path and the server's
log use them as well as the renderers.
"""

from __future__ import annotations

import re
import unicodedata

# Bidirectional overrides and isolates reorder what follows them on screen.
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    # A byte that was not UTF-8 in a file name (surrogateescape): show it as \xNN.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"


def encodable(text: str) -> str:
    """Lone surrogates (undecodable bytes of a file name) as `\\xNN`: UTF-8 cannot write them."""
    return _SURROGATE.sub(_escape_surrogate, text)


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` without control characters: tabs and line breaks become spaces, others go."""
    text = encodable(text)
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif char == "\n" and keep_newlines:
            out.append(char)
        elif char in "\t\n\r\v\f\x85\u2028\u2029":
            out.append(" ")
        elif char in _BIDI or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:  # a separator such as U+3000: printable enough as a space
            out.append(" ")
    return "".join(out)


def one_line(text: str) -> str:
    """A message that must stay one line: control characters out, line breaks as spaces."""
    return printable(text)


def bounded(text: str, limit: int = 64) -> str:
    """A client's string as a log line or an error may quote it: printable and short."""
    text = printable(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
