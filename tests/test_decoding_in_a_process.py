"""A decoded file is decoded by a process of its own, which never outlives its use.

So that decoding an MP3 and sending its audio run side by side on two cores,
not in turns for one interpreter's lock. A pipe keeps its decoder thread, and
a file falls back on one where no process can be started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from support.cli import child_env, spawn_against
from support.scripted import Reply, ScriptedServer, response
from support.tones import encode, tones

from sttcli.audio.decoder_process import DecoderProcess
from sttcli.audio.decoder_thread import DecodingReader
from sttcli.audio.sources import open_source
from sttcli.errors import BadInput

SPOKEN = ("alpha bravo", "charlie delta echo")


@pytest.fixture(scope="module")
def mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half a minute of 44.1 kHz stereo MP3: long enough to be stopped midway."""
    path = tmp_path_factory.mktemp("decoded") / "talk.mp3"
    pcm = tones(*SPOKEN * 6, rate=44100, channels=2)
    encode(
        pcm, path, container="mp3", codec="libmp3lame", rate=44100, layout="stereo", in_channels=2
    )
    return path


async def all_pcm(path: Path) -> tuple[bytes, object]:
    source = await open_source(str(path))
    try:
        chunks = []
        while chunk := await source.read(64 * 1024):
            chunks.append(chunk)
        return b"".join(chunks), source._decoder  # type: ignore[attr-defined]
    finally:
        source.close()


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def test_a_file_is_decoded_by_a_process_of_its_own(mp3: Path) -> None:
    pcm, decoder = asyncio.run(all_pcm(mp3))
    assert isinstance(decoder, DecoderProcess)
    assert len(pcm) > 32000 * 20  # 16 kHz mono, the rate sent for a 44.1 kHz input


def test_a_pipe_is_decoded_in_a_thread(mp3: Path) -> None:
    async def first_block() -> object:
        with open(mp3, "rb") as stdin_like:
            read_end, write_end = os.pipe()
            os.write(write_end, stdin_like.read(60000))
            os.close(write_end)
            with open(read_end, "rb", buffering=0) as stdin:
                source = await open_source("-", stdin=stdin)
                try:
                    assert await source.read(4000)
                    return source._decoder  # type: ignore[attr-defined]
                finally:
                    source.close()

    assert isinstance(asyncio.run(first_block()), DecodingReader)


def test_the_process_and_the_thread_decode_a_file_to_the_same_pcm(
    mp3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_process, _ = asyncio.run(all_pcm(mp3))
    # No interpreter to start: the file falls back on a thread.
    monkeypatch.setattr(sys, "executable", str(mp3.parent / "no-such-python"))
    by_thread, decoder = asyncio.run(all_pcm(mp3))
    assert isinstance(decoder, DecodingReader)
    assert by_thread == by_process


def test_closing_a_decoded_file_ends_its_decoder_process_at_once(mp3: Path) -> None:
    async def open_read_close() -> int:
        source = await open_source(str(mp3))
        assert await source.read(4000)
        pid = source._decoder._process.pid  # type: ignore[attr-defined]
        source.close()
        return int(pid)

    pid = asyncio.run(open_read_close())
    assert gone(pid, within=1.0)


def test_a_decoder_process_that_dies_is_one_clear_error_after_the_audio_it_gave(
    mp3: Path,
) -> None:
    async def read_until_it_dies() -> tuple[int, str]:
        source = await open_source(str(mp3))
        received = 0
        try:
            received += len(await source.read(4000))
            os.kill(source._decoder._process.pid, signal.SIGKILL)  # type: ignore[attr-defined]
            with pytest.raises(BadInput) as failure:
                while chunk := await source.read(4000):
                    received += len(chunk)
            return received, str(failure.value)
        finally:
            source.close()

    received, message = asyncio.run(read_until_it_dies())
    assert received >= 4000  # what came before the death is kept
    assert message == f"{mp3}: the decoder process was killed by SIGKILL"


def test_a_decoder_process_ends_when_sttcli_is_killed(mp3: Path) -> None:
    """SIGKILL leaves no clean-up to do: the decoder sees its pipe close and ends."""
    program = textwrap.dedent(
        f"""
        import asyncio, sys
        from sttcli.audio.sources import open_source

        async def hold() -> None:
            source = await open_source({str(mp3)!r})
            await source.read(4000)
            print(source._decoder._process.pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(hold())
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", program], stdout=subprocess.PIPE, text=True, env=child_env()
    )
    assert holder.stdout is not None
    decoder_pid = int(holder.stdout.readline())
    holder.kill()
    holder.wait(timeout=10)
    holder.stdout.close()
    assert gone(decoder_pid)


def test_ctrl_c_during_a_decoded_file_leaves_no_decoder_behind(
    stt_server: ScriptedServer, mp3: Path
) -> None:
    stt_server.script = [Reply(response("alpha bravo"), after=1)]
    process = spawn_against(
        stt_server.address,
        "--speed",
        "1",
        str(mp3),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stt_server.wait_for_streams()
    decoders = psutil.Process(process.pid).children(recursive=True)
    assert len(decoders) == 1
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert out == b"alpha bravo\n"
    assert err == b"sttcli: interrupted\n"
    assert gone(decoders[0].pid)


def test_the_decoder_process_imports_nothing_from_the_working_directory(
    mp3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's own logging.py beside their recordings is theirs, not the decoder's."""
    (tmp_path / "logging.py").write_text("raise SystemExit('the wrong logging')\n")
    (tmp_path / "json.py").write_text("raise SystemExit('the wrong json')\n")
    monkeypatch.chdir(tmp_path)
    pcm, decoder = asyncio.run(all_pcm(mp3))
    assert isinstance(decoder, DecoderProcess)
    assert len(pcm) > 32000 * 20
