"""Rotation: where a session must end so the next one can start in a pause.

Near the session limit (SpeechKit: 5 minutes, 10 MB) the client looks in the
audio it is about to send for a pause, cuts the session right inside it and
starts the next session there: nothing is sent twice, no word is split. With
no pause before the limit, the cut is at the limit.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sttcli.audio.pauses import PauseFinder
from sttcli.errors import SessionLimitError

if TYPE_CHECKING:
    from sttcli.session.recognizer import InputRecognizer

log = logging.getLogger("sttcli.session")

# The rotation window: pauses are looked for this close to the session limit
# (at most this many seconds, at most this share of the limit). The first pause
# in it ends the session: a smaller window makes fewer, longer sessions, a
# larger one makes a pause more certain to be found.
_ROTATION_WINDOW_SECONDS = 30.0
_ROTATION_WINDOW_SHARE = 0.25


class SessionLimit:
    """Decides, chunk by chunk, where the current session must end."""

    def __init__(self, recognizer: InputRecognizer, start: int) -> None:
        self.name = recognizer.source.name
        self.policy = recognizer.policy
        self.bps = recognizer.bytes_per_second
        self.recognizer = recognizer
        self.start = start
        self.finder: PauseFinder | None = None
        self.overflow: SessionLimitError | None = None
        if self.bps:
            by_time = int(self.policy.max_session_seconds * self.bps)
            # Encoded for the wire, a session's bytes are a tenth of its PCM:
            # only its length in time can reach a limit.
            by_bytes = by_time if recognizer.encodes else self.policy.max_session_bytes
            self.limit = min(by_time, by_bytes) & ~1
            window = int(
                min(_ROTATION_WINDOW_SECONDS * self.bps, self.limit * _ROTATION_WINDOW_SHARE)
            )
            self.window_start = start + self.limit - window
        else:
            self.limit = self.policy.max_session_bytes

    def check(self, chunk: bytes, position: int) -> tuple[bytes, int | None]:
        """The part of `chunk` to send, and where the session ends if it ends in it."""
        end = position + len(chunk)
        if not self.bps:
            return self._check_ogg(chunk, end), None
        if end <= self.window_start:
            return chunk, None
        if self.finder is None:
            self.finder = PauseFinder(self.bps, self.policy.min_pause, position=position)
        for pause in self.finder.feed(chunk):
            cut = max(pause.cut_point(), position)
            if cut <= self.start + self.limit:
                return chunk[: cut - position], cut
        hard_end = self.start + self.limit
        if end > hard_end:
            log.warning(
                "%s: no pause in the last %.0f s before the session limit; "
                "cutting at the limit (a word may be split)",
                self.name,
                (hard_end - self.window_start) / self.bps,
            )
            return chunk[: hard_end - position], hard_end
        return chunk, None

    def _check_ogg(self, chunk: bytes, end: int) -> bytes:
        """Ogg Opus sent as it is (from a pipe: a file this long is decoded) cannot be split."""
        seconds = self.recognizer.audio_seconds
        if end - self.start > self.limit or seconds > self.policy.max_session_seconds:
            self.overflow = SessionLimitError(
                f"{self.name}: Ogg Opus from a pipe is longer than one session may be "
                f"({self.policy.max_session_seconds:g} s, {self.policy.max_session_bytes} bytes) "
                "and cannot be split as it is; give it as a file, or add --send-rate 16000, "
                "and it is decoded and split at pauses"
            )
            return b""
        return chunk
