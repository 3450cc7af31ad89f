"""Sniffing inputs: WAV headers are parsed and stripped, Ogg must be Opus, the rest is raw LPCM."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.audio import wav_header

from sttcli.audio.sniff import AudioFormat, Container, Encoding, NeedMore, RateSource, sniff
from sttcli.errors import BadInput, ExitCode


def sniff_all(data: bytes, **kwargs: object) -> AudioFormat:
    result = sniff(data, at_eof=True, name="in.wav", **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, AudioFormat)
    return result


def test_a_wav_header_gives_the_rate_and_where_the_audio_starts() -> None:
    header = wav_header(32000, rate=8000)
    audio = sniff_all(header + bytes(100))
    assert audio == AudioFormat(Encoding.LPCM, 8000, RateSource.HEADER, len(header), 32000)


def test_raw_audio_without_a_rate_gets_the_api_default() -> None:
    audio = sniff_all(bytes(100))
    assert (audio.encoding, audio.sample_rate, audio.rate_source) == (
        Encoding.LPCM,
        48000,
        RateSource.DEFAULT,
    )


def test_raw_audio_takes_the_rate_option() -> None:
    assert sniff_all(bytes(100), rate=16000).sample_rate == 16000


def test_chunks_before_the_data_are_skipped() -> None:
    listing = b"LIST" + struct.pack("<I", 5) + b"hello" + b"\x00"  # odd size: padded
    header = wav_header(10, extra_chunks=listing)
    assert sniff_all(header + bytes(10)).header_size == len(header)


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF, 0x7FFFFFFF])
def test_a_streaming_wav_length_means_until_the_end(size: int) -> None:
    assert sniff_all(wav_header(size) + bytes(10)).data_size is None


def test_a_wav_extensible_header_with_pcm_is_accepted() -> None:
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, 16000, 32000, 2, 16)
    fmt += struct.pack("<HHI", 22, 16, 4) + bytes.fromhex("0100000000001000800000aa00389b71")
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 4)
    data = b"RIFF" + struct.pack("<I", len(body) + 4) + body + bytes(4)
    assert sniff_all(data).sample_rate == 16000


@pytest.mark.parametrize(
    "kwargs", [{"bits": 8}, {"channels": 2}, {"tag": 3}, {"rate": 44100}], ids=str
)
def test_wav_that_is_not_16_bit_pcm_mono_at_an_api_rate_is_decoded(kwargs: dict[str, int]) -> None:
    found = sniff(wav_header(100, **kwargs) + bytes(100), at_eof=True, name="in.wav")
    assert found == Container("WAV", "wav")


def test_a_rate_option_that_contradicts_the_header_is_an_error() -> None:
    with pytest.raises(BadInput, match="contradicts the WAV header"):
        sniff_all(wav_header(100, rate=16000) + bytes(100), rate=8000)


def test_raw_audio_may_have_any_rate() -> None:
    assert sniff_all(bytes(100), rate=44100).sample_rate == 44100


def ogg_page(first_packet: bytes) -> bytes:
    return b"OggS" + bytes(22) + bytes([1, len(first_packet)]) + first_packet


def test_ogg_opus_is_recognized() -> None:
    audio = sniff_all(ogg_page(b"OpusHead" + bytes(11)))
    assert (audio.encoding, audio.sample_rate) == (Encoding.OGG_OPUS, 48000)


def test_ogg_vorbis_is_decoded() -> None:
    found = sniff(ogg_page(b"\x01vorbis" + bytes(22)), at_eof=True, name="x")
    assert found == Container("Ogg Vorbis", "ogg")


@pytest.mark.parametrize(("magic", "kind"), [(b"ID3\x04", "MP3"), (b"fLaC", "FLAC")])
def test_compressed_formats_are_decoded_in_auto_mode(magic: bytes, kind: str) -> None:
    found = sniff(magic + bytes(100), at_eof=True, name="x")
    assert isinstance(found, Container) and found.kind == kind


def test_forcing_lpcm_sends_anything_as_raw_audio() -> None:
    assert sniff_all(b"ID3\x04" + bytes(100), encoding="lpcm").encoding is Encoding.LPCM


def test_forcing_oggopus_on_something_else_is_an_error() -> None:
    with pytest.raises(BadInput, match="not an Ogg stream"):
        sniff_all(bytes(100), encoding="oggopus")


def test_an_empty_input_is_an_error() -> None:
    with pytest.raises(BadInput, match="empty input"):
        sniff_all(b"")


def test_a_short_prefix_asks_for_more_until_the_header_is_whole() -> None:
    header = wav_header(100)
    prefix = b"RI"
    asked = []
    while isinstance(result := sniff(prefix, at_eof=False, name="-"), NeedMore):
        asked.append(result.size)
        prefix = header[: result.size]
    assert asked == sorted(asked) and asked[-1] == len(header)
    assert isinstance(result, AudioFormat) and result.header_size == len(header)


def test_a_header_cut_short_by_the_end_of_input_is_an_error() -> None:
    with pytest.raises(BadInput, match="truncated header"):
        sniff_all(wav_header(100)[:30])


def _parse_or_refuse(data: bytes, at_eof: bool) -> AudioFormat | NeedMore | None:
    try:
        return sniff(data, at_eof=at_eof, name="x")
    except BadInput as error:
        assert error.exit_code == ExitCode.USAGE
        return None


@given(st.binary(max_size=200), st.booleans())
def test_any_bytes_parse_or_are_refused_cleanly(data: bytes, at_eof: bool) -> None:
    result = _parse_or_refuse(data, at_eof)
    if isinstance(result, NeedMore):
        assert not at_eof and result.size > len(data)


@given(
    st.integers(0, 200),
    st.sampled_from([8000, 16000, 48000, 44100]),
    st.integers(1, 2),
    st.sampled_from([8, 16, 24]),
    st.binary(max_size=64),
)
def test_truncated_and_mangled_wav_headers_never_crash(
    cut: int, rate: int, channels: int, bits: int, noise: bytes
) -> None:
    header = wav_header(1000, rate=rate, channels=channels, bits=bits)
    for data in (header[:cut], header[:cut] + noise, header + noise):
        result = _parse_or_refuse(data, True)
        if isinstance(result, AudioFormat) and data.startswith(header):
            assert result.header_size == len(header)
            assert (result.sample_rate, channels, bits) == (rate, 1, 16)
