"""Timings on real speech: pocketsphinx's words against where the sample is loud.

The recording (tests/data/speech_default_voice.wav, espeak-ng) has speech from 0.35 s to 3.71 s
and from 4.95 s to 6.65 s, found below with numpy, independently of sttcli.
The engine's exact output may change (another engine, another model), so
these are structural assertions, not goldens. Through `sttcli serve`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy
import pytest
from conftest import DATA
from support.cli import against, serving
from support.subtitles import assert_well_formed, parse, words_of

SAMPLE = DATA / "speech_default_voice.wav"
TOLERANCE = 0.3

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """`sttcli serve --engine pocketsphinx --port 0`; yields its address.

    pocketsphinx rather than the default engine: it needs no model cache, and
    its timings are as real. Whisper's finals are timed too (its own tests).
    """
    with serving("--engine", "pocketsphinx", "--workers", "1") as address:
        yield address


def loud_spans() -> list[tuple[float, float]]:
    """Runs of 10 ms frames above -45 dBFS, gaps under 0.3 s bridged."""
    samples = numpy.frombuffer(SAMPLE.read_bytes()[44:], dtype="<i2").astype(float)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    level = 10 * numpy.log10((frames**2).mean(axis=1) / 32768**2 + 1e-12)
    spans: list[tuple[float, float]] = []
    start = None
    for index, loud in enumerate([*(level > -45), False]):
        if loud and start is None:
            start = index
        elif not loud and start is not None:
            if spans and start / 100 - spans[-1][1] < 0.3:
                spans[-1] = (spans[-1][0], index / 100)
            else:
                spans.append((start / 100, index / 100))
            start = None
    return spans


def test_json_utterances_and_words_sit_on_the_speech(served: str) -> None:
    result = against(served, "-f", "json", str(SAMPLE))
    assert result.exit_code == 0, result.stderr
    utterances = json.loads(result.stdout)["utterances"]
    spans = loud_spans()
    assert len(utterances) == len(spans) == 2
    for utterance, (start, end) in zip(utterances, spans, strict=True):
        assert utterance["timing"] == "server"
        assert utterance["start_s"] == pytest.approx(start, abs=TOLERANCE)
        assert utterance["end_s"] == pytest.approx(end, abs=TOLERANCE)
        words = utterance["words"]
        assert words and words[0]["start_s"] == utterance["start_s"]
        assert words[-1]["end_s"] == utterance["end_s"]
        for word in words:
            assert start - TOLERANCE <= word["start_s"] <= word["end_s"] <= end + TOLERANCE
        assert [w["start_s"] for w in words] == sorted(w["start_s"] for w in words)


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_subtitles_of_real_speech_follow_the_rules(served: str, kind: str) -> None:
    result = against(served, "-f", kind, str(SAMPLE))
    assert result.exit_code == 0, result.stderr
    cues = parse(result.stdout, kind)
    assert_well_formed(cues)
    text = against(served, "-f", "text", str(SAMPLE)).stdout
    assert words_of(cues) == text.split()
    spans = loud_spans()
    assert cues[0].start_s == pytest.approx(spans[0][0], abs=TOLERANCE)
    assert cues[-1].start_s >= spans[1][0] - TOLERANCE
    assert cues[-1].end_s <= spans[1][1] + 1.0 + TOLERANCE  # held at most a second
