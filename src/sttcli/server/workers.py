"""Engines whose decoders live in worker processes, one stream each at a time.

Worker processes, not threads: decoders hold the GIL (pocketsphinx) or bring
their own thread pools (CTranslate2), and a crash must not take the server
down. Each worker loads its model once and then serves stream after stream;
`open()` waits for an idle one. A worker that dies fails its stream with
INTERNAL and is replaced. The loop in the worker is `serve_streams()`.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from sttcli.server.engine import EngineError, EngineEvent, EngineStartError, EngineStopped

log = logging.getLogger(__name__)


class StreamDecoder(Protocol):
    def feed(self, pcm: bytes) -> list[EngineEvent]: ...

    def finish(self) -> list[EngineEvent]: ...

    def abort(self) -> None: ...


class WorkerEngine:
    """An engine whose sessions run in a pool of worker processes, one stream each at a time."""

    name = "workers"
    languages: tuple[str, ...] = ("en-US",)

    def __init__(self, workers: int = 1) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._all: list[Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(workers):
            self._add_worker()

    def _add_worker(self) -> None:
        worker = self._new_worker()
        with self._lock:
            self._all.append(worker)
        self._idle.put(worker)

    def _new_worker(self) -> Worker:
        raise NotImplementedError

    def wait_ready(self) -> None:
        """Block until every worker has its decoders (serve waits before saying it listens)."""
        for worker in list(self._all):
            worker.wait_ready()

    @property
    def closed(self) -> bool:
        return self._closed

    def open(self, sample_rate: int, *, partials: bool, language: str = "") -> WorkerSession:
        return self._start("start", sample_rate, partials, language)

    def _start(self, *message: Any) -> WorkerSession:
        """A session on the next free worker, begun with `message` (what its process expects)."""
        session = WorkerSession(self, self._take_worker())
        session.call(*message)
        return session

    def _take_worker(self) -> Worker:
        while True:  # a stream waiting for a decoder must not wait past close()
            if self._closed:
                raise EngineStopped("the server is stopping")
            try:
                return self._idle.get(timeout=0.5)
            except queue.Empty:
                continue

    def _release(self, worker: Worker, *, broken: bool) -> None:
        if not broken:
            self._idle.put(worker)
            return
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            closed = self._closed
        worker.stop()
        if not closed:  # a worker killed by close() is not replaced
            log.info("a recognizer process failed; starting another")
            self._add_worker()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
        for worker in workers:
            worker.stop()


class WorkerSession:
    def __init__(self, engine: WorkerEngine, worker: Worker) -> None:
        self._engine = engine
        self._worker: Worker | None = worker
        self._finished = False

    def call(self, *message: Any) -> list[EngineEvent]:
        worker = self._worker
        if worker is None:
            raise EngineError("the session is closed")
        try:
            return worker.call(*message)
        except EngineError as error:
            self._worker = None
            self._engine._release(worker, broken=True)  # noqa: SLF001
            if self._engine.closed:  # close() stopped the worker under this stream
                raise EngineStopped("the server is stopping") from error
            raise

    def feed(self, pcm: bytes) -> list[EngineEvent]:
        return self.call("feed", pcm)

    def finish(self) -> list[EngineEvent]:
        events = self.call("finish")
        self._finished = True
        return events

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        try:
            if not self._finished:
                worker.call("abort")  # the client went away mid-utterance
        except EngineError:
            self._engine._release(worker, broken=True)  # noqa: SLF001
            return
        self._engine._release(worker, broken=False)  # noqa: SLF001


class Worker:
    """A process running `target(connection, *args)`: messages in, ("ok", events) out."""

    def __init__(self, context: Any, target: Any, args: tuple[Any, ...], name: str) -> None:
        self._connection, child = context.Pipe()
        self.process = context.Process(target=target, args=(child, *args), name=name, daemon=True)
        # A Ctrl-C at the terminal reaches workers still starting up, and
        # only the server should decide when they stop: the child inherits
        # SIGINT blocked (it ignores it from its first line). Blocked rather
        # than ignored here, so that this process's own Ctrl-C in the meantime
        # is delivered once the worker has started, not lost.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        child.close()
        self._ready = False

    def wait_ready(self) -> None:
        if self._ready:
            return
        try:
            kind, detail = self._connection.recv()
        except (EOFError, OSError) as exc:
            raise EngineStartError("the recognizer process did not start") from exc
        if kind != "ready":
            raise EngineStartError(f"the recognizer process did not start: {detail}")
        self._ready = True

    def call(self, *message: Any) -> list[EngineEvent]:
        self.wait_ready()
        try:
            self._connection.send(message)
            kind, detail = self._connection.recv()
        except (EOFError, OSError) as exc:
            raise EngineError("the recognizer process died") from exc
        if kind != "ok":
            raise EngineError(f"recognizer failure: {detail}")
        return list(detail)

    def stop(self) -> None:
        try:
            self._connection.send(("stop",))
        except OSError:
            pass
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)
        try:
            self._connection.close()
        except OSError:
            pass  # a stream's thread was using it as the server stopped


def serve_streams(connection: Connection, start: Callable[..., StreamDecoder]) -> None:
    """A worker's loop once its model is loaded: one stream at a time, messages in, events out.

    `start(*arguments of "start")` makes a stream's decoder.
    """
    connection.send(("ready", None))
    stream: StreamDecoder | None = None
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        kind = message[0]
        try:
            if kind == "stop":
                return
            if kind == "start":
                if stream is not None:
                    stream.abort()
                stream = None
                stream = start(*message[1:])
                reply: list[EngineEvent] = []
            elif kind == "feed" and stream is not None:
                reply = stream.feed(message[1])
            elif kind == "finish" and stream is not None:
                reply = stream.finish()
                stream = None
            elif kind == "abort":
                if stream is not None:
                    stream.abort()
                stream = None
                reply = []
            else:
                raise RuntimeError(f"unexpected {kind!r}")
            connection.send(("ok", reply))
        except Exception as error:
            connection.send(("error", f"{type(error).__name__}: {error}"))
