"""sttcli's own server on loopback, with engines that tests can inspect."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import grpc

from sttcli._proto import stt_service_pb2 as pb
from sttcli._proto import stt_service_pb2_grpc as rpc
from sttcli.server.app import create_server
from sttcli.server.engine import Engine, EngineEvent, EngineSession
from sttcli.server.servicer import Auth, Limits


class RecordingEngine:
    """Wraps an engine and remembers which sessions were opened and closed."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.languages = inner.languages
        self.opened = 0
        self.closed = 0
        self.lock = threading.Lock()

    def open(self, sample_rate: int, *, partials: bool, language: str = "") -> EngineSession:
        with self.lock:
            self.opened += 1
        inner = self.inner.open(sample_rate, partials=partials, language=language)
        return _RecordedSession(self, inner)

    def close(self) -> None:
        self.inner.close()


class _RecordedSession:
    def __init__(self, engine: RecordingEngine, inner: EngineSession) -> None:
        self.engine = engine
        self.inner = inner

    def feed(self, pcm: bytes) -> list[EngineEvent]:
        return self.inner.feed(pcm)

    def finish(self) -> list[EngineEvent]:
        return self.inner.finish()

    def close(self) -> None:
        with self.engine.lock:
            self.engine.closed += 1
        self.inner.close()


@contextmanager
def running_server(
    engine: Engine, *, limits: Limits | None = None, auth: Auth | None = None, workers: int = 4
) -> Iterator[str]:
    server, port, _ = create_server(
        "127.0.0.1:0", engine, limits=limits, auth=auth, workers=workers
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def spec(**fields: object) -> pb.RecognitionSpec:
    fields.setdefault("audio_encoding", pb.RecognitionSpec.LINEAR16_PCM)
    fields.setdefault("sample_rate_hertz", 16000)
    return pb.RecognitionSpec(**fields)  # type: ignore[arg-type]


def requests(
    audio: bytes, specification: pb.RecognitionSpec | None = None, *, chunk: int = 4000
) -> Iterator[pb.StreamingRecognitionRequest]:
    """The vendor's sample flow: the config, then 4000-byte chunks."""
    yield pb.StreamingRecognitionRequest(
        config=pb.RecognitionConfig(specification=specification or spec())
    )
    for start in range(0, len(audio), chunk):
        yield pb.StreamingRecognitionRequest(audio_content=audio[start : start + chunk])


def recognize(
    address: str,
    request_iterator: Iterator[pb.StreamingRecognitionRequest],
    metadata: Sequence[tuple[str, str]] = (),
) -> list[pb.SpeechRecognitionChunk]:
    """Every chunk the server sends; raises grpc.RpcError on a failed call."""
    with grpc.insecure_channel(address) as channel:
        stub = rpc.SttServiceStub(channel)
        return [
            chunk
            for response in stub.StreamingRecognize(request_iterator, metadata=tuple(metadata))
            for chunk in response.chunks
        ]
