"""Behaviours found by running sttcli as a user would, kept working."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from support.audio import markers, wav
from support.cli import against, run_cli, spawn, spawn_against
from support.faults import FaultServer
from support.run import recognize_path
from support.scripted import Reply, ScriptedServer, response


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


def test_quiet_still_names_failed_inputs(tmp_path: Path) -> None:
    server = FaultServer()
    good = tmp_path / "a.wav"
    good.write_bytes(wav(markers("charlie")))
    try:
        result = against(server.address, "-q", str(good), str(tmp_path / "nope.wav"))
    finally:
        server.stop()
    assert result.exit_code == 2
    assert result.stderr == f"FAILED {tmp_path / 'nope.wav'}: no such file\n"


def test_a_final_earlier_than_the_last_is_kept_within_a_session(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    """Only resent audio can be recognized twice; within one session every final counts."""
    stt_server.script = [
        Reply(response("later words", words=[("later", 20.0, 21.0)]), after=1),
        Reply(response("earlier words", words=[("earlier", 1.0, 2.0)]), after=2),
    ]
    path = tmp_path / "a.pcm"
    path.write_bytes(bytes(16000))
    result, _ = asyncio.run(recognize_path(path, stt_server.address, rate=16000))
    assert [u.text for u in result.utterances] == ["later words", "earlier words"]


def test_result_files_are_as_readable_as_others(tmp_path: Path) -> None:
    server = FaultServer()
    audio = tmp_path / "a.wav"
    audio.write_bytes(wav(markers("delta")))
    out = tmp_path / "out"
    out.mkdir()
    umask = os.umask(0o022)
    try:
        assert against(server.address, "--output-dir", str(out), str(audio)).exit_code == 0
    finally:
        os.umask(umask)
        server.stop()
    assert (out / "a.txt").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--max-session-bytes", "1"], "at least 32000"),
        (["--max-session-seconds", "0.001"], "at least 1"),
        (["--ca-file", "/nonexistent.pem"], "--ca-file /nonexistent.pem"),
    ],
)
def test_settings_that_cannot_work_are_usage_errors(args: list[str], complaint: str) -> None:
    result = run_cli("recognize", "--endpoint", "127.0.0.1:1", *args, "x.wav")
    assert result.exit_code == 2 and complaint in result.stderr


def test_stdin_listed_twice_is_a_usage_error() -> None:
    result = run_cli("recognize", "--endpoint", "127.0.0.1:1", "--from-file", "-", input="-\n-\n")
    assert result.exit_code == 2 and "once at most" in result.stderr


def test_serve_refuses_a_taken_port_and_a_foreign_address() -> None:
    first = spawn(
        "serve", "--engine", "synthetic", "--port", "0", stderr=subprocess.PIPE, text=True
    )
    assert first.stderr is not None
    port = first.stderr.readline().split(":")[-1].strip()
    try:
        for args in (["--port", port], ["--host", "999.1.1.1", "--port", "0"]):
            second = run_cli("serve", "--engine", "synthetic", *args)
            assert second.exit_code == 2, second.stderr
            assert "cannot listen on" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
