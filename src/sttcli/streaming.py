"""The pure core of streaming: cutting audio into messages, ordering them, pacing.

Nothing here does I/O, reads a clock of its own or knows gRPC: the session
layer (`sttcli.session`) drives these pieces with real files, sockets and time,
and tests drive them with lists and a fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator

from sttcli import wire

Clock = Callable[[], float]


class Rechunker:
    """Regroups blocks of any size into chunks of exactly `size` bytes.

    Only `flush()` returns a shorter chunk: the rest at the end of the input,
    or what a stalled pipe has delivered so far.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("chunk size must be positive")
        self.size = size
        self._pending = bytearray()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def push(self, block: bytes) -> Iterator[bytes]:
        pending = self._pending
        size = self.size
        if not pending and len(block) == size:  # the common case of a file: no copy
            yield block
            return
        pending += block
        start = 0
        while len(pending) - start >= size:
            yield bytes(pending[start : start + size])
            start += size
        del pending[:start]

    def flush(self, *, keep_odd_byte: bool = False) -> bytes:
        """Everything pending; with `keep_odd_byte`, whole 16-bit samples only."""
        cut = len(self._pending) & ~1 if keep_odd_byte else len(self._pending)
        chunk = bytes(self._pending[:cut])
        del self._pending[:cut]
        return chunk


def chunks(blocks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """`size`-byte chunks of the concatenated blocks; only the last may be shorter, none empty."""
    rechunker = Rechunker(size)
    for block in blocks:
        yield from rechunker.push(block)
    rest = rechunker.flush()
    if rest:
        yield rest


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
