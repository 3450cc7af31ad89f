"""What kind of audio an input holds, read from its first bytes.

`sniff()` is pure: it looks at a prefix of the input and either answers or says
how many bytes it needs, so the same code serves files, pipes and property-based
tests. Formats are told by their magic numbers, never by letting a decoder
guess. A 16-bit mono WAV at a rate the API accepts, and Ogg Opus, go on the
wire as they are (`AudioFormat`); other containers and codecs are decoded
(`Container`, see `sttcli.audio.decode`); anything else is headerless 16-bit
LPCM.
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
    DECODED = "decoded"


@dataclass(frozen=True)
class AudioFormat:
    encoding: Encoding
    sample_rate: int
    rate_source: RateSource
    # Bytes before the audio payload (a WAV header), and the payload's length
    # when a header gives it (None: until the end of the input).
    header_size: int = 0
    data_size: int | None = None
    channels: int = 1  # Ogg Opus may be stereo; a zero-copy WAV is mono

    @property
    def bytes_per_second(self) -> int | None:
        """LPCM only: Ogg Opus has no fixed ratio of bytes to time."""
        return self.sample_rate * 2 if self.encoding is Encoding.LPCM else None


@dataclass(frozen=True)
class Container:
    """Audio that FFmpeg decodes before it is sent: `kind` for people, `demuxer` for FFmpeg."""

    kind: str
    demuxer: str


@dataclass(frozen=True)
class NeedMore:
    """`sniff()` needs a prefix of at least `size` bytes to decide."""

    size: int


def sniff(
    prefix: bytes,
    *,
    at_eof: bool,
    name: str,
    encoding: str = "auto",
    rate: int | None = None,
    channels: int | None = None,
) -> AudioFormat | Container | NeedMore:
    """Classify an input from its first bytes; raise BadInput for input we cannot use.

    `encoding` is "auto", "lpcm" or "oggopus" (the --encoding option); `rate`
    and `channels` are --rate and --channels, or None. Raw LPCM may have any
    rate: the caller resamples what the API does not accept. A header that
    says otherwise than --rate or --channels is an error here when its
    values are in the prefix (WAV, Ogg Opus); other containers are checked
    once FFmpeg has opened them (`sttcli.audio.decode`).
    """
    if rate is not None and rate <= 0:
        raise BadInput(f"{name}: sample rate {rate} Hz is not a rate")
    if len(prefix) < 12 and not at_eof:
        return NeedMore(12)
    if not prefix:
        raise BadInput(f"{name}: empty input, no audio to recognize")
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WAVE" and encoding != "oggopus":
        found = _parse_wav(prefix, at_eof=at_eof, name=name)
        if isinstance(found, _WavHeader):
            check_header(name, "WAV", found.sample_rate, found.channels, rate, channels)
            return found.audio
        return found
    if prefix[:4] == b"OggS" and encoding != "lpcm":
        ogg = _sniff_ogg(prefix, at_eof=at_eof, name=name)
        if isinstance(ogg, AudioFormat):
            check_header(name, "Ogg Opus", OPUS_RATE, ogg.channels, rate, channels)
        return ogg
    if encoding == "oggopus":
        raise BadInput(f"{name}: not an Ogg stream, but --encoding oggopus was given")
    if encoding == "auto":
        container = _container(prefix, name)
        if container is not None:
            return container
    if rate is None:
        return AudioFormat(Encoding.LPCM, DEFAULT_RATE, RateSource.DEFAULT)
    return AudioFormat(Encoding.LPCM, rate, RateSource.OPTION)


# Magic numbers at offset 0, and the FFmpeg demuxer for each.
_MAGIC = (
    (b"ID3", "MP3", "mp3"),
    (b"fLaC", "FLAC", "flac"),
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM", "matroska"),
    (b"#!AMR\n", "AMR", "amr"),
    (b"#!AMR-WB\n", "AMR-WB", "amr"),
)
_MPEG_BITRATE_BAD = (0, 15)


def _container(prefix: bytes, name: str) -> Container | None:
    for magic, kind, demuxer in _MAGIC:
        if prefix.startswith(magic):
            return Container(kind, demuxer)
    if prefix[4:8] == b"ftyp":
        return Container("MP4", "mov")
    if prefix[:4] == b"FORM" and prefix[8:12] in (b"AIFF", b"AIFC"):
        return Container("AIFF", "aiff")
    if prefix[:4] == b"RIFF":
        if prefix[8:12] == b"AVI ":
            return Container("AVI", "avi")
        raise BadInput(f"{name}: a RIFF file that is neither WAVE nor AVI, not audio we know")
    return _frame_sync(prefix)


def _frame_sync(prefix: bytes) -> Container | None:
    """MPEG audio (an MP3 with no ID3 tag) or ADTS AAC: a frame header at offset 0.

    Eleven set bits alone could be the start of raw PCM, so the header's
    fields must be valid too, and a second header must follow the first
    where its length can be computed (MPEG Layer III) and the prefix holds it.
    """
    if len(prefix) < 4 or prefix[0] != 0xFF or prefix[1] & 0xE0 != 0xE0:
        return None
    version = (prefix[1] >> 3) & 3
    layer = (prefix[1] >> 1) & 3
    if layer == 0:  # ADTS (MPEG-2/4 AAC): a 12-bit sync, then the MPEG version bit
        sampling_index = (prefix[2] >> 2) & 0xF
        if prefix[1] & 0xF0 != 0xF0 or sampling_index > 12:
            return None
        return Container("AAC (ADTS)", "aac")
    bitrate_index = prefix[2] >> 4
    rate_index = (prefix[2] >> 2) & 3
    if version == 1 or bitrate_index in _MPEG_BITRATE_BAD or rate_index == 3:
        return None
    if layer == 1:  # Layer III: check that the next frame starts where this one ends
        length = _layer3_frame_length(version, bitrate_index, rate_index, prefix[2] >> 1 & 1)
        following = prefix[length : length + 2]
        if len(following) == 2 and (following[0] != 0xFF or following[1] & 0xE0 != 0xE0):
            return None
    return Container("MP3" if layer == 1 else "MPEG audio", "mp3")


_LAYER3_KBPS = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _layer3_frame_length(version: int, bitrate_index: int, rate_index: int, padding: int) -> int:
    kbps = _LAYER3_KBPS[3 if version == 3 else 2][bitrate_index]
    rate = _MPEG_RATES[version][rate_index]
    per_frame = 144 if version == 3 else 72
    return per_frame * kbps * 1000 // rate + padding


def check_header(
    name: str,
    kind: str,
    header_rate: int,
    header_channels: int,
    rate: int | None,
    channels: int | None,
) -> None:
    """--rate and --channels describe raw LPCM: for a container they must agree with its header."""
    if rate is not None and rate != header_rate:
        raise BadInput(f"{name}: --rate {rate} contradicts the {kind} header ({header_rate} Hz)")
    if channels is not None and channels != header_channels:
        plural = "" if header_channels == 1 else "s"
        raise BadInput(
            f"{name}: --channels {channels} contradicts the {kind} header "
            f"({header_channels} channel{plural})"
        )


@dataclass(frozen=True)
class _WavHeader:
    """What a WAV header says, and what to do with the WAV."""

    audio: AudioFormat | Container
    sample_rate: int
    channels: int


def _parse_wav(prefix: bytes, *, at_eof: bool, name: str) -> _WavHeader | NeedMore:
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
            return _wav_format(fmt, body, size)
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


def _wav_format(fmt: tuple[int, int, int, int], body: int, size: int) -> _WavHeader:
    """The zero-copy WAV (16-bit PCM mono at a rate the API takes), or one to decode."""
    tag, channels, sample_rate, bits = fmt
    if tag != _PCM or bits != 16 or channels != 1 or sample_rate not in SUPPORTED_RATES:
        return _WavHeader(Container("WAV", "wav"), sample_rate, channels)
    data_size = None if size in _UNKNOWN_SIZES else size
    audio = AudioFormat(Encoding.LPCM, sample_rate, RateSource.HEADER, body, data_size)
    return _WavHeader(audio, sample_rate, channels)


def _sniff_ogg(prefix: bytes, *, at_eof: bool, name: str) -> AudioFormat | Container | NeedMore:
    if len(prefix) < 27:
        return _need(27, at_eof, name)
    segments = prefix[26]
    first_packet = 27 + segments
    if len(prefix) < first_packet + 8:
        return _need(first_packet + 8, at_eof, name)
    magic = prefix[first_packet : first_packet + 8]
    if magic == b"OpusHead":
        if len(prefix) < first_packet + 10:
            return _need(first_packet + 10, at_eof, name)
        channels = prefix[first_packet + 9]
        return AudioFormat(Encoding.OGG_OPUS, OPUS_RATE, RateSource.OPUS, channels=channels)
    return Container("Ogg Vorbis" if magic[1:7] == b"vorbis" else "Ogg", "ogg")


def _need(size: int, at_eof: bool, name: str) -> NeedMore:
    if at_eof:
        raise BadInput(f"{name}: truncated header, the input ends inside it")
    return NeedMore(size)
