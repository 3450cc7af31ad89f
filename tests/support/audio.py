"""Building test audio: WAV headers, silence, and marker "words"."""

from __future__ import annotations

import struct


def wav_header(
    data_size: int,
    *,
    rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    tag: int = 1,
    extra_chunks: bytes = b"",
) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    body += b"data" + struct.pack("<I", data_size)
    riff_size = min(len(body) + data_size, 0xFFFFFFFF)
    return b"RIFF" + struct.pack("<I", riff_size) + body


def wav(pcm: bytes, *, rate: int = 16000, **kwargs: int) -> bytes:
    return wav_header(len(pcm), rate=rate, **kwargs) + pcm


def ramp(size: int) -> bytes:
    """Bytes whose every position differs from its neighbours: splits show up."""
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


def markers(
    *utterances: str,
    rate: int = 16000,
    word: float = 0.2,
    space: float = 0.05,
    gap: float = 0.6,
    lead: float = 0.1,
) -> bytes:
    """Audio the synthetic engine hears as `utterances` (each a string of NATO words)."""
    from sttcli.server.synthetic import marker

    def samples(value: int, seconds: float) -> bytes:
        return struct.pack("<h", value) * round(seconds * rate)

    parts = [samples(0, lead)]
    for utterance in utterances:
        for index, name in enumerate(utterance.split()):
            if index:
                parts.append(samples(0, space))
            parts.append(samples(marker(name), word))
        parts.append(samples(0, gap))
    return b"".join(parts)
