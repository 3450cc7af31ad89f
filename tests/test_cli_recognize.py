"""`sttcli recognize` against a real gRPC server on loopback that records what it gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATA
from support.audio import ramp, wav
from support.cli import against, run_cli
from support.scripted import Reply, ScriptedServer, response

GOLDEN = DATA / "golden"


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    path.write_bytes(wav(ramp(20000)))
    return path


def golden_script() -> list[Reply]:
    # Everything at half-close: the audio position of every reply is then exact.
    return [
        Reply(response("hello", final=False)),
        Reply(
            response(
                "hello world",
                confidence=0.9,
                words=[("hello", 0.1, 0.3), ("world", 0.35, 0.6)],
            )
        ),
        Reply(response("how", final=False)),
        Reply(response("how are you")),
    ]


# -- what is sent ----------------------------------------------------------


def test_a_wav_file_is_sent_as_exact_chunks_without_its_header(
    stt_server: ScriptedServer, speech_wav: Path
) -> None:
    result = against(stt_server.address, "-f", "text", str(speech_wav))
    assert result.exit_code == 0, result.stderr
    (call,) = stt_server.calls
    assert [len(chunk) for chunk in call.audio] == [4000] * 5
    assert call.audio_bytes == ramp(20000)
    spec = call.config.specification
    assert (spec.audio_encoding, spec.sample_rate_hertz) == (1, 16000)
    assert call.half_closed


@pytest.mark.parametrize("args", [["-"], []], ids=["dash", "no-audio-argument"])
def test_stdin_is_streamed_in_exact_chunks(stt_server: ScriptedServer, args: list[str]) -> None:
    result = against(
        stt_server.address, "-r", "8000", "--chunk-size", "333", *args, input=ramp(5000)
    )
    assert result.exit_code == 0, result.stderr
    (call,) = stt_server.calls
    assert [len(c) for c in call.audio] == [333] * 15 + [5]
    assert call.audio_bytes == ramp(5000)
    assert call.config.specification.sample_rate_hertz == 8000


def test_a_wav_on_stdin_has_its_header_stripped(stt_server: ScriptedServer) -> None:
    result = against(stt_server.address, "-", input=wav(ramp(9000), rate=48000))
    assert result.exit_code == 0, result.stderr
    (call,) = stt_server.calls
    assert call.audio_bytes == ramp(9000)
    assert call.config.specification.sample_rate_hertz == 48000


def test_raw_audio_without_a_rate_says_which_rate_applies(stt_server: ScriptedServer) -> None:
    result = against(stt_server.address, "-", input=ramp(100))
    assert result.exit_code == 0
    assert stt_server.calls[0].config.specification.sample_rate_hertz == 48000
    assert (
        result.stderr == "sttcli: -: raw audio and no --rate: the API default of 48000 Hz applies\n"
    )
    quiet = against(stt_server.address, "-q", "-", input=ramp(100))
    assert quiet.stderr == ""


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        (["-l", "ru-RU"], "language_code", "ru-RU"),
        (["--lang", "en-US"], "language_code", "en-US"),
        (["-m", "general"], "model", "general"),
        (["--profanity-filter"], "profanity_filter", True),
        (["--single-utterance"], "single_utterance", True),
        (["--raw-results"], "raw_results", True),
        (["--literature-text"], "literature_text", True),
        (["--partial"], "partial_results", True),
        (["-f", "jsonl"], "partial_results", False),
        (["-f", "live"], "partial_results", True),
        (["-f", "live", "--no-partial"], "partial_results", False),
        ([], "language_code", ""),
        ([], "model", ""),
    ],
)
def test_each_option_sets_its_config_field(
    stt_server: ScriptedServer, speech_wav: Path, args: list[str], field: str, value: object
) -> None:
    result = against(stt_server.address, *args, str(speech_wav))
    assert result.exit_code == 0, result.stderr
    assert getattr(stt_server.calls[0].config.specification, field) == value


def test_folder_id_goes_into_the_config(stt_server: ScriptedServer, speech_wav: Path) -> None:
    assert against(stt_server.address, "--folder-id", "b1g", str(speech_wav)).exit_code == 0
    assert stt_server.calls[0].config.folder_id == "b1g"


def test_folder_id_comes_from_the_environment(
    stt_server: ScriptedServer, speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOLDER_ID", "from-env")
    assert against(stt_server.address, str(speech_wav)).exit_code == 0
    assert stt_server.calls[0].config.folder_id == "from-env"


def test_ogg_opus_is_sent_as_it_is(stt_server: ScriptedServer, tmp_path: Path) -> None:
    ogg = DATA / "weather.ogg"
    result = against(stt_server.address, str(ogg))
    assert result.exit_code == 0, result.stderr
    (call,) = stt_server.calls
    assert call.audio_bytes == ogg.read_bytes()
    spec = call.config.specification
    assert (spec.audio_encoding, spec.sample_rate_hertz) == (2, 0)


# -- metadata ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--api-key", "k1"], {}, "Api-Key k1"),
        (["--iam-token", "t1"], {}, "Bearer t1"),
        ([], {"YC_API_KEY": "k2"}, "Api-Key k2"),
        ([], {"YC_IAM_TOKEN": "t2"}, "Bearer t2"),
        ([], {"IAM_TOKEN": "t3"}, "Bearer t3"),
        ([], {"YC_IAM_TOKEN": "t2", "YC_API_KEY": "k2"}, "Api-Key k2"),
        (["--iam-token", "t1"], {"YC_API_KEY": "k2"}, "Bearer t1"),
        (["--api-key", "k1"], {"YC_IAM_TOKEN": "t2"}, "Api-Key k1"),
    ],
)
def test_credentials_become_the_authorization_header(
    stt_server: ScriptedServer,
    speech_wav: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert against(stt_server.address, *args, str(speech_wav)).exit_code == 0
    assert stt_server.calls[0].metadata["authorization"] == expected


def test_no_credentials_for_a_local_server_send_no_authorization(
    stt_server: ScriptedServer, speech_wav: Path
) -> None:
    assert against(stt_server.address, str(speech_wav)).exit_code == 0
    assert "authorization" not in stt_server.calls[0].metadata


def test_headers_and_normalize_partials_are_sent(
    stt_server: ScriptedServer, speech_wav: Path
) -> None:
    result = against(
        stt_server.address,
        "-H",
        "X-Client-Request-Id: run-42",
        "-H",
        "x-data-logging-enabled:true",
        "--normalize-partials",
        str(speech_wav),
    )
    assert result.exit_code == 0
    metadata = stt_server.calls[0].metadata
    assert metadata["x-client-request-id"] == "run-42"
    assert metadata["x-data-logging-enabled"] == "true"
    assert metadata["x-normalize-partials"] == "true"


@pytest.mark.parametrize("header", ["no colon", ": empty name", "grpc-timeout: 1", "x-b-bin: 1"])
def test_malformed_headers_are_usage_errors(speech_wav: Path, header: str) -> None:
    result = run_cli("recognize", "--endpoint", "127.0.0.1:1", "-H", header, str(speech_wav))
    assert result.exit_code == 2
    assert result.stderr.startswith("sttcli: -H")


def test_both_credential_flags_are_a_usage_error(speech_wav: Path) -> None:
    result = run_cli("recognize", "--iam-token", "t", "--api-key", "k", str(speech_wav))
    assert result.exit_code == 2
    assert "mutually exclusive" in result.stderr
    assert "sttcli:" in result.stderr and "\n" == result.stderr[-1]


def test_missing_credentials_for_the_cloud_fail_before_connecting(speech_wav: Path) -> None:
    result = run_cli("recognize", str(speech_wav))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "no credentials" in result.stderr and "YC_API_KEY" in result.stderr


def test_local_and_endpoint_together_are_a_usage_error(speech_wav: Path) -> None:
    result = run_cli("recognize", "--local", "--endpoint", "127.0.0.1:5", str(speech_wav))
    assert result.exit_code == 2
    assert "--local and --endpoint" in result.stderr


# -- output formats ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "jsonl", "json"])
def test_each_format_matches_its_golden_output(
    stt_server: ScriptedServer, speech_wav: Path, fmt: str
) -> None:
    stt_server.script = golden_script()
    result = against(stt_server.address, "-f", fmt, str(speech_wav))
    assert result.exit_code == 0, result.stderr
    expected = (GOLDEN / f"recognize.{fmt}").read_text()
    assert result.stdout == expected.replace("INPUT", str(speech_wav))


def test_json_is_one_line_with_every_documented_field(
    stt_server: ScriptedServer, speech_wav: Path
) -> None:
    stt_server.script = golden_script()
    result = against(stt_server.address, "-f", "json", str(speech_wav))
    (line,) = result.stdout.splitlines()
    document = json.loads(line)
    assert set(document) == {
        "input",
        "text",
        "utterances",
        "audio_duration_s",
        "error",
        "sessions",
        "retries",
        "source",
    }
    assert document["text"] == "hello world how are you"
    assert document["utterances"][0] == {"text": "hello world", "audio_end_s": 0.6}
    assert document["utterances"][1] == {"text": "how are you", "audio_end_s": 0.625}


def test_output_option_writes_to_a_file(
    stt_server: ScriptedServer, speech_wav: Path, tmp_path: Path
) -> None:
    stt_server.script = golden_script()
    out = tmp_path / "out.txt"
    result = against(stt_server.address, "-o", str(out), str(speech_wav))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert out.read_text() == "hello world\nhow are you\n"


def test_jsonl_reports_the_input_name_as_given(stt_server: ScriptedServer) -> None:
    stt_server.script = [Reply(response("hi"))]
    result = against(stt_server.address, "-f", "jsonl", "-r", "16000", input=ramp(100))
    assert json.loads(result.stdout)["input"] == "-"


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "complaint"),
    [
        (lambda d: d / "missing.wav", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "empty.pcm", b""), "empty input"),
        (lambda d: _write(d / "header-only.wav", wav(b"")), "no audio after the WAV header"),
        (lambda d: _write(d / "song.mp3", b"ID3\x03" + bytes(300)), "cannot decode it as MP3"),
        (lambda d: _write(d / "clip.m4a", bytes(4) + b"ftypM4A " + bytes(300)), "as MP4"),
    ],
)
def test_bad_inputs_fail_with_one_line_and_exit_2(
    stt_server: ScriptedServer, tmp_path: Path, make, complaint: str
) -> None:
    path = make(tmp_path)
    result = against(stt_server.address, "-f", "json", str(path))
    assert result.exit_code == 2
    assert complaint in result.stderr
    assert result.stderr.count("\n") == 1
    document = json.loads(result.stdout)
    assert document["error"]["code"] == "BAD_INPUT"
    assert document["error"]["exit_code"] == 2
    assert stt_server.calls == []


def test_an_empty_stdin_is_bad_input(stt_server: ScriptedServer) -> None:
    result = against(stt_server.address, "-", input=b"")
    assert result.exit_code == 2
    assert "empty input" in result.stderr


def test_a_rate_contradicting_the_wav_header_is_bad_input(
    stt_server: ScriptedServer, speech_wav: Path
) -> None:
    result = against(stt_server.address, "-r", "8000", str(speech_wav))
    assert result.exit_code == 2
    assert "contradicts the WAV header" in result.stderr


# -- dry run --------------------------------------------------------------------


def test_dry_run_prints_the_config_and_masked_metadata_without_connecting(
    speech_wav: Path,
) -> None:
    result = run_cli(
        "recognize",
        "--dry-run",
        "--api-key",
        "AQVN-secret-key",
        "-l",
        "ru-RU",
        "--partial",
        "-H",
        "x-client-request-id: abc",
        str(speech_wav),
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["config"]["specification"] == {
        "audio_encoding": "LINEAR16_PCM",
        "sample_rate_hertz": 16000,
        "language_code": "ru-RU",
        "profanity_filter": False,
        "model": "",
        "partial_results": True,
        "single_utterance": False,
        "audio_channel_count": 0,
        "raw_results": False,
        "literature_text": False,
    }
    assert document["metadata"] == {
        "authorization": "Api-Key ****",
        "x-client-request-id": "abc",
    }
    assert document["endpoint"] == "stt.api.cloud.yandex.net:443"
    assert "AQVN-secret-key" not in result.stdout + result.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
