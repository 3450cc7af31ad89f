"""What the RecognitionSpec's text options do to a recognized text.

Engines may write punctuation and capitals (Whisper does). By default the
text is SpeechKit's: lower-case words without punctuation ("10:30" becomes
"10 30"); literature_text keeps the engine's punctuation and capitals and
makes a sentence of the text (a capital first letter, a final period).
raw_results=false writes numbers as figures ("ten meters" -> "10 meters",
text2num); raw_results=true spells figures as words ("10" -> "ten",
num2words, in the stream's language); profanity_filter masks profane words
(better-profanity).
Each library is loaded on first use, and a missing one (the engine-less
synthetic server runs without the `local` extra) leaves the text as it is.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# A word: a number with its decimal point or separators, or letters and digits
# with apostrophes or hyphens inside ("don't", "twenty-five").
_WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+(?:['’\-][^\W_]+)*")
_TIME_COLON = re.compile(r"(?<=\d):(?=\d)")
_FIGURES = re.compile(r"\d+(?:[.,]\d+)?")


def plain(text: str) -> str:
    """Lower-case words without punctuation ("10:30" is two words)."""
    return " ".join(_WORD.findall(text)).lower()


@dataclass(frozen=True)
class TextOptions:
    language: str = "en-US"
    raw_results: bool = False
    profanity_filter: bool = False
    literature_text: bool = False

    def apply(self, text: str, *, final: bool = True) -> str:
        """The text as the options ask; a partial gets no closing period yet."""
        if not text:
            return text
        if not self.literature_text:
            text = plain(text)
        if self.raw_results:
            text = _figures_to_words(self.language)(_TIME_COLON.sub(" ", text))
        else:
            text = _numbers_to_figures(self.language)(text)
        if not text:
            return text
        if self.profanity_filter:
            text = _profanity_mask()(text)
        if self.literature_text:
            text = text[0].upper() + text[1:]
            if final and text[-1] not in ".?!":
                text += "."
        return text


def _unchanged(text: str) -> str:
    return text


@functools.cache
def _numbers_to_figures(language: str) -> Callable[[str], str]:
    try:
        from text_to_num import alpha2digit
    except ImportError:
        log.warning("text2num is not installed: numbers stay words (pip install 'sttcli[local]')")
        return _unchanged
    lang = language.split("-", 1)[0].lower()

    def convert(text: str) -> str:
        try:
            return str(alpha2digit(text, lang))
        except Exception:  # an unsupported language: leave the words alone
            return text

    return convert


@functools.cache
def _figures_to_words(language: str) -> Callable[[str], str]:
    try:
        from num2words import num2words
    except ImportError:
        log.warning(
            "num2words is not installed: figures stay figures (pip install 'sttcli[local]')"
        )
        return _unchanged
    lang = language.split("-", 1)[0].lower() or "en"

    def spell(match: re.Match[str]) -> str:
        figure = match.group().replace(",", ".")
        try:
            return str(num2words(float(figure) if "." in figure else int(figure), lang=lang))
        except (NotImplementedError, OverflowError, ValueError):
            return match.group()

    return lambda text: _FIGURES.sub(spell, text)


@functools.cache
def _profanity_mask() -> Callable[[str], str]:
    try:
        from better_profanity import profanity
    except ImportError:
        log.warning("better-profanity is not installed: no masking (pip install 'sttcli[local]')")
        return _unchanged
    profanity.load_censor_words()
    return lambda text: str(profanity.censor(text))
