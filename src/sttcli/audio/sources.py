"""Audio inputs as positioned byte streams that a session can rewind.

`AudioSource` is the one interface the session layer uses, whatever the
input: a zero-copy file or pipe (its bytes go on the wire as they are), or a
decoded one (`sttcli.audio.decode`: PCM at the rate sent). Positions count
bytes of the audio payload (after a WAV header; of the PCM when decoded). A file is
re-read by seeking; a pipe (stdin, a FIFO) keeps what it has delivered since
the last `release()` in memory, which the session layer bounds to one session.
A pipe that stalls is kept alive with silence, which then belongs to the
stream's timeline like any audio (see `PipeSource`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO, Protocol

from sttcli.audio.sniff import (
    OPUS_RATE,
    SUPPORTED_RATES,
    AudioFormat,
    Container,
    Encoding,
    NeedMore,
    sniff,
)
from sttcli.errors import BadInput
from sttcli.results import SourceInfo

if TYPE_CHECKING:
    from sttcli.audio.decode import DecodeRequest

log = logging.getLogger(__name__)

_PIPE_BLOCK = 64 * 1024
_PIPE_QUEUE_BLOCKS = 16  # with _PIPE_BLOCK: at most 1 MiB read ahead of the sender
_SNIFF_BLOCK = 4096


class AudioSource(Protocol):
    name: str
    format: AudioFormat  # what `read()` returns
    origin: SourceInfo  # what the input held

    @property
    def length(self) -> int | None:
        """Payload bytes, when known before reading them."""
        ...

    @property
    def position(self) -> int:
        """Payload position of the next read."""
        ...

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes; fewer only at the end (b'' after it) or when a pipe stalls."""
        ...

    async def seek(self, position: int) -> None:
        """Go back (or forward) to a position not yet released."""
        ...

    def release(self, position: int) -> None:
        """Audio before `position` will not be read again."""
        ...

    def region(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Already-read audio between two positions, for looking at it again."""
        ...

    def close(self) -> None: ...


class FileSource:
    """A regular file: anything already sent is read again from disk when needed."""

    def __init__(self, name: str, file: BinaryIO, audio: AudioFormat, size: int) -> None:
        self.name = name
        self.format = audio
        self.origin = zero_copy_info(audio)
        self._file = file
        self._start = audio.header_size
        payload = size - audio.header_size
        self._length = payload if audio.data_size is None else min(payload, audio.data_size)
        self._position = 0
        file.seek(self._start)

    @property
    def position(self) -> int:
        return self._position

    @property
    def length(self) -> int | None:
        return self._length

    async def read(self, size: int) -> bytes:
        try:
            data = self._file.read(max(0, min(size, self._length - self._position)))
        except OSError as exc:
            raise BadInput(f"{self.name}: cannot read: {exc.strerror or exc}") from None
        self._position += len(data)
        return data

    async def seek(self, position: int) -> None:
        self._file.seek(self._start + position)
        self._position = position

    def release(self, position: int) -> None:
        pass

    async def region(self, start: int, end: int) -> AsyncIterator[bytes]:
        resume_at = self._position
        await self.seek(start)
        try:
            while self._position < end:
                block = await self.read(min(_PIPE_BLOCK, end - self._position))
                if not block:
                    return
                yield block
        finally:
            await self.seek(resume_at)

    def close(self) -> None:
        self._file.close()


class PipeReader:
    """Reads a pipe in a thread, so the event loop never blocks on a slow producer.

    Each read returns what the pipe has (`read1`), so audio is sent as it
    arrives, not when a buffer fills. The queue is bounded: when the sender
    falls behind, the thread waits, and the producer with it, so memory stays
    flat whatever the input's size.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._read = _raw_reader(file)
        self._queue: asyncio.Queue[bytes | BaseException] | None = None
        self._slots = threading.Semaphore(_PIPE_QUEUE_BLOCKS)
        self._eof = False
        self._pumped_all = False  # the thread saw the end and is gone

    def _start(self) -> asyncio.Queue[bytes | BaseException]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            thread = threading.Thread(target=self._pump, args=(loop, self._queue), daemon=True)
            thread.start()
        return self._queue

    def _pump(
        self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | BaseException]
    ) -> None:
        while True:
            self._slots.acquire()  # backpressure: wait for the sender to take a block
            item: bytes | BaseException
            try:
                item = self._read(_PIPE_BLOCK)
            except (OSError, ValueError) as exc:
                item = exc
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:
                return  # the loop is closed: nobody is listening any more
            if not isinstance(item, bytes) or not item:
                self._pumped_all = True
                return

    @property
    def finished(self) -> bool:
        """Nothing reads the pipe any more: its descriptor can be closed."""
        return self._eof or self._pumped_all

    async def get(self, timeout: float | None = None) -> bytes:
        """The next block; b'' at the end; TimeoutError if nothing came in `timeout` s."""
        if self._eof:
            return b""
        queue = self._start()
        item = await asyncio.wait_for(queue.get(), timeout) if timeout else await queue.get()
        self._slots.release()
        if isinstance(item, BaseException):
            self._eof = True
            raise BadInput(f"cannot read input: {item}")
        if not item:
            self._eof = True
        return item


def _raw_reader(file: BinaryIO) -> Callable[[int], bytes]:
    """Read the descriptor itself when there is one.

    A thread blocked in a buffered object's read holds that object's lock, and
    an interpreter that exits then (a server error, Ctrl-C, a finished single
    utterance while the producer still runs) aborts with "could not acquire
    lock for <stdin>". os.read holds no lock.
    """
    try:
        descriptor = file.fileno()
    except (AttributeError, OSError, ValueError):
        return getattr(file, "read1", None) or file.read
    return lambda size: os.read(descriptor, size)


class BlockReader(Protocol):
    """What `PipeSource` needs of a reader: the decoders (thread and process) have it too."""

    @property
    def finished(self) -> bool: ...

    async def get(self, timeout: float | None = None) -> bytes: ...


class PipeSource:
    """A pipe, with what it delivered since the last release kept for resending.

    When no audio arrives for `keepalive_silence` seconds, `read()` returns
    the whole samples it has (a chunk shorter than asked), then a chunk of
    silence per chunk duration until audio flows again: SpeechKit ends a
    stream that gets no audio for 5 seconds. LPCM only: silence cannot be
    spliced into an Ogg stream.
    """

    def __init__(
        self,
        name: str,
        reader: PipeReader | BlockReader,
        audio: AudioFormat,
        initial: bytes,
        *,
        at_eof: bool = False,
        keepalive_silence: float = 0.0,
        owner: BinaryIO | None = None,
    ) -> None:
        self.name = name
        self._owner = owner  # the opened FIFO, when it is not stdin
        self.format = audio
        self.origin = zero_copy_info(audio)
        self._reader = reader
        self._retained = bytearray()
        self._base = 0  # position of _retained[0]
        self._position = 0
        self._received = 0  # bytes that came from the pipe (silence excluded)
        self._eof = at_eof
        bps = audio.bytes_per_second
        self._keepalive = keepalive_silence if bps else 0.0
        self._bytes_per_second = bps or 1
        self._stalled = False
        self._append(initial)

    @property
    def position(self) -> int:
        return self._position

    @property
    def length(self) -> int | None:
        return None  # a pipe's length is known at its end

    @property
    def _end(self) -> int:
        return self._base + len(self._retained)

    def _append(self, data: bytes) -> None:
        limit = self.format.data_size  # a WAV header's length, or None
        if limit is not None:
            data = data[: max(0, limit - self._received)]
            if self._received + len(data) >= limit:
                self._eof = True
        self._received += len(data)
        self._retained += data

    async def read(self, size: int) -> bytes:
        while self._end - self._position < size and not self._eof:
            timeout = None
            if self._keepalive:
                timeout = size / self._bytes_per_second if self._stalled else self._keepalive
            try:
                block = await self._reader.get(timeout)
            except (TimeoutError, asyncio.TimeoutError):
                return self._stall(size)
            if self._stalled:
                log.info("%s: audio resumed", self.name)
                self._stalled = False
            if not block:
                self._eof = True
            self._append(block)
        return self._take(size)

    def _stall(self, size: int) -> bytes:
        if not self._stalled:
            log.info(
                "%s: no audio for %.1f s, sending silence until it resumes",
                self.name,
                self._keepalive,
            )
            self._stalled = True
        # Whole samples only: an odd byte waits for the rest of its sample.
        available = (self._end - self._position) & ~1
        if available:
            return self._take(available)
        silence = size & ~1 or 2
        self._retained += bytes(silence)
        return self._take(silence)

    def _take(self, size: int) -> bytes:
        start = self._position - self._base
        data = bytes(self._retained[start : start + size])
        self._position += len(data)
        return data

    async def seek(self, position: int) -> None:
        if not self._base <= position <= self._end:
            raise ValueError(f"position {position} is no longer retained")
        self._position = position

    def release(self, position: int) -> None:
        drop = min(position, self._position) - self._base
        if drop > 0:
            del self._retained[:drop]
            self._base += drop

    async def region(self, start: int, end: int) -> AsyncIterator[bytes]:
        start = max(start, self._base)
        end = min(end, self._end)
        if start < end:
            yield bytes(self._retained[start - self._base : end - self._base])

    def close(self) -> None:
        # A reader thread still blocked on the descriptor must not see it reused.
        if self._owner is not None and self._reader.finished:
            self._owner.close()


def zero_copy_info(audio: AudioFormat) -> SourceInfo:
    if audio.encoding is Encoding.OGG_OPUS:
        return SourceInfo("Ogg Opus", "opus", OPUS_RATE, audio.channels, decoded=False)
    kind = "WAV" if audio.header_size else "raw LPCM"
    return SourceInfo(kind, "pcm_s16le", audio.sample_rate, 1, decoded=False)


@dataclass(frozen=True)
class Conversion:
    """How the audio is shaped for the wire: --send-rate, and raw input's --channels.

    `channels` is None when --channels was not given: raw LPCM is then mono,
    and a container's header is not checked against it.

    `session_seconds` and `session_bytes` are one session's limits: an Ogg
    Opus file longer than that is decoded, so that it can be split.
    """

    send_rate: int | None = None
    channels: int | None = None
    session_seconds: float | None = None
    session_bytes: int | None = None


async def open_source(
    name: str,
    *,
    encoding: str = "auto",
    rate: int | None = None,
    keepalive_silence: float = 0.0,
    stdin: BinaryIO | None = None,
    conversion: Conversion | None = None,
) -> AudioSource:
    """Open a path (or `-` for stdin), sniff its format, and position it at the audio.

    Audio the API takes as it is comes back zero-copy; anything else comes
    back decoded to mono PCM at the rate sent (`conversion`).
    """
    conversion = conversion or Conversion()
    if name == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return await _open_pipe(name, stream, encoding, rate, keepalive_silence, conversion)
    try:
        file = await _open_in_thread(name)
    except FileNotFoundError:
        raise BadInput(f"{name}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{name}: is a directory, not an audio file") from None
    except PermissionError:
        raise BadInput(f"{name}: permission denied") from None
    except OSError as exc:
        raise BadInput(f"{name}: cannot open: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(file.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise BadInput(f"{name}: is a directory, not an audio file")
        if not stat.S_ISREG(mode):  # a FIFO or a device: read it like stdin
            return await _open_pipe(
                name, file, encoding, rate, keepalive_silence, conversion, owner=file
            )
        audio = _sniff_file(name, file, encoding, rate, conversion.channels)
        size = os.fstat(file.fileno()).st_size
        request = _decode_request(audio, conversion, rate)
        if request is None and isinstance(audio, AudioFormat):
            if audio.encoding is Encoding.OGG_OPUS and _longer_than_a_session(
                file, size, conversion
            ):
                log.info("%s: Ogg Opus longer than one session: decoded, to be split", name)
                request = _request_for(Container("Ogg Opus", "ogg"), conversion, rate)
        if request is not None:
            file.seek(0)
            from sttcli.audio.decoded import open_decoded_file

            return await open_decoded_file(name, file, request)
        assert isinstance(audio, AudioFormat)
        if size <= audio.header_size or audio.data_size == 0:
            raise BadInput(f"{name}: no audio after the WAV header")
        return FileSource(name, file, audio, size)
    except BaseException:
        file.close()
        raise


async def _open_in_thread(name: str) -> BinaryIO:
    """open() a path without blocking the event loop: a FIFO blocks until it has a writer.

    A daemon thread, so that Ctrl-C while it waits neither goes unheard nor
    keeps the process alive at exit.
    """
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[BinaryIO] = loop.create_future()

    def settle(result: BinaryIO | None, error: BaseException | None) -> None:
        if opened.cancelled():
            if result is not None:
                result.close()
        elif error is not None:
            opened.set_exception(error)
        else:
            opened.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        file: BinaryIO | None = None
        error: BaseException | None = None
        try:
            file = open(name, "rb")  # noqa: SIM115 - the source owns and closes it
        except BaseException as problem:
            error = problem
        try:
            loop.call_soon_threadsafe(settle, file, error)
        except RuntimeError:  # the loop is gone: nobody waits for this file
            if file is not None:
                file.close()

    threading.Thread(target=run, daemon=True).start()
    return await opened


def _sniff_file(
    name: str, file: BinaryIO, encoding: str, rate: int | None, channels: int | None
) -> AudioFormat | Container:
    prefix = b""
    wanted = _SNIFF_BLOCK
    while True:
        try:
            more = file.read(wanted - len(prefix))
        except OSError as exc:
            raise BadInput(f"{name}: cannot read: {exc.strerror or exc}") from None
        prefix += more
        at_eof = len(prefix) < wanted
        result = sniff(
            prefix, at_eof=at_eof, name=name, encoding=encoding, rate=rate, channels=channels
        )
        if not isinstance(result, NeedMore):
            return result
        wanted = max(result.size, wanted * 2)


def _decode_request(
    audio: AudioFormat | Container, conversion: Conversion, rate: int | None
) -> DecodeRequest | None:
    """None: the input goes on the wire as it is (zero-copy).

    `rate` (--rate) and `conversion.channels` describe raw LPCM; a container
    is decoded on the condition that its header agrees with them.
    """
    if isinstance(audio, Container):
        return _request_for(audio, conversion, rate)
    if audio.encoding is Encoding.OGG_OPUS:
        if conversion.send_rate is None:
            return None
        return _request_for(Container("Ogg Opus", "ogg"), conversion, rate)
    send_rate = conversion.send_rate
    channels = 1 if audio.header_size else conversion.channels or 1
    if (
        channels == 1
        and audio.sample_rate in SUPPORTED_RATES
        and send_rate in (None, audio.sample_rate)
    ):
        return None
    from sttcli.audio.decode import raw_request

    if audio.header_size:  # a 16-bit mono WAV, resampled to another --send-rate
        return _request_for(Container("WAV", "wav"), conversion, rate)
    return raw_request(audio.sample_rate, channels, send_rate)


def _request_for(container: Container, conversion: Conversion, rate: int | None) -> DecodeRequest:
    from sttcli.audio.decode import DecodeRequest

    return DecodeRequest(
        container.kind,
        container.demuxer,
        conversion.send_rate,
        expect_rate=rate,
        expect_channels=conversion.channels,
    )


def _longer_than_a_session(file: BinaryIO, size: int, conversion: Conversion) -> bool:
    """Does this Ogg Opus file hold more than one session? The last page's granule tells."""
    if conversion.session_bytes is not None and size > conversion.session_bytes:
        return True
    if conversion.session_seconds is None:
        return False
    tail_start = max(0, size - 65536)
    file.seek(tail_start)
    tail = file.read()
    page = tail.rfind(b"OggS")
    if page < 0 or len(tail) < page + 14:
        return False
    granule = int.from_bytes(tail[page + 6 : page + 14], "little", signed=True)
    return granule / OPUS_RATE > conversion.session_seconds


async def _open_pipe(
    name: str,
    stream: BinaryIO,
    encoding: str,
    rate: int | None,
    keepalive_silence: float,
    conversion: Conversion,
    owner: BinaryIO | None = None,
) -> PipeSource:
    reader = PipeReader(stream)
    prefix = b""
    wanted = 12
    at_eof = False
    while True:
        while len(prefix) < wanted and not at_eof:
            block = await reader.get()
            at_eof = not block
            prefix += block
        result = sniff(
            prefix,
            at_eof=at_eof,
            name=name,
            encoding=encoding,
            rate=rate,
            channels=conversion.channels,
        )
        if not isinstance(result, NeedMore):
            break
        wanted = result.size
    request = _decode_request(result, conversion, rate)
    if request is not None:
        from sttcli.audio.decoded import open_decoded

        return await open_decoded(
            name,
            _pipe_file(reader, prefix, at_eof),
            replace(request, from_pipe=True),
            keepalive_silence=keepalive_silence,
            owner=owner,
            owner_reader=reader,
        )
    assert isinstance(result, AudioFormat)
    return PipeSource(
        name,
        reader,
        result,
        prefix[result.header_size :],
        at_eof=at_eof,
        keepalive_silence=keepalive_silence,
        owner=owner,
    )


def _pipe_file(reader: PipeReader, prefix: bytes, at_eof: bool) -> object:
    """The pipe as a file the decoder thread reads: its blocks come through the event loop."""
    import concurrent.futures

    from sttcli.audio.decoder_thread import PipeFile

    loop = asyncio.get_running_loop()

    def fetch() -> concurrent.futures.Future[bytes]:
        if at_eof:
            done: concurrent.futures.Future[bytes] = concurrent.futures.Future()
            done.set_result(b"")
            return done
        return asyncio.run_coroutine_threadsafe(reader.get(), loop)

    return PipeFile(prefix, fetch)
