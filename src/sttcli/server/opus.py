"""Ogg Opus in, 48 kHz PCM out, as the stream's bytes arrive.

sttcli demuxes the Ogg pages itself (`sttcli.audio.ogg`) and hands each Opus
packet to FFmpeg's decoder through PyAV; the first packet (OpusHead) sets
the decoder up, pre-skip included, and the second (OpusTags) is metadata.
"""

from __future__ import annotations

from typing import Any

from sttcli.audio.ogg import OggError, OggReader


class OpusDecodeError(ValueError):
    """The stream is not Ogg Opus we can decode."""


class OggOpusDecoder:
    def __init__(self) -> None:
        try:
            import av
        except ImportError:
            raise OpusDecodeError(
                "this server cannot decode OGG_OPUS (PyAV is missing: pip install 'sttcli[local]')"
            ) from None
        self._av = av
        self._reader = OggReader()
        self._codec: Any = None
        self._packets = 0

    def feed(self, data: bytes) -> bytes:
        try:
            pages = list(self._reader.feed(data))
        except OggError as error:
            raise OpusDecodeError(f"broken Ogg stream: {error}") from None
        pcm = bytearray()
        for page in pages:
            for packet in page.packets:
                pcm += self._packet(packet)
        return bytes(pcm)

    def _packet(self, packet: bytes) -> bytes:
        self._packets += 1
        if self._packets == 1:
            if packet[:8] != b"OpusHead":
                raise OpusDecodeError("not an Ogg Opus stream (no OpusHead packet)")
            if len(packet) > 9 and packet[9] != 1:
                raise OpusDecodeError("only one channel (mono) is supported")
            codec = self._av.CodecContext.create("opus", "r")
            codec.extradata = packet
            self._codec = codec
            return b""
        if self._packets == 2:
            return b""  # OpusTags
        try:
            frames = self._codec.decode(self._av.Packet(packet))
        except self._av.error.FFmpegError as error:
            raise OpusDecodeError(f"cannot decode an Opus packet: {error}") from None
        pcm = bytearray()
        for frame in frames:
            samples = frame.to_ndarray()
            if samples.dtype.kind == "f":
                samples = (samples.clip(-1.0, 1.0) * 32767).astype("<i2")
            pcm += samples.reshape(-1).astype("<i2").tobytes()
        return bytes(pcm)
