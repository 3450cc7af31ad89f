"""Timing: the span of each final utterance on the input's timeline.

With word timings (sttcli's own server sends them; SpeechKit's streaming
answers may not) the span is from the first word's start to the last word's
end. Without them it is estimated from the audio sent: the speech found
between the previous utterance's end and the position the final arrived at.
Paced, that position is just past the pause the server ended the utterance
in, and the estimate is as good as the pause finder. Unpaced, or when the
server falls behind, the client may be far ahead when a final comes, with the
speech of later utterances already sent: then the span ends at the pause that
gives it about the length its text takes to say.
"""

from __future__ import annotations

from sttcli.audio.speech import SpeechTracker
from sttcli.results import ChunkEvent, Timing, Utterance

# How fast text is spoken, spaces included (English and Russian speech runs at
# 12 to 16): only to tell one utterance's speech from several when a final
# comes late.
SPOKEN_CHARACTERS_PER_SECOND = 14.0


def utterance_of(
    event: ChunkEvent,
    *,
    previous: Utterance | None,
    speech: SpeechTracker | None,
    all_sent: bool,
) -> Utterance:
    """The utterance a final makes, with its span; `speech` forgets what it gave to it."""
    words = event.alternatives[0].words if event.alternatives else ()
    if words:
        start = min(w.start_s for w in words)
        end = max(w.end_s for w in words)
        if speech is not None:
            speech.forget(end)
        return Utterance(event.text, end, start, end, words, Timing.SERVER)
    after = previous.end_s if previous is not None else 0.0
    arrived = event.audio_sent_s
    expected = len(event.text) / SPOKEN_CHARACTERS_PER_SECOND
    found = (
        speech.span(after, arrived, ongoing=all_sent, expected_s=expected)
        if speech is not None
        else None
    )
    # No speech found (Ogg Opus, or a final for audio the finder took for
    # quiet): all that is known is that it lies between the two positions.
    start, end = found if found is not None else (min(after, arrived), arrived)
    if speech is not None:
        speech.forget(end)
    return Utterance(event.text, arrived, start, end, (), Timing.ESTIMATED)
