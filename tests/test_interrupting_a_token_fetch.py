"""Ctrl-C while a token is being fetched ends the run at once, not when the fetch times out."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.audio import ramp, wav
from support.cli import spawn_against
from support.iam import TestKey
from support.scripted import ScriptedServer


@pytest.fixture
def silent_iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """An IAM endpoint on loopback that takes the connection and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(30)
        port = listener.getsockname()[1]
        monkeypatch.setenv("YC_IAM_ENDPOINT", f"http://127.0.0.1:{port}/iam/v1/tokens")
        yield listener


def test_ctrl_c_while_iam_does_not_answer_exits_130_promptly(
    stt_server: ScriptedServer, silent_iam: socket.socket, test_key: TestKey, tmp_path: Path
) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(wav(ramp(8000)))
    key = test_key.write(tmp_path / "key.json")
    process = spawn_against(
        stt_server.address,
        "--sa-key-file",
        str(key),
        str(audio),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        connection, _ = silent_iam.accept()  # the fetch has begun, and will wait 15 s
        with connection:
            process.send_signal(signal.SIGINT)
            # Generous: this catches a hang until the fetch's timeout, it measures nothing.
            _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert err.decode().splitlines()[-1] == "sttcli: interrupted", err
    assert stt_server.calls == []
