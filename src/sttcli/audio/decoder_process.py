"""Decoding a file in a process of its own.

An MP3 holds about 38 frames per second of audio, and PyAV makes a few
Python calls of each: an hour is some 140,000 frames. In a thread, those
calls take turns for the GIL with the event loop that sends the audio, and
each waits for the other: the hour took 3.6 times as long to stream as the
same audio as WAV. In a child process the decoder has a core of its own, and
the event loop only reads PCM from a pipe.

The child (`decoder_child`) runs the same `decode()` as the thread does, and
writes what it makes as frames on its stdout. The pipe is the bounded queue:
when the sender falls behind, the child waits on its write, and memory stays
flat.

Files only. A pipe's bytes are read by the event loop, which keeps a stalled
pipe alive with silence, so a decoded pipe keeps its thread: live audio
comes at the pace of speech, where the GIL costs nothing that matters.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import tempfile
from typing import IO, BinaryIO

from sttcli.audio import decoder_child
from sttcli.audio.decode import DecodeRequest, Item, Ready
from sttcli.audio.decoder_child import BAD_INPUT, HEADER, PCM, READY, WARNING
from sttcli.errors import BadInput

log = logging.getLogger("sttcli.audio")

_BUFFER = 256 * 1024  # read ahead of the sender, besides the pipe's own buffer
# The child's first lines: our import path, not one that starts at the
# working directory (`-m` and `-c` put it first), where a user's own json.py
# or logging.py would be imported instead of the standard library's.
_START = (
    "import sys\n"
    "sys.path[:] = sys.argv[1].split('\\n')\n"
    "from sttcli.audio.decoder_child import main\n"
    "main(int(sys.argv[2]), sys.argv[3])\n"
)


class DecoderProcess:
    """A child process decoding one file; `get()` returns its PCM block by block (b'' at the end).

    It has the shape of `sttcli.audio.decoder_thread.DecodingReader`.
    """

    def __init__(
        self,
        name: str,
        process: subprocess.Popen[bytes],
        frames: asyncio.StreamReader,
        transport: asyncio.ReadTransport,
        stderr: IO[bytes],
    ) -> None:
        self.name = name
        self._process = process
        self._frames = frames
        self._transport = transport
        self._stderr = stderr
        self._next_item: asyncio.Future[Item] | None = None
        self._eof = False

    async def ready(self) -> Ready:
        """The input's description, once FFmpeg has opened it; BadInput if it cannot."""
        item = await self._item()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        if not isinstance(item, Ready):
            raise BadInput(f"{self.name}: the decoder began with audio, not its description")
        return item

    @property
    def finished(self) -> bool:
        return self._process.poll() is not None

    async def get(self, timeout: float | None = None) -> bytes:
        if self._eof:
            return b""
        item = await self._item(timeout)
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        if not isinstance(item, bytes):
            raise BadInput(f"{self.name}: the decoder described the input twice")
        if not item:
            self._eof = True
        return item

    def stop(self) -> None:
        """End the child now, wherever it is: nothing it would still say is wanted."""
        if self._process.poll() is None:
            self._process.kill()
        if self._next_item is not None:
            self._next_item.cancel()
        try:
            self._transport.close()
        except RuntimeError:  # the event loop is already closed: close the pipe itself
            assert self._process.stdout is not None
            self._process.stdout.close()
        try:
            self._process.wait(timeout=1.0)  # SIGKILL: a few milliseconds
        except subprocess.TimeoutExpired:
            pass
        self._stderr.close()

    async def _item(self, timeout: float | None = None) -> Item:
        """The next item; a read that times out goes on, so that no frame is cut in two."""
        if self._next_item is None:
            self._next_item = asyncio.ensure_future(self._read_item())
        waiting = self._next_item
        if timeout:
            await asyncio.wait({waiting}, timeout=timeout)
            if not waiting.done():
                raise TimeoutError
        self._next_item = None
        return await waiting

    async def _read_item(self) -> Item:
        while True:
            try:
                kind, size = HEADER.unpack(await self._frames.readexactly(HEADER.size))
                payload = await self._frames.readexactly(size)
            except asyncio.IncompleteReadError:
                return BadInput(f"{self.name}: {await self._how_it_ended()}")
            if kind == PCM:
                return payload
            if kind == WARNING:
                log.warning("%s", payload.decode("utf-8", "replace"))
            elif kind == READY:
                return decoder_child.ready_from_json(payload)
            elif kind == BAD_INPUT:
                return BadInput(payload.decode("utf-8", "replace"))
            else:
                return BadInput(f"{self.name}: the decoder said something unknown ({kind!r})")

    async def _how_it_ended(self) -> str:
        """The child ended without finishing: say how, and keep its last words for -v."""
        for _ in range(100):
            if self._process.poll() is not None:
                break
            await asyncio.sleep(0.01)
        code = self._process.returncode
        self._stderr.seek(0)
        last_words = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        if last_words:
            log.debug("%s: the decoder process said: %s", self.name, last_words)
        if code is None:
            return "the decoder process stopped answering"
        if code < 0:
            try:
                return f"the decoder process was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"the decoder process was killed by signal {-code}"
        return f"the decoder process stopped unexpectedly (exit status {code})"


async def start_decoder_process(
    name: str, file: BinaryIO, request: DecodeRequest
) -> DecoderProcess:
    """Start a child decoding `file` (a regular file, read from its start); OSError if it cannot.

    The child gets the file's descriptor, so it decodes the very file that
    was sniffed; ours is closed once the child has it.
    """
    descriptor = file.fileno()
    request_json = decoder_child.request_to_json(name, request)
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _START, _import_path(), str(descriptor), request_json],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            pass_fds=(descriptor,),
            # Out of the terminal's process group: Ctrl-C is ours to handle,
            # and we end the child; a child's KeyboardInterrupt would only
            # print a traceback.
            start_new_session=True,
        )
    except BaseException:
        stderr.close()
        raise
    file.close()
    assert process.stdout is not None
    loop = asyncio.get_running_loop()
    frames = asyncio.StreamReader(limit=_BUFFER, loop=loop)
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(frames, loop=loop), process.stdout
        )
    except BaseException:
        process.kill()
        process.wait()
        process.stdout.close()
        stderr.close()
        raise
    return DecoderProcess(name, process, frames, transport, stderr)


def _import_path() -> str:
    return "\n".join(entry for entry in sys.path if isinstance(entry, str))
