"""Timing: the span of each final utterance on the input's timeline.

With word timings (sttcli's own server sends them; SpeechKit's streaming
answers may not) the span is from the first word's start to the last word's
end. Without them it is estimated from the audio sent: the speech found
between the previous utterance's end and the position the final arrived at.
Paced, that position is just past the pause the server ended the utterance
in, and the estimate is as good as the pause finder; unpaced, the client may
be far ahead and the estimate takes in speech of utterances still to come.
"""

from __future__ import annotations

from sttcli.audio.speech import SpeechTracker
from sttcli.results import ChunkEvent, Timing, Utterance


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
    found = speech.span(after, arrived, ongoing=all_sent) if speech is not None else None
    # No speech found (Ogg Opus, or a final for audio the finder took for
    # quiet): all that is known is that it lies between the two positions.
    start, end = found if found is not None else (min(after, arrived), arrived)
    if speech is not None:
        speech.forget(end)
    return Utterance(event.text, arrived, start, end, (), Timing.ESTIMATED)
