"""Any recording in: every common format is decoded, downmixed and resampled as it streams.

Fixtures are made here with PyAV from tone "words" (support.tones) that every
codec keeps, and recognized by sttcli's own server on the tone engine, so a
transcript checks the whole path: sniffing, demuxing, decoding, downmixing,
resampling and the timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.audio import wav_header
from support.cli import against
from support.scripted import ScriptedServer
from support.servers import running_server
from support.tones import ToneEngine, encode, tones

from sttcli.audio.sniff import Container, sniff
from sttcli.audio.sources import open_source

SPOKEN = ("alpha bravo", "charlie delta echo")
EXPECTED = "alpha bravo charlie delta echo"


@pytest.fixture(scope="module")
def tone_server() -> Iterator[str]:
    with running_server(ToneEngine()) as address:
        yield address


def stereo_44k() -> bytes:
    return tones(*SPOKEN, rate=44100, channels=2)


def mono_16k() -> bytes:
    return tones(*SPOKEN)


def wav_of(pcm: bytes, codec: str, *, rate: int, layout: str = "mono", channels: int = 1) -> bytes:
    return encode(
        pcm, None, container="wav", codec=codec, rate=rate, layout=layout, in_channels=channels
    )


# name -> (maker of the file's bytes, format in "source", readable from a pipe)
FORMATS: dict[str, tuple[Callable[[], bytes], str, bool]] = {
    "mp3": (
        lambda: encode(
            stereo_44k(),
            None,
            container="mp3",
            codec="libmp3lame",
            rate=44100,
            layout="stereo",
            in_channels=2,
        ),
        "MP3",
        True,
    ),
    "m4a": (
        lambda: encode(
            stereo_44k(),
            None,
            container="ipod",
            codec="aac",
            rate=44100,
            layout="stereo",
            in_channels=2,
            options={"movflags": "faststart"},
        ),
        "MP4",
        True,
    ),
    "aac": (
        lambda: encode(mono_16k(), None, container="adts", codec="aac", rate=16000),
        "AAC (ADTS)",
        True,
    ),
    "flac": (
        lambda: encode(
            stereo_44k(),
            None,
            container="flac",
            codec="flac",
            rate=44100,
            layout="stereo",
            in_channels=2,
        ),
        "FLAC",
        True,
    ),
    "ogg": (
        lambda: encode(
            stereo_44k(),
            None,
            container="ogg",
            codec="vorbis",
            rate=44100,
            layout="stereo",
            in_channels=2,
        ),
        "Ogg Vorbis",
        True,
    ),
    "webm": (
        lambda: encode(
            mono_16k(), None, container="webm", codec="libopus", rate=16000, out_rate=48000
        ),
        "Matroska/WebM",
        True,
    ),
    "wav-44k-stereo": (
        lambda: wav_of(stereo_44k(), "pcm_s16le", rate=44100, layout="stereo", channels=2),
        "WAV",
        True,
    ),
    "wav-u8": (lambda: wav_of(mono_16k(), "pcm_u8", rate=16000), "WAV", True),
    "wav-s24": (lambda: wav_of(mono_16k(), "pcm_s24le", rate=16000), "WAV", True),
    "wav-s32": (lambda: wav_of(mono_16k(), "pcm_s32le", rate=16000), "WAV", True),
    "wav-f32": (lambda: wav_of(mono_16k(), "pcm_f32le", rate=16000), "WAV", True),
    "wav-f64": (lambda: wav_of(mono_16k(), "pcm_f64le", rate=16000), "WAV", True),
    "wav-alaw": (lambda: wav_of(tones(*SPOKEN, rate=8000), "pcm_alaw", rate=8000), "WAV", True),
    "wav-mulaw": (lambda: wav_of(tones(*SPOKEN, rate=8000), "pcm_mulaw", rate=8000), "WAV", True),
    "aiff": (
        lambda: encode(
            stereo_44k(),
            None,
            container="aiff",
            codec="pcm_s16be",
            rate=44100,
            layout="stereo",
            in_channels=2,
        ),
        "AIFF",
        True,
    ),
    "amr": (
        lambda: encode(
            tones(*SPOKEN, rate=8000),
            None,
            container="amr",
            codec="libopencore_amrnb",
            rate=8000,
            bit_rate=12200,
        ),
        "AMR",
        True,
    ),
    "mp4-video": (
        lambda: encode(
            stereo_44k(),
            None,
            container="mp4",
            codec="aac",
            rate=44100,
            layout="stereo",
            in_channels=2,
            video=True,
        ),
        "MP4",
        False,
    ),
    "mkv-video": (
        lambda: encode(
            stereo_44k(),
            None,
            container="matroska",
            codec="libmp3lame",
            rate=44100,
            layout="stereo",
            in_channels=2,
            video=True,
        ),
        "Matroska/WebM",
        True,
    ),
}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("recordings")
    paths = {}
    for name, (make, _, _) in FORMATS.items():
        paths[name] = directory / f"speech.{name}"
        paths[name].write_bytes(make())
    return paths


@pytest.mark.parametrize("name", FORMATS)
def test_a_recording_gives_its_transcript_from_a_file(
    tone_server: str, recordings: dict[str, Path], name: str
) -> None:
    result = against(tone_server, "-f", "json", str(recordings[name]))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["text"] == EXPECTED
    assert document["source"]["format"] == FORMATS[name][1]
    assert document["source"]["decoded"] is True


@pytest.mark.parametrize("name", [name for name, spec in FORMATS.items() if spec[2]])
def test_a_streamable_recording_gives_its_transcript_from_a_pipe(
    tone_server: str, recordings: dict[str, Path], name: str
) -> None:
    result = against(tone_server, "-f", "json", "-", input=recordings[name].read_bytes())
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["text"] == EXPECTED


def test_an_mp4_with_its_index_at_the_end_is_refused_from_a_pipe(tone_server: str) -> None:
    # Long enough that FFmpeg cannot keep the whole file in its read buffer.
    data = encode(
        tones(*SPOKEN * 6, rate=44100, channels=2),
        None,
        container="mp4",
        codec="aac",
        rate=44100,
        layout="stereo",
        in_channels=2,
        bit_rate=128000,
    )
    result = against(tone_server, "-", input=data)
    assert result.exit_code == 2
    assert "give it as a file" in result.stderr
    assert result.stderr.count("\n") == 1


def test_positions_are_seconds_of_the_original_input(
    tone_server: str, recordings: dict[str, Path]
) -> None:
    duration = len(stereo_44k()) / 4 / 44100
    result = against(tone_server, "-f", "json", str(recordings["flac"]))
    document = json.loads(result.stdout)
    assert document["audio_duration_s"] == pytest.approx(duration, abs=0.05)
    ends = [u["audio_end_s"] for u in document["utterances"]]
    # The first utterance: lead 0.2 s + two 0.3 s words with 0.1 s between them.
    assert ends[0] == pytest.approx(0.9, abs=0.03)


# -- the plan, said -------------------------------------------------------------


def test_verbose_says_what_is_done_to_the_input(
    tone_server: str, recordings: dict[str, Path]
) -> None:
    result = against(tone_server, "-v", str(recordings["mp3"]))
    assert (
        f"{recordings['mp3']}: MP3 44100 Hz stereo, decoded, downmixed, resampled to 16000 Hz LPCM"
        in result.stderr
    )


def test_dry_run_shows_the_plan_and_the_source(recordings: dict[str, Path]) -> None:
    result = against("127.0.0.1:9", "--dry-run", "--send-rate", "8000", str(recordings["flac"]))
    assert result.exit_code == 0, result.stderr
    assert "FLAC 44100 Hz stereo, decoded, downmixed, resampled to 8000 Hz LPCM" in result.stderr
    document = json.loads(result.stdout)
    assert document["source"] == {
        "format": "FLAC",
        "codec": "flac",
        "rate": 44100,
        "channels": 2,
        "decoded": True,
    }
    assert document["config"]["specification"]["sample_rate_hertz"] == 8000


# -- damaged and undecodable ------------------------------------------------------


def damaged(data: bytes, seed: int = 1) -> bytes:
    """`data` with 200 random bytes strewn over 600 in its middle (the same every run)."""
    noise = random.Random(seed)
    broken = bytearray(data)
    middle = len(broken) // 2
    for offset in range(middle, middle + 600, 3):
        broken[offset] = noise.randrange(256)
    return bytes(broken)


def test_a_damaged_stretch_loses_only_its_own_words(tone_server: str, tmp_path: Path) -> None:
    audio = tones(*SPOKEN, gap=1.5)
    path = tmp_path / "damaged.mp3"
    path.write_bytes(damaged(encode(audio, None, container="mp3", codec="libmp3lame")))
    result = against(tone_server, "-f", "json", str(path))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["text"].startswith("alpha bravo")
    assert document["audio_duration_s"] == pytest.approx(len(audio) / 32000, abs=0.6)


def test_frames_ffmpeg_cannot_decode_are_skipped_with_one_warning(
    tone_server: str, tmp_path: Path
) -> None:
    path = tmp_path / "damaged.aac"
    path.write_bytes(damaged(encode(tones(*SPOKEN, gap=1.5), None, container="adts", codec="aac")))
    result = against(tone_server, "-f", "json", str(path))
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "could not decode" in line]
    assert len(warnings) == 1, result.stderr
    assert re.search(
        r"skipped \d+ frames? FFmpeg could not decode, between [\d.]+ s and", warnings[0]
    )
    assert json.loads(result.stdout)["text"].startswith("alpha bravo")


def flac_damaged_at_its_start(seed: int = 0) -> tuple[bytes, float]:
    """A FLAC whose first utterance is lost; and where its first good frame starts, in s."""
    audio = tones(*SPOKEN, rate=44100, channels=2, gap=1.5)
    data = encode(
        audio, None, container="flac", codec="flac", rate=44100, layout="stereo", in_channels=2
    )
    import io

    import av

    with av.open(io.BytesIO(data)) as container:
        packets = [p for p in container.demux(container.streams.audio[0]) if p.pos is not None]
    first = packets[0].pos
    # Break every packet of the first utterance and the start of its pause.
    good = next(p for p in packets if p.pts * p.time_base > 1.0)
    broken = bytearray(data)
    noise = random.Random(seed)
    for offset in range(first, good.pos):
        broken[offset] = 0 if seed == 0 else noise.randrange(256)
    return bytes(broken), float(good.pts * good.time_base)


@pytest.mark.parametrize("seed", [0, 1])
def test_damage_at_the_start_keeps_later_positions_those_of_the_input(
    tone_server: str, tmp_path: Path, seed: int
) -> None:
    data, _ = flac_damaged_at_its_start(seed)
    path = tmp_path / "damaged.flac"
    path.write_bytes(data)
    result = against(tone_server, "-f", "json", str(path))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["text"] == "charlie delta echo"
    assert document["audio_duration_s"] == pytest.approx(5.0, abs=0.05)
    (utterance,) = document["utterances"]
    # lead 0.2 s, two 0.3 s words, 0.1 s between, then 1.5 s of pause.
    assert utterance["start_s"] == pytest.approx(2.4, abs=0.05)
    assert utterance["end_s"] == pytest.approx(3.5, abs=0.05)


def test_a_warning_for_damage_at_the_start_gives_its_real_positions(
    tone_server: str, tmp_path: Path
) -> None:
    data, good_from = flac_damaged_at_its_start(seed=1)
    path = tmp_path / "damaged.flac"
    path.write_bytes(data)
    result = against(tone_server, "-f", "json", str(path))
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "could not decode" in line]
    assert len(warnings) == 1, result.stderr
    found = re.search(r"between ([\d.]+) s and ([\d.]+) s", warnings[0])
    assert found, warnings[0]
    start, end = float(found[1]), float(found[2])
    assert 0.0 <= start < end <= good_from + 0.01
    assert end > 0.5


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(3000), "cannot decode it as MP3"),
        (b"fLaC" + bytes(3000), "cannot decode it as FLAC"),
        (b"\x1a\x45\xdf\xa3" + bytes(3000), "cannot decode it as Matroska/WebM"),
    ],
)
def test_an_input_with_no_decodable_audio_is_exit_2_naming_it(
    tone_server: str, tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "broken.bin"
    path.write_bytes(content)
    result = against(tone_server, "-f", "json", str(path))
    assert result.exit_code == 2
    assert f"{path}: {reason}" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "BAD_INPUT"


# -- sniffing: magic numbers, never a decoder's guess -----------------------------


def untagged_mp3(*spoken: str) -> bytes:
    """An MP3 as some recorders write it: frames from the first byte, no ID3 tag."""
    data = encode(tones(*spoken), None, container="mp3", codec="libmp3lame", rate=16000)
    assert data.startswith(b"ID3")  # FFmpeg's muxer writes a tag: strip it
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return data[10 + size :]


def test_an_mp3_without_an_id3_tag_is_sniffed_by_its_frame_sync() -> None:
    data = untagged_mp3("alpha")
    assert data[0] == 0xFF
    assert sniff(data[:4096], at_eof=False, name="x") == Container("MP3", "mp3")


def test_an_mp3_without_an_id3_tag_is_recognized(tone_server: str, tmp_path: Path) -> None:
    data = untagged_mp3(*SPOKEN)
    path = tmp_path / "untagged.mp3"
    path.write_bytes(data)
    result = against(tone_server, "-f", "json", str(path))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["text"] == EXPECTED
    assert document["source"]["format"] == "MP3"


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        (b"\x00\x00\x00\x20ftypM4A ", "MP4"),
        (b"FORM\x00\x00\x10\x00AIFF", "AIFF"),
        (b"FORM\x00\x00\x10\x00AIFC", "AIFF"),
        (b"#!AMR\n", "AMR"),
        (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00", "Matroska/WebM"),
        (b"\xff\xf1\x50\x80\x02\x1f\xfc", "AAC (ADTS)"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "AVI"),
    ],
)
def test_containers_are_told_by_their_magic_numbers(prefix: bytes, kind: str) -> None:
    found = sniff(prefix + bytes(64), at_eof=True, name="x")
    assert isinstance(found, Container) and found.kind == kind


@pytest.mark.parametrize(
    "prefix",
    [
        bytes(64),  # silence
        b"\xff\xff\xfe\xff" * 16,  # quiet negative samples: sync bits, invalid header
        b"\xff\xfb\xf0\x00" * 16,  # a bad bitrate index
    ],
)
def test_raw_pcm_that_merely_starts_with_set_bits_stays_raw(prefix: bytes) -> None:
    found = sniff(prefix, at_eof=True, name="x")
    assert not isinstance(found, Container)


def test_a_wav_the_api_does_not_take_is_decoded_not_refused() -> None:
    found = sniff(wav_header(100, rate=44100, channels=2) + bytes(100), at_eof=True, name="x")
    assert found == Container("WAV", "wav")


# -- zero-copy stays zero-copy; --send-rate, -r and --channels --------------------


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_a_16_bit_mono_wav_at_an_api_rate_goes_out_byte_for_byte(
    stt_server: ScriptedServer, tmp_path: Path, rate: int
) -> None:
    pcm = tones("alpha", rate=rate)
    path = tmp_path / "speech.wav"
    path.write_bytes(wav_header(len(pcm), rate=rate) + pcm)
    result = against(stt_server.address, "-f", "json", str(path))
    assert result.exit_code == 0, result.stderr
    assert stt_server.calls[0].audio_bytes == pcm
    assert stt_server.calls[0].config.specification.sample_rate_hertz == rate
    assert json.loads(result.stdout)["source"] == {
        "format": "WAV",
        "codec": "pcm_s16le",
        "rate": rate,
        "channels": 1,
        "decoded": False,
    }


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_raw_lpcm_at_an_api_rate_goes_out_byte_for_byte(
    stt_server: ScriptedServer, rate: int
) -> None:
    pcm = tones("alpha", rate=rate)
    result = against(stt_server.address, "-r", str(rate), "-f", "json", "-", input=pcm)
    assert result.exit_code == 0, result.stderr
    assert stt_server.calls[0].audio_bytes == pcm
    assert json.loads(result.stdout)["source"]["decoded"] is False


def test_send_rate_resamples_even_a_zero_copy_input(stt_server: ScriptedServer) -> None:
    pcm = tones(*SPOKEN)
    result = against(stt_server.address, "-r", "16000", "--send-rate", "8000", "-", input=pcm)
    assert result.exit_code == 0, result.stderr
    call = stt_server.calls[0]
    assert call.config.specification.sample_rate_hertz == 8000
    assert len(call.audio_bytes) == pytest.approx(len(pcm) / 2, rel=0.01)


@pytest.mark.parametrize(("rate", "channels"), [(44100, 1), (22050, 2), (16000, 2), (11025, 6)])
def test_raw_lpcm_at_any_rate_and_channel_count_is_downmixed_and_resampled(
    tone_server: str, rate: int, channels: int
) -> None:
    pcm = tones(*SPOKEN, rate=rate, channels=channels)
    result = against(
        tone_server, "-f", "json", "-r", str(rate), "--channels", str(channels), "-", input=pcm
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["text"] == EXPECTED
    assert document["source"] == {
        "format": "raw LPCM",
        "codec": "pcm_s16le",
        "rate": rate,
        "channels": channels,
        "decoded": True,
    }
    assert document["audio_duration_s"] == pytest.approx(len(pcm) / 2 / channels / rate, abs=0.02)


def test_a_recording_from_a_fifo_is_decoded_as_it_arrives(
    tone_server: str, recordings: dict[str, Path], tmp_path: Path
) -> None:
    fifo = tmp_path / "live.mp3"
    os.mkfifo(fifo)
    data = recordings["mp3"].read_bytes()

    def feed() -> None:
        with open(fifo, "wb") as pipe:
            for start in range(0, len(data), 4096):
                pipe.write(data[start : start + 4096])

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        result = against(tone_server, "-f", "json", str(fifo))
    finally:
        writer.join(timeout=10)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["text"] == EXPECTED


# -- --rate and --channels describe raw LPCM: a header must agree with them --------


@pytest.fixture(scope="module")
def opus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("opus") / "speech.opus"
    encode(tones(*SPOKEN), path, container="ogg", codec="libopus", out_rate=48000)
    return path


def zero_copy_wav(tmp_path: Path) -> Path:
    pcm = tones(*SPOKEN)
    path = tmp_path / "speech.wav"
    path.write_bytes(wav_header(len(pcm), rate=16000) + pcm)
    return path


CONTRADICTIONS = [
    ("wav-44k-stereo", ("-r", "16000"), "--rate 16000 contradicts the WAV header (44100 Hz)"),
    (
        "wav-44k-stereo",
        ("--channels", "1"),
        "--channels 1 contradicts the WAV header (2 channels)",
    ),
    ("mp3", ("-r", "48000"), "--rate 48000 contradicts the MP3 header (44100 Hz)"),
    ("mp3", ("--channels", "1"), "--channels 1 contradicts the MP3 header (2 channels)"),
    ("aac", ("--channels", "2"), "--channels 2 contradicts the AAC (ADTS) header (1 channel)"),
    ("flac", ("-r", "16000"), "--rate 16000 contradicts the FLAC header (44100 Hz)"),
]


@pytest.mark.parametrize(("name", "options", "message"), CONTRADICTIONS)
def test_a_rate_or_channel_count_that_contradicts_a_header_is_a_usage_error(
    tone_server: str, recordings: dict[str, Path], name: str, options: tuple[str, ...], message: str
) -> None:
    path = recordings[name]
    result = against(tone_server, "-f", "json", *options, str(path))
    assert result.exit_code == 2, result.stderr
    assert f"{path}: {message}" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("name", "options", "message"), CONTRADICTIONS[2:4])
def test_a_contradicting_rate_or_channel_count_is_refused_from_a_pipe_too(
    tone_server: str, recordings: dict[str, Path], name: str, options: tuple[str, ...], message: str
) -> None:
    result = against(tone_server, *options, "-", input=recordings[name].read_bytes())
    assert result.exit_code == 2, result.stderr
    assert f"-: {message}" in result.stderr


def test_channels_contradicting_a_zero_copy_wav_is_a_usage_error(
    tone_server: str, tmp_path: Path
) -> None:
    path = zero_copy_wav(tmp_path)
    result = against(tone_server, "--channels", "2", str(path))
    assert result.exit_code == 2
    assert "--channels 2 contradicts the WAV header (1 channel)" in result.stderr


def test_a_rate_contradicting_ogg_opus_is_a_usage_error(tone_server: str, opus_file: Path) -> None:
    result = against(tone_server, "-r", "16000", str(opus_file))
    assert result.exit_code == 2
    assert "--rate 16000 contradicts the Ogg Opus header (48000 Hz)" in result.stderr


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("wav-44k-stereo", ("-r", "44100", "--channels", "2")),
        ("mp3", ("-r", "44100", "--channels", "2")),
        ("aac", ("--channels", "1")),
    ],
)
def test_a_rate_or_channel_count_that_agrees_with_a_header_is_fine(
    tone_server: str, recordings: dict[str, Path], name: str, options: tuple[str, ...]
) -> None:
    result = against(tone_server, "-f", "json", *options, str(recordings[name]))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["text"] == EXPECTED


def test_agreeing_options_on_a_zero_copy_input_keep_it_zero_copy(
    tone_server: str, tmp_path: Path, opus_file: Path
) -> None:
    wav = against(
        tone_server, "-f", "json", "-r", "16000", "--channels", "1", str(zero_copy_wav(tmp_path))
    )
    opus = against(tone_server, "-f", "json", "-r", "48000", "--channels", "1", str(opus_file))
    for result in (wav, opus):
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["source"]["decoded"] is False
        assert document["text"] == EXPECTED


# -- a decoded pipe that stalls ------------------------------------------------------


def test_closing_a_stalled_decoded_pipe_ends_its_decoder_promptly() -> None:
    """A pipe that stops sending (its writer still open) must not keep FFmpeg and a thread."""
    data = encode(tones(*SPOKEN * 8), None, container="mp3", codec="libmp3lame")
    read_end, write_end = os.pipe()
    # Less than a pipe holds, then nothing more: the writer stalls.
    os.write(write_end, data[:32768])

    async def open_read_and_close() -> bool:
        with open(read_end, "rb", buffering=0) as stdin:
            source = await open_source("-", stdin=stdin)
            assert source.origin.decoded
            assert await source.read(4000)
            # Take all it decoded, so that it waits for the pipe, not for room.
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                while await asyncio.wait_for(source.read(4000), 1.0):
                    pass
            decoder = source._decoder  # type: ignore[attr-defined]
            source.close()
            for _ in range(500):  # up to 5 s: stopping must not wait for the pipe
                if decoder.finished:
                    return True
                await asyncio.sleep(0.01)
            return False

    try:
        assert asyncio.run(open_read_and_close())
    finally:
        os.close(write_end)


# -- joined recordings ------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "channels"), [(44100, 2), (22050, 1)], ids=["mono-then-stereo", "44k-then-22k"]
)
def test_a_recording_that_changes_rate_or_channels_midway_is_recognized_whole(
    tone_server: str, tmp_path: Path, rate: int, channels: int
) -> None:
    """MP3s joined end to end, as podcast tools do: each part keeps its own format."""
    first = encode(
        tones("alpha bravo", rate=44100), None, container="mp3", codec="libmp3lame", rate=44100
    )
    layout = "stereo" if channels == 2 else "mono"
    second = encode(
        tones("charlie delta echo", rate=rate, channels=channels),
        None,
        container="mp3",
        codec="libmp3lame",
        rate=rate,
        layout=layout,
        in_channels=channels,
    )
    path = tmp_path / "joined.mp3"
    path.write_bytes(first + second)
    result = against(tone_server, str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == EXPECTED.split()
