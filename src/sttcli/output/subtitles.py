"""Subtitles: cues from final utterances, written as SRT or WebVTT.

Pure: utterances in, cues and text out, so a file and stdout get the same
cues and tests check the rules without a server.

With word timings a cue holds at most `max_lines` lines of at most
`max_line_width` characters, broken at word boundaries; a new cue starts at
each utterance, after a pause longer than 1.5 s and before a cue would last
over 7 s; a cue's end is held up to 1 s after its last word, never into the
next cue. Without word timings an utterance is one cue over its estimated
span, or, when its text needs more lines than a cue may have, several cues
that share the span in proportion to their text.

The words a server times need not be the text it sends ("ten thirty" may be
"10:30" in the text, a masked word "****"): cues show the text, and each of
its tokens takes its time from the words it lines up with.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sttcli.results import Utterance, Word

MAX_LINE_WIDTH = 42
MAX_LINES = 2
PAUSE_SECONDS = 1.5  # a longer pause between words starts a new cue
MAX_CUE_SECONDS = 7.0
HOLD_SECONDS = 1.0  # how long a cue may stay up after its last word
HOLD_MS = round(HOLD_SECONDS * 1000)
# A word timed with no length still gets a cue that exists (players drop empty
# ones). Cue times are whole milliseconds, as both formats write them.
_SHORTEST_CUE_MS = 1


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Token:
    text: str
    start_s: float
    end_s: float


class CueBuilder:
    """Feed finals in order; cues come out once the next cue's start is known.

    A cue's end may be held past its last word, but not into the next cue, so
    the last cue waits for the next utterance or for `finish()`.
    """

    def __init__(self, *, max_line_width: int = MAX_LINE_WIDTH, max_lines: int = MAX_LINES) -> None:
        self.max_line_width = max_line_width
        self.max_lines = max_lines
        self._pending: tuple[Cue, float] | None = None  # a cue, and how far it may be held
        self._floor = 0  # ms: no cue starts before the previous one's last word ends

    def add(self, utterance: Utterance) -> list[Cue]:
        """The cues that are final now that `utterance` has come."""
        ready: list[Cue] = []
        for cue, hold_until in self._cues_of(utterance):
            if self._pending is not None:
                ready.append(self._release(*self._pending, next_start=cue.start_s))
            self._pending = (cue, hold_until)
        return ready

    def finish(self, audio_end_s: float | None = None) -> list[Cue]:
        """The last cue, held its full second, but not past the end of the audio."""
        if self._pending is None:
            return []
        cue = self._release(*self._pending, next_start=audio_end_s)
        self._pending = None
        return [cue]

    @staticmethod
    def _release(cue: Cue, hold_until: float, *, next_start: float | None) -> Cue:
        # The next cue never starts before this one's last word ends (`_floor`).
        end = hold_until if next_start is None else max(cue.end_s, min(hold_until, next_start))
        return Cue(cue.start_s, end, cue.lines)

    def _cues_of(self, utterance: Utterance) -> Iterator[tuple[Cue, float]]:
        if not utterance.text.strip():
            return
        if utterance.words:
            groups = list(self._groups(_timed_tokens(utterance.text, utterance.words)))
            for tokens, lines in groups:
                start = max(_ms(tokens[0].start_s), self._floor)
                end = max(_ms(max(t.end_s for t in tokens)), start + _SHORTEST_CUE_MS)
                self._floor = end
                yield Cue(start / 1000, end / 1000, lines), (end + HOLD_MS) / 1000
            return
        pages = _pages(utterance.text.split(), self.max_line_width, self.max_lines)
        start = max(_ms(utterance.start_s), self._floor)
        end = max(_ms(utterance.end_s), start + _SHORTEST_CUE_MS * len(pages))
        self._floor = end
        # The span is shared in proportion to the text, every page at least 1 ms.
        sizes = [sum(len(line) for line in page) for page in pages]
        total, done = sum(sizes), 0
        at = start
        for index, (page, size) in enumerate(zip(pages, sizes, strict=True)):
            done += size
            left = len(pages) - index - 1
            share = start + (end - start) * done // total
            page_end = min(max(share, at + _SHORTEST_CUE_MS), end - left * _SHORTEST_CUE_MS)
            yield Cue(at / 1000, page_end / 1000, page), page_end / 1000  # an estimate is not held
            at = page_end

    def _groups(self, tokens: Sequence[_Token]) -> Iterator[tuple[list[_Token], tuple[str, ...]]]:
        """Tokens cut into cues by pauses, duration and room; each with its lines."""
        cue: list[_Token] = []
        lines: list[str] = []
        for token in tokens:
            if cue:
                pause = token.start_s - cue[-1].end_s
                too_long = token.end_s - cue[0].start_s > MAX_CUE_SECONDS
                placed = _place(lines, token.text, self.max_line_width, self.max_lines)
                if pause > PAUSE_SECONDS or too_long or placed is None:
                    yield cue, tuple(lines)
                    cue, lines = [], []
                else:
                    cue.append(token)
                    lines = placed
                    continue
            cue.append(token)
            lines = [token.text]
        if cue:
            yield cue, tuple(lines)


def _ms(seconds: float) -> int:
    """Whole milliseconds, halves up (round() would send 1.5 and 2.5 both to 2)."""
    return max(0, math.floor(seconds * 1000 + 0.5))


def _place(lines: list[str], word: str, width: int, max_lines: int) -> list[str] | None:
    """The lines with `word` added, on the last line or a new one; None if no room."""
    if lines and len(lines[-1]) + 1 + len(word) <= width:
        return [*lines[:-1], f"{lines[-1]} {word}"]
    if len(lines) < max_lines:
        return [*lines, word]
    return None


def _pages(words: Sequence[str], width: int, max_lines: int) -> list[tuple[str, ...]]:
    """Words wrapped into lines, and the lines into cues of at most `max_lines`."""
    pages: list[tuple[str, ...]] = []
    lines: list[str] = []
    for word in words:
        placed = _place(lines, word, width, max_lines) if lines else [word]
        if placed is None:
            pages.append(tuple(lines))
            placed = [word]
        lines = placed
    if lines:
        pages.append(tuple(lines))
    return pages


def _timed_tokens(text: str, words: Sequence[Word]) -> list[_Token]:
    """The text's tokens, each timed by the words it lines up with.

    Equal tokens take their word's time; a run of tokens that differs from a
    run of words (numbers written as figures, masked words) shares that run's
    span; tokens with no word at all sit at the end of the word before them.
    """
    tokens = text.split()
    if len(tokens) == len(words):
        return [_Token(t, w.start_s, w.end_s) for t, w in zip(tokens, words, strict=True)]
    matcher = difflib.SequenceMatcher(
        a=[_plain(t) for t in tokens], b=[_plain(w.text) for w in words], autojunk=False
    )
    timed: list[_Token] = []
    last_end = words[0].start_s
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            for offset in range(a1 - a0):
                word = words[b0 + offset]
                timed.append(_Token(tokens[a0 + offset], word.start_s, word.end_s))
        elif op == "replace":
            start, end = words[b0].start_s, max(w.end_s for w in words[b0:b1])
            step = (end - start) / (a1 - a0)
            for offset in range(a1 - a0):
                timed.append(
                    _Token(tokens[a0 + offset], start + step * offset, start + step * (offset + 1))
                )
        elif op == "insert":
            for offset in range(a1 - a0):
                timed.append(_Token(tokens[a0 + offset], last_end, last_end))
        if b1 > b0:
            last_end = max(w.end_s for w in words[b0:b1])
    return timed


def _plain(token: str) -> str:
    return "".join(c for c in token.lower() if c.isalnum())


# -- formats -------------------------------------------------------------------


def srt_time(seconds: float) -> str:
    """`HH:MM:SS,mmm`."""
    return _clock(seconds, ",")


def vtt_time(seconds: float) -> str:
    """`HH:MM:SS.mmm`."""
    return _clock(seconds, ".")


def _clock(seconds: float, separator: str) -> str:
    millis = _ms(seconds)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{millis:03d}"


def short_time(seconds: float, *, hours: bool) -> str:
    """`MM:SS.mmm`, or `HH:MM:SS.mmm` with `hours`: the prefix of --timestamps."""
    clock = _clock(seconds, ".")
    return clock if hours else clock[3:]


def timestamp_prefix(utterance: Utterance) -> str:
    """`[MM:SS.mmm --> MM:SS.mmm] `, with hours on both when the end needs them."""
    hours = utterance.end_s >= 3600
    start = short_time(utterance.start_s, hours=hours)
    return f"[{start} --> {short_time(utterance.end_s, hours=hours)}] "


class SubtitleFormat:
    """How cues are written: a header, then one block per cue, each ending in a blank line."""

    name = ""
    extension = ""
    header = ""

    def block(self, number: int, cue: Cue) -> str:
        raise NotImplementedError


class Srt(SubtitleFormat):
    name = "srt"
    extension = ".srt"

    def block(self, number: int, cue: Cue) -> str:
        lines = "\n".join(cue.lines)
        return f"{number}\n{srt_time(cue.start_s)} --> {srt_time(cue.end_s)}\n{lines}\n\n"


class WebVtt(SubtitleFormat):
    name = "vtt"
    extension = ".vtt"
    header = "WEBVTT\n\n"

    def block(self, number: int, cue: Cue) -> str:
        lines = "\n".join(_vtt_escape(line) for line in cue.lines)
        return f"{vtt_time(cue.start_s)} --> {vtt_time(cue.end_s)}\n{lines}\n\n"


def _vtt_escape(line: str) -> str:
    # Cue text is markup in WebVTT: a bare "<" or "&" would be read as a tag or an entity.
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


FORMATS: dict[str, SubtitleFormat] = {"srt": Srt(), "vtt": WebVtt()}


class SubtitleStream:
    """One input's subtitles as text, piece by piece: the header, then cues as they are final."""

    def __init__(self, kind: str, *, max_line_width: int, max_lines: int) -> None:
        self.format = FORMATS[kind]
        self.builder = CueBuilder(max_line_width=max_line_width, max_lines=max_lines)
        self._count = 0
        self._started = False

    def start(self) -> str:
        if self._started:
            return ""
        self._started = True
        return self.format.header

    def add(self, utterance: Utterance) -> str:
        return self.start() + self._write(self.builder.add(utterance))

    def finish(self, audio_end_s: float | None = None) -> str:
        return self.start() + self._write(self.builder.finish(audio_end_s))

    def _write(self, cues: Sequence[Cue]) -> str:
        blocks = []
        for cue in cues:
            self._count += 1
            blocks.append(self.format.block(self._count, cue))
        return "".join(blocks)
