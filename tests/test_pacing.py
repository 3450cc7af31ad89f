"""Pacing through the whole client, on a fake clock: nothing here sleeps for real."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.audio import wav
from support.clock import FakeClock
from support.run import recognize_path
from support.scripted import ScriptedServer

from sttcli.options import StreamSettings
from sttcli.session import Clockwork


@pytest.mark.parametrize(("speed", "interval"), [(1.0, 0.125), (2.0, 0.0625), (0.5, 0.25)])
def test_chunks_go_out_one_interval_apart(
    stt_server: ScriptedServer, tmp_path: Path, speed: float, interval: float
) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(wav(bytes(4000 * 8)))  # 8 chunks of 0.125 s at 16 kHz
    clock = FakeClock()
    result, _ = asyncio.run(
        recognize_path(
            path,
            stt_server.address,
            stream=StreamSettings(speed=speed),
            clockwork=Clockwork(clock=clock.clock, sleep=clock.sleep),
        )
    )
    assert result.ok, result.error
    assert clock.sleeps == pytest.approx([interval] * 7)
    assert len(stt_server.calls[0].audio) == 8


def test_unpaced_streaming_never_sleeps(stt_server: ScriptedServer, tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(wav(bytes(4000 * 8)))
    clock = FakeClock()
    result, _ = asyncio.run(
        recognize_path(
            path, stt_server.address, clockwork=Clockwork(clock=clock.clock, sleep=clock.sleep)
        )
    )
    assert result.ok
    assert clock.sleeps == []


def test_ogg_opus_is_paced_by_its_granule_positions(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    from conftest import DATA

    clock = FakeClock()
    result, _ = asyncio.run(
        recognize_path(
            DATA / "weather.ogg",
            stt_server.address,
            stream=StreamSettings(speed=1.0, chunk_size=500),
            clockwork=Clockwork(clock=clock.clock, sleep=clock.sleep),
        )
    )
    assert result.ok
    # 2.33 s of audio (opusinfo's playback length): sends spread over it, never ahead.
    assert result.audio_duration_s == pytest.approx(2.33, abs=0.001)
    assert 1.5 < sum(clock.sleeps) <= result.audio_duration_s
