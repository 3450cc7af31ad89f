"""Reading a stream's requests with a deadline: SpeechKit ends a stream after 5 s without audio.

gRPC's synchronous server gives a handler a blocking iterator of requests
with no timeout. `IdleLimitedRequests` reads it in a thread of its own and
hands the requests over through a one-slot queue, so that the handler can
give up when a client goes quiet: a stream that sends a config and then
nothing must not hold its thread (or a decoder) for ever.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()


class IdleTimeout(Exception):
    """No request arrived within the idle limit."""


class IdleLimitedRequests(Generic[T]):
    """An iterator over `requests` that raises IdleTimeout after `seconds` without one."""

    def __init__(self, requests: Iterator[T], seconds: float) -> None:
        self.seconds = seconds
        # One slot: the reader stays at most one message ahead (flow control
        # stays with gRPC, memory stays flat).
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._stopped = threading.Event()
        self._reader = threading.Thread(
            target=self._read, args=(requests,), name="stream-reader", daemon=True
        )
        self._reader.start()

    def _read(self, requests: Iterator[T]) -> None:
        item: object = _END
        try:
            for request in requests:
                if not self._put(request):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the handler's thread
            item = error
        self._put(item)

    def _put(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        try:
            item = self._queue.get(timeout=self.seconds)
        except queue.Empty:
            raise IdleTimeout from None
        if item is _END:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """The handler is done: the reader stops at its next request (or when the call ends)."""
        self._stopped.set()
