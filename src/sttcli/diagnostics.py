"""Messages for people, on stderr, with every known secret scrubbed out.

Everything sttcli says that is not a result goes through here, logging
included, so that a token cannot leak through a server's error text, a log
line or a traceback shown with -v.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from sttcli.auth.credentials import MASK
from sttcli.auth.secrets import KNOWN, learned
from sttcli.safe_text import one_line

PIECE = 8  # the shortest piece of a secret that is masked on its own


@dataclass(frozen=True)
class _Masks:
    """What a scrubber masks, and the registry state it was built from."""

    seen: frozenset[str] | None
    whole: list[str]
    pieces: frozenset[str]


class Scrubber:
    """Masks every known secret in a text: whole, in another case, or any 8+ characters of it.

    The secrets are those it is given and those the process learns later
    (fetched tokens, read keys). A server may echo a key partly, or
    upper-cased, or cut at a line's end; a piece of 8 characters is already
    too much of a secret to print. A window of text is masked when each of
    its 8-character pieces occurs in a secret, case aside; secrets shorter
    than that, or with spaces in them, are masked whole (case aside).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._given = {s.strip() for s in secrets if s and len(s.strip()) >= 4}
        self._state = _Masks(None, [], frozenset())

    def _masks(self) -> _Masks:
        """The masks for what the registry holds now, rebuilt when it has grown.

        Logging calls this from several threads: the masks and the registry
        state they were built from are replaced as one object, so no thread can
        see "up to date" next to masks that do not yet hold a new secret. Two
        threads may both rebuild; they build the same thing.
        """
        known = KNOWN.values()
        state = self._state
        if known is state.seen:  # the registry only ever grows by replacement
            return state
        values = {v.lower() for v in learned(self._given)}
        # Pieces only of token-like secrets: a value with spaces (a whole PEM
        # with its "Key ID" line, a test's placeholder) shares words with
        # ordinary messages, and is masked whole instead.
        pieced = {v for v in values if len(v) >= PIECE and not any(c.isspace() for c in v)}
        whole = sorted(values - pieced, key=len, reverse=True)
        pieces = frozenset(v[i : i + PIECE] for v in pieced for i in range(len(v) - PIECE + 1))
        state = _Masks(known, whole, pieces)
        self._state = state
        return state

    def __call__(self, text: str) -> str:
        masks = self._masks()
        whole, pieces = masks.whole, masks.pieces
        if not text or not (whole or pieces):
            return text
        lower = text.lower()
        if len(lower) != len(text):  # a rare character whose lower case is longer
            lower = "".join(c.lower()[:1] or c for c in text)
        hidden = [False] * len(text)
        for start in range(len(text) - PIECE + 1):
            if lower[start : start + PIECE] in pieces:
                hidden[start : start + PIECE] = [True] * PIECE
        for secret in whole:
            start = lower.find(secret)
            while start != -1:
                hidden[start : start + len(secret)] = [True] * len(secret)
                start = lower.find(secret, start + 1)
        if not any(hidden):
            return text
        out: list[str] = []
        for index, char in enumerate(text):
            if not hidden[index]:
                out.append(char)
            elif index == 0 or not hidden[index - 1]:
                out.append(MASK)
        return "".join(out)


class Diagnostics:
    """stderr for people: `-q` keeps only errors, `-v` adds what sttcli is doing."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        secrets: Iterable[str] = (),
        quiet: bool = False,
        verbose: int = 0,
        server_label: str = "",
    ) -> None:
        # None: whatever sys.stderr is when writing, so that a live view that
        # redirects stderr through itself gets these lines too.
        self._stream = stream
        self.scrub = Scrubber(secrets)
        self.quiet = quiet
        self.verbose = verbose
        # --local: the in-process server's log lines, told apart from the client's.
        self.server_label = server_label

    def write(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            # One message, one line: a name or a server's text may hold line breaks.
            stream.write(one_line(self.scrub(text)) + "\n")
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass  # stderr is closed, full or gone: nothing better to do with a message

    def error(self, text: str) -> None:
        self.write(f"sttcli: {text}")

    def notice(self, text: str) -> None:
        if not self.quiet:
            self.write(f"sttcli: {text}")

    def install_logging(self) -> None:
        """Route the library's logging here: warnings always, info with -v, debug with -vv."""
        logger = logging.getLogger("sttcli")
        for handler in list(logger.handlers):
            if isinstance(handler, _Handler):
                logger.removeHandler(handler)
        level = logging.WARNING
        if self.quiet:
            level = logging.ERROR
        elif self.verbose >= 2:
            level = logging.DEBUG
        elif self.verbose == 1:
            level = logging.INFO
        logger.setLevel(level)
        logger.addHandler(_Handler(self))
        logger.propagate = False


class _Handler(logging.Handler):
    def __init__(self, diagnostics: Diagnostics) -> None:
        super().__init__()
        self.diagnostics = diagnostics

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not take the run down
            message = str(record.msg)
        label = self.diagnostics.server_label
        if label and record.name.startswith("sttcli.server"):
            message = f"{label}: {message}"
        self.diagnostics.write(f"sttcli: {one_line(message)}")
