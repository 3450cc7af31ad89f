"""Result files for --output-dir: one per input, written whole or not at all.

A file appears only when its input succeeded, and only complete: the text is
gathered in memory (it is small next to the audio), written to a hidden
temporary file beside the target, flushed to disk and renamed over it. A run
killed half-way leaves finished files and nothing else, so --skip-existing
resumes exactly where it stopped, failures included.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sttcli.errors import UsageError
from sttcli.output.render import InputRef, Quiet, dump_json, final_line
from sttcli.output.subtitles import MAX_LINE_WIDTH, MAX_LINES, SubtitleStream
from sttcli.results import ChunkEvent, InputResult

EXTENSIONS = {
    "text": ".txt",
    "live": ".txt",
    "json": ".json",
    "jsonl": ".jsonl",
    "srt": ".srt",
    "vtt": ".vtt",
}


def stem(name: str) -> str:
    """The file name without its extension; stdin is `stdin`."""
    if name == "-":
        return "stdin"
    base = Path(name).name
    return base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base


def result_paths(names: Sequence[str], directory: Path, output_format: str) -> list[Path]:
    """Where each input's result goes; two inputs with one stem are a usage error."""
    extension = EXTENSIONS[output_format]
    seen: dict[str, str] = {}
    paths = []
    for name in names:
        key = stem(name)
        if key in seen:
            raise UsageError(
                f"--output-dir: {seen[key]} and {name} would both write {key}{extension}; "
                "rename one or run them separately"
            )
        seen[key] = name
        paths.append(directory / f"{key}{extension}")
    return paths


def write_atomically(path: Path, text: str) -> None:
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        # mkstemp makes the file private; a result file is as readable as any other.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(descriptor, 0o666 & ~umask)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


class ResultFiles(Quiet):
    def __init__(
        self,
        paths: dict[int, Path],
        output_format: str,
        *,
        timestamps: bool = False,
        max_line_width: int = MAX_LINE_WIDTH,
        max_lines: int = MAX_LINES,
    ) -> None:
        self.paths = paths
        self.format = output_format
        self.timestamps = timestamps
        self.max_line_width = max_line_width
        self.max_lines = max_lines
        self._lines: dict[int, list[str]] = {}
        self._subtitles: dict[int, SubtitleStream] = {}

    def event(self, ref: InputRef, event: ChunkEvent) -> None:
        lines = self._lines.setdefault(ref.index, [])
        if self.format == "jsonl":
            lines.append(dump_json(event.to_json(ref.name)))
        elif self.format in ("text", "live") and event.final and event.text:
            lines.append(final_line(event, timestamps=self.timestamps))
        elif self.format in ("srt", "vtt") and event.utterance is not None:
            lines.append(self._subtitle_stream(ref).add(event.utterance))

    def _subtitle_stream(self, ref: InputRef) -> SubtitleStream:
        if ref.index not in self._subtitles:
            self._subtitles[ref.index] = SubtitleStream(
                self.format, max_line_width=self.max_line_width, max_lines=self.max_lines
            )
        return self._subtitles[ref.index]

    def done(self, ref: InputRef, result: InputResult) -> None:
        lines = self._lines.pop(ref.index, [])
        path = self.paths[ref.index]
        if self.format == "json":
            lines = [dump_json(result.to_json())]
        if self.format in ("srt", "vtt"):
            end = result.audio_duration_s or None
            text = "".join(lines) + self._subtitle_stream(ref).finish(end)
            del self._subtitles[ref.index]
        else:
            text = "".join(line + "\n" for line in lines)
        if result.error is not None:
            # No result file: --skip-existing will run it again. An input
            # stopped by Ctrl-C or SIGTERM keeps what it got in `NAME.partial`.
            if result.error.code == "INTERRUPTED" and (result.utterances or lines):
                write_atomically(partial_path(path), text)
            return
        write_atomically(path, text)
        try:
            partial_path(path).unlink()
        except FileNotFoundError:
            pass


def partial_path(path: Path) -> Path:
    """Where an interrupted input's results go: beside its result file, never taken for it."""
    return path.with_name(path.name + ".partial")
