"""SIGTERM is Ctrl-C's twin (exit 143), and either may come at any moment of a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.audio import markers, wav
from support.cli import run_cli, spawn, spawn_against
from support.scripted import Reply, ScriptedServer, response

from sttcli.commands import serve
from sttcli.server.synthetic import SyntheticEngine


def long_wav(tmp_path: Path, name: str = "long.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(wav(bytes(32000 * 30)))  # 30 s, sent in real time
    return path


def test_sigterm_writes_the_json_of_what_was_recognized_and_exits_143(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    stt_server.script = [Reply(response("first words"), after=1)]
    process = spawn_against(
        stt_server.address,
        "--speed",
        "1",
        "-f",
        "json",
        str(long_wav(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stt_server.wait_for_streams()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 143, err
    assert err == b"sttcli: terminated (SIGTERM)\n"
    document = json.loads(out)
    assert document["text"] == "first words"
    assert document["error"]["code"] == "INTERRUPTED"
    assert document["error"]["exit_code"] == 143


def test_sigterm_with_an_output_dir_keeps_what_was_recognized_in_a_partial_file(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    stt_server.script = [Reply(response("first words"), after=1)]
    out = tmp_path / "out"
    process = spawn_against(
        stt_server.address,
        "--speed",
        "1",
        "--output-dir",
        str(out),
        str(long_wav(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stt_server.wait_for_streams()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 143, err
    assert (out / "long.txt.partial").read_text() == "first words\n"
    assert not (out / "long.txt").exists()  # --skip-existing runs it again


def test_the_batch_summary_counts_interrupted_inputs_as_interrupted(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    stt_server.script = [Reply(response("words"), after=1)]
    inputs = [str(long_wav(tmp_path, f"{name}.wav")) for name in ("a", "b", "c")]
    process = spawn_against(
        stt_server.address,
        "--speed",
        "1",
        "-j",
        "2",
        *inputs,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stt_server.wait_for_streams(calls=2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    summary = err.decode().splitlines()[-1]
    assert summary.startswith("summary: 0 ok, 0 failed, 2 interrupted, 1 not run;"), err


def test_a_signal_while_the_local_server_starts_is_a_clean_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the first second of --local landed inside the engine's start-up."""
    audio = tmp_path / "a.wav"
    audio.write_bytes(wav(markers("alpha")))

    def engine_interrupted_while_starting(name: str, workers: int, **_: object) -> SyntheticEngine:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here, in the middle of the start-up
        return SyntheticEngine()

    monkeypatch.setattr(serve, "make_engine", engine_interrupted_while_starting)
    result = run_cli("recognize", "--local", str(audio))
    assert result.exit_code == 130
    assert result.stderr == "sttcli: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_local_verbose_marks_the_servers_own_log_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STTCLI_LOCAL_ENGINE", "synthetic")
    audio = tmp_path / "a.wav"
    audio.write_bytes(wav(markers("alpha")))
    result = run_cli("recognize", "--local", "-v", str(audio))
    assert result.exit_code == 0, result.stderr
    server_lines = [line for line in result.stderr.splitlines() if " stream " in line]
    assert server_lines
    assert all(line.startswith("sttcli: local server: stream ") for line in server_lines)


@pytest.mark.engine
@pytest.mark.parametrize("delay", [0.1, 0.3, 0.6, 1.0, 1.5])
def test_ctrl_c_in_the_first_seconds_of_local_is_always_one_clean_line(
    delay: float, tmp_path: Path
) -> None:
    """The real engine's start-up and shutdown: once a race of the engine and the servicer."""
    audio = tmp_path / "a.wav"
    audio.write_bytes(wav(bytes(32000 * 5)))
    process = spawn(  # paced: the run lasts the 5 s of its audio, the signal comes first
        "recognize",
        "--local",
        "--speed",
        "1",
        str(audio),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert err == b"sttcli: interrupted\n"
    # 130, or death by SIGINT, which a shell reports as the same 130. CPython
    # ends that way after a clean exit when the KeyboardInterrupt first landed
    # in code run through PyRun_* (presumably by one of the engine's
    # libraries as it loads): it keeps a process-wide "unhandled" flag that
    # Python code cannot clear. About one run in six with the signal at
    # 0.08-0.15 s.
    assert process.returncode in (130, -signal.SIGINT)


def test_ctrl_c_while_the_cli_is_being_imported_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the `sttcli` script and `python -m sttcli` both run first."""
    import importlib.abc
    import sys

    from sttcli.__main__ import run

    class InterruptedImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, *_: object) -> None:
            if name == "sttcli.cli":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "sttcli.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport(), *sys.meta_path])
    with pytest.raises(SystemExit) as exit_:
        run()
    assert exit_.value.code == 130
    assert capsys.readouterr().err == "sttcli: interrupted\n"
