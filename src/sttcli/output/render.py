"""Showing results and progress: text, JSON Lines, JSON, a live view, a progress view.

This is the only module that imports Rich. Every renderer is an `Observer`
of the batch runner. Results go to the output stream (stdout or -o);
progress and per-input lines go to stderr.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol, TextIO

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from sttcli.output.subtitles import MAX_LINE_WIDTH, MAX_LINES, SubtitleStream, timestamp_prefix
from sttcli.results import ChunkEvent, InputResult


@dataclass(frozen=True)
class InputRef:
    """An input as the user named it, and its place on the command line."""

    index: int
    name: str


class Running(Protocol):
    """What an observer may ask of an input while it runs."""

    @property
    def audio_seconds(self) -> float: ...

    @property
    def total_seconds(self) -> float | None: ...


class Observer(Protocol):
    def started(self, ref: InputRef, running: Running) -> None: ...

    def event(self, ref: InputRef, event: ChunkEvent) -> None: ...

    def done(self, ref: InputRef, result: InputResult) -> None: ...

    def close(self) -> None: ...


class Quiet:
    """The do-nothing observer, a base for the ones that care about little."""

    def started(self, ref: InputRef, running: Running) -> None:
        pass

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        pass

    def done(self, ref: InputRef, result: InputResult) -> None:
        pass

    def close(self) -> None:
        pass


class Observers(Quiet):
    """Several observers as one, told in order."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = list(observers)

    def started(self, ref: InputRef, running: Running) -> None:
        for observer in self.observers:
            observer.started(ref, running)

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        for observer in self.observers:
            observer.event(ref, event)

    def done(self, ref: InputRef, result: InputResult) -> None:
        for observer in self.observers:
            observer.done(ref, result)

    def close(self) -> None:
        for observer in self.observers:
            observer.close()


def dump_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


Emit = Callable[[str], None]


def writer(out: TextIO) -> Emit:
    """Write a line and flush it: results are for whoever reads them now."""

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    return emit


def final_line(event: ChunkEvent, *, timestamps: bool = False) -> str:
    """A final as a line of text, its span first with `timestamps`."""
    if timestamps and event.utterance is not None:
        return timestamp_prefix(event.utterance) + event.text
    return event.text


class TextRenderer(Quiet):
    """One line per final, as it arrives; `NAME: ` first when there are several inputs."""

    def __init__(
        self, out: TextIO | Emit, *, prefixed: bool = False, timestamps: bool = False
    ) -> None:
        self.emit = out if callable(out) else writer(out)
        self.prefixed = prefixed
        self.timestamps = timestamps

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        if event.final and event.text:
            prefix = f"{ref.name}: " if self.prefixed else ""
            self.emit(prefix + final_line(event, timestamps=self.timestamps))


class SubtitleRenderer(Quiet):
    """SRT or WebVTT, a cue at a time as finals make it final: a cut-off run leaves valid cues."""

    def __init__(
        self,
        out: TextIO | Emit,
        kind: str,
        *,
        max_line_width: int = MAX_LINE_WIDTH,
        max_lines: int = MAX_LINES,
    ) -> None:
        self.emit = out if callable(out) else writer(out)
        self.kind = kind
        self.max_line_width = max_line_width
        self.max_lines = max_lines
        self._streams: dict[int, SubtitleStream] = {}

    def _stream(self, ref: InputRef) -> SubtitleStream:
        if ref.index not in self._streams:
            self._streams[ref.index] = SubtitleStream(
                self.kind, max_line_width=self.max_line_width, max_lines=self.max_lines
            )
        return self._streams[ref.index]

    def _write(self, piece: str) -> None:
        if piece:
            self.emit(piece.removesuffix("\n"))  # emit ends it with the newline again

    def started(self, ref: InputRef, running: Running) -> None:
        self._write(self._stream(ref).start())

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        if event.utterance is not None:
            self._write(self._stream(ref).add(event.utterance))

    def done(self, ref: InputRef, result: InputResult) -> None:
        self._write(self._stream(ref).finish(result.audio_duration_s or None))
        del self._streams[ref.index]


class JsonLinesRenderer(Quiet):
    """One compact object per response chunk, partials included."""

    def __init__(self, out: TextIO | Emit) -> None:
        self.emit = out if callable(out) else writer(out)

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        self.emit(dump_json(event.to_json(ref.name)))


class JsonRenderer(Quiet):
    """One document per input, on its own line, in the order the inputs were given.

    A result waits for those of the inputs before it. Inputs that never
    report (Ctrl-C, --fail-fast, checks that failed up front and reported
    first) leave gaps that `close()` skips.
    """

    def __init__(self, out: TextIO | Emit) -> None:
        self.emit = out if callable(out) else writer(out)
        self._waiting: dict[int, InputResult] = {}
        self._next = 0

    def done(self, ref: InputRef, result: InputResult) -> None:
        self._waiting[ref.index] = result
        while self._next in self._waiting:
            self.emit(dump_json(self._waiting.pop(self._next).to_json()))
            self._next += 1

    def close(self) -> None:
        for index in sorted(self._waiting):
            self.emit(dump_json(self._waiting.pop(index).to_json()))


class LiveRenderer(Quiet):
    """The hypothesis so far, dim, updated in place; each final committed above it.

    The partial line is transient: nothing of it is left on the terminal when
    the view closes, only the finals.
    """

    def __init__(self, console: Console, *, timestamps: bool = False) -> None:
        self.console = console
        self.timestamps = timestamps
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
            # Clear the partial first: printing redraws the view below the
            # final, and it must not show the stale partial for a frame.
            self._live.update(Text(""), refresh=True)
            if event.text:
                # Wrapped by Rich at word boundaries, not cut mid-word by the terminal.
                line = final_line(event, timestamps=self.timestamps)
                self.console.print(Text(line), soft_wrap=False)
        else:
            self._live.update(Text(self._tail(event.text), style=_partial_style()), refresh=True)

    def _tail(self, text: str) -> str:
        # A long utterance would outgrow the screen: show its last two lines.
        room = max(10, self.console.width * 2 - 1)
        return text if len(text) <= room else "…" + text[-(room - 1) :]

    def done(self, ref: InputRef, result: InputResult) -> None:
        self._live.update(Text(""), refresh=True)

    def close(self) -> None:
        self._live.stop()


class ProgressView(Quiet):
    """For a person watching a batch: a row per running input and one for the whole run.

    Rows show audio seconds sent (of the total, when the input's length is
    known); the overall row shows inputs done, audio hours and failures.
    Transient: when the run ends, the summary line is what stays.
    """

    def __init__(self, console: Console, total_inputs: int) -> None:
        self.console = console
        self._progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            refresh_per_second=4,
        )
        self._overall = self._progress.add_task("all", total=total_inputs, detail="", start=True)
        self._rows: dict[int, tuple[TaskID, Running]] = {}
        self._done = 0
        self._failed = 0
        self._audio = 0.0
        self._progress.start()
        self._describe()

    def print_above(self, line: str) -> None:
        """A result line, printed above the bars (stdout is this same terminal)."""
        self._progress.console.print(Text(line), soft_wrap=True)

    def started(self, ref: InputRef, running: Running) -> None:
        total = running.total_seconds
        task = self._progress.add_task(_short(ref.name), total=total or None, detail="", start=True)
        self._rows[ref.index] = (task, running)

    def refresh(self) -> None:
        """Called a few times a second: positions move without any event."""
        for task, running in self._rows.values():
            sent = running.audio_seconds
            total = running.total_seconds
            detail = f"{sent:.1f}/{total:.1f} s" if total else f"{sent:.1f} s"
            self._progress.update(task, completed=sent, detail=detail)

    def done(self, ref: InputRef, result: InputResult) -> None:
        row = self._rows.pop(ref.index, None)
        if row is not None:
            self._progress.remove_task(row[0])
        self._done += 1
        self._failed += result.error is not None
        self._audio += result.audio_duration_s
        self._describe()

    def _describe(self) -> None:
        failures = f", {self._failed} failed" if self._failed else ""
        self._progress.update(
            self._overall,
            completed=self._done,
            description="all inputs",
            detail=f"{self._done} done{failures}, {self._audio / 3600:.2f} h audio",
        )

    def close(self) -> None:
        self._progress.stop()


def _partial_style() -> str:
    """Partials are dim, unless NO_COLOR asks for plain text (Rich drops colours, not dim)."""
    return "" if os.environ.get("NO_COLOR") else "dim"


def _short(name: str, width: int = 30) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def same_terminal(out: IO[str]) -> bool:
    """Is `out` the very terminal stderr is on? Then a view may print results for it."""
    return _same_terminal(out)


def live_console(out: TextIO) -> Console:
    """A console on the output stream; Rich itself honours NO_COLOR and TERM=dumb."""
    return Console(file=out, highlight=False, soft_wrap=False)


def _same_terminal(out: IO[str]) -> bool:
    try:
        a, b = os.fstat(out.fileno()), os.fstat(2)
    except (OSError, ValueError, AttributeError):
        return False
    return os.isatty(2) and (a.st_dev, a.st_ino, a.st_rdev) == (b.st_dev, b.st_ino, b.st_rdev)
