"""What kind of audio an input holds, read from its first bytes.

`sniff()` is pure: it looks at a prefix of the input and either answers or says
how many bytes it needs, so the same code serves files, pipes and property-based
tests. A WAV header is parsed chunk by chunk (fmt, then data) and stripped; an
Ogg stream must carry Opus; anything else is headerless 16-bit LPCM.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from sttcli.errors import BadInput

SUPPORTED_RATES = (8000, 16000, 48000)
DEFAULT_RATE = 48000  # the API's default for LPCM
OPUS_RATE = 48000  # Ogg Opus granule positions always count 48 kHz samples

_PCM = 1
_EXTENSIBLE = 0xFFFE
_PCM_SUBFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")
# A data chunk size that means "until the end of the stream" (streaming writers).
_UNKNOWN_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


class Encoding(enum.Enum):
    LPCM = "lpcm"
    OGG_OPUS = "oggopus"


class RateSource(enum.Enum):
    HEADER = "WAV header"
    OPTION = "--rate"
    DEFAULT = "API default"
    OPUS = "Ogg Opus"


@dataclass(frozen=True)
class AudioFormat:
    encoding: Encoding
    sample_rate: int
    rate_source: RateSource
    # Bytes before the audio payload (a WAV header), and the payload's length
    # when a header gives it (None: until the end of the input).
    header_size: int = 0
    data_size: int | None = None

    @property
    def bytes_per_second(self) -> int | None:
        """LPCM only: Ogg Opus has no fixed ratio of bytes to time."""
        return self.sample_rate * 2 if self.encoding is Encoding.LPCM else None


@dataclass(frozen=True)
class NeedMore:
    """`sniff()` needs a prefix of at least `size` bytes to decide."""

    size: int


def conversion_hint(name: str) -> str:
    target = "OUTPUT.wav" if name == "-" else f"{_stem(name)}.16k.wav"
    source = "INPUT" if name == "-" else name
    return f"convert it with: sox {source} -r 16000 -c 1 -b 16 -e signed-integer {target}"


def sniff(
    prefix: bytes,
    *,
    at_eof: bool,
    name: str,
    encoding: str = "auto",
    rate: int | None = None,
) -> AudioFormat | NeedMore:
    """Classify an input from its first bytes; raise BadInput for audio we cannot send.

    `encoding` is "auto", "lpcm" or "oggopus" (the --encoding option); `rate`
    is --rate, or None.
    """
    if rate is not None and rate not in SUPPORTED_RATES:
        raise BadInput(f"{name}: sample rate {rate} Hz is not accepted; use 8000, 16000 or 48000")
    if len(prefix) < 12 and not at_eof:
        return NeedMore(12)
    if not prefix:
        raise BadInput(f"{name}: empty input, no audio to recognize")
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WAVE" and encoding != "oggopus":
        return _parse_wav(prefix, at_eof=at_eof, name=name, rate=rate)
    if prefix[:4] == b"OggS" and encoding != "lpcm":
        return _sniff_ogg(prefix, at_eof=at_eof, name=name)
    if encoding == "oggopus":
        raise BadInput(f"{name}: not an Ogg stream, but --encoding oggopus was given")
    if encoding == "auto":
        _refuse_other_containers(prefix, name)
    if rate is None:
        return AudioFormat(Encoding.LPCM, DEFAULT_RATE, RateSource.DEFAULT)
    return AudioFormat(Encoding.LPCM, rate, RateSource.OPTION)


def _refuse_other_containers(prefix: bytes, name: str) -> None:
    """Compressed files sent as raw PCM would be recognized as noise: say so instead."""
    kind = None
    if prefix[:3] == b"ID3":
        kind = "MP3"
    elif prefix[:4] == b"fLaC":
        kind = "FLAC"
    elif prefix[:4] == b"RIFF":
        kind = "a RIFF file that is not WAVE"
    if kind:
        raise BadInput(
            f"{name}: looks like {kind}, which streaming recognition does not accept; "
            f"{conversion_hint(name)} (or pass --encoding lpcm to send it as raw PCM anyway)"
        )


def _parse_wav(
    prefix: bytes, *, at_eof: bool, name: str, rate: int | None
) -> AudioFormat | NeedMore:
    fmt: tuple[int, int, int, int] | None = None
    offset = 12
    while True:
        if len(prefix) < offset + 8:
            return _need(offset + 8, at_eof, name)
        chunk_id = prefix[offset : offset + 4]
        (size,) = struct.unpack_from("<I", prefix, offset + 4)
        body = offset + 8
        if chunk_id == b"data":
            if fmt is None:
                raise BadInput(f"{name}: broken WAV header: audio data before the format chunk")
            return _wav_format(fmt, body, size, name=name, rate=rate)
        if chunk_id == b"fmt ":
            if size < 16:
                raise BadInput(f"{name}: broken WAV header: format chunk of {size} bytes")
            if len(prefix) < body + min(size, 40):
                return _need(body + min(size, 40), at_eof, name)
            fmt = _read_fmt(prefix, body, size, name)
        # Chunks are padded to an even length.
        offset = body + size + (size & 1)
        if offset > 1 << 20:
            raise BadInput(f"{name}: broken WAV header: no audio data in the first MiB")


def _read_fmt(prefix: bytes, body: int, size: int, name: str) -> tuple[int, int, int, int]:
    tag, channels, sample_rate, _, _, bits = struct.unpack_from("<HHIIHH", prefix, body)
    if tag == _EXTENSIBLE:
        if size < 40:
            raise BadInput(f"{name}: broken WAV header: short extensible format chunk")
        subformat = prefix[body + 24 : body + 40]
        tag = _PCM if subformat[2:] == _PCM_SUBFORMAT_TAIL and subformat[:2] == b"\x01\x00" else 0
    return tag, channels, sample_rate, bits


def _wav_format(
    fmt: tuple[int, int, int, int], body: int, size: int, *, name: str, rate: int | None
) -> AudioFormat:
    tag, channels, sample_rate, bits = fmt
    problems = []
    if tag != _PCM:
        problems.append("not PCM")
    if bits != 16:
        problems.append(f"{bits}-bit")
    if channels != 1:
        problems.append(f"{channels} channels")
    if problems:
        raise BadInput(
            f"{name}: WAV must be 16-bit PCM mono, this one is {', '.join(problems)}; "
            f"{conversion_hint(name)}"
        )
    if sample_rate not in SUPPORTED_RATES:
        raise BadInput(
            f"{name}: WAV sample rate {sample_rate} Hz is not accepted (8000, 16000 or 48000); "
            f"{conversion_hint(name)}"
        )
    if rate is not None and rate != sample_rate:
        raise BadInput(f"{name}: --rate {rate} contradicts the WAV header ({sample_rate} Hz)")
    data_size = None if size in _UNKNOWN_SIZES else size
    return AudioFormat(Encoding.LPCM, sample_rate, RateSource.HEADER, body, data_size)


def _sniff_ogg(prefix: bytes, *, at_eof: bool, name: str) -> AudioFormat | NeedMore:
    if len(prefix) < 27:
        return _need(27, at_eof, name)
    segments = prefix[26]
    first_packet = 27 + segments
    if len(prefix) < first_packet + 8:
        return _need(first_packet + 8, at_eof, name)
    magic = prefix[first_packet : first_packet + 8]
    if magic == b"OpusHead":
        return AudioFormat(Encoding.OGG_OPUS, OPUS_RATE, RateSource.OPUS)
    codec = "Vorbis" if magic[1:7] == b"vorbis" else "not Opus"
    raise BadInput(
        f"{name}: Ogg {codec} is not accepted, only Ogg Opus or LPCM; {conversion_hint(name)}"
    )


def _need(size: int, at_eof: bool, name: str) -> NeedMore:
    if at_eof:
        raise BadInput(f"{name}: truncated header, the input ends inside it")
    return NeedMore(size)


def _stem(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base
