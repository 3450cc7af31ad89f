"""Finding pauses in LPCM audio, so sessions can end and resume between words.

A pause is a run of at least `min_pause` seconds of 10 ms frames whose energy
is below a threshold that follows the recording's own noise floor: a fixed
level would find no pause at all in a noisy room and pauses inside words of a
quiet one. The finder is incremental and frame-aligned on absolute positions,
so any split of the same bytes finds the same pauses.
"""

from __future__ import annotations

import collections
import math
import operator
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass

FRAME_SECONDS = 0.01
# The threshold sits this far above the noise floor, and never above a level
# that is plainly speech (dBFS). Tuned on real recordings, noisy and clean.
_MARGIN_DB = 10.0
_LOUDEST_THRESHOLD_DB = -30.0
# The noise floor is the quietest 100 ms of the last 3 seconds ("minimum
# statistics"), and never below what real rooms stay above, so one frame of
# digital silence does not make every later pause look like speech. A new
# finder assumes a quiet room until it has heard 3 seconds: started in the
# middle of speech, it must not take that speech for the floor.
_FLOOR_FRAMES_PER_BUCKET = 10
_FLOOR_BUCKETS = 30
_LOWEST_FLOOR_DB = -55.0
FULL_SCALE_SQUARED = 32768.0**2


def _sum_of_squares_fallback(samples: array[int]) -> float:
    return float(sum(map(operator.mul, samples, samples)))


def _sum_of_squares_sumprod(samples: array[int]) -> float:
    return float(math.sumprod(samples, samples))  # type: ignore[attr-defined]


_sum_of_squares: Callable[[array[int]], float] = (
    _sum_of_squares_sumprod if sys.version_info >= (3, 12) else _sum_of_squares_fallback
)


@dataclass(frozen=True)
class Pause:
    """A quiet run; `start` and `end` are byte positions in the audio payload."""

    start: int
    end: int  # where the run had lasted min_pause: it may go on beyond

    def cut_point(self) -> int:
        """Where to end one session and start the next: inside the quiet, on a sample."""
        return (self.start + (self.end - self.start) // 2) & ~1


class PauseFinder:
    """Feed consecutive audio; `feed()` returns the pauses that reached `min_pause`."""

    def __init__(self, bytes_per_second: int, min_pause: float, position: int = 0) -> None:
        self.frame_bytes = max(2, int(bytes_per_second * FRAME_SECONDS) & ~1)
        self._min_frames = max(1, math.ceil(min_pause / FRAME_SECONDS))
        self._carry = bytearray()
        # Frames are aligned to multiples of frame_bytes from the start of the payload.
        skip = -position % self.frame_bytes
        self._skip = skip
        self._position = position + skip  # position of the next frame to complete
        self._gate = QuietGate()
        self._run_start: int | None = None
        self._run_frames = 0

    def feed(self, data: bytes | memoryview) -> list[Pause]:
        if self._skip:
            taken = min(self._skip, len(data))
            data = data[taken:]
            self._skip -= taken
        self._carry += data
        frame_bytes = self.frame_bytes
        usable = len(self._carry) - len(self._carry) % frame_bytes
        if not usable:
            return []
        samples = array("h")
        samples.frombytes(bytes(self._carry[:usable]))
        del self._carry[:usable]
        if sys.byteorder == "big":
            samples.byteswap()
        found = []
        per_frame = frame_bytes // 2
        for index in range(0, len(samples), per_frame):
            pause = self._frame(samples[index : index + per_frame])
            if pause is not None:
                found.append(pause)
        return found

    def _frame(self, samples: array[int]) -> Pause | None:
        quiet = self._gate.quiet(samples)
        start = self._position
        self._position += self.frame_bytes
        if not quiet:
            self._run_start = None
            self._run_frames = 0
            return None
        if self._run_start is None:
            self._run_start = start
        self._run_frames += 1
        if self._run_frames == self._min_frames:
            return Pause(self._run_start, self._position)
        return None


class QuietGate:
    """Tells quiet frames from sound against the recording's own noise floor.

    Frames must come in order: the floor is the quietest 100 ms of the last
    3 seconds it was shown. Frames are 10 ms unless told otherwise.
    """

    def __init__(self, frame_seconds: float = FRAME_SECONDS) -> None:
        self._frames_per_bucket = max(
            1, round(_FLOOR_FRAMES_PER_BUCKET * FRAME_SECONDS / frame_seconds)
        )
        self._buckets = collections.deque([_LOWEST_FLOOR_DB] * _FLOOR_BUCKETS, _FLOOR_BUCKETS)
        self._bucket_min = math.inf
        self._bucket_frames = 0
        self._buckets_min = _LOWEST_FLOOR_DB  # min(self._buckets), kept as they change

    def quiet(self, samples: array[int]) -> bool:
        """Is this frame below the threshold (and so part of a pause)?"""
        return self.quiet_energy(
            _sum_of_squares(samples) / (max(1, len(samples)) * FULL_SCALE_SQUARED)
        )

    def quiet_energy(self, energy: float) -> bool:
        """`quiet()` for a frame whose energy the caller worked out (mean square, 1 = full scale).

        Lets a caller that measures many frames at once, in C, skip building one array per frame.
        """
        level_db = 10.0 * math.log10(energy) if energy > 0 else -120.0
        self._bucket_min = min(self._bucket_min, level_db)
        self._bucket_frames += 1
        if self._bucket_frames == self._frames_per_bucket:
            self._buckets.append(self._bucket_min)
            self._buckets_min = min(self._buckets)
            self._bucket_min = math.inf
            self._bucket_frames = 0
        floor = max(min(self._buckets_min, self._bucket_min), _LOWEST_FLOOR_DB)
        threshold = min(floor + _MARGIN_DB, _LOUDEST_THRESHOLD_DB)
        return level_db < threshold
