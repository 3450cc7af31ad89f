"""`sttcli serve` against clients that go quiet, send nothing, or send absurd strings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import grpc
import pytest
from support.audio import markers
from support.servers import RecordingEngine, recognize, requests, running_server, spec

from sttcli._proto import stt_service_pb2 as pb
from sttcli._proto import stt_service_pb2_grpc as rpc
from sttcli.server.engine import EngineSession, EngineStopped
from sttcli.server.servicer import Limits
from sttcli.server.synthetic import SyntheticEngine

QUICK_IDLE = Limits(idle_seconds=0.3)


class OneDecoder:
    """An engine with one decoder, as `serve --workers 1` has: open() waits for it."""

    def __init__(self) -> None:
        self.inner = SyntheticEngine()
        self.name = self.inner.name
        self.languages = self.inner.languages
        self.free = threading.Semaphore(1)

    def open(self, sample_rate: int, *, partials: bool, language: str = "") -> EngineSession:
        self.free.acquire()
        return _Released(self.inner.open(sample_rate, partials=partials), self.free)

    def close(self) -> None:
        pass


class _Released:
    def __init__(self, inner: EngineSession, free: threading.Semaphore) -> None:
        self.inner, self.released = inner, free

    def feed(self, pcm: bytes) -> list:  # type: ignore[type-arg]
        return self.inner.feed(pcm)

    def finish(self) -> list:  # type: ignore[type-arg]
        return self.inner.finish()

    def close(self) -> None:
        self.inner.close()
        self.released.release()


def config_then(
    hold: threading.Event, audio: bytes = b""
) -> Iterator[pb.StreamingRecognitionRequest]:
    yield from requests(audio)
    hold.wait(30)


def nothing(hold: threading.Event) -> Iterator[pb.StreamingRecognitionRequest]:
    hold.wait(30)
    yield from ()


def failure(address: str, request_iterator: Iterator[pb.StreamingRecognitionRequest]):  # type: ignore[no-untyped-def]
    chunks: list[pb.SpeechRecognitionChunk] = []
    with grpc.insecure_channel(address) as channel:
        call = rpc.SttServiceStub(channel).StreamingRecognize(request_iterator, timeout=20)
        with pytest.raises(grpc.RpcError) as caught:
            for response in call:
                chunks.extend(response.chunks)
    return caught.value, chunks


def test_a_stream_that_sends_a_config_and_then_nothing_ends_without_holding_a_decoder() -> None:
    engine = RecordingEngine(SyntheticEngine())
    hold = threading.Event()
    with running_server(engine, limits=QUICK_IDLE) as address:
        error, _ = failure(address, config_then(hold))
    hold.set()
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "no audio for 0.3 s" in error.details()
    assert engine.opened == 0


def test_a_stream_that_sends_nothing_ends_too() -> None:
    hold = threading.Event()
    with running_server(SyntheticEngine(), limits=QUICK_IDLE) as address:
        error, _ = failure(address, nothing(hold))
    hold.set()
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "no config" in error.details()


def test_a_stream_whose_audio_stops_gets_its_finals_before_it_ends() -> None:
    hold = threading.Event()
    with running_server(SyntheticEngine(), limits=QUICK_IDLE) as address:
        error, chunks = failure(address, config_then(hold, markers("alpha", gap=0.1)))
    hold.set()
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert [c.alternatives[0].text for c in chunks if c.final] == ["alpha"]


def start_idle_streams(address: str, count: int, make, hold: threading.Event) -> list:  # type: ignore[no-untyped-def]
    channel = grpc.insecure_channel(address)
    stub = rpc.SttServiceStub(channel)
    calls = [stub.StreamingRecognize(make(hold)) for _ in range(count)]
    return [channel, calls]


@pytest.mark.parametrize(("count", "make"), [(4, config_then), (20, nothing)])
def test_idle_streams_do_not_starve_a_real_one(count: int, make) -> None:  # type: ignore[no-untyped-def]
    hold = threading.Event()
    # Idle streams outlive the real one: only not holding a decoder or a thread lets it run.
    with running_server(OneDecoder(), workers=1, limits=Limits(idle_seconds=30)) as address:
        channel, calls = start_idle_streams(address, count, make, hold)
        try:
            with grpc.insecure_channel(address) as other:
                stub = rpc.SttServiceStub(other)
                responses = stub.StreamingRecognize(requests(markers("echo")), timeout=10)
                texts = [c.alternatives[0].text for r in responses for c in r.chunks if c.final]
            assert texts == ["echo"]
        finally:
            hold.set()
            for call in calls:
                call.cancel()
            channel.close()


@pytest.mark.parametrize("field", ["language_code", "model", "folder_id"])
def test_an_absurdly_long_string_is_invalid_argument_quoted_briefly(
    field: str, caplog: pytest.LogCaptureFixture
) -> None:
    huge = "x" * 100_000
    specification = spec() if field == "folder_id" else spec(**{field: huge})
    config = pb.RecognitionConfig(specification=specification)
    if field == "folder_id":
        config.folder_id = huge

    def stream() -> Iterator[pb.StreamingRecognitionRequest]:
        yield pb.StreamingRecognitionRequest(config=config)

    caplog.set_level(logging.INFO, logger="sttcli.server")
    with running_server(SyntheticEngine()) as address:
        with pytest.raises(grpc.RpcError) as caught:
            recognize(address, stream())
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details() and len(caught.value.details()) < 200
    assert all(len(record.getMessage()) < 500 for record in caplog.records)


def test_an_unknown_language_with_control_characters_is_quoted_printable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sttcli.server")
    with running_server(SyntheticEngine()) as address:
        with pytest.raises(grpc.RpcError) as caught:
            recognize(address, requests(b"", spec(language_code="xx\x1b[2J\nYY")))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "\x1b" not in caught.value.details()
    assert all("\x1b" not in r.getMessage() and "\n" not in r.getMessage() for r in caplog.records)


class _Stopping:
    """An engine whose decoders are closed under the stream, as when the server stops."""

    name = "stopping"
    languages = ("en-US",)

    def open(self, sample_rate: int, *, partials: bool, language: str = "") -> EngineSession:
        raise EngineStopped("the server is stopping")

    def close(self) -> None:
        pass


def test_a_stream_cut_by_the_server_stopping_is_unavailable_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sttcli.server")
    with running_server(_Stopping()) as address:
        with pytest.raises(grpc.RpcError) as caught:
            recognize(address, requests(markers("golf")))
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
