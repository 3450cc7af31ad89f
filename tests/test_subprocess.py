"""The installed `sttcli` as a real process: signals, pipes, terminals, start-up."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.audio import ramp, wav
from support.cli import spawn, spawn_against
from support.scripted import Reply, ScriptedServer, response

STTCLI = shutil.which("sttcli") or str(Path(sys.executable).parent / "sttcli")


def installed_against(address: str, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    """The installed `sttcli recognize`, pointed at a local plaintext server."""
    return spawn_against(address, *args, program=[STTCLI], **popen)


def test_version_and_help_work() -> None:
    out = subprocess.run([STTCLI, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("sttcli ")
    help_text = subprocess.run([STTCLI, "recognize", "--help"], capture_output=True, text=True)
    assert "--chunk-size" in help_text.stdout and help_text.returncode == 0


def test_python_dash_m_is_the_same_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sttcli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("sttcli ")


def test_recognizes_a_file_end_to_end(stt_server: ScriptedServer, tmp_path: Path) -> None:
    stt_server.script = [Reply(response("hello from a process"))]
    path = tmp_path / "a.wav"
    path.write_bytes(wav(ramp(8000)))
    process = installed_against(
        stt_server.address,
        str(path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (0, b"hello from a process\n", b"")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_ctrl_c_cancels_the_stream_and_keeps_the_finals(
    stt_server: ScriptedServer, tmp_path: Path, fmt: str
) -> None:
    stt_server.script = [Reply(response("first words"), after=1)]
    path = tmp_path / "long.wav"
    path.write_bytes(wav(bytes(32000 * 30)))  # 30 s, sent in real time
    process = installed_against(
        stt_server.address,
        "--speed",
        "1",
        "-f",
        fmt,
        str(path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not stt_server.calls or len(stt_server.calls[0].audio) < 3:
        assert time.monotonic() < deadline, "the stream never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert err.decode().endswith("sttcli: interrupted\n")
    assert b"Traceback" not in err
    if fmt == "text":
        assert out == b"first words\n"
    else:
        document = json.loads(out)
        assert document["text"] == "first words"
        assert document["error"]["code"] == "INTERRUPTED"
        assert document["error"]["exit_code"] == 130


def test_a_closed_stdout_ends_quietly(stt_server: ScriptedServer, tmp_path: Path) -> None:
    stt_server.script = [Reply(response(f"line {n}"), after=n) for n in range(1, 200)]
    path = tmp_path / "a.wav"
    path.write_bytes(wav(bytes(4000 * 200)))
    process = installed_against(
        stt_server.address,
        "--speed",
        "20",
        str(path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert select.select([process.stdout], [], [], 30)[0], "no result within 30 s"
    assert process.stdout.readline() == b"line 1\n"
    process.stdout.close()  # like `| head -1`
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert err == b""


def test_no_audio_and_a_terminal_on_stdin_prints_usage() -> None:
    controller, terminal = pty.openpty()
    try:
        process = spawn(
            "recognize",
            "--api-key",
            "k",
            program=[STTCLI],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = process.communicate(timeout=30)
    finally:
        os.close(controller)
        os.close(terminal)
    assert process.returncode == 2
    assert b"Usage: sttcli recognize" in err
    assert out == b""
