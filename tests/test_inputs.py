"""Inputs that are not what they claim: headers that lie, garbage, pipes that end early."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import grpc
import pytest
from conftest import DATA
from support.audio import ramp, wav_header
from support.cli import against
from support.faults import Fault, FaultServer
from support.run import recognize_path
from support.scripted import Reply, ScriptedServer, response

from sttcli.options import SessionPolicy


def test_a_wav_header_that_claims_more_audio_than_the_file_has(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    path = tmp_path / "short.wav"
    path.write_bytes(wav_header(1_000_000) + ramp(5000))
    result = against(stt_server.address, "-f", "json", str(path))
    assert result.exit_code == 0
    assert stt_server.calls[0].audio_bytes == ramp(5000)
    assert json.loads(result.stdout)["audio_duration_s"] == pytest.approx(5000 / 32000, abs=1e-3)


def test_a_wav_header_that_claims_less_stops_at_its_length(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    """Bytes after the data chunk are another chunk (LIST, id3), not audio."""
    path = tmp_path / "tagged.wav"
    path.write_bytes(wav_header(3000) + ramp(3000) + b"LIST" + bytes(500))
    assert against(stt_server.address, str(path)).exit_code == 0
    assert stt_server.calls[0].audio_bytes == ramp(3000)


def test_garbage_is_sent_as_raw_audio_and_ends_cleanly(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(os.urandom(10_001))
    stt_server.script = [Reply(response("static"))]
    result = against(stt_server.address, "-r", "16000", str(path))
    assert (result.exit_code, result.stdout) == (0, "static\n")
    assert [len(c) for c in stt_server.calls[0].audio] == [4000, 4000, 2001]


def test_stdin_closed_mid_chunk_sends_what_came(stt_server: ScriptedServer) -> None:
    result = against(stt_server.address, "-r", "16000", "-", input=ramp(4000 * 2 + 7))
    assert result.exit_code == 0
    assert [len(c) for c in stt_server.calls[0].audio] == [4000, 4000, 7]


def test_a_wav_header_alone_on_stdin_is_bad_input(stt_server: ScriptedServer) -> None:
    result = against(stt_server.address, "-", input=wav_header(0))
    assert result.exit_code == 2
    assert "no audio" in result.stderr
    assert stt_server.calls == []


# -- Ogg Opus sent as it is: one session ---------------------------------------------------


def test_ogg_opus_is_retried_while_nothing_is_final() -> None:
    server = FaultServer()
    try:
        server.plan = [Fault("refuse"), Fault("unavailable", after=2)]
        result, _ = asyncio.run(recognize_path(DATA / "weather.ogg", server.address))
    finally:
        server.stop()
    assert result.ok, result.error
    assert (result.sessions, result.retries) == (2, 2)


def test_ogg_opus_broken_after_a_final_fails_rather_than_repeat_it(
    stt_server: ScriptedServer,
) -> None:
    stt_server.scripts = [
        [
            Reply(response("the weather"), after=1),
            Reply(abort=(grpc.StatusCode.UNAVAILABLE, "gone"), after=2),
        ]
    ]
    result, _ = asyncio.run(
        recognize_path(
            DATA / "weather.ogg",
            stt_server.address,
            policy=SessionPolicy(),
            stream=None,
        )
    )
    assert result.error is not None and result.error.code == "UNAVAILABLE"
    assert [u.text for u in result.utterances] == ["the weather"]
    assert len(stt_server.calls) == 1
