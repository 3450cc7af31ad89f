"""End to end on real speech: pocketsphinx behind `--local` and `sttcli serve --engine`.

The recording (tests/data/speech_default_voice.wav, espeak-ng's default voice)
says "please call me back at ten thirty tomorrow morning", a pause, "the
weather is nice today". The
assertions hold to the words the engine gets right at every rate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
import soxr
from conftest import DATA
from support.cli import run_cli, serving
from support.servers import recognize, requests, spec

from sttcli._proto import stt_service_pb2 as pb

SAMPLE = DATA / "speech_default_voice.wav"
FIRST = "please call me back at 10 30 tomorrow morning"
SECOND = "the weather is nice today"

pytestmark = pytest.mark.engine


def pcm(rate: int = 16000) -> bytes:
    audio = SAMPLE.read_bytes()[44:]
    if rate == 16000:
        return audio
    samples = numpy.frombuffer(audio, dtype="<i2")
    return bytes(soxr.resample(samples, 16000, rate).astype("<i2").tobytes())


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """`sttcli serve --port 0` as a user starts it; yields its address."""
    with serving("--engine", "pocketsphinx", "--workers", "2") as address:
        yield address


def test_local_recognizes_the_sample_with_no_network_and_no_credentials() -> None:
    result = run_cli("recognize", "--local", "--local-engine", "pocketsphinx", str(SAMPLE))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{FIRST}\n{SECOND}\n"


def test_serve_answers_the_cli(served: str) -> None:
    result = run_cli(
        "recognize", "--endpoint", served, "--insecure", "-f", "json", "--raw-results", str(SAMPLE)
    )
    document = json.loads(result.stdout)
    assert document["text"] == (
        "please call me back at ten thirty tomorrow morning the weather is nice today"
    )
    assert [round(u["audio_end_s"]) for u in document["utterances"]] == [4, 7]


def test_serve_answers_a_client_built_only_from_the_generated_stubs(served: str) -> None:
    """The vendor's documented flow: config, 4000-byte chunks, chunks[0].alternatives[0].text."""
    texts = []
    for chunk in recognize(served, requests(pcm(), spec(partial_results=True))):
        if chunk.final:
            texts.append(chunk.alternatives[0].text)
    assert texts == [FIRST, SECOND]


def test_partials_grow_before_each_final(served: str) -> None:
    chunks = recognize(served, requests(pcm(), spec(partial_results=True)))
    kinds = [c.final for c in chunks]
    assert kinds.count(True) == 2
    assert kinds.index(True) > 0 and not kinds[0]  # partials first


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_rates_are_resampled(served: str, rate: int) -> None:
    chunks = recognize(served, requests(pcm(rate), spec(sample_rate_hertz=rate)))
    text = " ".join(c.alternatives[0].text for c in chunks if c.final)
    assert "call me back" in text and "tomorrow morning" in text
    if rate == 48000:
        assert text == f"{FIRST} {SECOND}"


def test_ogg_opus_is_decoded(served: str) -> None:
    ogg = (DATA / "speech.ogg").read_bytes()
    chunks = recognize(served, requests(ogg, spec(audio_encoding=pb.RecognitionSpec.OGG_OPUS)))
    assert [c.alternatives[0].text for c in chunks if c.final] == [FIRST, SECOND]


def test_text_options_apply(served: str) -> None:
    chunks = recognize(served, requests(pcm(), spec(raw_results=True, literature_text=True)))
    assert [c.alternatives[0].text for c in chunks] == [
        "Please call me back at ten thirty tomorrow morning.",
        "The weather is nice today.",
    ]


def test_a_stream_does_not_depend_on_what_its_decoder_heard_before(served: str) -> None:
    """Two workers, many streams: each result must equal a fresh decoder's."""
    first = recognize(served, requests(pcm()))
    for rate in (8000, 48000):  # each worker hears something else in between
        recognize(served, requests(pcm(rate)[: rate * 6], spec(sample_rate_hertz=rate)))
    assert recognize(served, requests(pcm())) == first


def test_an_utterance_cut_for_length_keeps_its_timeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speech with no pause is cut every so often; the parts go on where the last ended."""
    from sttcli.server import sphinx_decoder
    from sttcli.server.engine import Final

    monkeypatch.setattr(sphinx_decoder, "_MAX_UTTERANCE_BYTES", 32000)  # 1 s
    live, final = sphinx_decoder.make_decoders()
    decoder = sphinx_decoder.StreamDecoder(live, final, 16000, partials=True)
    audio = pcm()
    events = []
    for start in range(0, len(audio), 4000):
        events += decoder.feed(audio[start : start + 4000])
    events += decoder.finish()
    words = [w for e in events if isinstance(e, Final) for w in e.words]
    assert len([e for e in events if isinstance(e, Final)]) > 3
    starts = [w.start_s for w in words]
    assert starts == sorted(starts)
    assert words[-1].end_s > 6.0  # "today", near the end of the sample


def _as_recording(path: Path, container: str, codec: str, **options: Any) -> Path:
    """The sample as a user's recording: 44.1 kHz stereo, in `container`."""
    from support.tones import encode

    stereo = numpy.repeat(numpy.frombuffer(pcm(44100), dtype="<i2"), 2).tobytes()
    encode(
        stereo,
        path,
        container=container,
        codec=codec,
        rate=44100,
        layout="stereo",
        in_channels=2,
        **options,
    )
    return path


RECORDINGS = {
    "mp3": ("mp3", "libmp3lame", {}),
    "m4a": ("ipod", "aac", {"options": {"movflags": "faststart"}}),
    "flac": ("flac", "flac", {}),
    "wav": ("wav", "pcm_s16le", {}),
    "mkv": ("matroska", "libmp3lame", {"video": True}),
}


def _words(served: str, *args: str, input: bytes | None = None) -> list[str]:
    result = run_cli(
        "recognize", "--endpoint", served, "--insecure", "-f", "json", *args, input=input
    )
    assert result.exit_code == 0, result.stderr
    return str(json.loads(result.stdout)["text"]).split()


def _within_one_word(heard: list[str], reference: list[str]) -> bool:
    import difflib

    matcher = difflib.SequenceMatcher(a=reference, b=heard)
    edits = sum(
        max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )
    return edits <= 1


@pytest.mark.parametrize("kind", RECORDINGS)
def test_a_recording_gives_the_transcript_of_the_16k_wav(
    served: str, tmp_path: Path, kind: str
) -> None:
    container, codec, options = RECORDINGS[kind]
    path = _as_recording(tmp_path / f"speech.{kind}", container, codec, **options)
    reference = _words(served, str(SAMPLE))
    assert _within_one_word(_words(served, str(path)), reference)
    if kind != "m4a":
        assert _within_one_word(_words(served, "-", input=path.read_bytes()), reference)


def test_opus_on_the_wire_gives_the_transcript_of_lpcm(served: str) -> None:
    reference = _words(served, str(SAMPLE))
    assert _within_one_word(_words(served, "--send-as", "oggopus", str(SAMPLE)), reference)
