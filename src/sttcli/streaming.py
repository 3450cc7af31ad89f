"""The pure core of streaming: the order of a session's messages, and pacing.

Nothing here does I/O, reads a clock of its own or knows gRPC: the session
layer (`sttcli.session`) drives these pieces with real sources, calls and
time, and tests drive them with lists and a fake clock. Cutting audio into
chunks of exactly --chunk-size bytes is the sources' `read()` (`sttcli.audio.sources`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable

from sttcli import wire

Clock = Callable[[], float]


async def request_stream(
    config: wire.Request, audio: AsyncIterable[bytes]
) -> AsyncIterator[wire.Request]:
    """The messages of one session: the config first, then one message per chunk."""
    yield config
    async for chunk in audio:
        yield wire.audio_request(chunk)


class Pacer:
    """Deadline-based pacing: audio that starts at `t` s goes out at start + t / speed.

    Deadlines are measured from the first call, never from the previous send,
    so time spent elsewhere (a slow network, a backoff) never accumulates into
    drift: the stream catches up instead. Speed 0 means no pacing at all.
    """

    def __init__(self, speed: float, clock: Clock) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 or positive")
        self.speed = speed
        self._clock = clock
        self._start: float | None = None

    def delay(self, audio_seconds: float) -> float:
        """Seconds to wait before sending audio that starts `audio_seconds` into the input."""
        if self.speed == 0:
            return 0.0
        now = self._clock()
        if self._start is None:
            self._start = now - audio_seconds / self.speed
        return max(0.0, self._start + audio_seconds / self.speed - now)
