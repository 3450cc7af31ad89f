"""`-f srt`, `-f vtt`, `--output-dir` and `--timestamps`, from the command line to the file.

Goldens come from `sttcli serve --engine synthetic`, whose timings are exact
and stable; every subtitle written is read back with the `srt` and
`webvtt-py` parsers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DATA
from support.audio import markers, wav
from support.cli import against, serving
from support.faults import Fault, FaultServer
from support.subtitles import assert_well_formed, parse, words_of

GOLDEN = DATA / "golden"
SAMPLE = DATA / "speech_default_voice.wav"

# Utterances longer than a cue has room for: a cue at each utterance, more when lines are full.
TALK = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima",
    "mike november",
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu "
    "alpha bravo charlie delta echo foxtrot golf hotel",
)


@pytest.fixture(scope="module")
def synthetic_serve() -> Iterator[str]:
    """`sttcli serve --engine synthetic --port 0` as a user starts it; yields its address."""
    with serving("--engine", "synthetic") as address:
        yield address


@pytest.fixture
def talk_wav(tmp_path: Path) -> Path:
    path = tmp_path / "talk.wav"
    # 0.4 s words with 0.1 s between them: twelve words take 5.9 s, twenty take 9.9 s.
    path.write_bytes(wav(markers(*TALK, word=0.4, space=0.1, gap=1.0, lead=0.5)))
    return path


@pytest.fixture
def server() -> Iterator[FaultServer]:
    faulty = FaultServer()
    yield faulty
    faulty.stop()


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_the_sample_through_serve_matches_its_golden_subtitles(
    synthetic_serve: str, kind: str
) -> None:
    result = against(synthetic_serve, "-f", kind, str(SAMPLE))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (GOLDEN / f"speech.synthetic.{kind}").read_text()
    assert_well_formed(parse(result.stdout, kind))


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_a_long_talk_is_cut_into_cues_by_room_pauses_and_length(
    synthetic_serve: str, talk_wav: Path, kind: str
) -> None:
    result = against(synthetic_serve, "-f", kind, str(talk_wav))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (GOLDEN / f"talk.{kind}").read_text()
    cues = parse(result.stdout, kind)
    assert_well_formed(cues)
    assert words_of(cues) == " ".join(TALK).split()
    assert all(cue.end_s - cue.start_s <= 7.0 + 1.0 for cue in cues)


def test_line_width_and_count_are_options(synthetic_serve: str, talk_wav: Path) -> None:
    result = against(
        synthetic_serve, "-f", "srt", "--max-line-width", "16", "--max-lines", "1", str(talk_wav)
    )
    assert result.exit_code == 0, result.stderr
    cues = parse(result.stdout, "srt")
    assert_well_formed(cues, width=16, lines=1)
    assert words_of(cues) == " ".join(TALK).split()


def test_json_carries_utterance_and_word_timings(synthetic_serve: str, talk_wav: Path) -> None:
    result = against(synthetic_serve, "-f", "json", str(talk_wav))
    utterances = json.loads(result.stdout)["utterances"]
    assert [u["timing"] for u in utterances] == ["server"] * 3
    first = utterances[0]
    assert (first["start_s"], first["end_s"]) == (0.5, 6.4)
    assert first["words"][1] == {"word": "bravo", "start_s": 1.0, "end_s": 1.4}
    assert utterances[1]["start_s"] == 6.4 + 1.0


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_output_dir_writes_one_whole_subtitle_file_per_input(
    server: FaultServer, tmp_path: Path, kind: str
) -> None:
    inputs = []
    for name, utterance in (("one", "alpha bravo"), ("two", "charlie delta echo")):
        path = tmp_path / f"{name}.wav"
        path.write_bytes(wav(markers(utterance, "foxtrot")))
        inputs.append(str(path))
    out = tmp_path / "out"
    out.mkdir()
    result = against(server.address, "-f", kind, "--output-dir", str(out), "-j", "2", *inputs)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == [f"one.{kind}", f"two.{kind}"]
    assert words_of(parse((out / f"one.{kind}").read_text(), kind)) == ["alpha", "bravo", "foxtrot"]
    assert words_of(parse((out / f"two.{kind}").read_text(), kind)) == [
        "charlie",
        "delta",
        "echo",
        "foxtrot",
    ]
    again = against(
        server.address, "-f", kind, "--output-dir", str(out), "--skip-existing", *inputs
    )
    assert again.exit_code == 0 and server.servicer.attempts == 2


def test_a_run_that_fails_half_way_leaves_valid_cues_so_far(
    server: FaultServer, talk_wav: Path
) -> None:
    server.plan = [Fault("unavailable", after=120)]  # 15 s in: inside the third utterance
    result = against(server.address, "-f", "srt", "--retries", "0", "--speed", "20", str(talk_wav))
    assert result.exit_code == 6
    cues = parse(result.stdout, "srt")
    assert_well_formed(cues)
    assert words_of(cues) == f"{TALK[0]} {TALK[1]}".split()


def test_without_word_timings_each_utterance_is_a_cue_over_its_estimated_span(
    tmp_path: Path,
) -> None:
    untimed = FaultServer(word_timings=False)
    path = tmp_path / "two.wav"
    path.write_bytes(
        wav(markers("alpha bravo", "charlie", word=0.2, space=0.05, gap=2.0, lead=0.5))
    )
    try:
        result = against(untimed.address, "-f", "vtt", "--speed", "10", str(path))
    finally:
        untimed.stop()
    assert result.exit_code == 0, result.stderr
    cues = parse(result.stdout, "vtt")
    assert [c.lines for c in cues] == [("alpha bravo",), ("charlie",)]
    assert cues[0].start_s == pytest.approx(0.5, abs=0.3)
    assert cues[0].end_s == pytest.approx(0.95, abs=0.3)
    assert cues[1].start_s == pytest.approx(2.95, abs=0.3)
    assert cues[1].end_s == pytest.approx(3.15, abs=0.3)


def test_timestamps_prefix_each_text_line(synthetic_serve: str, talk_wav: Path) -> None:
    result = against(synthetic_serve, "-f", "text", "--timestamps", str(talk_wav))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"[00:00.500 --> 00:06.400] {TALK[0]}",
        f"[00:07.400 --> 00:08.300] {TALK[1]}",
        f"[00:09.300 --> 00:19.200] {TALK[2]}",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "json", "--timestamps"], "--timestamps is for text output"),
        (["-f", "text", "--max-lines", "3"], "--max-lines is for subtitles"),
        (["-f", "jsonl", "--max-line-width", "30"], "--max-line-width is for subtitles"),
        (["-f", "srt", "--max-lines", "0"], "--max-lines"),
        (["-f", "srt", "SECOND"], "-f srt with several inputs needs --output-dir"),
    ],
)
def test_options_that_would_do_nothing_are_usage_errors(
    talk_wav: Path, args: list[str], message: str
) -> None:
    args = [str(talk_wav) if a == "SECOND" else a for a in args]
    result = against("127.0.0.1:9", *args, str(talk_wav))
    assert result.exit_code == 2
    assert message in result.stderr
