"""Decoding in a thread, for pipes.

A pipe's bytes are read by the event loop, which keeps a stalled pipe alive
with silence, and handed to FFmpeg in this thread through `PipeFile`. Live
audio comes at the pace of speech, where the turns the thread and the event
loop take for the GIL cost nothing that matters; a file, decoded as fast as
it can be, gets a process of its own (`decoder_process`). The thread is also
what a file falls back on where no process can be started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from sttcli.audio.decode import DecodeRequest, Item, Ready, Stopped, decode

_QUEUE_ITEMS = 8  # blocks of at most 64 KiB: 512 KiB decoded ahead of the sender


class DecodingReader:
    """Runs the decoder in a thread; `get()` returns its PCM block by block (b'' at the end).

    It has the shape of `sttcli.audio.sources.PipeReader`, so the PCM is held
    for resending exactly as a pipe's bytes are.
    """

    def __init__(self, name: str, file: Any, request: DecodeRequest) -> None:
        self.name = name
        self._file = file  # a path's file object, or a reader of a pipe's bytes
        self._request = request
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._slots = threading.Semaphore(_QUEUE_ITEMS)
        self._stopped = threading.Event()
        self._eof = False
        self._done = False
        threading.Thread(target=self._run, daemon=True).start()

    async def ready(self) -> Ready:
        """The input's description, once FFmpeg has opened it; BadInput if it cannot."""
        item = await self._queue.get()
        self._slots.release()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        assert isinstance(item, Ready)
        return item

    @property
    def finished(self) -> bool:
        return self._done

    async def get(self, timeout: float | None = None) -> bytes:
        if self._eof:
            return b""
        if timeout:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        else:
            item = await self._queue.get()
        self._slots.release()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        assert isinstance(item, bytes)
        if not item:
            self._eof = True
        return item

    def stop(self) -> None:
        """End the decoder thread promptly, wherever it waits: for room, or for input."""
        self._stopped.set()
        self._slots.release()  # a decoder waiting for room wakes up and sees it
        abort = getattr(self._file, "abort", None)
        if abort is not None:  # a decoder waiting for a pipe's next block
            abort()

    # -- the decoder thread --------------------------------------------------

    def _post(self, item: Item) -> bool:
        """Hand an item to the event loop; False when nobody wants more."""
        if self._stopped.is_set():
            return False
        self._slots.acquire()
        if self._stopped.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def _run(self) -> None:
        try:
            decode(self.name, self._file, self._request, self._post, self._stopped.is_set)
        finally:
            self._done = True
            close = getattr(self._file, "close", None)
            if close is not None:
                close()


class PipeFile:
    """The bytes of a pipe, for FFmpeg to read in the decoder thread.

    What was sniffed comes first, then the pipe's blocks, which the event
    loop's `PipeReader` reads (`fetch` asks it for the next one); no `seek`,
    so FFmpeg treats it as the stream it is. `abort()` wakes a read waiting
    for a block that may never come (a stalled pipe), from any thread.
    """

    def __init__(
        self,
        prefix: bytes,
        fetch: Callable[[], concurrent.futures.Future[bytes]],
    ) -> None:
        self._buffer = prefix
        self._fetch = fetch
        self._eof = False
        self._lock = threading.Lock()
        self._waiting: concurrent.futures.Future[bytes] | None = None
        self._aborted = False

    def read(self, size: int = -1) -> bytes:
        while not self._buffer and not self._eof:
            block = self._next_block()
            self._eof = not block
            self._buffer = block
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            if self._waiting is not None:
                self._waiting.cancel()

    def _next_block(self) -> bytes:
        with self._lock:
            if self._aborted:
                raise Stopped
            self._waiting = self._fetch()
        try:
            return self._waiting.result()
        except concurrent.futures.CancelledError:
            raise Stopped from None
        finally:
            with self._lock:
                self._waiting = None
