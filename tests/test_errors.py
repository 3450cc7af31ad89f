"""Every way a call can fail ends in one line on stderr and its documented exit code."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from support.audio import ramp, wav
from support.cli import against, run_cli
from support.scripted import Reply, ScriptedServer, response

from sttcli.errors import EXIT_CODE_BY_STATUS, ExitCode, ServiceError

EXPECTED_EXIT = {
    "INVALID_ARGUMENT": 3,
    "FAILED_PRECONDITION": 3,
    "OUT_OF_RANGE": 3,
    "NOT_FOUND": 3,
    "ALREADY_EXISTS": 3,
    "UNIMPLEMENTED": 3,
    "UNAUTHENTICATED": 4,
    "PERMISSION_DENIED": 4,
    "RESOURCE_EXHAUSTED": 5,
    "UNAVAILABLE": 6,
    "DEADLINE_EXCEEDED": 6,
    "INTERNAL": 7,
    "UNKNOWN": 7,
    "DATA_LOSS": 7,
    "ABORTED": 7,
    "CANCELLED": 7,
}
FAILURES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]


def test_every_grpc_status_has_an_exit_code() -> None:
    assert {code.name for code in FAILURES} == set(EXIT_CODE_BY_STATUS)
    for code in FAILURES:
        assert ServiceError(code.name, "x").exit_code == EXPECTED_EXIT[code.name]


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    path.write_bytes(wav(ramp(12000)))
    return path


@pytest.mark.parametrize("code", FAILURES, ids=lambda c: c.name)
def test_a_server_status_becomes_its_exit_code_and_one_line(
    stt_server: ScriptedServer, audio: Path, code: grpc.StatusCode
) -> None:
    stt_server.script = [Reply(abort=(code, f"details for {code.name}"), after=1)]
    result = against(stt_server.address, "--retries", "0", str(audio))
    assert result.exit_code == EXPECTED_EXIT[code.name], result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"({code.name}): details for {code.name}" in result.stderr
    assert "Traceback" not in result.stderr


def test_auth_failures_come_with_a_hint(stt_server: ScriptedServer, audio: Path) -> None:
    stt_server.script = [Reply(abort=(grpc.StatusCode.UNAUTHENTICATED, "bad token"))]
    result = against(stt_server.address, str(audio))
    assert result.exit_code == ExitCode.AUTH
    assert "check the IAM token (YC_IAM_TOKEN) or API key (YC_API_KEY)" in result.stderr
    assert "YC_FOLDER_ID" in result.stderr


def test_unavailable_names_the_endpoint(stt_server: ScriptedServer, audio: Path) -> None:
    stt_server.script = [Reply(abort=(grpc.StatusCode.UNAVAILABLE, "maintenance"))]
    result = against(stt_server.address, "--retries", "0", str(audio))
    assert f"cannot get an answer from {stt_server.address} (UNAVAILABLE)" in result.stderr


def test_the_servers_status_survives_a_write_racing_its_end(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    """grpc/grpc#36066: grpc.aio would report INTERNAL when a write fails as the call ends."""
    path = tmp_path / "long.pcm"
    path.write_bytes(bytes(8_000_000))
    stt_server.script = [Reply(abort=(grpc.StatusCode.INVALID_ARGUMENT, "rate 44100"), after=3)]
    for _ in range(10):
        result = against(stt_server.address, "-r", "16000", str(path))
        assert result.exit_code == ExitCode.REJECTED, result.stderr
        assert "request rejected (INVALID_ARGUMENT): rate 44100" in result.stderr


def test_request_ids_from_the_server_appear_in_errors(
    stt_server: ScriptedServer, audio: Path
) -> None:
    stt_server.script = [
        Reply(
            abort=(grpc.StatusCode.INTERNAL, "boom"),
            initial_metadata=(("x-request-id", "req-1"),),
            trailing_metadata=(("x-server-trace-id", "trace-9"),),
        )
    ]
    result = against(stt_server.address, "--retries", "0", "-f", "json", str(audio))
    assert result.exit_code == ExitCode.SERVER_FAILURE
    assert "(x-request-id: req-1, x-server-trace-id: trace-9)" in result.stderr
    error = json.loads(result.stdout)["error"]
    assert error == {
        "code": "INTERNAL",
        "message": (
            "server failed (INTERNAL): boom (x-request-id: req-1, x-server-trace-id: trace-9)"
        ),
        "exit_code": 7,
        "request_id": "req-1",
        "server_trace_id": "trace-9",
    }


def test_finals_before_a_failure_are_kept(stt_server: ScriptedServer, audio: Path) -> None:
    stt_server.script = [
        Reply(response("first words"), after=1),
        Reply(abort=(grpc.StatusCode.INVALID_ARGUMENT, "bad chunk"), after=2),
    ]
    result = against(stt_server.address, "-f", "json", str(audio))
    assert result.exit_code == ExitCode.REJECTED
    document = json.loads(result.stdout)
    assert document["text"] == "first words"
    assert document["error"]["code"] == "INVALID_ARGUMENT"


def test_connection_refused_is_unavailable_naming_the_endpoint(audio: Path) -> None:
    result = run_cli(
        "recognize", "--endpoint", "127.0.0.1:1", "--insecure", "--retries", "0", str(audio)
    )
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "cannot get an answer from 127.0.0.1:1 (UNAVAILABLE)" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_tls_handshake_with_a_plaintext_server_is_unavailable(
    stt_server: ScriptedServer, audio: Path
) -> None:
    result = run_cli(
        "recognize",
        "--endpoint",
        stt_server.address,
        "--retries",
        "0",
        "--api-key",
        "k",
        str(audio),
    )
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert stt_server.address in result.stderr


def test_an_unresolvable_host_is_unavailable(audio: Path, refusing_port: int) -> None:
    # The name is looked up at a DNS server on loopback that is not there: no query
    # leaves the machine, and resolving fails as it does for a name that does not exist.
    result = run_cli(
        "recognize",
        "--endpoint",
        f"dns://127.0.0.1:{refusing_port}/no-such-host.invalid:443",
        "--retries",
        "0",
        "--timeout",
        "20",
        "--api-key",
        "k",
        str(audio),
    )
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "no-such-host.invalid:443" in result.stderr


def test_a_missing_ca_file_is_a_usage_error(audio: Path) -> None:
    result = run_cli(
        "recognize", "--endpoint", "127.0.0.1:1", "--ca-file", "/nonexistent.pem", str(audio)
    )
    assert result.exit_code == ExitCode.USAGE
    assert "--ca-file /nonexistent.pem" in result.stderr


def test_the_timeout_covers_the_input(stt_server: ScriptedServer, tmp_path: Path) -> None:
    path = tmp_path / "a.pcm"
    path.write_bytes(bytes(32000))
    # Paced at real time, a second of audio cannot finish within 0.3 s.
    result = against(
        stt_server.address, "-r", "16000", "--speed", "1", "--timeout", "0.3", str(path)
    )
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "DEADLINE_EXCEEDED" in result.stderr
