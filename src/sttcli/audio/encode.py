"""Mono PCM to Ogg Opus, for --send-as oggopus: about a tenth of the bytes of 16 kHz LPCM.

One encoder per session: each session is an Ogg stream of its own, headers
first, so that the server can decode it without anything sent before. FFmpeg
(through PyAV) encodes with libopus and writes the Ogg pages; a page is
written at least every `PAGE_SECONDS`, so the server hears audio, and partial
results come back, as it is sent.
"""

from __future__ import annotations

from typing import Any

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
        self._container.close()
        return self._out.take()

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            self._container.mux(packet)
