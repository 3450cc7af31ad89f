"""Incremental Ogg page parsing, for Ogg Opus streams.

The client needs it to know how much audio the bytes sent so far hold (pacing
and positions come from granule positions); the server needs the packets to
hand them to the Opus decoder. Both feed bytes as they arrive, in any split.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from sttcli.audio.sniff import OPUS_RATE

_CAPTURE = b"OggS"
_HEADER = struct.Struct(
    "<4sBBqIIIB"
)  # capture, version, flags, granule, serial, seq, crc, segments


class OggError(ValueError):
    """The bytes are not a well-formed Ogg stream."""


@dataclass(frozen=True)
class Page:
    granule: int  # -1 when no packet ends on this page
    packets: tuple[bytes, ...]  # packets completed on this page
    end_offset: int  # stream offset just past this page


class OggReader:
    """Turns bytes, fed in arbitrary pieces, into complete pages and packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._consumed = 0  # stream offset of _buffer[0]
        self._partial_packet = bytearray()

    def feed(self, data: bytes) -> Iterator[Page]:
        """Yield the pages `data` completes; raise OggError on corrupt input."""
        self._buffer += data
        while True:
            page = self._next_page()
            if page is None:
                return
            yield page

    def _next_page(self) -> Page | None:
        buffer = self._buffer
        if len(buffer) < _HEADER.size:
            if buffer and not _CAPTURE.startswith(bytes(buffer[:4])):
                raise OggError("lost Ogg page sync")
            return None
        capture, _, _, granule, _, _, _, segments = _HEADER.unpack_from(buffer)
        if capture != _CAPTURE:
            raise OggError("lost Ogg page sync")
        lacing_end = _HEADER.size + segments
        if len(buffer) < lacing_end:
            return None
        lacing = buffer[_HEADER.size : lacing_end]
        page_end = lacing_end + sum(lacing)
        if len(buffer) < page_end:
            return None
        packets = []
        position = lacing_end
        for size in lacing:
            self._partial_packet += buffer[position : position + size]
            position += size
            if size < 255:
                packets.append(bytes(self._partial_packet))
                self._partial_packet.clear()
        del buffer[:page_end]
        self._consumed += page_end
        return Page(granule, tuple(packets), self._consumed)


class OpusTimeline:
    """How many seconds of audio the complete pages of an Ogg Opus stream hold.

    Positions are those of the decoded audio: the encoder's pre-skip (from the
    OpusHead packet) is not audio. A corrupt stream stops the count where it
    broke: the server, not the client, is the judge of what it can decode.
    """

    def __init__(self) -> None:
        self._reader: OggReader | None = OggReader()
        self._pre_skip = 0
        self._head_seen = False
        self.seconds = 0.0

    def feed(self, data: bytes) -> float:
        if self._reader is not None:
            try:
                for page in self._reader.feed(data):
                    self._account(page)
            except OggError:
                self._reader = None
        return self.seconds

    def _account(self, page: Page) -> None:
        if not self._head_seen and page.packets:
            head = page.packets[0]
            if head[:8] == b"OpusHead" and len(head) >= 12:
                (self._pre_skip,) = struct.unpack_from("<H", head, 10)
            self._head_seen = True
        if page.granule > 0:
            self.seconds = max(self.seconds, (page.granule - self._pre_skip) / OPUS_RATE)
