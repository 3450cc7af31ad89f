"""Secrets never show: not in results, errors, logs, -v output or tracebacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from support.audio import ramp, wav
from support.cli import against, run_cli
from support.scripted import Reply, ScriptedServer

SECRET = "AQVNsecret-0123456789"
TOKEN = "t1.9euelZsecret-token"


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    path.write_bytes(wav(ramp(8000)))
    return path


def assert_clean(*outputs: str) -> None:
    for output in outputs:
        assert SECRET not in output and TOKEN not in output, output


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK])
@pytest.mark.parametrize("flag", [["--api-key", SECRET], ["--iam-token", TOKEN]])
def test_no_failure_shows_the_credential(
    stt_server: ScriptedServer, audio: Path, code: grpc.StatusCode, flag: list[str]
) -> None:
    # A careless server even echoes the credential in its error details.
    echoed = f"rejected credential {flag[1]}"
    stt_server.script = [Reply(abort=(code, echoed))]
    result = against(stt_server.address, *flag, "--retries", "0", "-vv", "-f", "json", str(audio))
    assert result.exit_code != 0
    assert "****" in result.stderr
    assert_clean(result.stdout, result.stderr)


def test_credentials_from_the_environment_do_not_show_either(
    stt_server: ScriptedServer, audio: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YC_API_KEY", SECRET)
    stt_server.script = [Reply(abort=(grpc.StatusCode.UNAUTHENTICATED, f"bad key {SECRET}"))]
    result = against(stt_server.address, "-vv", str(audio))
    assert result.exit_code == 4
    assert "using API key from YC_API_KEY" in result.stderr
    assert_clean(result.stdout, result.stderr)


def test_dry_run_and_headers_mask_secrets(audio: Path) -> None:
    result = run_cli(
        "recognize", "--dry-run", "--iam-token", TOKEN, "-H", f"x-api-key: {SECRET}", str(audio)
    )
    assert result.exit_code == 0
    assert '"authorization": "Bearer ****"' in result.stdout
    assert '"x-api-key": "****"' in result.stdout
    assert_clean(result.stdout, result.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["-H", f"Bearer {SECRET}"],  # no colon: the whole text may be a secret
        ["--iam-token", TOKEN, "--api-key", SECRET],
        ["-H", f"grpc-x: {SECRET}"],
    ],
)
def test_usage_errors_do_not_echo_secrets(audio: Path, args: list[str]) -> None:
    result = run_cli("recognize", "--endpoint", "127.0.0.1:1", *args, str(audio))
    assert result.exit_code == 2
    assert_clean(result.stdout, result.stderr)


def test_an_internal_error_with_a_traceback_is_scrubbed(
    stt_server: ScriptedServer, audio: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sttcli.session

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"bug while holding {SECRET}")

    monkeypatch.setattr(sttcli.session.InputRecognizer, "_resume_point", explode)
    monkeypatch.setattr(sttcli.session.InputRecognizer, "run", explode)
    result = against(stt_server.address, "--api-key", SECRET, "-v", str(audio))
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "internal error: RuntimeError" in result.stderr
    assert_clean(result.stdout, result.stderr)


def test_insecure_to_a_remote_host_warns_that_credentials_travel_in_clear(audio: Path) -> None:
    result = run_cli(
        "recognize",
        "--dry-run",
        "--endpoint",
        "stt.example.com:80",
        "--insecure",
        "--api-key",
        SECRET,
        str(audio),
    )
    assert "credentials go over the network in clear text" in result.stderr
    assert_clean(result.stdout, result.stderr)
    local = run_cli(
        "recognize",
        "--dry-run",
        "--endpoint",
        "127.0.0.1:80",
        "--insecure",
        "--api-key",
        SECRET,
        str(audio),
    )
    assert "clear text" not in local.stderr


def test_the_server_never_logs_credentials(audio: Path) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sttcli",
            "serve",
            "--engine",
            "synthetic",
            "--port",
            "0",
            "--api-key",
            SECRET,
            "-vv",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert server.stderr is not None
    address = server.stderr.readline().split()[-1]
    try:
        for key in (SECRET, TOKEN):
            result = against(address, "--api-key", key, str(audio))
            assert result.exit_code == (0 if key == SECRET else 4)
            assert_clean(result.stdout, result.stderr)
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=30)
    assert "UNAUTHENTICATED" in log
    assert_clean(log)
