"""A deterministic engine: "words" are runs of a marker sample value.

For tests and for pipelines that need a server with predictable answers.
Audio is cut into 10 ms frames from the start of the session. A frame is
sound when any sample's magnitude reaches 256; a run of sound frames is a
word, named by its first loud sample: value k * 1000 (k = 1..26) is the k-th
word of the NATO alphabet, anything else is "noise". A run of `gap` seconds of
silence ends the utterance. The same bytes give the same results, however
they are split into messages.
"""

from __future__ import annotations

from array import array

from sttcli.server.engine import EngineEvent, EngineWord, Final, Partial

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
MARKER_STEP = 1000
_LOUD = 256


def marker(word: str) -> int:
    """The sample value that stands for `word`."""
    return (WORDS.index(word) + 1) * MARKER_STEP


class SyntheticEngine:
    name = "synthetic"
    languages: tuple[str, ...] = ("en-US",)

    def __init__(self, *, gap: float = 0.3, word_timings: bool = True) -> None:
        self.gap = gap
        self.word_timings = word_timings

    def open(self, sample_rate: int, *, partials: bool, language: str = "") -> SyntheticSession:
        return SyntheticSession(
            sample_rate, partials=partials, gap=self.gap, timings=self.word_timings
        )

    def close(self) -> None:
        pass


class SyntheticSession:
    def __init__(self, rate: int, *, partials: bool, gap: float, timings: bool) -> None:
        self.rate = rate
        self.partials = partials
        self.timings = timings
        self.frame_bytes = max(2, rate // 100 * 2)
        self.gap_frames = max(1, round(gap * 100))
        self._pending = bytearray()
        self._frame_index = 0
        self._words: list[EngineWord] = []
        self._word_value: int | None = None  # the word being heard
        self._word_start = 0
        self._silent_frames = 0

    def feed(self, pcm: bytes) -> list[EngineEvent]:
        self._pending += pcm
        events: list[EngineEvent] = []
        size = self.frame_bytes
        whole = len(self._pending) - len(self._pending) % size
        samples = array("h")
        samples.frombytes(bytes(self._pending[:whole]))
        del self._pending[:whole]
        per_frame = size // 2
        for start in range(0, len(samples), per_frame):
            self._frame(samples[start : start + per_frame], events)
        return events

    def finish(self) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        self._end_word(events)
        self._end_utterance(events)
        return events

    def close(self) -> None:
        pass

    def _frame(self, samples: array[int], events: list[EngineEvent]) -> None:
        loud = next((s for s in samples if abs(s) >= _LOUD), None)
        if loud is not None:
            if self._word_value is None:
                self._word_value = loud
                self._word_start = self._frame_index
            self._silent_frames = 0
        else:
            self._end_word(events)
            self._silent_frames += 1
            if self._silent_frames == self.gap_frames:
                self._end_utterance(events)
        self._frame_index += 1

    def _end_word(self, events: list[EngineEvent]) -> None:
        if self._word_value is None:
            return
        index = round(self._word_value / MARKER_STEP) - 1
        exact = self._word_value % MARKER_STEP == 0 and 0 <= index < len(WORDS)
        text = WORDS[index] if exact else "noise"
        self._words.append(EngineWord(text, self._word_start / 100, self._frame_index / 100, 1.0))
        self._word_value = None
        if self.partials:
            events.append(Partial(" ".join(w.text for w in self._words)))

    def _end_utterance(self, events: list[EngineEvent]) -> None:
        if not self._words:
            return
        words = tuple(self._words)
        self._words = []
        text = " ".join(w.text for w in words)
        events.append(Final(text, words if self.timings else (), 1.0))
