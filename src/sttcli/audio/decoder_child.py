"""The decoder process: one file decoded, what it makes written as frames on stdout.

Started by `decoder_process` with the file's descriptor passed on, and
`main(FD, REQUEST)` called. It imports no more than the
decoding pass needs (no asyncio, no gRPC), so that it starts fast and small.

A frame is a kind byte, a 4-byte big-endian length and the payload: PCM
(an empty block ends the input), the input's description once FFmpeg has
opened it, a BadInput's message, or a warning line for the parent's log.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import struct
from typing import BinaryIO

from sttcli.audio.decode import DecodeRequest, Item, Ready, decode
from sttcli.results import SourceInfo

HEADER = struct.Struct(">cI")  # kind, payload length
PCM = b"P"  # a block of PCM; an empty one ends the input
READY = b"R"  # the input's description, as JSON
BAD_INPUT = b"B"  # why the input cannot be decoded (or no further)
WARNING = b"W"  # a line for the log: frames skipped, an input cut short


def request_to_json(name: str, request: DecodeRequest) -> str:
    return json.dumps({"name": name, "request": dataclasses.asdict(request)})


def request_from_json(text: str) -> tuple[str, DecodeRequest]:
    document = json.loads(text)
    fields = document["request"]
    fields["options"] = tuple(tuple(pair) for pair in fields["options"])
    return document["name"], DecodeRequest(**fields)


def ready_to_json(ready: Ready) -> bytes:
    document = {
        "info": ready.info.to_json(),
        "rate": ready.rate,
        "duration_s": ready.duration_s,
    }
    return json.dumps(document).encode()


def ready_from_json(payload: bytes) -> Ready:
    document = json.loads(payload)
    return Ready(SourceInfo(**document["info"]), document["rate"], document["duration_s"])


class _FrameWriter:
    """Writes frames to the parent; False once the parent has gone."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.open = True

    def write(self, kind: bytes, payload: bytes) -> bool:
        if not self.open:
            return False
        try:
            self._out.write(HEADER.pack(kind, len(payload)))
            self._out.write(payload)
            self._out.flush()
        except (BrokenPipeError, ValueError):
            self.open = False
        return self.open

    def post(self, item: Item) -> bool:
        if isinstance(item, bytes):
            return self.write(PCM, item)
        if isinstance(item, Ready):
            return self.write(READY, ready_to_json(item))
        return self.write(BAD_INPUT, str(item).encode())


class _ForwardWarnings(logging.Handler):
    def __init__(self, writer: _FrameWriter) -> None:
        super().__init__(logging.WARNING)
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        self._writer.write(WARNING, record.getMessage().encode())


def main(descriptor: int, request_json: str) -> None:
    # Frames go out on a descriptor of their own; anything a library prints
    # to stdout goes to stderr instead of into them.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    writer = _FrameWriter(out)
    logging.getLogger("sttcli").addHandler(_ForwardWarnings(writer))
    logging.getLogger("sttcli").setLevel(logging.WARNING)
    name, request = request_from_json(request_json)
    # By a path, FFmpeg reads the file itself, not through Python's calls: a
    # fifth less CPU for an MP3. /dev/fd/N is the descriptor we were given.
    try:
        decode(name, f"/dev/fd/{descriptor}", request, writer.post)
    finally:
        os.close(descriptor)
    try:
        out.close()
    except BrokenPipeError:
        pass
