"""What raw_results, literature_text and profanity_filter do to an engine's text.

Whisper writes punctuation, capitals and figures; SpeechKit's default text is
lower-case words, no punctuation, numbers as figures.
"""

from __future__ import annotations

import pytest

from sttcli.server.text import TextOptions

WHISPER = "Please call me back at 10:30, tomorrow morning. It's 3.5 km - okay?"


def test_by_default_words_are_lower_case_without_punctuation_and_numbers_are_figures() -> None:
    assert TextOptions().apply(WHISPER) == (
        "please call me back at 10 30 tomorrow morning it's 3.5 km okay"
    )
    assert TextOptions().apply("go forward ten meters") == "go forward 10 meters"


def test_raw_results_spell_figures_as_words_in_the_streams_language() -> None:
    assert TextOptions(raw_results=True).apply(WHISPER) == (
        "please call me back at ten thirty tomorrow morning it's three point five km okay"
    )
    russian = TextOptions(language="ru-RU", raw_results=True)
    assert russian.apply("Встреча в 10:30, в комнате 25.") == (
        "встреча в десять тридцать в комнате двадцать пять"
    )


def test_literature_text_keeps_the_engines_punctuation_and_capitals() -> None:
    assert TextOptions(literature_text=True).apply(WHISPER) == WHISPER
    assert TextOptions(literature_text=True).apply("the weather is nice today") == (
        "The weather is nice today."
    )
    assert TextOptions(literature_text=True).apply("hello there", final=False) == "Hello there"


@pytest.mark.parametrize("text", ["", "...", " - "])
def test_a_text_of_punctuation_only_is_empty(text: str) -> None:
    assert TextOptions().apply(text) == ""
