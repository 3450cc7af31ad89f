"""A real SttService on 127.0.0.1:0 that records every call and plays a script.

A script is a list of `Reply`: a response (or an abort) sent once the server
has received `after` audio messages, or after the client half-closes when
`after` is None. `scripts` may hold one script per call, for retry tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from sttcli._proto import stt_service_pb2 as pb
from sttcli._proto import stt_service_pb2_grpc as rpc

Refusal = Callable[[dict[str, str]], "str | tuple[grpc.StatusCode, str] | None"]


@dataclass
class Reply:
    response: pb.StreamingRecognitionResponse | None = None
    after: int | None = None  # audio messages received first; None: at half-close
    abort: tuple[grpc.StatusCode, str] | None = None
    trailing_metadata: tuple[tuple[str, str], ...] = ()
    initial_metadata: tuple[tuple[str, str], ...] = ()


@dataclass
class RecordedCall:
    metadata: dict[str, str]
    config: pb.RecognitionConfig | None = None
    audio: list[bytes] = field(default_factory=list)
    extra_configs: int = 0
    half_closed: bool = False

    @property
    def audio_bytes(self) -> bytes:
        return b"".join(self.audio)


def response(
    text: str,
    *,
    final: bool = True,
    end_of_utterance: bool | None = None,
    confidence: float = 0.0,
    words: Sequence[tuple[str, float, float]] = (),
) -> pb.StreamingRecognitionResponse:
    alternative = pb.SpeechRecognitionAlternative(text=text, confidence=confidence)
    for word, start, end in words:
        info = alternative.words.add(word=word)
        info.start_time.FromNanoseconds(int(start * 1e9))
        info.end_time.FromNanoseconds(int(end * 1e9))
    chunk = pb.SpeechRecognitionChunk(
        alternatives=[alternative],
        final=final,
        end_of_utterance=final if end_of_utterance is None else end_of_utterance,
    )
    return pb.StreamingRecognitionResponse(chunks=[chunk])


class ScriptedServicer(rpc.SttServiceServicer):
    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.script: list[Reply] = []
        self.scripts: list[list[Reply]] = []  # per call, first; then `script`
        # Why a call's metadata is refused (UNAUTHENTICATED, or the status given), or None.
        self.authorize: Refusal | None = None
        self._lock = threading.Lock()

    def StreamingRecognize(self, request_iterator, context):  # noqa: N802
        call = RecordedCall(metadata={k: v for k, v in context.invocation_metadata()})
        with self._lock:
            self.calls.append(call)
            script = self.scripts.pop(0) if self.scripts else list(self.script)
        if self.authorize is not None and (refusal := self.authorize(call.metadata)):
            if isinstance(refusal, str):
                refusal = (grpc.StatusCode.UNAUTHENTICATED, refusal)
            context.abort(*refusal)
        pending = list(script)

        def due(count: int | None) -> Iterator[Reply]:
            while pending and pending[0].after == count:
                yield pending.pop(0)

        def play(reply: Reply) -> pb.StreamingRecognitionResponse | None:
            if reply.initial_metadata:
                context.send_initial_metadata(reply.initial_metadata)
            if reply.trailing_metadata:
                context.set_trailing_metadata(reply.trailing_metadata)
            if reply.abort:
                context.abort(*reply.abort)
            return reply.response

        for reply in due(0):
            if (sent := play(reply)) is not None:
                yield sent
        audio_count = 0
        for request in request_iterator:
            if request.HasField("config"):
                if call.config is None and not call.audio:
                    call.config = request.config
                else:
                    call.extra_configs += 1
                continue
            call.audio.append(request.audio_content)
            audio_count += 1
            for reply in due(audio_count):
                if (sent := play(reply)) is not None:
                    yield sent
        call.half_closed = True
        for reply in pending:
            if reply.after is None or reply.after > audio_count:
                if (sent := play(reply)) is not None:
                    yield sent


class ScriptedServer:
    def __init__(self) -> None:
        self.servicer = ScriptedServicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        rpc.add_SttServiceServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"
        self.server.start()

    @property
    def calls(self) -> list[RecordedCall]:
        return self.servicer.calls

    @property
    def script(self) -> list[Reply]:
        return self.servicer.script

    @script.setter
    def script(self, value: list[Reply]) -> None:
        self.servicer.script = value

    @property
    def scripts(self) -> list[list[Reply]]:
        return self.servicer.scripts

    @scripts.setter
    def scripts(self, value: list[list[Reply]]) -> None:
        self.servicer.scripts = value

    def wait_for_streams(self, calls: int = 1, timeout: float = 20.0) -> None:
        """Until `calls` calls have each sent a few audio messages: a client is mid-stream."""
        deadline = time.monotonic() + timeout
        while len(self.calls) < calls or any(len(c.audio) < 3 for c in self.calls):
            assert time.monotonic() < deadline, "the streams never started"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.stop(grace=None)
