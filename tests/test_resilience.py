"""Retries, resume and session rotation: for every fault, the transcript of a clean run.

The server is sttcli's own servicer on the synthetic engine, whose words are
runs of marker samples, behind a TCP proxy that can cut connections for real.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.audio import markers
from support.faults import Fault, FaultServer
from support.run import recognize_path

from sttcli.options import RecognitionSettings, SessionPolicy, StreamSettings
from sttcli.server.servicer import Limits
from sttcli.server.synthetic import WORDS
from sttcli.session import Clockwork

# Backoff always a fifth of its ceiling (0.1 s, 0.2 s, ...): short, and never 0,
# which full jitter allows but which would retry before the channel has even
# noticed that a connection was cut, making the counts depend on timing.
SHORT_BACKOFF = Clockwork(random=lambda: 0.2)


def utterances(count: int, start: int = 0) -> list[str]:
    """Distinct-looking utterances of one to three words."""
    names = itertools.cycle(WORDS)
    for _ in range(start):
        next(names)
    return [" ".join(next(names) for _ in range(1 + n % 3)) for n in range(count)]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    faulty = FaultServer()
    yield faulty
    faulty.stop()


@pytest.fixture
def talk(tmp_path: Path) -> tuple[Path, list[str]]:
    """40 s of audio at 16 kHz (320 messages): 16 utterances, 2 s pauses between them.

    "A chunk or two" is what a paced client may run ahead of the server before
    a final reaches it; resuming at a pause is exact while that lead is shorter
    than the pause. At 20 times real time a busy machine stretches the lead
    (90 ms of wall time, nearly 2 s of audio, has been seen with two test runs
    on two cores): 2 s pauses, 100 ms of wall time, keep the tests about the
    client's logic rather than the machine's load.
    """
    spoken = utterances(16)
    path = tmp_path / "talk.pcm"
    path.write_bytes(markers(*spoken, gap=2.0))
    return path, spoken


def run(path: Path, server: FaultServer, *, speed: float = 0.0, **policy: object):  # type: ignore[no-untyped-def]
    result, events = asyncio.run(
        recognize_path(
            path,
            server.address,
            rate=16000,
            stream=StreamSettings(speed=speed),
            policy=SessionPolicy(**policy),  # type: ignore[arg-type]
            clockwork=SHORT_BACKOFF,
        )
    )
    return result, events


def texts(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [u.text for u in result.utterances]


FAULTS = [
    # fault, expected sessions, expected retries
    pytest.param([Fault("refuse"), Fault("refuse")], 1, 2, id="quota-twice"),
    pytest.param([Fault("unavailable", after=70)], 2, 1, id="unavailable"),
    pytest.param([Fault("sever", after=70)], 2, 1, id="connection-cut"),
    pytest.param([Fault("early", after=70)], 2, 1, id="ends-early-ok"),
    pytest.param([Fault("stall", after=70, seconds=0.5)], 1, 0, id="stall"),
    pytest.param(
        [Fault("unavailable", after=50), Fault("refuse"), Fault("sever", after=90)],
        3,
        3,
        id="three-in-a-row",
    ),
]


@pytest.mark.parametrize(("plan", "sessions", "retries"), FAULTS)
def test_paced_faults_lose_and_repeat_nothing(
    talk: tuple[Path, list[str]], plan: list[Fault], sessions: int, retries: int
) -> None:
    """Paced, the client is a chunk or two ahead: resuming at the last pause is exact."""
    path, spoken = talk
    server = FaultServer(word_timings=False)  # no timings: the pause finder must do it
    try:
        server.plan = plan
        result, _ = run(path, server, speed=20)
    finally:
        server.stop()
    assert result.ok, result.error
    assert texts(result) == spoken
    assert (result.sessions, result.retries) == (sessions, retries)


# Unpaced, the client may have sent everything and half-closed before a server
# ends early with OK: that end is then indistinguishable from a normal one
# (documented), so that fault is only tested paced.
UNPACED_FAULTS = [fault for fault in FAULTS if fault.id != "ends-early-ok"]


@pytest.mark.parametrize(("plan", "sessions", "retries"), UNPACED_FAULTS)
def test_unpaced_faults_resume_at_the_word_timings(
    server: FaultServer,
    talk: tuple[Path, list[str]],
    plan: list[Fault],
    sessions: int,
    retries: int,
) -> None:
    path, spoken = talk
    server.plan = plan
    result, _ = run(path, server)
    assert result.ok, result.error
    assert texts(result) == spoken
    assert (result.sessions, result.retries) == (sessions, retries)


def test_sessions_rotate_at_pauses_before_the_servers_limit(tmp_path: Path) -> None:
    spoken = utterances(60)  # 63 s
    path = tmp_path / "long.pcm"
    path.write_bytes(markers(*spoken))
    server = FaultServer(limits=Limits(max_seconds=12.0), word_timings=False)
    try:
        result, events = run(path, server, max_session_seconds=10.0)
    finally:
        server.stop()
    assert result.ok, result.error
    assert texts(result) == spoken
    assert result.retries == 0
    assert 7 <= result.sessions <= 9  # each cut in the last quarter before 10 s
    assert {e.session for e in events} <= set(range(1, result.sessions + 1))


def test_positions_count_from_the_start_of_the_input(tmp_path: Path) -> None:
    spoken = utterances(20)
    path = tmp_path / "long.pcm"
    path.write_bytes(markers(*spoken))
    server = FaultServer(limits=Limits(max_seconds=6.0))
    try:
        result, events = run(path, server, max_session_seconds=5.0)
    finally:
        server.stop()
    ends = [u.audio_end_s for u in result.utterances]
    assert ends == sorted(ends)
    # Utterance n ends where markers() put its last word, whatever session it was in.
    expected_end, position = [], 0.1
    for utterance in spoken:
        words = len(utterance.split())
        position += words * 0.2 + (words - 1) * 0.05
        expected_end.append(position)
        position += 0.6
    assert ends == pytest.approx(expected_end, abs=0.011)
    sent = [e.audio_sent_s for e in events]
    assert sent == sorted(sent) and expected_end[-1] < sent[-1] <= position


def test_with_no_pause_before_the_limit_the_cut_is_at_the_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One loud 12-second "word": no pause anywhere.
    path = tmp_path / "drone.pcm"
    path.write_bytes(markers("zulu", word=12.0, gap=0.5))
    server = FaultServer(limits=Limits(max_seconds=10.0))
    try:
        result, _ = run(path, server, max_session_seconds=5.0)
    finally:
        server.stop()
    assert result.ok, result.error
    assert result.sessions == 3
    assert texts(result) == ["zulu", "zulu", "zulu"]  # the word was split, as documented
    assert "cutting at the limit" in caplog.text


def test_twenty_minutes_through_rotations_and_faults_match_a_clean_run(tmp_path: Path) -> None:
    spoken = utterances(1140)
    audio = markers(*spoken)
    assert 19 * 60 < len(audio) / 32000 < 21 * 60
    path = tmp_path / "meeting.pcm"
    path.write_bytes(audio)
    server = FaultServer(limits=Limits(max_seconds=300.0))
    try:
        clean, _ = run(path, server, max_session_seconds=120.0)
        # Sessions are 90-120 s, 720-960 messages: break the 2nd and the 4th half-way.
        server.plan = [None, Fault("unavailable", after=400), None, Fault("sever", after=500)]
        result, _ = run(path, server, max_session_seconds=120.0)
    finally:
        server.stop()
    assert clean.ok and result.ok, result.error
    assert texts(clean) == texts(result) == spoken
    assert (clean.retries, result.retries) == (0, 2)
    # A resumed session starts earlier, so the later cuts may move by one session.
    assert clean.sessions + 1 <= result.sessions <= clean.sessions + 2


def test_retries_give_up_after_the_limit_with_the_servers_error(
    server: FaultServer, talk: tuple[Path, list[str]]
) -> None:
    server.plan = [Fault("refuse")] * 5
    result, _ = run(talk[0], server, retries=3)
    assert result.error is not None
    assert (result.error.code, result.error.exit_code) == ("RESOURCE_EXHAUSTED", 5)
    assert (result.retries, result.sessions, server.servicer.attempts) == (3, 0, 4)


def test_zero_retries_means_no_retry(server: FaultServer, talk: tuple[Path, list[str]]) -> None:
    server.plan = [Fault("unavailable", after=5)]
    result, _ = run(talk[0], server, retries=0)
    assert result.error is not None and result.error.code == "UNAVAILABLE"
    assert (result.retries, result.sessions) == (0, 1)


def test_a_session_limit_error_is_not_retried(talk: tuple[Path, list[str]]) -> None:
    server = FaultServer(limits=Limits(max_seconds=3.0))
    try:
        result, _ = run(talk[0], server, max_session_seconds=100.0)
    finally:
        server.stop()
    assert result.error is not None and result.error.code == "OUT_OF_RANGE"
    assert result.retries == 0


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    from sttcli.session import InputRecognizer

    recognizer = InputRecognizer.__new__(InputRecognizer)
    recognizer.policy = SessionPolicy()
    recognizer._deadline = None
    recognizer.time = Clockwork(random=lambda: 1.0)
    worst = [recognizer._backoff(attempt) for attempt in range(6)]
    assert worst == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert sum(worst[:3]) < 10  # the default three retries
    recognizer.time = Clockwork(random=lambda: 0.25)
    assert recognizer._backoff(2) == 0.5


def test_cancelling_during_a_backoff_wait_ends_at_once(
    server: FaultServer, talk: tuple[Path, list[str]]
) -> None:
    server.plan = [Fault("refuse")] * 3
    waiting = asyncio.Event()

    async def forever(seconds: float) -> None:
        waiting.set()
        await asyncio.Event().wait()

    async def scenario() -> None:
        task = asyncio.ensure_future(
            recognize_path(talk[0], server.address, rate=16000, clockwork=Clockwork(sleep=forever))
        )
        await waiting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


# -- inputs that are not files ----------------------------------------------------


def pipe_with(chunks: list[bytes | float]) -> int:
    """A pipe fed by a thread: bytes are written, floats are pauses (seconds)."""
    read, write = os.pipe()

    def feed() -> None:
        with os.fdopen(write, "wb") as writer:
            for item in chunks:
                if isinstance(item, float):
                    time.sleep(item)
                else:
                    writer.write(item)
                    writer.flush()

    threading.Thread(target=feed, daemon=True).start()
    return read


def recognize_pipe(read: int, server: FaultServer, **options: Any):  # type: ignore[no-untyped-def]
    """Recognize what arrives on a pipe (as stdin), to the end."""
    with os.fdopen(read, "rb") as stdin:
        result, _ = asyncio.run(
            recognize_path("-", server.address, rate=16000, stdin=stdin, **options)
        )
    return result


def test_stdin_resumes_from_its_own_buffer(
    server: FaultServer, talk: tuple[Path, list[str]]
) -> None:
    path, spoken = talk
    read = pipe_with([path.read_bytes()])
    server.plan = [Fault("sever", after=70)]
    result = recognize_pipe(read, server, clockwork=SHORT_BACKOFF, stream=StreamSettings(speed=20))
    assert result.ok, result.error
    assert texts(result) == spoken
    assert (result.sessions, result.retries) == (2, 1)


def test_a_stalled_pipe_is_kept_alive_with_silence(server: FaultServer) -> None:
    audio = markers("alpha bravo", "charlie")
    # A 1 s stall in the pause after "alpha bravo", at an odd byte.
    read = pipe_with([audio[:22401], 1.0, audio[22401:]])
    result = recognize_pipe(read, server, stream=StreamSettings(keepalive_silence=0.3))
    assert texts(result) == ["alpha bravo", "charlie"]
    assert result.sessions == 1 and server.servicer.attempts == 1
    # The stall became about 0.7 s of silence on the stream's timeline.
    assert result.audio_duration_s > len(audio) / 32000 + 0.5


class RefreshingEnvironment(dict):  # type: ignore[type-arg]
    """An environment whose token a refresher replaces between reads."""

    reads = 0

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if key != "YC_IAM_TOKEN":
            return default
        self.reads += 1
        return f"token-{self.reads}"


def test_credentials_are_read_again_for_each_session(tmp_path: Path) -> None:
    import grpc.aio
    from support.scripted import ScriptedServer

    from sttcli.audio.sources import open_source
    from sttcli.auth.credentials import CredentialSource
    from sttcli.session import Connection, InputRecognizer

    scripted = ScriptedServer()
    path = tmp_path / "a.pcm"
    path.write_bytes(markers(*utterances(12)))

    async def scenario() -> None:
        connection = Connection(
            endpoint=scripted.address,
            credentials=CredentialSource(environ=RefreshingEnvironment()),
            channel_factory=lambda: grpc.aio.insecure_channel(scripted.address),
        )
        source = await open_source(str(path), rate=16000)
        recognizer = InputRecognizer(
            source,
            settings=RecognitionSettings(),
            connection=connection,
            policy=SessionPolicy(max_session_seconds=5.0),
        )
        try:
            await recognizer.run()
        finally:
            source.close()
            await connection.close()

    try:
        asyncio.run(scenario())
        tokens = [call.metadata["authorization"] for call in scripted.calls]
    finally:
        scripted.stop()
    assert len(tokens) >= 3
    assert tokens == [f"Bearer token-{n}" for n in range(1, len(tokens) + 1)]
