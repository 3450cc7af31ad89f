"""What a batch says on stderr: failures always, and a summary that tells what happened."""

from __future__ import annotations

from pathlib import Path

from support.audio import markers, wav
from support.cli import against
from support.faults import FaultServer

from sttcli.output.report import summary
from sttcli.results import ErrorInfo, InputResult


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


def test_the_summary_tells_interrupted_inputs_from_failed_and_not_run_ones() -> None:
    interrupted = ErrorInfo("INTERRUPTED", "interrupted", 130)
    failed = ErrorInfo("BAD_INPUT", "x: no such file", 2)
    results = [
        InputResult("a", audio_duration_s=1.0),
        InputResult("b", error=interrupted, audio_duration_s=2.0),
        InputResult("c", error=failed),
    ]
    line = summary(results, wall_seconds=1.0, not_run=2)
    assert line.startswith("summary: 1 ok, 1 failed, 1 interrupted, 2 not run; 3.0 s of audio")
