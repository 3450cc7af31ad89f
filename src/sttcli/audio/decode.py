"""Any recording to mono 16-bit PCM at the rate sent, decoded as it streams.

FFmpeg (through PyAV, imported only here and only when an input needs it)
demuxes and decodes; its resampler downmixes and resamples. This is one pass
over an input, handing on what it makes through a callback: it runs in a
process of its own for a file (`decoder_process`) and in a thread for a pipe
(`decoder_thread`), both of which hold it to a bounded queue, so that memory
stays flat whatever the input's length. Nothing here imports asyncio: the
decoder process starts light.

The timeline is kept here, in one place: PCM byte `n` of the output is
`n / (2 * rate)` seconds into the original input. A stretch FFmpeg cannot
decode is replaced by as much silence as it lasted, so positions after damage
still match the input.
"""

from __future__ import annotations

import logging
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
BLOCK = 64 * 1024  # PCM bytes handed over at a time from a file (a pipe: an eighth)
# A jump in timestamps shorter than this is jitter, not lost audio.
_GAP_TOLERANCE_S = 0.05
# Decoded audio resampled at a time: a few MP3 frames, still small enough
# (88 KiB of 44.1 kHz stereo) for malloc to reuse, not map afresh.
_RESAMPLE_S = 0.25
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


Item = bytes | Ready | BaseException


def decode(
    name: str,
    file: Any,
    request: DecodeRequest,
    post: Callable[[Item], bool],
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """One pass over an input, wherever it runs: a thread here, or a process of its own.

    `post` is given the input's `Ready`, then its PCM block by block and
    b'' at the end, or a `BadInput` saying why not; it returns False when
    nobody wants more. Nothing is raised.
    """
    container: Any = None
    try:
        import av

        container = _open(av, name, file, request)
        _Decoding(name, request, av, container, post, stopped).run()
    except Stopped:
        pass  # nobody wants more: nothing to say
    except BadInput as problem:
        post(problem)
    except Exception as problem:  # FFmpeg's reason, never a traceback
        if not stopped():
            post(BadInput(f"{name}: cannot decode: {reason_of(problem)}"))
    finally:
        if container is not None:
            container.close()


def _open(av: Any, name: str, file: Any, request: DecodeRequest) -> Any:
    try:
        return av.open(file, mode="r", format=request.demuxer, options=dict(request.options))
    except av.FFmpegError as error:
        _refuse(name, request, error)


def _refuse(name: str, request: DecodeRequest, error: BaseException) -> NoReturn:
    """The input has no audio FFmpeg can decode: say why, naming it."""
    if request.demuxer == "mov" and request.from_pipe:
        raise BadInput(
            f"{name}: this MP4 cannot be read from a pipe (its index is at its end); "
            "give it as a file"
        ) from None
    raise BadInput(f"{name}: cannot decode it as {request.kind}: {reason_of(error)}")


class _Decoding:
    """One pass over the input: demux, decode, resample, hand on in blocks."""

    def __init__(
        self,
        name: str,
        request: DecodeRequest,
        av: Any,
        container: Any,
        post: Callable[[Item], bool],
        stopped: Callable[[], bool],
    ) -> None:
        self.name = name
        self.request = request
        self.av = av
        self.container = container
        self.post = post
        self.stopped = stopped
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
        request = self.request
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
            format=request.kind,
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
        if not self.post(Ready(info, self.rate, duration)):
            return
        self.resampler: Any = None  # made for the first frame, and again when frames change
        # Decoded frames wait in a FIFO and are resampled a block at a time:
        # an MP3 frame is only 26 ms, and resampling each one alone cost more
        # than decoding it.
        self.fifo: Any = None
        self.fifo_shape: tuple[str, str, int] | None = None
        self.batch = 0  # input samples resampled at a time
        # A float, not the Fraction PyAV gives: this runs for every frame.
        self.time_base = None if stream.time_base is None else float(stream.time_base)
        # A pipe may be live: hand its audio on as it comes; a file in big blocks.
        self.block = BLOCK // 8 if request.from_pipe else BLOCK
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
            if self.stopped():
                return
            self._drain()
            if not self.produced and not self.pending:
                _refuse(self.name, request, error)
            log.warning(
                "%s: the input breaks off at %.2f s (%s); recognizing what came before",
                self.name,
                self._seconds(),
                reason_of(error),
            )
        self._drain()
        self._end_resampler()
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
            self._take(frame)
        return self._flush(final=False)

    def _take(self, frame: Any) -> None:
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if shape != self.fifo_shape:
            # The first frame, or frames of another kind: joined recordings
            # change rate or channels midway. A FIFO and a resampler each
            # take one kind, so both start again after what they hold.
            self._drain()
            self._end_resampler()
            self.resampler = _resampler(self.av, self.rate)
            self.fifo = self.av.AudioFifo()
            self.fifo_shape = shape
            self.batch = max(1, int(frame.sample_rate * _RESAMPLE_S))
        self._fill_gap(frame)
        frame.pts = None  # the FIFO would insist that they follow on; gaps are filled here
        self.fifo.write(frame)
        if self.fifo.samples >= self.batch:
            self._drain()

    def _end_resampler(self) -> None:
        """What the resampler still holds (its filter's delay), out before anything else."""
        if self.resampler is not None:
            self._frames(self.resampler.resample(None))

    def _drain(self) -> None:
        """Resample what the FIFO holds, so that it goes out before anything else."""
        if self.fifo is not None and self.fifo.samples:
            self._frames(self.resampler.resample(self.fifo.read()))

    def _skip(self, packet: Any, error: Exception) -> None:
        self.skipped += 1
        self.reason = reason_of(error)
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
            self._drain()
            at = self._seconds()
            self.pending += bytes(int(gap * self.rate) * 2)
            self.lost_s += gap
            self._lost(at, at + gap)

    def _frames(self, frames: list[Any]) -> None:
        for frame in frames:
            self.pending += memoryview(frame.planes[0])[: frame.samples * 2]

    def _seconds(self) -> float:
        """Where the input is: what was handed on or is pending, and what waits in the FIFO."""
        seconds = (self.produced + len(self.pending)) / self.bytes_per_second
        if self.fifo_shape is not None:  # a FIFO, and the rate of what it holds
            seconds += self.fifo.samples / self.fifo_shape[2]
        return seconds

    def _flush(self, *, final: bool) -> bool:
        post = self.post
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


def _resampler(av: Any, rate: int) -> Any:
    """To mono 16-bit at `rate`, with a filter half FFmpeg's default length.

    Speech at 8-48 kHz loses nothing a recognizer hears with it, and decoding
    an hour of MP3 takes a seventh less CPU. PyAV before 18 takes no options.
    """
    try:
        return av.AudioResampler(
            format="s16", layout="mono", rate=rate, options={"filter_size": "16"}
        )
    except TypeError:
        return av.AudioResampler(format="s16", layout="mono", rate=rate)


def reason_of(error: BaseException) -> str:
    """FFmpeg's own words for a failure, without errno numbers or file names."""
    reason = getattr(error, "strerror", None)
    return str(reason or error).strip() or type(error).__name__


class Stopped(Exception):
    """The decoder was stopped while it waited for a pipe's next block."""


def decoded_format(rate: int) -> AudioFormat:
    return AudioFormat(Encoding.LPCM, rate, RateSource.DECODED)
