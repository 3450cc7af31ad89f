"""Every bad input a careless user or an attacker tried, through `--local` and through `serve`.

Each case must end with its documented exit code and exactly one line on
stderr, saying why, never a traceback. The table is the contract: a new
defect found by hand becomes a row here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from support.audio import markers, wav
from support.cli import run_cli
from support.servers import recognize, running_server, spec

from sttcli._proto import stt_service_pb2 as pb
from sttcli.server.synthetic import SyntheticEngine

Setup = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Case:
    name: str
    args: Setup  # builds the files it needs in tmp_path, returns the arguments
    exit_code: int
    says: str  # a piece of the one line on stderr ("" when nothing may be said)
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)
    unchanged: Callable[[Path], bool] | None = None  # inputs that must survive the run


def audio(tmp_path: Path, name: str = "a.wav") -> str:
    path = tmp_path / name
    path.write_bytes(wav(markers("alpha")))
    return str(path)


def fixed(*args: str) -> Setup:
    return lambda tmp_path: [*args, audio(tmp_path)]


def numeric(option: str, value: str) -> Case:
    return Case(f"{option} {value}", fixed(option, value), 2, option)


def _from_file(content: bytes) -> Setup:
    def setup(tmp_path: Path) -> list[str]:
        listed = tmp_path / "list.txt"
        listed.write_bytes(content)
        return ["--from-file", str(listed)]

    return setup


def _output_is_input(tmp_path: Path) -> list[str]:
    path = audio(tmp_path)
    return [path, "-o", path]


def _output_dir_overwrites_input(tmp_path: Path) -> list[str]:
    path = tmp_path / "a.txt"
    path.write_bytes(bytes(3200))  # raw LPCM named .txt: its result would be a.txt
    return ["-r", "16000", str(path), "--output-dir", str(tmp_path)]


def _input_intact(name: str) -> Callable[[Path], bool]:
    return lambda tmp_path: (tmp_path / name).stat().st_size > 1000


def _output_dir_under_a_file(tmp_path: Path) -> list[str]:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    return ["--output-dir", str(blocker / "out"), audio(tmp_path)]


def _ca_file(content: bytes) -> Setup:
    def setup(tmp_path: Path) -> list[str]:
        ca = tmp_path / "roots.pem"
        ca.write_bytes(content)
        return ["--ca-file", str(ca), audio(tmp_path)]

    return setup


def _missing(tmp_path: Path) -> list[str]:
    return [str(tmp_path / "nope.wav")]


def _empty(tmp_path: Path) -> list[str]:
    (tmp_path / "empty.wav").write_bytes(b"")
    return [str(tmp_path / "empty.wav")]


def _directory(tmp_path: Path) -> list[str]:
    return [str(tmp_path)]


def _bad_wav(tmp_path: Path) -> list[str]:
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    return [str(tmp_path / "broken.wav")]


def _bad_mp3(tmp_path: Path) -> list[str]:
    (tmp_path / "tagged.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x10garbage")
    return [str(tmp_path / "tagged.mp3")]


BAD_NUMBERS = ("nan", "inf", "-inf", "1e308")

CASES = [
    Case("missing file", _missing, 2, "no such file"),
    Case("empty file", _empty, 2, "empty.wav"),
    Case("a directory", _directory, 2, "directory"),
    Case("broken WAV header", _bad_wav, 2, "broken.wav"),
    Case("MP3 that is not", _bad_mp3, 2, "tagged.mp3"),
    Case("empty stdin", lambda _: ["-"], 2, "empty input", stdin=b""),
    Case("-o is the input", _output_is_input, 2, "is an input", unchanged=_input_intact("a.wav")),
    Case(
        "--output-dir result is an input",
        _output_dir_overwrites_input,
        2,
        "is an input",
        unchanged=_input_intact("a.txt"),
    ),
    Case("--output-dir under a file", _output_dir_under_a_file, 2, "--output-dir"),
    Case("--output-dir unwritable", fixed("--output-dir", "/proc/sttcli-x"), 2, "--output-dir"),
    Case("--output-dir read-only", fixed("--output-dir", "/proc"), 2, "cannot write in it"),
    Case("--from-file not UTF-8", _from_file(b"caf\xe9.wav\n"), 2, "no such file"),
    Case("--from-file binary", _from_file(b"RIFF\x00\x00\x00\x00WAVE"), 2, "--from-file"),
    *[
        numeric(option, value)
        for option in (
            "--speed",
            "--timeout",
            "--max-session-seconds",
            "--max-rps",
            "--keepalive-silence",
        )
        for value in BAD_NUMBERS
    ],
    Case("--chunk-size 0", fixed("--chunk-size", "0"), 2, "--chunk-size"),
    Case("--retries -1", fixed("--retries", "-1"), 2, "--retries"),
    Case("--api-key newline", fixed("--api-key", "abc\ndef"), 2, "--api-key"),
    Case("--api-key non-ASCII", fixed("--api-key", "ключ12345"), 2, "--api-key"),
    Case("--iam-token escape", fixed("--iam-token", "t1\x1b]0;owned\x07"), 2, "--iam-token"),
    Case("YC_API_KEY control", fixed(), 2, "YC_API_KEY", env={"YC_API_KEY": "key\x7f1"}),
    Case("-H control", fixed("-H", "x-tag: a\x01b"), 2, "-H"),
    Case("-H non-ASCII", fixed("-H", "x-tag: héllo"), 2, "-H"),
    Case("-H over-long", fixed("-H", "x-tag: " + "a" * 20_000), 2, "metadata"),
    Case("-H malformed", fixed("-H", "no colon"), 2, "-H"),
    Case("--ca-file not PEM", _ca_file(b"\x00\x01 not a certificate"), 2, "--ca-file"),
    Case("--ca-file missing", fixed("--ca-file", "/nonexistent/roots.pem"), 2, "--ca-file"),
    Case("-j 0", fixed("-j", "0"), 2, "--jobs"),
    Case("--rate 44100", fixed("--rate", "44100"), 2, "--rate"),
]

ENDPOINT_CASES = [
    Case("--endpoint empty", fixed("--endpoint", ""), 2, "--endpoint"),
    Case("--endpoint port over 65535", fixed("--endpoint", "127.0.0.1:70000"), 2, "port"),
    Case("--endpoint port not a number", fixed("--endpoint", "127.0.0.1:http"), 2, "port"),
]


@pytest.fixture(scope="module")
def serve_address() -> Iterator[str]:
    with running_server(SyntheticEngine()) as address:
        yield address


@pytest.fixture
def synthetic_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """--local on the synthetic engine: the corpus is about the CLI, not about an engine."""
    monkeypatch.setenv("STTCLI_LOCAL_ENGINE", "synthetic")


def run_case(case: Case, tmp_path: Path, how: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    args = case.args(tmp_path)
    result = run_cli("recognize", *how, *args, input=case.stdin)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert result.exit_code == case.exit_code, result.stderr
    assert len(lines) == 1, result.stderr
    assert case.says in lines[0]
    if case.unchanged is not None:
        assert case.unchanged(tmp_path)


@pytest.mark.usefixtures("synthetic_local")
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_through_local(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_case(case, tmp_path, ["--local"], monkeypatch)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input_through_serve(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve_address: str
) -> None:
    run_case(case, tmp_path, ["--endpoint", serve_address, "--insecure"], monkeypatch)


@pytest.mark.parametrize("case", ENDPOINT_CASES, ids=lambda case: case.name)
def test_bad_endpoints(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(case, tmp_path, ["--insecure"], monkeypatch)


# -- `sttcli serve`: options it must refuse ----------------------------------

SERVE_CASES = [
    (["--api-key", ""], "--api-key"),
    (["--iam-token", ""], "--iam-token"),
    (["--api-key", "key\nwith newline"], "--api-key"),
    (["--iam-token", "tökén"], "--iam-token"),
    *[(["--max-session-seconds", value], "--max-session-seconds") for value in BAD_NUMBERS],
    (["--max-session-bytes", "0"], "--max-session-bytes"),
    (["--port", "70000"], "--port"),
    (["--port", "-1"], "--port"),
    (["--workers", "0"], "--workers"),
    (["--engine", "nope"], "--engine"),
]


@pytest.mark.parametrize(("args", "says"), SERVE_CASES, ids=lambda v: repr(v)[:40])
def test_bad_serve_options(args: list[str], says: str) -> None:
    result = run_cli("serve", "--engine", "synthetic", "--port", "0", *args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and says in lines[0], result.stderr


# -- hostile streams, through `serve` and through the server `--local` runs ---


def _config(**fields: object) -> Iterator[pb.StreamingRecognitionRequest]:
    folder = fields.pop("folder_id", "")
    config = pb.RecognitionConfig(specification=spec(**fields), folder_id=str(folder))
    yield pb.StreamingRecognitionRequest(config=config)
    yield pb.StreamingRecognitionRequest(audio_content=markers("alpha"))


def _audio_first() -> Iterator[pb.StreamingRecognitionRequest]:
    yield pb.StreamingRecognitionRequest(audio_content=bytes(3200))


def _two_configs() -> Iterator[pb.StreamingRecognitionRequest]:
    yield from _config()
    yield from _config()


HUGE = "x" * 100_000
STREAM_CASES = [
    ("language_code 100 KB", lambda: _config(language_code=HUGE), "INVALID_ARGUMENT"),
    ("model 100 KB", lambda: _config(model=HUGE), "INVALID_ARGUMENT"),
    ("folder_id 100 KB", lambda: _config(folder_id=HUGE), "INVALID_ARGUMENT"),
    ("language escape", lambda: _config(language_code="\x1b]0;x\x07"), "INVALID_ARGUMENT"),
    ("model newline", lambda: _config(model="gen\neral"), "INVALID_ARGUMENT"),
    ("rate 44100", lambda: _config(sample_rate_hertz=44100), "INVALID_ARGUMENT"),
    ("stereo", lambda: _config(audio_channel_count=2), "INVALID_ARGUMENT"),
    ("MP3", lambda: _config(audio_encoding=pb.RecognitionSpec.MP3), "INVALID_ARGUMENT"),
    ("unknown encoding", lambda: _config(audio_encoding=99), "INVALID_ARGUMENT"),
    ("audio first", _audio_first, "INVALID_ARGUMENT"),
    ("two configs", _two_configs, "INVALID_ARGUMENT"),
    ("nothing at all", lambda: iter(()), "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize(("name", "stream", "status"), STREAM_CASES, ids=lambda v: str(v)[:30])
def test_hostile_streams_get_their_status_and_a_short_reason(
    name: str, stream: Callable[[], Iterator[pb.StreamingRecognitionRequest]], status: str
) -> None:
    with running_server(SyntheticEngine()) as address:
        with pytest.raises(grpc.RpcError) as caught:
            recognize(address, stream())
    error = caught.value
    assert error.code().name == status
    details = error.details()
    assert details and len(details) < 300 and details.isprintable(), details
