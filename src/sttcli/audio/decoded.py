"""Decoded inputs as sources: PCM that FFmpeg decodes as the session reads it.

From a pipe, the current session's PCM is kept for resending (at most
--max-session-bytes), as a pipe's bytes are: what a pipe delivered cannot be
read again. A file keeps only a short tail (for the step back a rotation
takes); to go back further, on the rare resume, it is decoded again from its
start. Decoding is deterministic, so the PCM is the same bytes as the first
time, and memory stays that of the decoder, not of a session's audio.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, BinaryIO

from sttcli.audio.decode import DecodeRequest, Ready, decoded_format
from sttcli.audio.decoder_thread import DecodingReader
from sttcli.audio.sniff import AudioFormat
from sttcli.audio.sources import PipeReader, PipeSource
from sttcli.errors import BadInput
from sttcli.results import SourceInfo

if TYPE_CHECKING:
    from sttcli.audio.decoder_process import DecoderProcess

    Decoder = DecodingReader | DecoderProcess

log = logging.getLogger("sttcli.audio")

# PCM a decoded file keeps behind its read position: more than a rotation
# steps back (at most one chunk), far less than a session.
_FILE_TAIL = 1 << 18


class DecodedSource(PipeSource):
    """A decoded pipe: its session's PCM is kept for resending, as a pipe's bytes are."""

    def __init__(
        self,
        name: str,
        decoder: Decoder,
        audio: AudioFormat,
        origin: SourceInfo,
        *,
        duration_s: float | None,
        keepalive_silence: float = 0.0,
        owner: BinaryIO | None = None,
        owner_reader: PipeReader | None = None,
    ) -> None:
        super().__init__(name, decoder, audio, b"", keepalive_silence=keepalive_silence)
        self.origin = origin
        self._decoder = decoder
        self._decoder_owner = owner  # a FIFO, read by `owner_reader`'s thread
        self._owner_reader = owner_reader
        self._length = None if duration_s is None else int(duration_s * audio.sample_rate) * 2

    @property
    def length(self) -> int | None:
        return self._length  # from the container: an estimate, for progress only

    def close(self) -> None:
        self._decoder.stop()
        reader = self._owner_reader
        if self._decoder_owner is not None and reader is not None and reader.finished:
            self._decoder_owner.close()


class DecodedFileSource(DecodedSource):
    """A decoded file: a short tail is kept; going back further decodes it again."""

    def __init__(
        self,
        name: str,
        decoder: Decoder,
        audio: AudioFormat,
        origin: SourceInfo,
        *,
        duration_s: float | None,
        request: DecodeRequest,
    ) -> None:
        super().__init__(name, decoder, audio, origin, duration_s=duration_s)
        self._request = request
        self._holding = False  # a region is being read: keep all of it

    async def read(self, size: int) -> bytes:
        data = await super().read(size)
        if not self._holding:
            self.release(self._position - _FILE_TAIL)
        return data

    async def seek(self, position: int) -> None:
        if position < self._base:
            await self._rewind(position)
        await super().seek(position)

    async def region(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Audio between two positions, decoded again if it is no longer kept.

        Reading it leaves the source positioned at its end, with all of it
        kept until the next `release()`: a resume seeks into it next.
        """
        if start < self._base:
            await self._rewind(start)
        self._holding = True
        try:
            await super().seek(max(start, self._base))
            while self._position < end:
                block = await self.read(min(64 * 1024, end - self._position))
                if not block:
                    return
                yield block
        finally:
            self._holding = False

    async def _rewind(self, position: int) -> None:
        """Decode the file again from its start, up to `position`."""
        self._decoder.stop()
        # Opened again, not a duplicate descriptor: that would share the file
        # offset with the decoder being stopped, which may still be reading.
        try:
            again = open(self.name, "rb")  # noqa: SIM115 - the decoder closes it
        except OSError as exc:
            raise BadInput(f"{self.name}: cannot read it again to resume: {exc}") from None
        decoder, _ = await _started(self.name, again, self._request, is_file=True)
        self._decoder = decoder
        self._reader = decoder
        self._retained = bytearray()
        self._base = self._position = self._received = 0
        self._eof = False
        while self._base < position:
            block = await decoder.get()
            if not block:
                self._eof = True
                break
            skip = min(len(block), position - self._base)
            self._base += skip
            self._received += skip
            self._append(block[skip:])
        self._position = self._base


async def open_decoded(
    name: str,
    file: object,
    request: DecodeRequest,
    *,
    keepalive_silence: float,
    owner: BinaryIO | None = None,
    owner_reader: PipeReader | None = None,
) -> DecodedSource:
    """A pipe (stdin, a FIFO) through the decoder."""
    decoder, ready = await _started(name, file, request)
    return DecodedSource(
        name,
        decoder,
        decoded_format(ready.rate),
        ready.info,
        duration_s=ready.duration_s,
        keepalive_silence=keepalive_silence,
        owner=owner,
        owner_reader=owner_reader,
    )


async def open_decoded_file(name: str, file: BinaryIO, request: DecodeRequest) -> DecodedSource:
    """A regular file through the decoder, in a process of its own."""
    decoder, ready = await _started(name, file, request, is_file=True)
    return DecodedFileSource(
        name,
        decoder,
        decoded_format(ready.rate),
        ready.info,
        duration_s=ready.duration_s,
        request=request,
    )


async def _started(
    name: str, file: Any, request: DecodeRequest, *, is_file: bool = False
) -> tuple[Decoder, Ready]:
    """A decoder that has opened its input; stopped again if it cannot, or if we are cancelled.

    A file is decoded in a child process (`decoder_process` says why), or in
    a thread where no process can be started; a pipe in a thread.
    """
    decoder: Decoder | None = None
    if is_file and os.name == "posix":  # the child is given the descriptor by number
        from sttcli.audio.decoder_process import start_decoder_process

        try:
            decoder = await start_decoder_process(name, file, request)
        except OSError as exc:
            log.debug("%s: no decoder process (%s): decoding in a thread", name, exc)
    if decoder is None:
        decoder = DecodingReader(name, file, request)
    try:
        return decoder, await decoder.ready()
    except BaseException:
        decoder.stop()
        raise
