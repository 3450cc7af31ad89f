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
from sttcli.auth.secrets import KNOWN, learned


class Scrubber:
    """Masks the secrets it is given and those the process learns later (fetched tokens)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._given = {s for s in secrets if len(s) >= 4}
        self._seen: frozenset[str] | None = None
        self._secrets: list[str] = []

    def __call__(self, text: str) -> str:
        known = KNOWN.values()
        if known is not self._seen:  # the registry only ever grows by replacement
            self._seen = known
            self._secrets = learned(self._given)
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
