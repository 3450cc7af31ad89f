"""Mono PCM to Ogg Opus, for --send-as oggopus: about a tenth of the bytes of 16 kHz LPCM.

One encoder per session: each session is an Ogg stream of its own, headers
first, so that the server can decode it without anything sent before. FFmpeg
(through PyAV) encodes with libopus and writes the Ogg pages; a page is
written at least every `PAGE_SECONDS`, so the server hears audio, and partial
results come back, as it is sent.

Encoding costs about 0.7 ms of CPU per 4000-byte chunk: on the event loop
that would hold up every other job's gRPC traffic. `encode_as_opus` runs the
encoder in a thread of its own and hands it PCM in batches, while the event
loop goes on reading the next chunks and writing the pages already made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger("sttcli.audio")

OPUS_BITRATE = 28000  # bits/s: about a tenth of 16 kHz LPCM
# "lowdelay" is Opus's CELT mode alone: it keeps the whole spectrum, which a
# recognizer uses, where the speech mode (SILK, "voip") cost 2 points of WER
# at the same rate (docs/benchmarks.md).
OPUS_APPLICATION = "lowdelay"
PAGE_SECONDS = 0.2  # at most this much audio waits in the encoder for its page
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


class _Collector:
    """A write-only file for FFmpeg's muxer: it keeps what was written until taken."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


class OggOpusEncoder:
    """Encodes one session's PCM (16-bit mono at `rate`) as it comes; `finish()` ends the stream."""

    def __init__(self, rate: int) -> None:
        import av

        if rate not in _OPUS_RATES:
            raise ValueError(f"Opus cannot encode at {rate} Hz")
        self._av = av
        self._rate = rate
        self._out = _Collector()
        self._container: Any = av.open(
            self._out,
            mode="w",
            format="ogg",
            options={"page_duration": str(int(PAGE_SECONDS * 1_000_000))},
        )
        stream: Any = self._container.add_stream("libopus", rate=rate, layout="mono")
        stream.codec_context.bit_rate = OPUS_BITRATE
        stream.codec_context.options = {"application": OPUS_APPLICATION, "frame_duration": "20"}
        self._stream = stream
        self._samples = 0
        self._odd = b""  # half a sample, waiting for its other byte
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def encode(self, pcm: bytes) -> bytes:
        """The Ogg bytes ready after `pcm`: headers first, then whole pages."""
        pcm = self._odd + pcm
        usable = len(pcm) & ~1
        self._odd = pcm[usable:]
        if usable:
            count = usable // 2
            frame = self._av.AudioFrame(format="s16", layout="mono", samples=count)
            frame.planes[0].update(pcm[:usable])
            frame.sample_rate = self._rate
            frame.pts = self._samples
            self._samples += count
            self._mux(self._stream.encode(frame))
        return self._out.take()

    def finish(self) -> bytes:
        """The rest of the stream: the encoder's last frames and the end-of-stream page."""
        self._mux(self._stream.encode(None))
        self._closed = True
        self._container.close()
        return self._out.take()

    def close(self) -> None:
        """Let FFmpeg's muxer and encoder go, whether or not the stream was finished."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception as error:  # a stream cut short: nothing of it is wanted
            log.debug("closing an Opus encoder cut short: %s", error)

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            self._container.mux(packet)


async def encode_as_opus(
    pcm: AsyncIterator[bytes], rate: int, *, batch_bytes: int
) -> AsyncGenerator[bytes, None]:
    """`pcm` as one Ogg Opus stream, encoded off the event loop.

    One encoder thread per stream, so batches are encoded in order; while it
    works, the next chunks are read (up to `batch_bytes`, then reading waits
    for it), and its pages are yielded as soon as they are ready. The encoder
    is closed however the stream ends: at its end, or cut short by a
    cancellation, a failed call or a rotation.
    """
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sttcli-opus")
    opening = worker.submit(OggOpusEncoder, rate)

    def in_worker(call: Callable[..., bytes], *args: bytes) -> asyncio.Future[bytes]:
        return asyncio.wrap_future(worker.submit(call, *args), loop=loop)

    source = aiter(pcm)
    pulling: asyncio.Future[bytes] | None = None
    running: asyncio.Future[bytes] | None = None
    try:
        encoder = await asyncio.wrap_future(opening, loop=loop)
        batch = bytearray()
        ended = False
        while not ended or batch or running is not None:
            if running is None and batch:
                running = in_worker(encoder.encode, bytes(batch))
                batch.clear()
            if pulling is None and not ended and len(batch) < batch_bytes:
                pulling = asyncio.ensure_future(anext(source))
            waiting = {future for future in (pulling, running) if future is not None}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if running is not None and running.done():
                data = running.result()
                running = None
                if data:
                    yield data
            if pulling is not None and pulling.done():
                try:
                    batch += pulling.result()
                except StopAsyncIteration:
                    ended = True
                pulling = None
        tail = await in_worker(encoder.finish)
        if tail:
            yield tail
    finally:
        for future in (pulling, running):
            if future is not None and not future.done():
                future.cancel()
        try:
            if pulling is not None:
                await asyncio.gather(pulling, return_exceptions=True)
            closing = getattr(source, "aclose", None)
            if closing is not None:
                await closing()
        finally:
            # Even when a second cancellation cuts the awaits above short.
            # Queued behind any batch still being encoded: never closed under it.
            worker.submit(_close_opened, opening)
            worker.shutdown(wait=False)


def _close_opened(opening: Future[OggOpusEncoder]) -> None:
    """In the encoder's thread, after all its work: the encoder, if it was made, is closed."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()
