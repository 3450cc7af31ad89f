"""Standard streams that were closed at start (`<&-`, `>&-`, `2>&-`) or fail when written.

A process started with descriptor 0, 1 or 2 closed gets `None` for that
`sys` stream, and the next file it opens takes the free number: a socket
could then receive the results meant for stdout. `reserve_closed_streams()`
puts /dev/null on each closed descriptor before anything else is opened,
and remembers which were closed so that the commands can say so (stdout:
nowhere to write results; stdin: no audio to read) instead of failing
later with a traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import IO, Any

from sttcli.errors import OutputError

closed: set[str] = set()

_STREAMS = ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w"))


def reserve_closed_streams() -> set[str]:
    """Put /dev/null on closed standard descriptors; returns (and remembers) their names."""
    for number, name, mode in _STREAMS:
        try:
            os.fstat(number)
            continue
        except OSError as error:
            if error.errno != errno.EBADF:
                continue
        try:
            fd = os.open(os.devnull, os.O_RDONLY if mode == "r" else os.O_WRONLY)
        except OSError:
            continue
        if fd != number:
            os.dup2(fd, number)
            os.close(fd)
        closed.add(name)
        setattr(sys, name, open(number, mode, encoding="utf-8", closefd=False))  # noqa: SIM115
    return closed


class GuardedOutput:
    """A text stream whose write failures (full disk, closed descriptor) are `OutputError`.

    A reader that went away (EPIPE) stays a BrokenPipeError: `| head -1` is
    a normal way to stop, handled quietly by the CLI.
    """

    def __init__(self, stream: IO[str], name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            raise self._failure(error) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            raise self._failure(error) from None

    def _failure(self, error: OSError) -> OSError | OutputError:
        if isinstance(error, BrokenPipeError):
            return error
        return OutputError(f"cannot write results to {self._name}: {error.strerror or error}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def flush_quietly() -> None:
    """Flush stdout at exit; if it cannot take the rest, drop it rather than complain."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
        except OSError:
            pass
