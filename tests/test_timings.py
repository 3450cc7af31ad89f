"""Every final's span and words sit where they were spoken, from the start of the input.

The server is sttcli's own servicer on the synthetic engine, whose words are
runs of marker samples placed at known positions; with word timings they must
come back within 0.1 s of those positions whatever happened to the sessions
(rotation, a cut connection), and without them sttcli's own estimate must
come within 0.3 s.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.audio import markers
from support.faults import Fault, FaultServer
from support.run import recognize_path

from sttcli.audio.speech import FRAME_SECONDS, SpeechTracker
from sttcli.options import SessionPolicy, StreamSettings
from sttcli.results import InputResult
from sttcli.server.synthetic import WORDS, marker
from sttcli.session import Clockwork

LEAD, WORD, SPACE, GAP = 0.1, 0.2, 0.05, 2.0
WORDS_TOLERANCE = 0.1
ESTIMATE_TOLERANCE = 0.3
SHORT_BACKOFF = Clockwork(random=lambda: 0.2)


def spoken_utterances(count: int) -> list[str]:
    return [
        " ".join(WORDS[(n * 3 + k) % len(WORDS)] for k in range(1 + n % 3)) for n in range(count)
    ]


def true_positions(utterances: list[str]) -> list[list[tuple[str, float, float]]]:
    """Where `markers()` puts each word."""
    at = LEAD
    spans = []
    for utterance in utterances:
        words = []
        for index, name in enumerate(utterance.split()):
            if index:
                at += SPACE
            words.append((name, at, at + WORD))
            at += WORD
        spans.append(words)
        at += GAP
    return spans


@pytest.fixture
def talk(tmp_path: Path) -> tuple[Path, list[str]]:
    """32 s at 16 kHz: 13 utterances of one to three words, 2 s apart."""
    spoken = spoken_utterances(13)
    path = tmp_path / "talk.pcm"
    path.write_bytes(markers(*spoken, word=WORD, space=SPACE, gap=GAP, lead=LEAD))
    return path, spoken


@pytest.fixture
def timed_server() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.stop()


@pytest.fixture
def untimed_server() -> Iterator[FaultServer]:
    server = FaultServer(word_timings=False)
    yield server
    server.stop()


def run(path: Path, server: FaultServer, *, speed: float = 20.0, **policy: object) -> InputResult:
    result, _ = asyncio.run(
        recognize_path(
            path,
            server.address,
            rate=16000,
            stream=StreamSettings(speed=speed),
            policy=SessionPolicy(**policy),  # type: ignore[arg-type]
            clockwork=SHORT_BACKOFF,
        )
    )
    assert result.ok, result.error
    return result


def assert_words_in_place(result: InputResult, spoken: list[str]) -> None:
    assert [u.text for u in result.utterances] == spoken
    for utterance, truth in zip(result.utterances, true_positions(spoken), strict=True):
        assert utterance.timing == "server"
        assert [w.text for w in utterance.words] == [name for name, _, _ in truth]
        for word, (_, start, end) in zip(utterance.words, truth, strict=True):
            assert word.start_s == pytest.approx(start, abs=WORDS_TOLERANCE)
            assert word.end_s == pytest.approx(end, abs=WORDS_TOLERANCE)
        assert utterance.start_s == utterance.words[0].start_s
        assert utterance.end_s == utterance.words[-1].end_s


def assert_estimates_in_place(result: InputResult, spoken: list[str]) -> None:
    assert [u.text for u in result.utterances] == spoken
    for utterance, truth in zip(result.utterances, true_positions(spoken), strict=True):
        assert utterance.timing == "estimated" and utterance.words == ()
        assert utterance.start_s == pytest.approx(truth[0][1], abs=ESTIMATE_TOLERANCE)
        assert utterance.end_s == pytest.approx(truth[-1][2], abs=ESTIMATE_TOLERANCE)


# -- with word timings -----------------------------------------------------------


def test_words_keep_their_positions_in_one_session(
    talk: tuple[Path, list[str]], timed_server: FaultServer
) -> None:
    path, spoken = talk
    result = run(path, timed_server, speed=0)
    assert result.sessions == 1
    assert_words_in_place(result, spoken)


def test_words_keep_their_positions_across_rotated_sessions(
    talk: tuple[Path, list[str]], timed_server: FaultServer
) -> None:
    path, spoken = talk
    result = run(path, timed_server, speed=0, max_session_seconds=7)
    assert result.sessions >= 4
    assert_words_in_place(result, spoken)


def test_words_keep_their_positions_across_a_resume_after_a_cut_connection(
    talk: tuple[Path, list[str]], timed_server: FaultServer
) -> None:
    path, spoken = talk
    timed_server.plan = [Fault("sever", after=60), Fault("unavailable", after=50)]
    result = run(path, timed_server)
    assert (result.sessions, result.retries) == (3, 2)
    assert_words_in_place(result, spoken)


# -- without word timings: sttcli's estimate ----------------------------------------


# Paced at 10 times real time, the 2 s pauses between utterances are 200 ms of
# wall time: the margin a final has to reach the client before the next
# utterance has been sent whole (on a loaded machine 90 ms has been seen).
ESTIMATE_SPEED = 10.0


def test_estimated_spans_find_the_speech_around_each_final(
    talk: tuple[Path, list[str]], untimed_server: FaultServer
) -> None:
    path, spoken = talk
    assert_estimates_in_place(run(path, untimed_server, speed=ESTIMATE_SPEED), spoken)


def test_estimated_spans_stay_in_place_across_rotation_and_resume(
    talk: tuple[Path, list[str]], untimed_server: FaultServer
) -> None:
    path, spoken = talk
    untimed_server.plan = [None, Fault("sever", after=40)]
    result = run(path, untimed_server, speed=ESTIMATE_SPEED, max_session_seconds=9)
    assert result.sessions >= 4 and result.retries == 1
    assert_estimates_in_place(result, spoken)


# -- the speech tracker ------------------------------------------------------------
# It looks at 50 ms frames: positions are exact to a frame.


def tone(seconds: float, value: int = 3000) -> bytes:
    return struct.pack("<h", value) * round(seconds * 16000)


def near(span: tuple[float, float] | None, start: float, end: float) -> bool:
    return span is not None and span == pytest.approx((start, end), abs=FRAME_SECONDS)


def runs(tracker: SpeechTracker) -> list[tuple[float, float]]:
    return [(r.start_s, r.end_s) for r in tracker.runs]


def test_the_tracker_finds_runs_of_speech_however_the_audio_is_split() -> None:
    audio = tone(0.5, 0) + tone(0.3) + tone(0.1, 0) + tone(0.4) + tone(1.0, 0) + tone(0.2)
    found = []
    for step in (2, 320, 1001, 4000, len(audio)):
        tracker = SpeechTracker(32000)
        for start in range(0, len(audio), step):
            tracker.feed(audio[start : start + step], start)
        (run,) = runs(tracker)  # 0.1 s of quiet is bridged
        assert near(run, 0.5, 1.3)
        assert near(tracker.span(0.0, 2.3), 0.5, 1.3)  # the run still going on is the next one's
        assert near(tracker.span(0.0, 2.5, ongoing=True), 0.5, 2.5)
        assert near(tracker.span(1.3, 2.5, ongoing=True), 2.3, 2.5)
        found.append(runs(tracker))
    assert all(f == found[0] for f in found)  # the same, however split


def test_the_tracker_answers_for_all_the_audio_sent_so_far() -> None:
    # It looks at the audio in blocks; a question must not wait for the block to fill.
    tracker = SpeechTracker(32000)
    tracker.feed(tone(0.5, 0) + tone(0.2), 0)
    assert near(tracker.span(0.0, 0.7, ongoing=True), 0.5, 0.7)
    tracker.feed(tone(0.3, 0), 22400)
    assert runs(tracker) == [pytest.approx((0.5, 0.7), abs=FRAME_SECONDS)]


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_the_tracker_finds_the_same_speech_at_any_sample_rate(rate: int) -> None:
    # At 44.1 and 22.05 kHz a frame's samples do not divide evenly into the ones looked at.
    def at_rate(seconds: float, value: int = 3000) -> bytes:
        return struct.pack("<h", value) * round(seconds * rate)

    audio = at_rate(0.5, 0) + at_rate(0.3) + at_rate(0.5, 0) + at_rate(0.4) + at_rate(0.5, 0)
    tracker = SpeechTracker(rate * 2)
    for start in range(0, len(audio), 4000):
        tracker.feed(audio[start : start + 4000], start)
    found = runs(tracker)
    assert len(found) == 2
    assert near(found[0], 0.5, 0.8) and near(found[1], 1.3, 1.7)


def test_the_tracker_looks_at_audio_sent_again_only_once() -> None:
    audio = tone(0.5, 0) + tone(0.3) + tone(0.5, 0)
    tracker = SpeechTracker(32000)
    tracker.feed(audio, 0)
    before = runs(tracker)
    tracker.feed(audio[8000:], 8000)  # a resumed session sends the tail again
    assert runs(tracker) == before and near(before[0], 0.5, 0.8)
    tracker.forget(0.9)
    assert tracker.runs == [] and tracker.span(0.0, 1.3) is None


def test_marker_words_are_speech_to_the_tracker() -> None:
    tracker = SpeechTracker(32000)
    audio = markers("alpha bravo", word=WORD, space=SPACE, gap=GAP, lead=LEAD)
    tracker.feed(audio, 0)
    assert near(tracker.span(0.0, 3.0), LEAD, LEAD + 2 * WORD + SPACE)
    assert marker("alpha") >= 1000  # loud enough for the gate


def test_a_late_final_takes_the_speech_its_text_needs_not_all_that_was_sent() -> None:
    # Five utterances of 0.6 s, 1 s apart, all sent before the first final came.
    audio = tone(0.5, 0) + (tone(0.6) + tone(1.0, 0)) * 5
    tracker = SpeechTracker(32000)
    tracker.feed(audio, 0)
    assert near(tracker.span(0.0, 8.5), 0.5, 7.5)  # paced, this would be one utterance
    assert near(tracker.span(0.0, 8.5, expected_s=0.7), 0.5, 1.1)
    assert near(tracker.span(0.0, 8.5, expected_s=2.0), 0.5, 2.7)
    assert near(tracker.span(0.0, 1.6, expected_s=0.1), 0.5, 1.1)  # no sign of lateness
