"""Many inputs in one run: order, files, resumption, failures one by one, concurrency."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.audio import markers, wav
from support.cli import against, run_cli, spawn_against
from support.clock import FakeClock
from support.faults import Fault, FaultServer

from sttcli.server.servicer import SttServicer
from sttcli.server.synthetic import SyntheticEngine
from sttcli.session import Clockwork, StartLimiter


@pytest.fixture
def server() -> Iterator[FaultServer]:
    faulty = FaultServer()
    yield faulty
    faulty.stop()


def make_inputs(directory: Path, *utterances: str) -> list[str]:
    paths = []
    for index, utterance in enumerate(utterances):
        path = directory / f"in{index}.wav"
        path.write_bytes(wav(markers(utterance)))
        paths.append(str(path))
    return paths


def test_json_results_follow_the_command_line_not_the_finish_line(
    server: FaultServer, tmp_path: Path
) -> None:
    # The first inputs are the longest: with four jobs they finish last.
    utterances = ["alpha " * 30, "bravo " * 20, "charlie " * 10, "delta", "echo", "foxtrot"]
    inputs = make_inputs(tmp_path, *[u.strip() for u in utterances])
    result = against(server.address, "-f", "json", "-j", "4", "--speed", "10", *inputs)
    assert result.exit_code == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["input"] for d in documents] == inputs
    assert [d["text"] for d in documents] == [u.strip() for u in utterances]


def test_text_lines_carry_the_input_name_with_several_inputs(
    server: FaultServer, tmp_path: Path
) -> None:
    inputs = make_inputs(tmp_path, "golf", "hotel")
    result = against(server.address, *inputs)
    assert sorted(result.stdout.splitlines()) == [f"{inputs[0]}: golf", f"{inputs[1]}: hotel"]


def test_jsonl_events_name_their_input(server: FaultServer, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, "india", "juliett")
    result = against(server.address, "-f", "jsonl", "-j", "2", *inputs)
    names = {json.loads(line)["input"] for line in result.stdout.splitlines()}
    assert names == set(inputs)


def test_failures_are_per_input_with_lines_a_summary_and_the_first_exit_code(
    server: FaultServer, tmp_path: Path
) -> None:
    good, served_badly = make_inputs(tmp_path, "kilo", "lima")
    stereo = tmp_path / "broken.mp3"
    stereo.write_bytes(b"ID3\x03" + bytes(800))  # a tag and no audio: nothing to decode
    missing = str(tmp_path / "missing.wav")
    server.plan = [None, Fault("unavailable", after=1)]
    result = against(
        server.address, "-f", "json", "--retries", "0", good, served_badly, missing, str(stereo)
    )
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["input"] for d in documents] == [good, served_badly, missing, str(stereo)]
    assert [d["error"] and d["error"]["code"] for d in documents] == [
        None,
        "UNAVAILABLE",
        "BAD_INPUT",
        "BAD_INPUT",
    ]
    # Exit status: the first failed input in command-line order (UNAVAILABLE: 6).
    assert result.exit_code == 6
    lines = result.stderr.splitlines()
    assert f"ok {good} 0.9 s audio" in lines
    assert any(line.startswith(f"FAILED {served_badly}: cannot get an answer") for line in lines)
    assert f"FAILED {missing}: no such file" in lines
    assert lines[-1].startswith("summary: 1 ok, 3 failed; ")


def test_bad_inputs_fail_before_any_stream_starts(server: FaultServer, tmp_path: Path) -> None:
    (good,) = make_inputs(tmp_path, "mike")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    result = against(server.address, "-q", good, str(empty))
    assert result.exit_code == 2
    assert result.stderr == f"FAILED {empty}: empty input, no audio to recognize\n"  # -q: only that
    assert server.servicer.attempts == 1


def test_output_dir_writes_one_file_per_successful_input(
    server: FaultServer, tmp_path: Path
) -> None:
    inputs = make_inputs(tmp_path, "november oscar", "papa")
    out = tmp_path / "out"
    out.mkdir()
    server.plan = [None, Fault("unavailable", after=1)]
    result = against(
        server.address, "-f", "json", "--output-dir", str(out), "--retries", "0", *inputs
    )
    assert result.exit_code == 6
    assert result.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["in0.json"]
    assert json.loads((out / "in0.json").read_text())["text"] == "november oscar"


@pytest.mark.parametrize(
    ("fmt", "name", "content"), [("text", "in0.txt", "quebec\n"), ("jsonl", "in0.jsonl", None)]
)
def test_output_dir_in_text_and_jsonl(
    server: FaultServer, tmp_path: Path, fmt: str, name: str, content: str | None
) -> None:
    inputs = make_inputs(tmp_path, "quebec")
    out = tmp_path / "out"
    out.mkdir()
    assert against(server.address, "-f", fmt, "--output-dir", str(out), *inputs).exit_code == 0
    text = (out / name).read_text()
    if content is not None:
        assert text == content
    else:
        assert json.loads(text.splitlines()[-1])["alternatives"][0]["text"] == "quebec"


def test_skip_existing_resumes_a_batch(server: FaultServer, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, "romeo", "sierra", "tango")
    out = tmp_path / "out"
    out.mkdir()
    (out / "in1.json").write_text("kept\n")
    result = against(
        server.address, "-f", "json", "--output-dir", str(out), "--skip-existing", *inputs
    )
    assert result.exit_code == 0
    assert server.servicer.attempts == 2
    assert (out / "in1.json").read_text() == "kept\n"
    assert json.loads((out / "in2.json").read_text())["text"] == "tango"
    assert "1 skipped" in result.stderr.splitlines()[-1]


def test_two_inputs_with_one_stem_are_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first, second = tmp_path / "a" / "x.wav", tmp_path / "x.pcm"
    first.write_bytes(wav(bytes(100)))
    second.write_bytes(bytes(100))
    result = run_cli(
        "recognize",
        "--endpoint",
        "127.0.0.1:1",
        "--output-dir",
        str(tmp_path),
        str(first),
        str(second),
    )
    assert result.exit_code == 2
    assert "would both write x.txt" in result.stderr


def test_skip_existing_needs_an_output_dir(tmp_path: Path) -> None:
    result = run_cli("recognize", "--endpoint", "127.0.0.1:1", "--skip-existing", "x.wav")
    assert result.exit_code == 2 and "--skip-existing needs --output-dir" in result.stderr


def test_from_file_skips_blank_lines_and_comments(server: FaultServer, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, "uniform", "victor")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# today's calls\n\n{inputs[0]}\n   \n# {inputs[1]}\n{inputs[1]}\n")
    result = against(server.address, "-f", "json", "--from-file", str(listing))
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == [
        "uniform",
        "victor",
    ]


def test_from_file_reads_the_list_from_stdin(server: FaultServer, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, "whiskey", "xray")
    result = against(
        server.address, "-f", "json", "--from-file", "-", input="\n".join(inputs) + "\n"
    )
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["whiskey", "xray"]


def test_stdin_cannot_be_the_list_and_audio() -> None:
    result = run_cli("recognize", "--endpoint", "127.0.0.1:1", "--from-file", "-", "-")
    assert result.exit_code == 2 and "stdin cannot be both" in result.stderr


def test_fail_fast_stops_the_others(server: FaultServer, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, *["bravo charlie " * 20] * 4)
    server.plan = [Fault("unavailable", after=3)]
    result = against(
        server.address,
        "-f",
        "json",
        "--fail-fast",
        "--retries",
        "0",
        "-j",
        "2",
        "--speed",
        "5",
        *inputs,
    )
    assert result.exit_code == 6  # the failure, not the input it cancelled
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    codes = sorted(d["error"]["code"] for d in documents)
    assert codes == ["CANCELLED", "UNAVAILABLE"]
    assert server.servicer.attempts == 2
    assert "2 not run" in result.stderr.splitlines()[-1]


def test_fail_fast_with_a_bad_input_starts_nothing(server: FaultServer, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, "alpha", "bravo")
    result = against(server.address, "--fail-fast", *inputs, str(tmp_path / "missing.wav"))
    assert result.exit_code == 2
    assert server.servicer.attempts == 0


class BarrierServicer(SttServicer):
    """Every stream waits until `parties` streams are in: it passes only if they overlap."""

    def __init__(self, parties: int) -> None:
        super().__init__(SyntheticEngine())
        self.barrier = threading.Barrier(parties, timeout=20)

    def StreamingRecognize(self, request_iterator: Any, context: Any) -> Any:  # noqa: N802
        first = next(request_iterator)
        self.barrier.wait()

        def replay() -> Iterator[Any]:
            yield first
            yield from request_iterator

        yield from super().StreamingRecognize(replay(), context)


def test_jobs_really_overlap_streams(tmp_path: Path) -> None:
    from concurrent import futures

    from sttcli._proto import stt_service_pb2_grpc as rpc

    servicer = BarrierServicer(parties=3)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    rpc.add_SttServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        inputs = make_inputs(tmp_path, "delta", "echo", "foxtrot")
        result = against(f"127.0.0.1:{port}", "-f", "json", "-j", "3", *inputs)
    finally:
        server.stop(None)
    assert result.exit_code == 0, result.stderr
    assert not servicer.barrier.broken


def test_streams_start_no_faster_than_max_rps() -> None:
    clock = FakeClock()
    limiter = StartLimiter(4.0, Clockwork(clock=clock.clock, sleep=clock.sleep))

    async def start_ten() -> list[float]:
        starts = []
        for _ in range(10):
            await limiter.acquire()
            starts.append(clock.now)
        return starts

    starts = asyncio.run(start_ten())
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:], strict=False)] == [0.25] * 9


def test_max_rps_is_shared_by_concurrent_inputs() -> None:
    clock = FakeClock()
    limiter = StartLimiter(2.0, Clockwork(clock=clock.clock, sleep=clock.sleep))

    async def starts() -> list[float]:
        times: list[float] = []

        async def one() -> None:
            await limiter.acquire()
            times.append(clock.now)

        await asyncio.gather(*(one() for _ in range(5)))
        return sorted(times)

    times = asyncio.run(starts())
    assert [round(t - times[0], 6) for t in times] == [0.0, 0.5, 1.0, 1.5, 2.0]


# -- as a process -----------------------------------------------------------------


def test_a_killed_run_leaves_whole_files_only(server: FaultServer, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, "golf", "hotel " * 200)
    out = tmp_path / "out"
    out.mkdir()
    process = spawn_against(
        server.address,
        "-f",
        "json",
        "--speed",
        "1",
        "--output-dir",
        str(out),
        *inputs,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (out / "in0.json").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=10)
    assert [p.name for p in out.iterdir()] == ["in0.json"]
    assert json.loads((out / "in0.json").read_text())["text"] == "golf"


def test_ctrl_c_keeps_finished_results(server: FaultServer, tmp_path: Path) -> None:
    inputs = make_inputs(tmp_path, "india", "juliett " * 200)
    process = spawn_against(
        server.address,
        "-f",
        "json",
        "--speed",
        "1",
        "-j",
        "2",
        *inputs,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 30)
    assert ready, "no result within 30 s"
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert json.loads(first)["text"] == "india"
    interrupted = json.loads(rest)
    assert interrupted["input"] == inputs[1]
    assert interrupted["error"]["code"] == "INTERRUPTED"
    assert "interrupted" in err


def test_a_person_watching_gets_a_progress_view(server: FaultServer, tmp_path: Path) -> None:
    import pty

    inputs = make_inputs(tmp_path, "kilo", "lima")
    controller, terminal = pty.openpty()
    process = spawn_against(
        server.address,
        *inputs,
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    out, _ = process.communicate(timeout=30)
    os.close(terminal)
    seen = b""
    while select.select([controller], [], [], 5)[0]:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(controller)
    assert process.returncode == 0
    assert sorted(out.splitlines()) == sorted(
        f"{i}: {w}" for i, w in zip(inputs, ["kilo", "lima"], strict=True)
    )
    screen = seen.decode(errors="replace")
    assert "summary: 2 ok, 0 failed" in screen
    assert "ok " + inputs[0] not in screen  # a person sees the view, not CI lines
