"""The pure core: the config first, deadline-based pacing."""

from __future__ import annotations

import asyncio

import pytest

from sttcli import wire
from sttcli.audio.sniff import AudioFormat, Encoding, RateSource
from sttcli.options import RecognitionSettings
from sttcli.streaming import Pacer, request_stream


def test_the_config_goes_first_then_one_message_per_chunk() -> None:
    audio = AudioFormat(Encoding.LPCM, 16000, RateSource.OPTION)
    config = wire.config_request(RecognitionSettings(language="ru-RU"), audio)

    async def source():  # type: ignore[no-untyped-def]
        for chunk in (b"ab", b"cd"):
            yield chunk

    async def collect() -> list[wire.Request]:
        return [request async for request in request_stream(config, source())]

    requests = asyncio.run(collect())
    assert requests == [config, wire.audio_request(b"ab"), wire.audio_request(b"cd")]
    assert requests[0].config.specification.language_code == "ru-RU"


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_pacing_sends_chunk_n_at_start_plus_n_intervals() -> None:
    clock = Clock()
    pacer = Pacer(2.0, clock)
    waits = []
    for n in range(4):
        wait = pacer.delay(n * 0.125)
        waits.append(wait)
        clock.now += wait
    assert waits == [0.0, 0.0625, 0.0625, 0.0625]


def test_pacing_does_not_drift_when_sending_is_slow() -> None:
    clock = Clock()
    pacer = Pacer(1.0, clock)
    assert pacer.delay(0.0) == 0.0
    clock.now += 0.1  # a slow write
    assert pacer.delay(0.125) == pytest.approx(0.025)
    clock.now += 0.5  # a stall: the stream catches up, no negative waits
    assert pacer.delay(0.25) == 0.0
    assert pacer.delay(0.75) == pytest.approx(0.15)


def test_speed_zero_never_waits() -> None:
    pacer = Pacer(0.0, Clock())
    assert [pacer.delay(t) for t in (0, 10, 100)] == [0.0, 0.0, 0.0]
