"""What reaches stdout, stderr and result files: no secrets, no terminal control sequences."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path

import grpc
import pyte
import pytest
from support.audio import ramp, wav
from support.cli import against
from support.scripted import Reply, ScriptedServer, response
from test_render import REF, Terminal, event

from sttcli.diagnostics import Scrubber
from sttcli.output.render import LiveRenderer

KEY = "AQVNx7Secret0Key9ZZqLmTp"


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    path.write_bytes(wav(ramp(8000)))
    return path


def echoing_the_key(stt_server: ScriptedServer) -> None:
    """A server that puts the caller's key in its text, its request id and its error."""
    stt_server.script = [
        Reply(
            response(f"heard {KEY.lower()}"),
            after=0,
            initial_metadata=(("x-request-id", f"req-{KEY[3:15]}"),),
        ),
        Reply(abort=(grpc.StatusCode.INTERNAL, f"bad key {KEY.upper()}"), after=1),
    ]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "text"])
def test_no_output_format_shows_a_key_the_server_echoes(
    stt_server: ScriptedServer, audio: Path, fmt: str
) -> None:
    echoing_the_key(stt_server)
    result = against(stt_server.address, "--api-key", KEY, "-f", fmt, "--retries", "0", str(audio))
    assert result.exit_code == 7
    everything = (result.stdout + result.stderr).lower()
    for start in range(len(KEY) - 7):
        assert KEY.lower()[start : start + 8] not in everything
    assert "****" in result.stdout


def test_result_files_do_not_show_it_either(
    stt_server: ScriptedServer, audio: Path, tmp_path: Path
) -> None:
    stt_server.script = [Reply(response(f"heard {KEY}"))]
    out = tmp_path / "out"
    result = against(stt_server.address, "--api-key", KEY, "--output-dir", str(out), str(audio))
    assert result.exit_code == 0, result.stderr
    assert (out / "a.txt").read_text() == "heard ****\n"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("key is AQVNx7Secret0Key9ZZqLmTp", "key is ****"),
        ("KEY IS AQVNX7SECRET0KEY9ZZQLMTP", "KEY IS ****"),
        ("part Secret0Key9 only", "part **** only"),
        ("tail ...ZZqLmTp", "tail ...ZZqLmTp"),  # 7 characters: not enough to mask
        ("nothing here", "nothing here"),
    ],
)
def test_the_scrubber_catches_case_changes_and_any_eight_characters(text: str, shown: str) -> None:
    assert Scrubber([KEY])(text) == shown


def test_short_secrets_are_masked_whole_whatever_their_case() -> None:
    assert Scrubber(["abc123"])("token ABC123 here") == "token **** here"


def test_a_secret_learned_while_another_thread_scrubs_is_masked_in_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Log lines are scrubbed in several threads: none may see the masks as up to date
    before they hold the secret just learned."""
    from sttcli import diagnostics
    from sttcli.auth.secrets import KNOWN

    monkeypatch.setattr(KNOWN, "_values", KNOWN.values())  # what the test learns goes after
    scrub = Scrubber()
    scrub("masks built for what the registry holds now")
    token = "t1.9euelZqFreshlyFetched0Token"
    meanwhile: list[str] = []
    real_learned = diagnostics.learned

    def learned_while_another_thread_scrubs(extra: Iterable[str] = ()) -> list[str]:
        # The first rebuild is interrupted here, as a thread switch would do it.
        if not meanwhile:
            meanwhile.append("started")
            other = threading.Thread(target=lambda: meanwhile.append(scrub(f"token {token}")))
            other.start()
            other.join(timeout=30)
        return real_learned(extra)

    monkeypatch.setattr(diagnostics, "learned", learned_while_another_thread_scrubs)
    KNOWN.learn(token)
    assert scrub(f"got {token}") == "got ****"
    assert meanwhile == ["started", "token ****"]


def test_escape_sequences_and_newlines_in_finals_do_not_reach_the_terminal_or_text(
    stt_server: ScriptedServer, audio: Path
) -> None:
    stt_server.script = [
        Reply(response("one\x1b]0;owned\x07 line\nand\rmore\u202e"), after=1),
        Reply(response("second"), after=2),
    ]
    result = against(stt_server.address, "-f", "text", str(audio))
    assert result.exit_code == 0
    assert result.stdout == "one]0;owned line and more\nsecond\n"


def test_json_keeps_the_text_escaped_and_valid(stt_server: ScriptedServer, audio: Path) -> None:
    stt_server.script = [Reply(response("a\x1b[2Jb\nc"))]
    result = against(stt_server.address, "-f", "json", str(audio))
    assert "\x1b" not in result.stdout and result.stdout.count("\n") == 1
    assert json.loads(result.stdout)["text"] == "a\x1b[2Jb\nc"


def test_a_file_name_with_control_characters_keeps_one_line_per_final(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    stt_server.script = [Reply(response("words"))]
    odd = tmp_path / "evil\x1b[31m\nname.wav"
    odd.write_bytes(wav(ramp(8000)))
    plain = tmp_path / "b.wav"
    plain.write_bytes(wav(ramp(8000)))
    result = against(stt_server.address, "-f", "text", str(odd), str(plain))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "\x1b" not in result.stdout
    assert lines[0].endswith("evil[31m name.wav: words")


def test_a_file_name_that_is_not_utf8_is_shown_not_crashed_on(
    stt_server: ScriptedServer, tmp_path: Path
) -> None:
    stt_server.script = [Reply(response("words"))]
    listed = tmp_path / "list.txt"
    name = str(tmp_path).encode() + b"/caf\xe9.wav"
    Path(name.decode("utf-8", "surrogateescape")).write_bytes(wav(ramp(8000)))
    listed.write_bytes(name + b"\n" + str(tmp_path / "missing.wav").encode() + b"\n")
    result = against(stt_server.address, "-f", "json", "--from-file", str(listed))
    assert result.exit_code == 2, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["input"].endswith("caf\\xe9.wav") and first["text"] == "words"
    assert second["error"]["code"] == "BAD_INPUT"


def test_no_color_also_turns_off_the_dim_partials(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    terminal.console = type(terminal.console)(
        file=terminal.raw, width=60, height=10, force_terminal=True
    )
    monkeypatch.setenv("NO_COLOR", "1")
    live = LiveRenderer(terminal.console)
    live.event(REF, event("partial words", final=False))
    assert "\x1b[2m" not in terminal.raw.getvalue()
    live.close()


def test_partials_are_dim_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = Terminal()
    terminal.console = type(terminal.console)(
        file=terminal.raw, width=60, height=10, force_terminal=True
    )
    live = LiveRenderer(terminal.console)
    live.event(REF, event("partial words", final=False))
    assert "\x1b[2m" in terminal.raw.getvalue()
    live.close()


def test_finals_in_a_narrow_terminal_wrap_at_word_boundaries() -> None:
    terminal = Terminal(columns=20)
    terminal.screen.set_mode(pyte.modes.LNM)  # a tty turns "\n" into "\r\n"
    live = LiveRenderer(terminal.console)
    live.event(REF, event("the quick brown foxes jumped over the lazy dogs", final=True))
    live.close()
    lines = terminal.lines()
    assert lines == ["the quick brown", "foxes jumped over", "the lazy dogs"]
