"""Reading the subtitles sttcli writes with maintained parsers, and the rules every file keeps."""

from __future__ import annotations

import html
from dataclasses import dataclass

import srt
import webvtt


@dataclass(frozen=True)
class ParsedCue:
    start_s: float
    end_s: float
    lines: tuple[str, ...]


def parse_srt(text: str) -> list[ParsedCue]:
    subtitles = list(srt.parse(text, ignore_errors=False))
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))  # counted from 1
    return [
        ParsedCue(s.start.total_seconds(), s.end.total_seconds(), tuple(s.content.split("\n")))
        for s in subtitles
    ]


def parse_vtt(text: str) -> list[ParsedCue]:
    assert text.startswith("WEBVTT\n")
    captions = webvtt.from_string(text, strict=True).captions
    return [
        ParsedCue(
            c.start_time.in_milliseconds() / 1000,
            c.end_time.in_milliseconds() / 1000,
            tuple(html.unescape(line) for line in c.lines),
        )
        for c in captions
    ]


def parse(text: str, kind: str) -> list[ParsedCue]:
    return parse_srt(text) if kind == "srt" else parse_vtt(text)


def assert_well_formed(cues: list[ParsedCue], *, width: int = 42, lines: int = 2) -> None:
    """In order, never overlapping, never empty, within the line limits."""
    for cue in cues:
        assert cue.start_s < cue.end_s, cue
        assert 1 <= len(cue.lines) <= lines, cue
        assert all(0 < len(line) <= width for line in cue.lines), cue
    for before, after in zip(cues, cues[1:], strict=False):
        assert before.end_s <= after.start_s, (before, after)


def words_of(cues: list[ParsedCue]) -> list[str]:
    return " ".join(" ".join(c.lines) for c in cues).split()
