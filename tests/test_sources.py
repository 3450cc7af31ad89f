"""The chunker: sources read audio in chunks of exactly --chunk-size bytes, whatever comes in."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from support.audio import wav_header

from sttcli.audio.sources import AudioSource, open_source


async def read_all(source: AudioSource, size: int) -> list[bytes]:
    chunks = []
    while chunk := await source.read(size):
        chunks.append(chunk)
    return chunks


def assert_chunked(chunks: list[bytes], data: bytes, size: int) -> None:
    assert b"".join(chunks) == data
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert all(0 < len(chunk) <= size for chunk in chunks)


class Pipe:
    """A pipe that delivers the given blocks, one per read, like a slow producer."""

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = [b for b in blocks if b]
        self.lock = threading.Lock()

    def read1(self, size: int) -> bytes:
        with self.lock:
            return self.blocks.pop(0) if self.blocks else b""


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=12_000), st.integers(1, 5000), st.booleans())
def test_a_file_is_read_in_exact_chunks(data: bytes, size: int, as_wav: bool) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audio"
        header = wav_header(len(data)) if as_wav else b""
        path.write_bytes(header + data)

        async def scenario() -> list[bytes]:
            source = await open_source(str(path), rate=None if as_wav else 16000, encoding="lpcm")
            try:
                return await read_all(source, size)
            finally:
                source.close()

        assert_chunked(asyncio.run(scenario()), data, size)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=12),
    st.integers(1, 5000),
)
def test_a_pipe_is_read_in_exact_chunks_however_it_arrives(blocks: list[bytes], size: int) -> None:
    data = b"".join(blocks)

    async def scenario() -> list[bytes]:
        source = await open_source("-", stdin=Pipe(blocks), rate=16000, encoding="lpcm")  # type: ignore[arg-type]
        return await read_all(source, size)

    assert_chunked(asyncio.run(scenario()), data, size)


def test_a_pipe_can_go_back_to_any_position_it_still_holds() -> None:
    data = bytes(range(256)) * 40

    async def scenario() -> tuple[bytes, bytes]:
        source = await open_source(
            "-", stdin=Pipe([data[:5000], data[5000:]]), rate=16000, encoding="lpcm"
        )  # type: ignore[arg-type]
        first = b"".join(await read_all(source, 4000))
        source.release(3000)
        await source.seek(3000)
        again = b"".join(await read_all(source, 4000))
        return first, again

    first, again = asyncio.run(scenario())
    assert first == data and again == data[3000:]
