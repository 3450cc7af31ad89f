"""Renderers, and the live view as a terminal would show it (pyte emulates the terminal)."""

from __future__ import annotations

import io

import pyte
from rich.console import Console

from sttcli.output.render import InputRef, JsonRenderer, LiveRenderer, TextRenderer
from sttcli.results import Alternative, ChunkEvent, InputResult, Utterance

REF = InputRef(0, "talk.wav")


def event(text: str, final: bool) -> ChunkEvent:
    return ChunkEvent(final, final, (Alternative(text),), audio_sent_s=1.0)


class Terminal:
    def __init__(self, columns: int = 60, lines: int = 10) -> None:
        self.raw = io.StringIO()
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.Stream(self.screen)
        self.console = Console(
            file=self.raw, width=columns, height=lines, force_terminal=True, color_system=None
        )

    def lines(self) -> list[str]:
        self.stream.feed(self.raw.getvalue())
        self.raw.seek(0)
        self.raw.truncate()
        return [line.rstrip() for line in self.screen.display if line.strip()]


def test_partials_update_in_place_and_finals_are_committed_above() -> None:
    terminal = Terminal()
    live = LiveRenderer(terminal.console)
    live.event(REF, event("hello", final=False))
    assert terminal.lines() == ["hello"]
    live.event(REF, event("hello wor", final=False))
    assert terminal.lines() == ["hello wor"]
    live.event(REF, event("hello world", final=True))
    live.event(REF, event("how", final=False))
    assert terminal.lines() == ["hello world", "how"]
    live.event(REF, event("how are you", final=True))
    live.close()
    assert terminal.lines() == ["hello world", "how are you"]


def test_nothing_of_an_unfinished_partial_is_left_on_exit() -> None:
    terminal = Terminal()
    live = LiveRenderer(terminal.console)
    live.event(REF, event("a final", final=True))
    live.event(REF, event("never finished", final=False))
    live.close()
    assert terminal.lines() == ["a final"]


def test_a_long_partial_shows_its_end() -> None:
    terminal = Terminal(columns=20)
    live = LiveRenderer(terminal.console)
    words = " ".join(f"w{n}" for n in range(40))
    live.event(REF, event(words, final=False))
    shown = terminal.lines()
    assert len(shown) <= 2
    assert shown[-1].endswith("w39")
    live.close()


def test_text_prefixes_names_only_for_several_inputs() -> None:
    out = io.StringIO()
    TextRenderer(out, prefixed=True).event(REF, event("hi", final=True))
    TextRenderer(out).event(REF, event("there", final=True))
    TextRenderer(out).event(REF, event("partial", final=False))
    assert out.getvalue() == "talk.wav: hi\nthere\n"


def test_json_results_come_out_in_input_order() -> None:
    out = io.StringIO()
    renderer = JsonRenderer(out)
    results = [InputResult(f"in{n}", (Utterance(f"text {n}", 1.0),)) for n in range(3)]
    renderer.done(InputRef(2, "in2"), results[2])
    renderer.done(InputRef(0, "in0"), results[0])
    assert [line[:14] for line in out.getvalue().splitlines()] == ['{"input":"in0"']
    renderer.done(InputRef(1, "in1"), results[1])
    names = [line[10:13] for line in out.getvalue().splitlines()]
    assert names == ["in0", "in1", "in2"]


def test_timestamps_go_before_committed_finals_in_the_live_view_and_in_text() -> None:
    utterance = Utterance("hello world", 1.2, 0.25, 1.2)
    final = ChunkEvent(True, True, (Alternative("hello world"),), 1.5, utterance=utterance)
    terminal = Terminal()
    live = LiveRenderer(terminal.console, timestamps=True)
    live.event(REF, event("hello", final=False))
    live.event(REF, final)
    live.close()
    assert terminal.lines() == ["[00:00.250 --> 00:01.200] hello world"]
    lines: list[str] = []
    TextRenderer(lines.append, prefixed=True, timestamps=True).event(REF, final)
    assert lines == ["talk.wav: [00:00.250 --> 00:01.200] hello world"]
