"""Showing results: plain text, JSON Lines, JSON, and a live terminal view.

This is the only module that imports Rich. Results go to the output stream
(stdout or -o); renderers never write diagnostics.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import IO, Any, Protocol, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from sttcli.results import ChunkEvent, InputResult


@dataclass(frozen=True)
class InputRef:
    """An input as the user named it, and its place on the command line."""

    index: int
    name: str


class Renderer(Protocol):
    def event(self, ref: InputRef, event: ChunkEvent) -> None: ...

    def done(self, ref: InputRef, result: InputResult) -> None: ...

    def close(self) -> None: ...


def dump_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class TextRenderer:
    """One line per final, flushed as it arrives; `NAME: ` first when there are several inputs."""

    def __init__(self, out: TextIO, *, prefixed: bool = False) -> None:
        self.out = out
        self.prefixed = prefixed

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        if event.final and event.text:
            prefix = f"{ref.name}: " if self.prefixed else ""
            self.out.write(f"{prefix}{event.text}\n")
            self.out.flush()

    def done(self, ref: InputRef, result: InputResult) -> None:
        pass

    def close(self) -> None:
        pass


class JsonLinesRenderer:
    """One compact object per response chunk, partials included."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        self.out.write(dump_json(event.to_json(ref.name)) + "\n")
        self.out.flush()

    def done(self, ref: InputRef, result: InputResult) -> None:
        pass

    def close(self) -> None:
        pass


class JsonRenderer:
    """One document per input, on its own line, in the order the inputs were given."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._waiting: dict[int, InputResult] = {}
        self._next = 0

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        pass

    def done(self, ref: InputRef, result: InputResult) -> None:
        self._waiting[ref.index] = result
        while self._next in self._waiting:
            self.out.write(dump_json(self._waiting.pop(self._next).to_json()) + "\n")
            self._next += 1
        self.out.flush()

    def close(self) -> None:
        # Inputs never run (Ctrl-C, --fail-fast) leave gaps: write what there is, in order.
        for index in sorted(self._waiting):
            self.out.write(dump_json(self._waiting.pop(index).to_json()) + "\n")
        self.out.flush()


class LiveRenderer:
    """The hypothesis so far, dim, updated in place; each final committed above it.

    The partial line is transient: nothing of it is left on the terminal when
    the view closes, only the finals.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live = Live(
            Text(""),
            console=console,
            transient=True,
            auto_refresh=False,
            redirect_stdout=False,
            # Diagnostics printed while the view is up would break its redraw;
            # route them through it, but only when stderr is this very terminal.
            redirect_stderr=_same_terminal(console.file),
        )
        self._live.start()

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        if event.final:
            if event.text:
                self.console.print(Text(event.text), soft_wrap=True)
            self._live.update(Text(""), refresh=True)
        else:
            self._live.update(Text(self._tail(event.text), style="dim"), refresh=True)

    def _tail(self, text: str) -> str:
        # A long utterance would outgrow the screen: show its last two lines.
        room = max(10, self.console.width * 2 - 1)
        return text if len(text) <= room else "…" + text[-(room - 1) :]

    def done(self, ref: InputRef, result: InputResult) -> None:
        self._live.update(Text(""), refresh=True)

    def close(self) -> None:
        self._live.stop()


def live_console(out: TextIO) -> Console:
    """A console on the output stream; Rich itself honours NO_COLOR and TERM=dumb."""
    return Console(file=out, highlight=False, soft_wrap=False)


def _same_terminal(out: IO[str]) -> bool:
    try:
        a, b = os.fstat(out.fileno()), os.fstat(2)
    except (OSError, ValueError, AttributeError):
        return False
    return os.isatty(2) and (a.st_dev, a.st_ino, a.st_rdev) == (b.st_dev, b.st_ino, b.st_rdev)
