"""Where the speech is in the audio sent, for finals that come without word timings.

SpeechKit's streaming answers need not carry word timings. Then sttcli places
an utterance itself: the tracker follows every byte sent (once, however often
a resumed session sends it again), marks runs of sound with the pause
finder's own quiet gate, and `span()` picks the runs that lie between the
previous utterance's end and the position the final arrived at. It keeps only
the runs not yet given to an utterance, so its memory stays small.

It sits on the send path of every chunk, so it must cost next to nothing
there: audio is only appended as it is sent, and looked at a second at a time
(or when asked where speech was), with the per-sample work done in C (strided
array slices, `math.hypot` over each frame's samples) and Python touching
only one level per frame and one step per run of alike frames.
"""

from __future__ import annotations

import itertools
import math
import sys
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sttcli.audio.pauses import FULL_SCALE_SQUARED, QuietGate

# Quiet shorter than this inside speech (a stop consonant, a breath between
# words) does not end a run of speech.
BRIDGE_SECONDS = 0.2
# Frames of 50 ms (a frame of 20 fps video), their level taken from about 40
# of their samples, evenly spaced: enough to tell speech from quiet with a
# 10 dB margin, a resolution well inside what subtitles need, and cheap enough
# to follow all the audio sent (a twentieth of the pause finder's work).
FRAME_SECONDS = 0.05
_SAMPLES_PER_FRAME = 40
# Audio waits until this many frames (a second) are in hand: the fixed cost of
# looking at a block is then paid once a second rather than once a chunk.
_BATCH_FRAMES = 20
# A server ends an utterance in a pause at least this long.
_BOUNDARY_SECONDS = 0.3


@dataclass(frozen=True)
class SpeechRun:
    """Sound from `start_s` to `end_s`, seconds from the start of the input."""

    start_s: float
    end_s: float

    @property
    def middle_s(self) -> float:
        return (self.start_s + self.end_s) / 2


class SpeechTracker:
    """Feed the audio as it is sent (any split, any resend); ask where speech was."""

    def __init__(self, bytes_per_second: int, *, bridge: float = BRIDGE_SECONDS) -> None:
        self.bytes_per_second = bytes_per_second
        self.frame_bytes = max(2, int(bytes_per_second * FRAME_SECONDS) & ~1)
        self._bridge_frames = max(1, round(bridge / FRAME_SECONDS))
        self._gate = QuietGate(FRAME_SECONDS)
        per_frame = self.frame_bytes // 2
        self._stride = max(1, per_frame // _SAMPLES_PER_FRAME)
        self._picks = len(range(0, per_frame, self._stride))  # samples looked at per frame
        self._seen = 0  # bytes of the input looked at
        self._carry = bytearray()  # sent, not analysed yet (from `_frame_start` on)
        self._frame_start = 0  # position of the frame that `_carry` begins
        self._runs: list[SpeechRun] = []
        self._open_start: int | None = None  # first sound frame of the run going on
        self._open_end = 0  # end of its last sound frame
        self._quiet_frames = 0

    def feed(self, chunk: bytes | memoryview, position: int) -> None:
        """The chunk sent at byte `position`; what was looked at before is skipped."""
        end = position + len(chunk)
        if end <= self._seen:
            return
        if position > self._seen:  # a gap (nothing sent there): go on from here
            self._analyse()
            self._carry.clear()
            self._frame_start = position
            self._seen = position
        self._carry += chunk[self._seen - position :]
        self._seen = end
        if len(self._carry) >= _BATCH_FRAMES * self.frame_bytes:
            self._analyse()

    def _analyse(self) -> None:
        """Classify the whole frames held; a partial frame waits for the rest."""
        usable = len(self._carry) - len(self._carry) % self.frame_bytes
        if not usable:
            return
        samples = array("h")
        with memoryview(self._carry) as view:
            samples.frombytes(view[:usable])
        del self._carry[:usable]
        energy = 1.0 / (self._picks * FULL_SCALE_SQUARED)
        levels = (norm * norm * energy for norm in self._norms(samples))
        for quiet, frames in itertools.groupby(map(self._gate.quiet_energy, levels)):
            self._frames(quiet, sum(1 for _ in frames))

    def _norms(self, samples: array[int]) -> Iterator[float]:
        """Per frame, the Euclidean norm of the samples looked at (every `_stride`th)."""
        per_frame = self.frame_bytes // 2
        if per_frame % self._stride:  # the picks of one frame do not continue into the next
            return self._norms_frame_by_frame(samples)
        picks = samples[:: self._stride]
        if sys.byteorder == "big":
            picks.byteswap()
        values = iter(picks)
        frames: Iterable[tuple[int, ...]] = zip(*[values] * self._picks, strict=False)
        return itertools.starmap(math.hypot, frames)

    def _norms_frame_by_frame(self, samples: array[int]) -> Iterator[float]:
        if sys.byteorder == "big":
            samples.byteswap()
        per_frame = self.frame_bytes // 2
        for index in range(0, len(samples), per_frame):
            yield math.hypot(*samples[index : index + per_frame : self._stride])

    def _frames(self, quiet: bool, count: int) -> None:
        """`count` consecutive frames, all quiet or all sound."""
        start = self._frame_start
        self._frame_start += count * self.frame_bytes
        if not quiet:
            if self._open_start is None:
                self._open_start = start
            self._open_end = self._frame_start
            self._quiet_frames = 0
            return
        if self._open_start is None:
            return
        self._quiet_frames += count
        if self._quiet_frames >= self._bridge_frames:
            # The run ended with its last sound frame, whatever quiet follows.
            run = SpeechRun(self._seconds(self._open_start), self._seconds(self._open_end))
            self._runs.append(run)
            self._open_start = None

    def _seconds(self, position: int) -> float:
        return position / self.bytes_per_second

    @property
    def runs(self) -> list[SpeechRun]:
        """The finished runs still held (for tests and diagnostics)."""
        self._analyse()
        return list(self._runs)

    def span(
        self,
        after_s: float,
        before_s: float,
        *,
        ongoing: bool = False,
        expected_s: float | None = None,
    ) -> tuple[float, float] | None:
        """Onset and offset of the speech between two positions, or None if there is none.

        Runs count when their middle lies after `after_s` (the previous
        utterance's end) and they ended by `before_s` (where the final
        arrived): a server ends an utterance in a pause, so speech still going
        on when the final came belongs to the next one. With `ongoing` (all
        the session's audio was sent: the server finalized at the end of the
        stream, in speech or not) the run going on counts too.

        A final that arrives late (an unpaced client, a server falling
        behind) finds the speech of later utterances before it too. When the
        runs last far longer than `expected_s` (what the final's text takes
        to say), the span ends at the pause that makes it closest to that.
        """
        self._analyse()
        chosen = [r for r in self._runs if r.middle_s > after_s and r.end_s <= before_s]
        current = self._current()
        if current is not None and current.middle_s > after_s and current.start_s < before_s:
            if ongoing or not chosen:
                chosen.append(SpeechRun(current.start_s, min(current.end_s, before_s)))
        if not chosen:
            return None
        start = chosen[0].start_s
        end = chosen[-1].end_s
        if expected_s is not None and end - start > 1.5 * expected_s + 1.0:
            ends = [
                run.end_s
                for run, following in zip(chosen, chosen[1:], strict=False)
                if following.start_s - run.end_s >= _BOUNDARY_SECONDS
            ]
            end = min([*ends, end], key=lambda e: abs(e - start - expected_s))
        return start, end

    def _current(self) -> SpeechRun | None:
        if self._open_start is None:
            return None
        return SpeechRun(self._seconds(self._open_start), self._seconds(self._open_end))

    def forget(self, until_s: float) -> None:
        """Drop the runs that end by `until_s`: they were given to an utterance."""
        self._analyse()
        self._runs = [r for r in self._runs if r.end_s > until_s]
