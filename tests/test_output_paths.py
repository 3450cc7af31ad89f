"""Where results are written: never over an input, into a directory made and checked up front."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.audio import markers, wav
from support.cli import against
from support.faults import FaultServer


@pytest.fixture
def server() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.stop()


def speech(path: Path, *words: str) -> Path:
    path.write_bytes(wav(markers(*(words or ("alpha",)))))
    return path


def test_o_naming_an_input_is_refused_and_the_input_survives(
    server: FaultServer, tmp_path: Path
) -> None:
    audio = speech(tmp_path / "a.wav")
    before = audio.read_bytes()
    result = against(server.address, str(audio), "-o", str(audio))
    assert result.exit_code == 2
    assert "is an input" in result.stderr
    assert audio.read_bytes() == before


def test_o_naming_an_input_through_another_path_is_refused(
    server: FaultServer, tmp_path: Path
) -> None:
    audio = speech(tmp_path / "a.wav")
    link = tmp_path / "link.out"
    os.link(audio, link)
    result = against(server.address, str(audio), "-o", str(link))
    assert result.exit_code == 2 and "is an input" in result.stderr


def test_a_result_file_that_is_an_input_is_refused(server: FaultServer, tmp_path: Path) -> None:
    raw = tmp_path / "notes.txt"  # raw audio whose result would be notes.txt
    raw.write_bytes(markers("bravo"))
    result = against(server.address, "-r", "16000", "--output-dir", str(tmp_path), str(raw))
    assert result.exit_code == 2 and "is an input" in result.stderr
    assert raw.read_bytes() == markers("bravo")


def test_output_dir_is_created_with_its_parents(server: FaultServer, tmp_path: Path) -> None:
    audio = speech(tmp_path / "a.wav")
    out = tmp_path / "deep" / "er" / "out"
    result = against(server.address, "--output-dir", str(out), str(audio))
    assert result.exit_code == 0, result.stderr
    assert (out / "a.txt").read_text() == "alpha\n"


def test_dry_run_creates_no_directory(tmp_path: Path) -> None:
    audio = speech(tmp_path / "a.wav")
    out = tmp_path / "out"
    result = against("127.0.0.1:1", "--dry-run", "--output-dir", str(out), str(audio))
    assert result.exit_code == 0 and not out.exists()


@pytest.mark.parametrize("where", ["file/out", "/proc/sttcli-out", "/proc"])
def test_an_output_dir_that_cannot_be_written_fails_before_recognizing(
    server: FaultServer, tmp_path: Path, where: str
) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    audio = speech(tmp_path / "a.wav")
    result = against(server.address, "--output-dir", str(tmp_path / where), str(audio))
    assert result.exit_code == 2
    assert result.stderr.startswith("sttcli: --output-dir ") and result.stderr.count("\n") == 1
    assert server.servicer.attempts == 0


def test_result_files_are_as_readable_as_others(server: FaultServer, tmp_path: Path) -> None:
    audio = speech(tmp_path / "a.wav", "delta")
    out = tmp_path / "out"
    out.mkdir()
    umask = os.umask(0o022)
    try:
        assert against(server.address, "--output-dir", str(out), str(audio)).exit_code == 0
    finally:
        os.umask(umask)
    assert (out / "a.txt").stat().st_mode & 0o777 == 0o644


def test_a_finished_result_replaces_an_earlier_partial_file(
    server: FaultServer, tmp_path: Path
) -> None:
    audio = speech(tmp_path / "a.wav")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt.partial").write_text("from an interrupted run\n")
    assert against(server.address, "--output-dir", str(out), str(audio)).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
