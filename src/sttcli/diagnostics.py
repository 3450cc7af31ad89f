"""Messages for people, on stderr, with every known secret scrubbed out.

Everything sttcli says that is not a result goes through here, logging
included, so that a token cannot leak through a server's error text, a log
line or a traceback shown with -v.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

from sttcli.auth.credentials import MASK


class Scrubber:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


class Diagnostics:
    """stderr for people: `-q` keeps only errors, `-v` adds what sttcli is doing."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        secrets: Iterable[str] = (),
        quiet: bool = False,
        verbose: int = 0,
    ) -> None:
        # None: whatever sys.stderr is when writing, so that a live view that
        # redirects stderr through itself gets these lines too.
        self._stream = stream
        self.scrub = Scrubber(secrets)
        self.quiet = quiet
        self.verbose = verbose

    def write(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write(self.scrub(text) + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # stderr is gone: nothing better to do with a message

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
        self.diagnostics.write(f"sttcli: {message}")
