"""Pipes that stay open (a microphone) and FIFOs: read once, stopped cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc
from support.audio import markers, wav
from support.cli import against, spawn_against
from support.faults import FaultServer
from support.scripted import Reply, ScriptedServer


def recognizing_an_open_pipe(address: str, data: bytes) -> subprocess.Popen[bytes]:
    """sttcli reading raw audio from a pipe that gets `data` and then stays open, like a mic."""
    read, write = os.pipe()

    def feed() -> None:
        os.write(write, data)
        time.sleep(30)
        os.close(write)

    threading.Thread(target=feed, daemon=True).start()
    process = spawn_against(
        address, "-r", "16000", "-", stdin=read, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    os.close(read)
    return process


def test_a_server_error_while_stdin_is_still_open_exits_with_its_code(
    stt_server: ScriptedServer,
) -> None:
    stt_server.script = [
        Reply(abort=(grpc.StatusCode.INVALID_ARGUMENT, "no such language"), after=1)
    ]
    process = recognizing_an_open_pipe(stt_server.address, bytes(32000))
    _, err = process.communicate(timeout=30)
    assert process.returncode == 3, err
    assert err.decode().count("\n") == 1 and b"Fatal" not in err


def test_ctrl_c_while_stdin_is_open_exits_130(stt_server: ScriptedServer) -> None:
    process = recognizing_an_open_pipe(stt_server.address, bytes(8000))
    deadline = time.monotonic() + 20
    while not stt_server.calls:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert b"Fatal" not in err and b"Traceback" not in err


def test_a_fifo_among_several_inputs_is_read_once(tmp_path: Path) -> None:
    server = FaultServer()
    fifo = tmp_path / "live.fifo"
    os.mkfifo(fifo)
    regular = tmp_path / "b.wav"
    regular.write_bytes(wav(markers("bravo")))

    def feed() -> None:
        with open(fifo, "wb") as writer:
            writer.write(wav(markers("alpha")))

    threading.Thread(target=feed, daemon=True).start()
    try:
        result = against(server.address, "-f", "json", str(fifo), str(regular))
    finally:
        server.stop()
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["alpha", "bravo"]
