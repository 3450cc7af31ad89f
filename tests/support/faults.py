"""A server for fault injection: sttcli's servicer on the synthetic engine, misbehaving on cue.

Each call (attempt) gets the next `Fault` of the plan, then none. The
recognition itself is the real servicer's, deterministic from the audio
bytes, so a test can demand the exact transcript of a clean run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from sttcli._proto import stt_service_pb2 as pb
from sttcli._proto import stt_service_pb2_grpc as rpc
from sttcli.server.engine import Engine
from sttcli.server.servicer import Limits, SttServicer
from sttcli.server.synthetic import SyntheticEngine
from support.proxy import Proxy


@dataclass(frozen=True)
class Fault:
    # refuse: RESOURCE_EXHAUSTED at once; unavailable: UNAVAILABLE status after
    # `after` audio messages; sever: cut the TCP connection there; early: end
    # the call with OK there, without finishing the utterance; stall: stop
    # reading for `seconds` there, then go on.
    kind: str
    after: int = 0
    seconds: float = 0.0


class _EndEarly(Exception):
    pass


class FaultyServicer(rpc.SttServiceServicer):
    def __init__(self, inner: SttServicer, proxy_holder: list[Proxy]) -> None:
        self.inner = inner
        self.plan: list[Fault | None] = []
        self.attempts = 0
        self.audio_messages: list[int] = []  # per attempt
        self._proxy = proxy_holder
        self._lock = threading.Lock()

    def StreamingRecognize(self, request_iterator: Iterator[Any], context: Any) -> Iterator[Any]:  # noqa: N802
        with self._lock:
            self.attempts += 1
            fault = self.plan.pop(0) if self.plan else None
            self.audio_messages.append(0)
            index = len(self.audio_messages) - 1
        if fault is not None and fault.kind == "refuse":
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many requests (injected)")
        try:
            yield from self.inner.StreamingRecognize(
                self._watch(request_iterator, fault, context, index), context
            )
        except _EndEarly:
            return

    def _watch(
        self, requests: Iterator[Any], fault: Fault | None, context: Any, index: int
    ) -> Iterator[pb.StreamingRecognitionRequest]:
        for request in requests:
            if request.HasField("audio_content"):
                self.audio_messages[index] += 1
                if fault is not None and self.audio_messages[index] == fault.after:
                    self._strike(fault, context)
            yield request

    def _strike(self, fault: Fault, context: Any) -> None:
        if fault.kind == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset (injected)")
        elif fault.kind == "sever":
            self._proxy[0].sever()
            time.sleep(0.2)  # let the break reach the client before more is read
            context.abort(grpc.StatusCode.UNAVAILABLE, "severed")
        elif fault.kind == "early":
            raise _EndEarly
        elif fault.kind == "stall":
            time.sleep(fault.seconds)


class FaultServer:
    def __init__(
        self,
        *,
        limits: Limits | None = None,
        word_timings: bool = True,
        engine: Engine | None = None,
    ) -> None:
        self._proxy: list[Proxy] = []
        engine = engine or SyntheticEngine(word_timings=word_timings)
        self.servicer = FaultyServicer(SttServicer(engine, limits=limits), self._proxy)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        rpc.add_SttServiceServicer_to_server(self.servicer, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.proxy = Proxy(port)
        self._proxy.append(self.proxy)
        self.address = self.proxy.address  # clients go through the proxy

    @property
    def plan(self) -> list[Fault | None]:
        return self.servicer.plan

    @plan.setter
    def plan(self, faults: list[Fault | None]) -> None:
        self.servicer.plan = list(faults)

    def stop(self) -> None:
        self.proxy.close()
        self.server.stop(grace=None)
