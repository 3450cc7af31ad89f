"""Standard streams closed (`<&-`, `>&-`, `2>&-`) or full (/dev/full): one line, the right code."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.audio import markers, wav
from support.cli import child_env
from support.faults import FaultServer

PROGRAM = (sys.executable, "-m", "sttcli")


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    path.write_bytes(wav(markers("alpha bravo")))
    return path


@pytest.fixture
def server() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.stop()


def run_with(shell_redirects: str, *args: str, timeout: float = 60) -> tuple[int, bytes, bytes]:
    """sttcli under /bin/sh with redirections such as '<&-' or '>/dev/full'."""
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in (*PROGRAM, *args))
    process = subprocess.run(
        ["/bin/sh", "-c", f"exec {quoted} {shell_redirects}"],
        capture_output=True,
        timeout=timeout,
        env=child_env(),
    )
    return process.returncode, process.stdout, process.stderr


def recognize(server: FaultServer, *args: str) -> list[str]:
    return ["recognize", "--endpoint", server.address, "--insecure", *args]


def test_stdin_closed_and_no_files_is_a_usage_error(server: FaultServer) -> None:
    code, out, err = run_with("<&-", *recognize(server))
    assert (code, out) == (2, b"")
    assert err == b"sttcli: stdin is closed: give AUDIO files, or pipe audio to stdin\n"


def test_stdin_closed_does_not_matter_with_files(server: FaultServer, audio: Path) -> None:
    code, out, err = run_with("<&-", *recognize(server, str(audio)))
    assert (code, out, err) == (0, b"alpha bravo\n", b"")


def test_stdout_closed_is_a_usage_error(server: FaultServer, audio: Path) -> None:
    code, _, err = run_with(">&-", *recognize(server, str(audio)))
    assert code == 2
    assert err == b"sttcli: stdout is closed: nowhere to write results (use -o or --output-dir)\n"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_stdout_full_is_one_line_and_exit_2(server: FaultServer, audio: Path, fmt: str) -> None:
    code, _, err = run_with(">/dev/full", *recognize(server, "-f", fmt, str(audio)))
    assert code == 2, err
    assert err == b"sttcli: cannot write results to stdout: No space left on device\n"


def test_o_on_a_full_device_is_one_line_and_exit_2(server: FaultServer, audio: Path) -> None:
    code, _, err = run_with("", *recognize(server, "-o", "/dev/full", str(audio)))
    assert code == 2, err
    assert err == b"sttcli: cannot write results to /dev/full: No space left on device\n"


@pytest.mark.parametrize("redirect", ["2>&-", "2>/dev/full"])
def test_stderr_closed_or_full_does_not_change_the_outcome(
    server: FaultServer, audio: Path, tmp_path: Path, redirect: str
) -> None:
    code, out, _ = run_with(redirect, *recognize(server, str(audio)))
    assert (code, out) == (0, b"alpha bravo\n")
    code, out, _ = run_with(redirect, *recognize(server, str(tmp_path / "missing.wav")))
    assert (code, out) == (2, b"")


def test_serve_with_stderr_closed_keeps_serving() -> None:
    quoted = " ".join(f"'{a}'" for a in PROGRAM)
    process = subprocess.Popen(
        ["/bin/sh", "-c", f"exec {quoted} serve --engine synthetic --port 0 2>&-"],
        env=child_env(),
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.5)
        assert process.poll() is None, "serve died with stderr closed"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
