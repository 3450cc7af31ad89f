"""Text that is safe to show: no secrets, no terminal control, one line where one is promised.

A server's text and a file's name reach the terminal and the output files
verbatim otherwise: an escape sequence in a final can retitle the terminal
or hide what came before, a newline in a name breaks one-line-per-final, a
server that echoes the API key in its reply would have it printed. Every
result passes through `SafeObserver` on its way to the renderers, so each
output path (text, JSON, JSON Lines, result files, the live view) is covered
by one place rather than by each renderer remembering.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from sttcli.output.render import InputRef, Observer, Running
from sttcli.results import ChunkEvent, InputResult
from sttcli.safe_text import encodable, printable

T = TypeVar("T")
Clean = Callable[[str], str]


def cleaned(value: T, clean: Clean) -> T:
    """`value` with `clean` applied to every string in it (dataclasses, tuples, dicts)."""
    if isinstance(value, str):
        return clean(value)  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(cleaned(item, clean) for item in value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: cleaned(v, clean) for k, v in value.items()}  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes: dict[str, Any] = {}
        for item in dataclasses.fields(value):
            if not item.init:
                continue
            old = getattr(value, item.name)
            new = cleaned(old, clean)
            if new is not old:
                changes[item.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


class SafeObserver:
    """Passes each input's events and result on with every string cleaned."""

    def __init__(self, inner: Observer, clean: Clean) -> None:
        self.inner = inner
        self.clean = clean

    def _ref(self, ref: InputRef) -> InputRef:
        return dataclasses.replace(ref, name=self.clean(ref.name))

    def started(self, ref: InputRef, running: Running) -> None:
        self.inner.started(self._ref(ref), running)

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        self.inner.event(self._ref(ref), cleaned(event, self.clean))

    def done(self, ref: InputRef, result: InputResult) -> None:
        self.inner.done(self._ref(ref), cleaned(result, self.clean))

    def close(self) -> None:
        self.inner.close()


def for_text(scrub: Clean) -> Clean:
    """What text output and the terminal get: no secrets, no control characters, one line."""
    return lambda text: printable(scrub(text))


def for_json(scrub: Clean) -> Clean:
    """What JSON gets: no secrets and valid UTF-8; JSON escapes control characters itself."""
    return lambda text: encodable(scrub(text))
