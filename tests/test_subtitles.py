"""Subtitle cues from finals: the rules of line width, lines, pauses and length, in SRT and VTT.

Every file these tests write is read back with maintained parsers (`srt`,
`webvtt-py`), never with our own code.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.subtitles import assert_well_formed, parse, words_of

from sttcli.output.subtitles import (
    CueBuilder,
    SubtitleStream,
    srt_time,
    timestamp_prefix,
    vtt_time,
)
from sttcli.results import Timing, Utterance, Word


def timed(*words: tuple[str, float, float]) -> Utterance:
    """An utterance with word timings; its text is its words."""
    ws = tuple(Word(text, start, end) for text, start, end in words)
    return Utterance(
        " ".join(w.text for w in ws), ws[-1].end_s, ws[0].start_s, ws[-1].end_s, ws, Timing.SERVER
    )


def evenly(text: str, start: float, step: float = 0.4, length: float = 0.3) -> Utterance:
    return timed(
        *(
            (word, start + i * step, start + i * step + length)
            for i, word in enumerate(text.split())
        )
    )


def estimated(text: str, start: float, end: float) -> Utterance:
    return Utterance(text, end, start, end, (), Timing.ESTIMATED)


def write(utterances: list[Utterance], kind: str = "srt", **limits: int) -> str:
    stream = SubtitleStream(
        kind, max_line_width=limits.get("width", 42), max_lines=limits.get("lines", 2)
    )
    return stream.start() + "".join(stream.add(u) for u in utterances) + stream.finish()


def cues(utterances: list[Utterance], kind: str = "srt", **limits: int):  # type: ignore[no-untyped-def]
    return parse(write(utterances, kind, **limits), kind)


SENTENCE = (
    "the quick brown fox jumps over the lazy dog and runs far away into the woods "
    "before the night falls"
)


# -- formats -------------------------------------------------------------------


def test_times_are_written_as_each_format_asks() -> None:
    assert srt_time(3723.4567) == "01:02:03,457"
    assert vtt_time(3723.4567) == "01:02:03.457"
    assert srt_time(0) == "00:00:00,000"


def test_srt_counts_cues_from_one_and_vtt_starts_with_its_signature() -> None:
    talk = [evenly("alpha bravo", 0.5), evenly("charlie delta", 5.0)]
    text = write(talk, "srt")
    assert text.startswith("1\n00:00:00,500 --> ")
    assert "\n\n2\n00:00:05,000 --> " in text
    vtt = write(talk, "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.500 --> ")
    assert [c.lines for c in parse(vtt, "vtt")] == [("alpha bravo",), ("charlie delta",)]


def test_an_empty_run_is_still_a_valid_file() -> None:
    assert write([], "srt") == ""
    assert write([], "vtt") == "WEBVTT\n\n"
    assert parse(write([], "vtt"), "vtt") == []


def test_vtt_cue_text_is_escaped_and_reads_back_the_same() -> None:
    (cue,) = cues([evenly("fish & chips <3", 1.0)], "vtt")
    assert cue.lines == ("fish & chips <3",)
    assert "&amp;" in write([evenly("fish & chips <3", 1.0)], "vtt")


# -- cues with word timings ----------------------------------------------------


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_lines_break_at_words_within_the_width_and_the_line_count(kind: str) -> None:
    result = cues([evenly(SENTENCE, 0.0, step=0.25, length=0.2)], kind)
    assert_well_formed(result)
    assert words_of(result) == SENTENCE.split()
    assert len(result) == 2
    assert result[0].lines == (
        "the quick brown fox jumps over the lazy",
        "dog and runs far away into the woods",
    )


def test_narrower_lines_and_fewer_of_them_make_more_cues() -> None:
    result = cues([evenly(SENTENCE, 0.0, step=0.25, length=0.2)], width=20, lines=1)
    assert_well_formed(result, width=20, lines=1)
    assert words_of(result) == SENTENCE.split()
    assert [c.lines for c in result][:2] == [("the quick brown fox",), ("jumps over the lazy",)]
    assert len(result) == 6


def test_each_utterance_starts_a_new_cue() -> None:
    result = cues([evenly("alpha", 1.0), evenly("bravo", 1.8)])
    assert [c.lines for c in result] == [("alpha",), ("bravo",)]


def test_a_pause_longer_than_one_and_a_half_seconds_starts_a_new_cue() -> None:
    result = cues([timed(("alpha", 0.0, 0.3), ("bravo", 1.7, 2.0), ("charlie", 3.6, 3.9))])
    assert [c.lines for c in result] == [("alpha bravo",), ("charlie",)]


def test_no_cue_lasts_longer_than_seven_seconds_of_words() -> None:
    slow = evenly("one two three four five six seven eight nine ten", 0.0, step=1.0, length=0.5)
    result = cues([slow])
    assert [c.lines for c in result] == [
        ("one two three four five six seven",),
        ("eight nine ten",),
    ]
    assert result[0].start_s == 0.0 and result[0].end_s == 7.0  # held up to the next cue


def test_a_cue_is_held_a_second_after_its_last_word_but_not_into_the_next() -> None:
    result = cues([evenly("alpha", 1.0), evenly("bravo", 1.8), evenly("charlie", 10.0)])
    assert [(c.start_s, c.end_s) for c in result] == [(1.0, 1.8), (1.8, 3.1), (10.0, 11.3)]


def test_the_last_cue_is_not_held_past_the_end_of_the_audio() -> None:
    builder = CueBuilder()
    builder.add(evenly("alpha", 1.0))
    (last,) = builder.finish(audio_end_s=1.5)
    assert (last.start_s, last.end_s) == (1.0, 1.5)


def test_cues_come_out_once_the_next_cue_is_known() -> None:
    builder = CueBuilder()
    assert builder.add(evenly("alpha", 1.0)) == []
    (first,) = builder.add(evenly("bravo", 1.8))
    assert first.lines == ("alpha",)
    (last,) = builder.finish()
    assert last.lines == ("bravo",)
    assert builder.finish() == []


def test_cues_show_the_text_even_when_the_timed_words_differ() -> None:
    """Numbers as figures: "10 30" takes the span of "ten thirty"."""
    words = tuple(
        Word(w, s, e)
        for w, s, e in [
            ("at", 0.0, 0.2),
            ("ten", 0.3, 0.6),
            ("thirty", 0.7, 1.0),
            ("sharp", 4.0, 4.4),
        ]
    )
    utterance = Utterance("at 10 30 sharp", 4.4, 0.0, 4.4, words, Timing.SERVER)
    result = cues([utterance])
    assert [c.lines for c in result] == [("at 10 30",), ("sharp",)]  # the pause is still seen
    assert result[0].end_s == pytest.approx(2.0)  # held a second after "thirty"


def test_overlapping_word_timings_never_make_overlapping_cues() -> None:
    first = evenly("alpha bravo", 1.0)
    second = timed(("charlie", 1.2, 1.5))  # a server that contradicts itself
    result = cues([first, second])
    assert_well_formed(result)


# -- cues without word timings -------------------------------------------------


def test_without_words_an_utterance_is_one_cue_over_its_span() -> None:
    result = cues([estimated("hello there", 1.25, 2.5), estimated("general kenobi", 3.0, 4.0)])
    assert [(c.start_s, c.end_s, c.lines) for c in result] == [
        (1.25, 2.5, ("hello there",)),
        (3.0, 4.0, ("general kenobi",)),
    ]


def test_without_words_a_long_utterance_is_wrapped_and_shares_its_span() -> None:
    result = cues([estimated(SENTENCE, 0.0, 6.0)], width=20)
    assert_well_formed(result, width=20)
    assert words_of(result) == SENTENCE.split()
    assert result[0].start_s == 0.0 and result[-1].end_s == 6.0
    assert len(result) == 3


# -- text output -----------------------------------------------------------------


def test_timestamps_prefix_minutes_and_hours_only_when_needed() -> None:
    assert timestamp_prefix(estimated("x", 1.5, 62.25)) == "[00:01.500 --> 01:02.250] "
    assert timestamp_prefix(estimated("x", 3599.0, 3601.0)) == "[00:59:59.000 --> 01:00:01.000] "


# -- whatever comes --------------------------------------------------------------

words = st.text(alphabet="abcdefghij&<", min_size=1, max_size=12)


@st.composite
def talks(draw: st.DrawFn) -> list[Utterance]:
    at = 0.0
    talk = []
    for _ in range(draw(st.integers(0, 6))):
        items = []
        for word in draw(st.lists(words, min_size=1, max_size=25)):
            at += draw(st.floats(0.0, 2.5))
            length = draw(st.floats(0.0, 1.0))
            items.append((word, at, at + length))
            at += length
        if draw(st.booleans()):
            talk.append(timed(*items))
        else:
            text = " ".join(w for w, _, _ in items)
            talk.append(estimated(text, items[0][1], items[-1][2]))
    return talk


@settings(max_examples=60, deadline=None)
@given(
    talk=talks(),
    kind=st.sampled_from(["srt", "vtt"]),
    width=st.integers(12, 50),
    lines=st.integers(1, 3),
)
def test_any_talk_makes_ordered_cues_within_the_limits(
    talk: list[Utterance], kind: str, width: int, lines: int
) -> None:
    result = cues(talk, kind, width=width, lines=lines)
    assert_well_formed(result, width=width, lines=lines)
    assert words_of(result) == " ".join(u.text for u in talk).split()
