"""Settings and combinations that cannot work: usage errors (exit 2), said in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.audio import markers, wav
from support.cli import run_cli
from support.scripted import ScriptedServer

from sttcli.options import DEFAULT_ENDPOINT


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--max-session-bytes", "1"], "at least 32000"),
        (["--max-session-seconds", "0.001"], "--max-session-seconds"),
        (["--ca-file", "/nonexistent.pem"], "--ca-file /nonexistent.pem"),
    ],
)
def test_settings_that_cannot_work_are_usage_errors(args: list[str], complaint: str) -> None:
    result = run_cli("recognize", "--endpoint", "127.0.0.1:1", *args, "x.wav")
    assert result.exit_code == 2 and complaint in result.stderr


def test_stdin_listed_twice_is_a_usage_error() -> None:
    result = run_cli("recognize", "--endpoint", "127.0.0.1:1", "--from-file", "-", input="-\n-\n")
    assert result.exit_code == 2 and "once at most" in result.stderr


@pytest.mark.parametrize(
    "option",
    ["--speed", "--timeout", "--max-session-seconds", "--max-rps", "--keepalive-silence"],
)
@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "-1"])
def test_numbers_that_are_not_finite_or_in_range_are_refused_while_parsing(
    option: str, value: str
) -> None:
    result = run_cli("recognize", "--endpoint", "127.0.0.1:1", option, value, "x.wav")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"sttcli: Invalid value for '{option}'")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "0"])
def test_serve_refuses_them_too(value: str) -> None:
    result = run_cli("serve", "--engine", "synthetic", "--max-session-seconds", value)
    assert result.exit_code == 2 and "--max-session-seconds" in result.stderr


def test_dry_run_with_the_default_endpoint_and_no_credentials_says_a_real_run_would_fail(
    tmp_path: Path,
) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(wav(markers("alpha")))
    result = run_cli("recognize", "--dry-run", str(audio))
    assert result.exit_code == 0
    assert "no credentials" in result.stderr and DEFAULT_ENDPOINT in result.stderr
    assert "a real run would stop here" in result.stderr


def test_an_authorization_header_from_h_counts_as_credentials(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(wav(markers("alpha")))
    result = run_cli(
        "recognize",
        "--endpoint",
        stt_server.address,
        "--insecure",
        "-v",
        "-H",
        "authorization: Api-Key abcdefgh12345",
        str(audio),
    )
    assert result.exit_code == 0, result.stderr
    assert "no credentials" not in result.stderr
    assert "using the authorization header from -H" in result.stderr
    assert "abcdefgh12345" not in result.stderr
    assert stt_server.calls[0].metadata["authorization"] == "Api-Key abcdefgh12345"
