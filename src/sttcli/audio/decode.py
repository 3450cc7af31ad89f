"""Any recording to mono 16-bit PCM at the rate sent, decoded as it streams.

FFmpeg (through PyAV, imported only here and only when an input needs it)
demuxes and decodes; its resampler downmixes and resamples. Decoding runs in
a thread of its own, so that the event loop never waits on a slow pipe or a
busy decoder, and hands PCM over through a bounded queue: when the sender
falls behind, the decoder waits, and memory stays flat whatever the input's
length.

The timeline is kept here, in one place: PCM byte `n` of the output is
`n / (2 * rate)` seconds into the original input. A stretch FFmpeg cannot
decode is replaced by as much silence as it lasted, so positions after damage
still match the input.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from sttcli.audio.sniff import (
    SUPPORTED_RATES,
    AudioFormat,
    Encoding,
    RateSource,
    check_header,
)
from sttcli.errors import BadInput
from sttcli.results import SourceInfo

log = logging.getLogger("sttcli.audio")

DEFAULT_SEND_RATE = 16000  # for inputs at a rate the API does not take: right for speech
_QUEUE_ITEMS = 8  # with _BLOCK: at most 512 KiB decoded ahead of the sender
_BLOCK = 64 * 1024  # PCM bytes handed over at a time from a file (a pipe: an eighth)
# A jump in timestamps shorter than this is jitter, not lost audio.
_GAP_TOLERANCE_S = 0.05
# A jump longer than this is a broken timestamp, not lost audio: no silence for it.
_GAP_LIMIT_S = 600.0


@dataclass(frozen=True)
class DecodeRequest:
    """What to decode and how: the demuxer (and its options for raw PCM) and the rate sent."""

    kind: str  # for people: "MP3", "WAV", "raw LPCM"...
    demuxer: str
    send_rate: int | None = None  # None: the input's rate if the API takes it, else 16000
    options: tuple[tuple[str, str], ...] = ()
    from_pipe: bool = False
    # --rate and --channels, which a container's header must agree with.
    expect_rate: int | None = None
    expect_channels: int | None = None


def raw_request(rate: int, channels: int, send_rate: int | None) -> DecodeRequest:
    """Headerless 16-bit LPCM at any rate and channel count (-r, --channels)."""
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
    return DecodeRequest(
        "raw LPCM",
        "s16le",
        send_rate,
        (("sample_rate", str(rate)), ("ch_layout", layout)),
    )


def choose_send_rate(input_rate: int, send_rate: int | None) -> int:
    if send_rate is not None:
        return send_rate
    return input_rate if input_rate in SUPPORTED_RATES else DEFAULT_SEND_RATE


@dataclass(frozen=True)
class Ready:
    info: SourceInfo
    rate: int
    duration_s: float | None


_Item = bytes | Ready | BaseException


class DecodingReader:
    """Runs the decoder in a thread; `get()` returns its PCM block by block (b'' at the end).

    It has the shape of `sttcli.audio.sources.PipeReader`, so the PCM is held
    for resending exactly as a pipe's bytes are.
    """

    def __init__(self, name: str, file: Any, request: DecodeRequest) -> None:
        self.name = name
        self._file = file  # a path's file object, or a reader of a pipe's bytes
        self._request = request
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._slots = threading.Semaphore(_QUEUE_ITEMS)
        self._stopped = threading.Event()
        self._eof = False
        self._done = False
        threading.Thread(target=self._run, daemon=True).start()

    async def ready(self) -> Ready:
        """The input's description, once FFmpeg has opened it; BadInput if it cannot."""
        item = await self._queue.get()
        self._slots.release()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        assert isinstance(item, Ready)
        return item

    @property
    def finished(self) -> bool:
        return self._done

    async def get(self, timeout: float | None = None) -> bytes:
        if self._eof:
            return b""
        if timeout:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        else:
            item = await self._queue.get()
        self._slots.release()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        assert isinstance(item, bytes)
        if not item:
            self._eof = True
        return item

    def stop(self) -> None:
        """End the decoder thread promptly, wherever it waits: for room, or for input."""
        self._stopped.set()
        self._slots.release()  # a decoder waiting for room wakes up and sees it
        abort = getattr(self._file, "abort", None)
        if abort is not None:  # a decoder waiting for a pipe's next block
            abort()

    # -- the decoder thread --------------------------------------------------

    def _post(self, item: _Item) -> bool:
        """Hand an item to the event loop; False when nobody wants more."""
        if self._stopped.is_set():
            return False
        self._slots.acquire()
        if self._stopped.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def _run(self) -> None:
        container: Any = None
        try:
            import av

            container = self._open(av)
            _Decoding(self, av, container).run()
        except Stopped:
            pass  # nobody wants more: nothing to say
        except BadInput as problem:
            self._post(problem)
        except Exception as problem:  # FFmpeg's reason, never a traceback
            if not self._stopped.is_set():
                self._post(BadInput(f"{self.name}: cannot decode: {_reason(problem)}"))
        finally:
            self._done = True
            if container is not None:
                container.close()
            close = getattr(self._file, "close", None)
            if close is not None:
                close()

    def _open(self, av: Any) -> Any:
        request = self._request
        try:
            return av.open(
                self._file,
                mode="r",
                format=request.demuxer,
                options=dict(request.options),
            )
        except av.FFmpegError as error:
            self._refuse(error)

    def _refuse(self, error: BaseException) -> NoReturn:
        """The input has no audio FFmpeg can decode: say why, naming it."""
        request = self._request
        if request.demuxer == "mov" and request.from_pipe:
            raise BadInput(
                f"{self.name}: this MP4 cannot be read from a pipe (its index is at its end); "
                "give it as a file"
            ) from None
        raise BadInput(f"{self.name}: cannot decode it as {request.kind}: {_reason(error)}")


class _Decoding:
    """One pass over the input, in the decoder thread."""

    def __init__(self, reader: DecodingReader, av: Any, container: Any) -> None:
        self.reader = reader
        self.av = av
        self.container = container
        self.name = reader.name
        self.pending = bytearray()
        self.produced = 0  # PCM bytes handed over, silence for gaps included
        self.skipped = 0
        self.skipped_from: float | None = None
        self.skipped_to = 0.0
        self.reason = ""

    def run(self) -> None:
        av = self.av
        stream = next(iter(self.container.streams.audio), None)
        if stream is None:
            raise BadInput(f"{self.name}: no audio stream in it")
        codec = stream.codec_context
        input_rate = codec.sample_rate or 0
        if not input_rate:
            raise BadInput(f"{self.name}: FFmpeg cannot tell its sample rate")
        request = self.reader._request
        check_header(
            self.name,
            request.kind,
            input_rate,
            codec.channels,
            request.expect_rate,
            request.expect_channels,
        )
        self.rate = choose_send_rate(input_rate, request.send_rate)
        self.bytes_per_second = 2 * self.rate
        info = SourceInfo(
            format=self.reader._request.kind,
            codec=codec.codec.canonical_name,
            rate=input_rate,
            channels=codec.channels,
            decoded=True,
        )
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif self.container.duration:
            duration = self.container.duration / 1_000_000
        if not self.reader._post(Ready(info, self.rate, duration)):
            return
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
        # A float, not the Fraction PyAV gives: this runs for every frame.
        self.time_base = None if stream.time_base is None else float(stream.time_base)
        # A pipe may be live: hand its audio on as it comes; a file in big blocks.
        self.block = _BLOCK // 8 if self.reader._request.from_pipe else _BLOCK
        # Where the input's timeline begins: 0, not the first frame that
        # decodes, so that damage at the very start is filled too. FFmpeg's
        # `start_time` is only the first packet it read (after any damage), so
        # it counts only when negative: an encoder's priming before 0.
        self.origin = 0.0
        if stream.start_time is not None and self.time_base is not None:
            self.origin = min(0.0, stream.start_time * self.time_base)
        self.lost_s = 0.0  # silence put in for audio that never came out of FFmpeg
        try:
            for packet in self.container.demux(stream):
                if not self._packet(packet):
                    return
        except av.FFmpegError as error:
            if self.reader._stopped.is_set():
                return
            if not self.produced and not self.pending:
                self.reader._refuse(error)
            log.warning(
                "%s: the input breaks off at %.2f s (%s); recognizing what came before",
                self.name,
                self._seconds(),
                _reason(error),
            )
        self._frames(self.resampler.resample(None))
        self._warn_skipped()
        if not self.produced and not self.pending and self.skipped:
            raise BadInput(f"{self.name}: no decodable audio: {self.reason}")
        self._flush(final=True)

    def _packet(self, packet: Any) -> bool:
        try:
            frames = packet.decode()
        except self.av.FFmpegError as error:
            self._skip(packet, error)
            return True
        for frame in frames:
            self._fill_gap(frame)
            self._frames(self.resampler.resample(frame))
        return self._flush(final=False)

    def _skip(self, packet: Any, error: Exception) -> None:
        self.skipped += 1
        self.reason = _reason(error)
        at = self._seconds()
        if packet.pts is not None and self.time_base is not None:
            at = max(0.0, packet.pts * self.time_base - self.origin)
        end = at
        if packet.duration and packet.pts is not None and self.time_base is not None:
            end = at + packet.duration * self.time_base
        self._lost(at, end)

    def _lost(self, start: float, end: float) -> None:
        """Widen the span the warning gives to cover audio lost between two positions."""
        if self.skipped_from is None or start < self.skipped_from:
            self.skipped_from = start
        self.skipped_to = max(self.skipped_to, end)

    def _fill_gap(self, frame: Any) -> None:
        """Silence for audio that is missing (frames skipped), so later positions hold."""
        pts = frame.pts
        if pts is None or self.time_base is None:
            return
        gap = (pts * self.time_base - self.origin) - self._seconds()
        if _GAP_TOLERANCE_S < gap < _GAP_LIMIT_S:
            at = self._seconds()
            self.pending += bytes(int(gap * self.rate) * 2)
            self.lost_s += gap
            self._lost(at, at + gap)

    def _frames(self, frames: list[Any]) -> None:
        for frame in frames:
            self.pending += memoryview(frame.planes[0])[: frame.samples * 2]

    def _seconds(self) -> float:
        return (self.produced + len(self.pending)) / self.bytes_per_second

    def _flush(self, *, final: bool) -> bool:
        post = self.reader._post
        while self.pending and (final or len(self.pending) >= self.block):
            block = bytes(self.pending[: self.block])
            del self.pending[: self.block]
            self.produced += len(block)
            if not post(block):
                return False
        if final:
            post(b"")
        return True

    def _warn_skipped(self) -> None:
        """One line for all the audio lost, in seconds of the input."""
        start = self.skipped_from or 0.0
        if self.skipped:
            log.warning(
                "%s: skipped %d frame%s FFmpeg could not decode, between %.2f s and %.2f s (%s)",
                self.name,
                self.skipped,
                "" if self.skipped == 1 else "s",
                start,
                self.skipped_to,
                self.reason,
            )
        elif self.lost_s:
            log.warning(
                "%s: %.2f s of audio FFmpeg could not read, between %.2f s and %.2f s; "
                "replaced by silence",
                self.name,
                self.lost_s,
                start,
                self.skipped_to,
            )


def _reason(error: BaseException) -> str:
    """FFmpeg's own words for a failure, without errno numbers or file names."""
    reason = getattr(error, "strerror", None)
    return str(reason or error).strip() or type(error).__name__


class Stopped(Exception):
    """The decoder was stopped while it waited for a pipe's next block."""


class PipeFile:
    """The bytes of a pipe, for FFmpeg to read in the decoder thread.

    What was sniffed comes first, then the pipe's blocks, which the event
    loop's `PipeReader` reads (`fetch` asks it for the next one); no `seek`,
    so FFmpeg treats it as the stream it is. `abort()` wakes a read waiting
    for a block that may never come (a stalled pipe), from any thread.
    """

    def __init__(
        self,
        prefix: bytes,
        fetch: Callable[[], concurrent.futures.Future[bytes]],
    ) -> None:
        self._buffer = prefix
        self._fetch = fetch
        self._eof = False
        self._lock = threading.Lock()
        self._waiting: concurrent.futures.Future[bytes] | None = None
        self._aborted = False

    def read(self, size: int = -1) -> bytes:
        while not self._buffer and not self._eof:
            block = self._next_block()
            self._eof = not block
            self._buffer = block
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            if self._waiting is not None:
                self._waiting.cancel()

    def _next_block(self) -> bytes:
        with self._lock:
            if self._aborted:
                raise Stopped
            self._waiting = self._fetch()
        try:
            return self._waiting.result()
        except concurrent.futures.CancelledError:
            raise Stopped from None
        finally:
            with self._lock:
                self._waiting = None


def decoded_format(rate: int) -> AudioFormat:
    return AudioFormat(Encoding.LPCM, rate, RateSource.DECODED)
