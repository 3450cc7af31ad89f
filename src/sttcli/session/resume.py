"""Resume: where a session starts again after the one before it broke.

A broken session's unfinalized audio is lost on the server, so the next one
starts again at the end of the last final: at the end of its last word when
the server gives word timings, otherwise at the last pause before the point
the client had sent when that final arrived. Starting later would lose words,
starting earlier would repeat them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sttcli.audio.pauses import Pause, PauseFinder
from sttcli.audio.sources import AudioSource

log = logging.getLogger("sttcli.session")

# How far past a final's position a pause may end and still be "at" it.
_RESUME_LOOKAHEAD_SECONDS = 0.5


@dataclass
class FinalMark:
    """What the client knew when the session's last final arrived."""

    sent: int  # payload bytes sent when the final arrived
    words_end: int | None  # end of its last word, when the server gives timings


async def resume_point(
    source: AudioSource,
    *,
    bytes_per_second: int,
    min_pause: float,
    session_start: int,
    mark: FinalMark,
    sent: int,
) -> int:
    """The payload position the next session starts at, never past `sent`."""
    lookahead = int(_RESUME_LOOKAHEAD_SECONDS * bytes_per_second) & ~1
    scan_end = mark.sent + lookahead

    async def pauses(start: int, end: int) -> list[Pause]:
        finder = PauseFinder(bytes_per_second, min_pause, position=start)
        found: list[Pause] = []
        async for block in source.region(start, end):
            found += finder.feed(block)
        return found

    if mark.words_end is not None:
        after = max(session_start, mark.words_end)
        after_words = await pauses(after, scan_end)
        first = after_words[0] if after_words else None
        point = max(after, first.cut_point()) if first else after
        return min(point, sent)
    before = [p for p in await pauses(session_start, scan_end) if p.start <= mark.sent]
    if not before:
        log.info(
            "%s: no pause found before the last final; resuming where it arrived "
            "(audio after the utterance but before that point is lost)",
            source.name,
        )
        return mark.sent
    return min(before[-1].cut_point(), sent)
