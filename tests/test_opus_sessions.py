"""Ogg Opus across sessions: a long Ogg Opus input is split, and PCM can go out as Opus.

Ogg Opus sent as it is must stay one session (a second would need the
headers again, and pauses cannot be found without decoding), so a file
longer than a session is decoded and split at pauses like any recording.
With --send-as oggopus the client encodes, each session a fresh Ogg stream
with its own headers, rotation and resume found in the PCM before encoding.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import against
from support.faults import Fault, FaultServer
from support.run import recognize_path
from support.scripted import ScriptedServer
from support.servers import running_server
from support.tones import WORDS, ToneEngine, encode, tones

from sttcli.audio import decoded
from sttcli.audio import encode as opus_encode
from sttcli.audio.ogg import OggReader
from sttcli.audio.sources import Conversion, open_source
from sttcli.options import SessionPolicy, StreamSettings
from sttcli.server.servicer import Limits
from sttcli.session import Clockwork

SHORT_BACKOFF = Clockwork(random=lambda: 0.2)


def spoken(count: int) -> list[str]:
    return [" ".join(WORDS[(n + k) % len(WORDS)] for k in range(1 + n % 2)) for n in range(count)]


@pytest.fixture(scope="module")
def tone_server() -> Iterator[str]:
    with running_server(ToneEngine()) as address:
        yield address


@pytest.fixture(scope="module")
def long_opus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """About 14 s of Ogg Opus, made as a recorder would make it."""
    words = spoken(10)
    path = tmp_path_factory.mktemp("opus") / "talk.opus"
    encode(tones(*words), path, container="ogg", codec="libopus", out_rate=48000)
    return path, words


def texts(document: dict[str, object]) -> list[str]:
    return [u["text"] for u in document["utterances"]]  # type: ignore[attr-defined, index]


def test_an_ogg_opus_file_longer_than_a_session_is_decoded_and_split_at_pauses(
    tone_server: str, long_opus: tuple[Path, list[str]]
) -> None:
    path, words = long_opus
    result = against(tone_server, "-f", "json", "--max-session-seconds", "5", str(path))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert texts(document) == words
    assert document["sessions"] >= 3
    assert document["source"] == {
        "format": "Ogg Opus",
        "codec": "opus",
        "rate": 48000,
        "channels": 1,
        "decoded": True,
    }


def test_an_ogg_opus_file_that_fits_one_session_is_sent_as_it_is(
    stt_server: ScriptedServer, long_opus: tuple[Path, list[str]]
) -> None:
    path, _ = long_opus
    result = against(stt_server.address, "-f", "json", str(path))
    assert result.exit_code == 0, result.stderr
    assert stt_server.calls[0].audio_bytes == path.read_bytes()
    assert json.loads(result.stdout)["source"]["decoded"] is False


def test_ogg_opus_from_a_pipe_past_one_session_keeps_the_finals_of_what_was_sent(
    tone_server: str, long_opus: tuple[Path, list[str]]
) -> None:
    path, words = long_opus
    result = against(
        tone_server, "-f", "json", "--max-session-seconds", "5", "-", input=path.read_bytes()
    )
    assert result.exit_code == 3
    assert "give it as a file" in result.stderr
    document = json.loads(result.stdout)
    assert document["error"]["code"] == "OUT_OF_RANGE"
    heard = texts(document)
    assert heard and heard == words[: len(heard)]


# -- --send-as oggopus ------------------------------------------------------------


def pages_of(stream: bytes) -> list[tuple[int, tuple[bytes, ...]]]:
    return [(page.granule, page.packets) for page in OggReader().feed(stream)]


def test_each_opus_session_is_a_fresh_ogg_stream_with_pages_at_most_250_ms_apart(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    path = tmp_path / "talk.wav"
    encode(tones(*spoken(10)), path, container="wav", codec="pcm_s16le")
    result = against(
        stt_server.address, "--send-as", "oggopus", "--max-session-seconds", "5", str(path)
    )
    assert result.exit_code == 0, result.stderr
    assert len(stt_server.calls) >= 3
    for call in stt_server.calls:
        assert call.config is not None
        assert call.config.specification.audio_encoding == 2  # OGG_OPUS
        pages = pages_of(call.audio_bytes)
        assert pages[0][1][0].startswith(b"OpusHead")
        assert pages[1][1][0].startswith(b"OpusTags")
        granules = [0] + [granule for granule, _ in pages[2:]]
        assert max(b - a for a, b in zip(granules, granules[1:], strict=False)) <= 0.25 * 48000
    lpcm = (path.stat().st_size - 44) * 1.0
    assert sum(len(c.audio_bytes) for c in stt_server.calls) < lpcm / 5


def test_opus_on_the_wire_gives_the_same_transcript(tone_server: str, tmp_path: Path) -> None:
    words = spoken(10)
    path = tmp_path / "talk.mp3"
    encode(
        tones(*words, rate=44100, channels=2),
        path,
        container="mp3",
        codec="libmp3lame",
        rate=44100,
        layout="stereo",
        in_channels=2,
    )
    result = against(
        tone_server, "-f", "json", "--send-as", "oggopus", "--max-session-seconds", "5", str(path)
    )
    assert result.exit_code == 0, result.stderr
    assert texts(json.loads(result.stdout)) == words


# -- rotation and resume, decoded and Opus-encoded -------------------------------


@pytest.fixture
def talk(tmp_path: Path) -> tuple[Path, list[str]]:
    """About 30 s of MP3, 44.1 kHz stereo: 12 utterances, 2 s pauses between them."""
    words = spoken(12)
    path = tmp_path / "talk.mp3"
    encode(
        tones(*words, rate=44100, channels=2, gap=2.0),
        path,
        container="mp3",
        codec="libmp3lame",
        rate=44100,
        layout="stereo",
        in_channels=2,
    )
    return path, words


FAULTS = [
    pytest.param([Fault("unavailable", after=60)], 2, 1, id="unavailable"),
    pytest.param([Fault("sever", after=60)], 2, 1, id="connection-cut"),
    pytest.param([Fault("unavailable", after=40), Fault("refuse")], 2, 2, id="two-in-a-row"),
]


@pytest.mark.parametrize("send_as", ["lpcm", "oggopus"])
@pytest.mark.parametrize(("plan", "sessions", "retries"), FAULTS)
def test_decoded_input_resumes_without_lost_or_repeated_words(
    talk: tuple[Path, list[str]],
    send_as: str,
    plan: list[Fault],
    sessions: int,
    retries: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A decoded file keeps a short tail: going back to resume decodes it again."""
    monkeypatch.setattr(decoded, "_FILE_TAIL", 16000)  # half a second at 16 kHz
    path, words = talk
    server = FaultServer(engine=ToneEngine())
    try:
        server.plan = plan
        result, _ = asyncio.run(
            recognize_path(
                path,
                server.address,
                stream=StreamSettings(speed=20, send_as=send_as),
                policy=SessionPolicy(),
                clockwork=SHORT_BACKOFF,
            )
        )
    finally:
        server.stop()
    assert result.ok, result.error
    assert [u.text for u in result.utterances] == words
    assert (result.sessions, result.retries) == (sessions, retries)


@pytest.mark.parametrize("send_as", ["lpcm", "oggopus"])
def test_decoded_input_rotates_at_pauses(talk: tuple[Path, list[str]], send_as: str) -> None:
    path, words = talk
    server = FaultServer(engine=ToneEngine(), limits=Limits(max_seconds=12.0))
    try:
        result, events = asyncio.run(
            recognize_path(
                path,
                server.address,
                stream=StreamSettings(send_as=send_as),
                policy=SessionPolicy(max_session_seconds=10.0),
                conversion=Conversion(send_rate=16000),
            )
        )
    finally:
        server.stop()
    assert result.ok, result.error
    assert [u.text for u in result.utterances] == words
    assert result.sessions >= 3
    ends = [u.audio_end_s for u in result.utterances]
    assert ends == sorted(ends) and ends[-1] < result.audio_duration_s


def test_a_decoded_file_read_again_gives_the_same_pcm(
    talk: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decoded, "_FILE_TAIL", 8000)
    path, _ = talk

    async def read_twice() -> tuple[bytes, bytes, bytes]:
        source = await open_source(str(path))
        try:
            first = bytearray()
            while block := await source.read(4000):
                first += block
            again = b"".join([block async for block in source.region(96000, 160000)])
            await source.seek(32000)
            rest = bytearray()
            while block := await source.read(4000):
                rest += block
            return bytes(first), again, bytes(rest)
        finally:
            source.close()

    first, again, rest = asyncio.run(read_twice())
    assert again == first[96000:160000]
    assert rest == first[32000:]


@pytest.mark.parametrize("send_as", ["lpcm", "oggopus"])
def test_a_decoded_pipe_resumes_from_the_pcm_it_kept(
    talk: tuple[Path, list[str]], send_as: str
) -> None:
    path, words = talk
    server = FaultServer(engine=ToneEngine())
    try:
        server.plan = [Fault("unavailable", after=60)]
        result = against(
            server.address,
            "-f",
            "json",
            "--speed",
            "20",
            "--send-as",
            send_as,
            "-",
            input=path.read_bytes(),
        )
    finally:
        server.stop()
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert texts(document) == words
    assert (document["sessions"], document["retries"]) == (2, 1)


# -- the Opus encoder: off the event loop, and let go however a session ends -----


class WatchedEncoder(opus_encode.OggOpusEncoder):
    """The real encoder, telling which threads it encoded in and whether it was let go."""

    made: list[WatchedEncoder] = []

    def __init__(self, rate: int) -> None:
        super().__init__(rate)
        self.threads: set[int] = set()
        self.let_go = False
        WatchedEncoder.made.append(self)

    def encode(self, pcm: bytes) -> bytes:
        self.threads.add(threading.get_ident())
        return super().encode(pcm)

    def finish(self) -> bytes:
        self.let_go = True
        return super().finish()

    def close(self) -> None:
        self.let_go = True
        super().close()


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> list[WatchedEncoder]:
    monkeypatch.setattr(opus_encode, "OggOpusEncoder", WatchedEncoder)
    monkeypatch.setattr(WatchedEncoder, "made", [])
    return WatchedEncoder.made


def all_let_go(encoders: list[WatchedEncoder]) -> bool:
    """The last encoder is closed in its own thread just after the stream: wait for it."""
    deadline = time.monotonic() + 10
    while not all(e.let_go for e in encoders) and time.monotonic() < deadline:
        time.sleep(0.01)
    return all(e.let_go for e in encoders)


def test_opus_is_encoded_off_the_event_loop(
    talk: tuple[Path, list[str]], watched: list[WatchedEncoder]
) -> None:
    path, words = talk
    server = FaultServer(engine=ToneEngine())
    try:
        result, _ = asyncio.run(
            recognize_path(
                path,
                server.address,
                stream=StreamSettings(send_as="oggopus"),
                policy=SessionPolicy(max_session_seconds=10.0),
            )
        )
    finally:
        server.stop()
    assert result.ok, result.error
    assert [u.text for u in result.utterances] == words
    assert len(watched) == result.sessions >= 3
    loop_thread = threading.get_ident()  # asyncio.run ran the loop in this thread
    assert all(e.threads and loop_thread not in e.threads for e in watched)
    assert all_let_go(watched)


@pytest.mark.parametrize(
    ("fault", "policy"),
    [
        pytest.param(Fault("unavailable", after=20), SessionPolicy(), id="retried"),
        pytest.param(
            Fault("stall", after=20, seconds=3.0),
            SessionPolicy(retries=0, timeout=1.0),
            id="timed-out",
        ),
    ],
)
def test_every_opus_encoder_is_let_go_when_a_session_is_cut_short(
    talk: tuple[Path, list[str]],
    watched: list[WatchedEncoder],
    fault: Fault,
    policy: SessionPolicy,
) -> None:
    path, _ = talk
    server = FaultServer(engine=ToneEngine())
    try:
        server.plan = [fault]
        asyncio.run(
            recognize_path(
                path,
                server.address,
                stream=StreamSettings(speed=20, send_as="oggopus"),
                policy=policy,
                clockwork=SHORT_BACKOFF,
            )
        )
    finally:
        server.stop()
    assert watched
    assert all_let_go(watched)
