"""The offline server against its engine used directly: accuracy, CPU, latency, capacity.

`--engine whisper` (the default) measures the Whisper engine: WER through
`sttcli recognize --local` (16 kHz, 8 kHz, 48 kHz, Ogg Opus) next to
faster-whisper's own whole-utterance decoding with the same model, Russian
WER and CER with base; first partial and final latency paced at real time;
capacity (N paced streams at once on N workers) with the server's CPU per
audio second, partials on and off; start-up of `serve` and of the whole
`--local` command for the sample. Figures are normalized with digits spelled
out (num2words). `--engine pocketsphinx` measures the former engine, as below.

What is measured, on the 12 English utterances of a reference corpus (see
the corpus's README.md; its directory is the one argument):

1. Accuracy (WER, jiwer, over all 12 utterances at once). Through
   `sttcli recognize --local --raw-results -f json` (the in-process server, the
   path users take): 16 kHz, 8 kHz and 48 kHz raw PCM and Ogg Opus. Next to it,
   pocketsphinx decoding the same audio directly: 16 kHz in 4000-byte
   `process_raw` calls ("chunked", what a naive streaming server does), 16 kHz
   in one call per utterance ("whole", the best pocketsphinx does on its own),
   and the 8 kHz file upsampled to 16 kHz with soxr, chunked and whole. Two
   diagnostic rows decode, in one call each, the speech segments that
   pocketsphinx's Endpointer (as the server uses it) cuts from the 16 kHz
   audio: each segment alone, and all of them joined.
   Why: the server must come close to whole-utterance decoding although it
   receives audio in chunks, and other rates and Opus must not cost much.
2. Speed. `sttcli serve --workers 4` runs as a subprocess; the CPU time
   (user + system) of it and its children (the decoder workers) is summed
   with psutil across streaming all 12 utterances at 16 kHz, unpaced, one
   stream at a time and 4 at a time, partials off and on. The reference is
   the CPU time of decoding the same audio directly, chunked, in this
   process, in the same round. Target: server CPU <= 2x direct. Wall time of
   the 4-stream runs and the server's start-up (launch to its "listening on"
   line, which it prints once every worker has its decoders) are reported
   too; start-up is outside the timed streaming.
3. Time to first partial. Each utterance is streamed in real time (chunk n
   of 4000 bytes sent at start + n x 0.125 s) with partials on; the latency is
   from sending the chunk that holds the first speech to the arrival of the
   first non-empty partial. First speech is found in the audio itself: the
   first 10 ms frame whose RMS is at least 20 dB above the recording's 10th
   percentile frame RMS (RMS floored at 1 LSB, so digital silence counts as
   0 dB rather than -inf).

Hypotheses are normalized like the references (lowercase, apostrophes
deleted, other non-word characters to spaces, whitespace collapsed). The
machine may be shared: the load average is printed with each section, and the
speed figures are medians of --repeat rounds (ratios are taken within a round).

    python bench/bench_engine.py CORPUS_DIR [--repeat 3] [--parts wer,speed,latency]
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import json
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jiwer
import numpy
import psutil  # type: ignore[import-untyped]
import soxr

STTCLI = str(Path(sys.executable).parent / "sttcli")
RATE = 16000
CHUNK = 4000  # bytes per message and per direct process_raw() call
CHUNK_SECONDS = CHUNK / (2 * RATE)  # 0.125 s at 16 kHz
SERVER_WORKERS = 4
STARTUP_TIMEOUT = 120.0
STREAM_TIMEOUT = 300.0
# First speech: the first 10 ms frame this far above the 10th-percentile frame.
ONSET_FRAME_SECONDS = 0.010
ONSET_PERCENTILE = 10
ONSET_ABOVE_DB = 20.0
# Targets from the brief.
TARGET_WER_16K = 0.31
TARGET_CPU_RATIO = 2.0


# -- the corpus and WER ----------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    name: str
    reference: str
    duration_s: float
    directory: Path

    def path(self, suffix: str) -> Path:
        """`suffix` is "16k.pcm", "8k.pcm", "48k.pcm", "wav" or "ogg"."""
        return self.directory / f"{self.name}.{suffix}"

    def pcm(self, suffix: str = "16k.pcm") -> bytes:
        return self.path(suffix).read_bytes()


def load_corpus(directory: Path) -> list[Utterance]:
    """The English utterances of manifest.tsv, in its order."""
    with open(directory / "manifest.tsv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    utterances = [
        Utterance(row["name"], row["reference_transcript"], float(row["duration_s"]), directory)
        for row in rows
        if row["language"] == "en"
    ]
    if not utterances:
        raise SystemExit(f"{directory}/manifest.tsv lists no English utterance")
    return utterances


def normalize(text: str) -> str:
    """The references' normalization: lowercase, no apostrophes, words and single spaces."""
    text = re.sub(r"['\u2019]", "", text.lower())
    return " ".join(re.sub(r"\W+", " ", text).split())


@dataclass(frozen=True)
class Score:
    wer: float
    errors: int
    words: int
    per_utterance: tuple[int, ...]  # word errors (S + D + I) of each utterance


def score(references: Sequence[str], hypotheses: Sequence[str]) -> Score:
    per_utterance = []
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        out = jiwer.process_words(reference, normalize(hypothesis))
        per_utterance.append(out.substitutions + out.deletions + out.insertions)
    words = sum(len(r.split()) for r in references)
    errors = sum(per_utterance)
    return Score(errors / words, errors, words, tuple(per_utterance))


# -- direct pocketsphinx decoding ------------------------------------------


class DirectDecoder:
    """One pocketsphinx decoder, created once, its features reset before each utterance."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self.decoder = Decoder(loglevel="FATAL")

    def decode(self, pcm: bytes, *, whole: bool) -> str:
        decoder = self.decoder
        decoder.reinit_feat()
        decoder.start_utt()
        if whole:
            decoder.process_raw(pcm, full_utt=True)
        else:
            for offset in range(0, len(pcm), CHUNK):
                decoder.process_raw(pcm[offset : offset + CHUNK])
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""

    def cpu_seconds_chunked(self, pcms: Sequence[bytes]) -> float:
        """CPU time of this thread decoding all of `pcms` chunked."""
        start = time.thread_time()
        for pcm in pcms:
            self.decode(pcm, whole=False)
        return time.thread_time() - start


def endpointer_segments(pcm: bytes) -> list[bytes]:
    """The speech segments of pocketsphinx's Endpointer with its defaults (as the server has it).

    Used to explain the server's finals: it decodes each of these in one call.
    """
    from pocketsphinx import Endpointer

    endpointer = Endpointer(sample_rate=RATE)
    frame = endpointer.frame_bytes
    segments: list[bytes] = []
    current = bytearray()

    def take(speech: bytes | None) -> None:
        if speech is not None:
            current.extend(speech)
        if current and not endpointer.in_speech:
            segments.append(bytes(current))
            current.clear()

    whole = len(pcm) - len(pcm) % frame
    for offset in range(0, whole, frame):
        take(endpointer.process(pcm[offset : offset + frame]))
    take(endpointer.end_stream(pcm[whole:] or b"\x00\x00"))
    if current:
        segments.append(bytes(current))
    return segments


def upsample_8k(pcm: bytes) -> bytes:
    samples = soxr.resample(numpy.frombuffer(pcm, "<i2"), 8000, RATE)
    return bytes(numpy.asarray(samples).astype("<i2").tobytes())


# -- sttcli recognize --local ----------------------------------------------


def recognize_local(
    paths: Sequence[Path], options: Sequence[str], engine: str = "pocketsphinx"
) -> list[dict[str, Any]]:
    """One `sttcli recognize --local` run over `paths` (one stream each, in turn)."""
    command = [STTCLI, "recognize", "--local", "--local-engine", engine, "--raw-results"]
    command += ["-f", "json", "-q", *options]
    done = subprocess.run(
        [*command, *map(str, paths)], capture_output=True, text=True, timeout=1800, check=False
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    by_input = {result["input"]: result for result in results}
    missing = [str(p) for p in paths if str(p) not in by_input]
    if done.returncode != 0 or missing:
        raise RuntimeError(
            f"{' '.join(command)}: exit {done.returncode}, no result for {missing}\n{done.stderr}"
        )
    ordered = [by_input[str(p)] for p in paths]
    for result in ordered:
        if result.get("error"):
            raise RuntimeError(f"{result['input']}: {result['error']}")
    return ordered


# -- the server as a subprocess --------------------------------------------


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the bench dies, however it dies (Linux)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Server:
    """`sttcli serve --port 0` in a subprocess; a context manager that always stops it."""

    def __init__(self, workers: int, engine: str = "pocketsphinx") -> None:
        self.workers = workers
        self.engine = engine
        self.process: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.startup_s = 0.0
        self.log: list[str] = []  # its stderr, kept for error reports

    def __enter__(self) -> Server:
        command = [STTCLI, "serve", "--port", "0", "--workers", str(self.workers)]
        command += ["--engine", self.engine]
        launched = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - started before any client thread
        )
        try:
            self.endpoint = self._wait_listening()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - launched
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_listening(self) -> str:
        """Read stderr until "listening on HOST:PORT"; keep draining it afterwards."""
        assert self.process is not None and self.process.stderr is not None
        lines: queue.Queue[str | None] = queue.Queue()
        stderr = self.process.stderr

        def drain() -> None:
            for line in stderr:
                self.log.append(line.rstrip())
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, name="server-stderr", daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"the server did not listen within {STARTUP_TIMEOUT} s"
                ) from None
            if line is None:
                raise RuntimeError("the server exited before listening:\n" + "\n".join(self.log))
            match = re.match(r"listening on (\S+)", line.strip())
            if match:
                return match.group(1)

    def cpu_times(self) -> dict[int, float]:
        """user + system seconds of the server and each of its descendants, by pid."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        times: dict[int, float] = {}
        for process in [root, *root.children(recursive=True)]:
            try:
                cpu = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            times[process.pid] = cpu.user + cpu.system
        return times

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two `cpu_times()` snapshots (new processes count whole)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


# -- a raw gRPC client -----------------------------------------------------


@dataclass
class StreamRecord:
    finals: list[str] = field(default_factory=list)
    partials: list[tuple[float, str]] = field(default_factory=list)  # (arrival, text)
    sent: list[float] = field(default_factory=list)  # when each audio chunk went out
    final_arrivals: list[float] = field(default_factory=list)
    final_ends: list[float | None] = field(default_factory=list)  # last word's end_time (s)
    closed: float = 0.0  # when the stream ended

    @property
    def text(self) -> str:
        return " ".join(t for t in self.finals if t)


def stream_pcm(stub: Any, pcm: bytes, *, partials: bool, paced: bool) -> StreamRecord:
    """One StreamingRecognize call for 16 kHz PCM in 4000-byte messages."""
    from sttcli._proto import stt_service_pb2 as pb

    record = StreamRecord()

    def requests() -> Iterator[Any]:
        spec = pb.RecognitionSpec(
            audio_encoding=pb.RecognitionSpec.LINEAR16_PCM,
            sample_rate_hertz=RATE,
            partial_results=partials,
            raw_results=True,
        )
        yield pb.StreamingRecognitionRequest(config=pb.RecognitionConfig(specification=spec))
        start = time.monotonic()
        for n, offset in enumerate(range(0, len(pcm), CHUNK)):
            if paced:
                delay = start + n * CHUNK_SECONDS - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            record.sent.append(time.monotonic())
            yield pb.StreamingRecognitionRequest(audio_content=pcm[offset : offset + CHUNK])

    for response in stub.StreamingRecognize(requests(), timeout=STREAM_TIMEOUT):
        arrived = time.monotonic()
        for chunk in response.chunks:
            text = chunk.alternatives[0].text if chunk.alternatives else ""
            if chunk.final:
                record.finals.append(text)
                record.final_arrivals.append(arrived)
                words = chunk.alternatives[0].words if chunk.alternatives else []
                record.final_ends.append(
                    words[-1].end_time.ToNanoseconds() / 1e9 if words else None
                )
            elif text:
                record.partials.append((arrived, text))
    record.closed = time.monotonic()
    return record


class Client:
    """A channel and stub to the server; streams run in threads sharing the channel."""

    def __init__(self, endpoint: str) -> None:
        import grpc

        from sttcli._proto import stt_service_pb2_grpc as rpc

        self.channel = grpc.insecure_channel(endpoint)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.stub = rpc.SttServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.channel.close()

    def stream_all(
        self, pcms: Sequence[bytes], *, concurrency: int, partials: bool
    ) -> list[StreamRecord]:
        """Every pcm once, unpaced, `concurrency` streams at a time (a shared work queue)."""
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="client") as pool:
            return list(
                pool.map(
                    lambda pcm: stream_pcm(self.stub, pcm, partials=partials, paced=False), pcms
                )
            )


# -- 1. accuracy -----------------------------------------------------------

LOCAL_VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # label: (file suffix, extra recognize options)
    "server 16 kHz": ("16k.pcm", ("-r", "16000")),
    "server 8 kHz": ("8k.pcm", ("-r", "8000")),
    "server 48 kHz": ("48k.pcm", ("-r", "48000")),
    "server Ogg Opus": ("ogg", ()),
}


SEGMENTS = "direct 16 kHz, endpointer segments, each whole"
SPEECH_JOINED = "direct 16 kHz, endpointer speech joined, whole"


@dataclass
class Accuracy:
    scores: dict[str, Score]
    hypotheses: dict[str, list[str]]
    segments: dict[str, list[int]]  # server variants: utterances (finals) per file


def measure_accuracy(utterances: Sequence[Utterance], decoder: DirectDecoder) -> Accuracy:
    references = [u.reference for u in utterances]
    hypotheses: dict[str, list[str]] = {}
    segments: dict[str, list[int]] = {}
    for label, (suffix, options) in LOCAL_VARIANTS.items():
        results = recognize_local([u.path(suffix) for u in utterances], options)
        hypotheses[label] = [r["text"] for r in results]
        segments[label] = [len(r["utterances"]) for r in results]
    pcm16 = [u.pcm() for u in utterances]
    pcm8up = [upsample_8k(u.pcm("8k.pcm")) for u in utterances]
    direct: dict[str, tuple[list[bytes], bool]] = {
        "direct 16 kHz chunked": (pcm16, False),
        "direct 16 kHz whole": (pcm16, True),
        "direct 8k->16k chunked": (pcm8up, False),
        "direct 8k->16k whole": (pcm8up, True),
    }
    for label, (pcms, whole) in direct.items():
        hypotheses[label] = [decoder.decode(pcm, whole=whole) for pcm in pcms]
    # Diagnostics: whole-utterance decoding of what the server's endpointer passes on.
    segmented = [endpointer_segments(pcm) for pcm in pcm16]
    hypotheses[SEGMENTS] = [
        " ".join(decoder.decode(s, whole=True) for s in segments) for segments in segmented
    ]
    hypotheses[SPEECH_JOINED] = [
        decoder.decode(b"".join(segments), whole=True) for segments in segmented
    ]
    scores = {label: score(references, hyps) for label, hyps in hypotheses.items()}
    return Accuracy(scores, hypotheses, segments)


def print_accuracy(utterances: Sequence[Utterance], accuracy: Accuracy) -> None:
    print("\n### Accuracy (WER, 12 English utterances)\n")
    print("| audio, path | WER | errors / words |")
    print("|---|---:|---:|")
    for label, result in accuracy.scores.items():
        print(f"| {label} | {result.wer:.1%} | {result.errors} / {result.words} |")
    labels = list(accuracy.scores)
    wer16 = accuracy.scores["server 16 kHz"].wer
    verdict = "met" if wer16 <= TARGET_WER_16K else "MISSED"
    print(f"\nTarget: server 16 kHz WER <= {TARGET_WER_16K:.0%}: {verdict} ({wer16:.1%})")
    print("\nWord errors per utterance (S + D + I); segs = finals the server made (16 kHz):\n")
    print("| utterance | words | segs | " + " | ".join(labels) + " |")
    print("|---|---:|---:|" + "---:|" * len(labels))
    for i, utterance in enumerate(utterances):
        cells = " | ".join(str(accuracy.scores[label].per_utterance[i]) for label in labels)
        words = len(utterance.reference.split())
        segs = accuracy.segments["server 16 kHz"][i]
        print(f"| {utterance.name} | {words} | {segs} | {cells} |")
    print("\nWhere the server's 16 kHz text differs from direct whole-utterance decoding:\n")
    for i, utterance in enumerate(utterances):
        server = normalize(accuracy.hypotheses["server 16 kHz"][i])
        whole = normalize(accuracy.hypotheses["direct 16 kHz whole"][i])
        if server != whole:
            print(f"- {utterance.name}\n  - ref:    {utterance.reference}")
            print(f"  - server: {server}\n  - whole:  {whole}")
    pairs = zip(accuracy.hypotheses["server 16 kHz"], accuracy.hypotheses[SEGMENTS], strict=True)
    same = sum(normalize(server) == normalize(segments) for server, segments in pairs)
    print(
        f"\nThe server's 16 kHz text equals direct decoding of the endpointer's segments "
        f"(each in one call) for {same} of {len(utterances)} utterances."
    )


# -- 2. speed --------------------------------------------------------------

SPEED_CASES: tuple[tuple[int, bool], ...] = ((1, False), (1, True), (4, False), (4, True))


@dataclass
class SpeedRun:
    server_cpu_s: float
    wall_s: float
    texts: list[str]  # normalized finals, one per utterance


@dataclass
class SpeedRound:
    load: float
    startup_s: float
    direct_cpu_s: float
    runs: dict[tuple[int, bool], SpeedRun]


def measure_speed_round(pcms: Sequence[bytes], decoder: DirectDecoder) -> SpeedRound:
    """Direct chunked decoding, then each SPEED_CASES case against a fresh server."""
    direct_cpu_s = decoder.cpu_seconds_chunked(pcms)
    runs: dict[tuple[int, bool], SpeedRun] = {}
    with Server(SERVER_WORKERS) as server:
        client = Client(server.endpoint)
        try:
            client.stream_all(pcms[:1], concurrency=1, partials=True)  # warm the channel
            for concurrency, partials in SPEED_CASES:
                before = server.cpu_times()
                started = time.perf_counter()
                records = client.stream_all(pcms, concurrency=concurrency, partials=partials)
                wall_s = time.perf_counter() - started
                cpu_s = cpu_delta(before, server.cpu_times())
                texts = [normalize(r.text) for r in records]
                runs[(concurrency, partials)] = SpeedRun(cpu_s, wall_s, texts)
        finally:
            client.close()
        startup_s = server.startup_s
    return SpeedRound(os.getloadavg()[0], startup_s, direct_cpu_s, runs)


def print_speed(rounds: Sequence[SpeedRound], audio_s: float) -> None:
    print(f"\n### Speed ({audio_s:.2f} s of 16 kHz audio, unpaced, median of {len(rounds)})\n")
    direct = statistics.median(r.direct_cpu_s for r in rounds)
    print(
        f"Direct pocketsphinx, 4000-byte chunks: CPU {direct:.2f} s, RTF {direct / audio_s:.3f} "
        f"(runs: {', '.join(f'{r.direct_cpu_s:.2f}' for r in rounds)})\n"
    )
    print(
        "| streams | partials | server CPU (s) | CPU RTF | vs direct | ratio runs "
        "| wall (s) | wall RTF | finals same |"
    )
    print("|---:|---|---:|---:|---:|---|---:|---:|---|")
    expected = rounds[0].runs[SPEED_CASES[0]].texts
    for case in SPEED_CASES:
        concurrency, partials = case
        cpu = statistics.median(r.runs[case].server_cpu_s for r in rounds)
        ratios = [r.runs[case].server_cpu_s / r.direct_cpu_s for r in rounds]
        wall = statistics.median(r.runs[case].wall_s for r in rounds)
        same = all(r.runs[case].texts == expected for r in rounds)
        print(
            f"| {concurrency} | {'on' if partials else 'off'} | {cpu:.2f} | {cpu / audio_s:.3f} "
            f"| {statistics.median(ratios):.2f}x | {', '.join(f'{x:.2f}' for x in ratios)} "
            f"| {wall:.2f} | {wall / audio_s:.3f} | {'yes' if same else 'NO'} |"
        )
    print("\n(finals same: every round's finals equal round 1's, 1 stream, partials off)")
    worst = max(r.runs[case].server_cpu_s / r.direct_cpu_s for r in rounds for case in SPEED_CASES)
    verdict = "met" if worst <= TARGET_CPU_RATIO else "MISSED"
    print(f"Target: server CPU <= {TARGET_CPU_RATIO:g}x direct: {verdict} (worst run {worst:.2f}x)")
    startups = [r.startup_s for r in rounds]
    print(
        f"\nServer start-up (`serve --workers {SERVER_WORKERS}`, launch to 'listening on'): "
        f"median {statistics.median(startups):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in startups)})"
    )
    print(f"Load average (1 min) after each round: {', '.join(f'{r.load:.2f}' for r in rounds)}")


# -- 3. time to first partial ----------------------------------------------


def first_speech_s(pcm: bytes, rate: int = RATE) -> float:
    """Start of the first 10 ms frame >= 20 dB above the 10th-percentile frame RMS."""
    frame = int(rate * ONSET_FRAME_SECONDS)
    samples = numpy.frombuffer(pcm, "<i2").astype(numpy.float64)
    count = len(samples) // frame
    frames = samples[: count * frame].reshape(count, frame)
    rms = numpy.maximum(numpy.sqrt((frames**2).mean(axis=1)), 1.0)
    level_db = 20 * numpy.log10(rms)
    floor_db = numpy.percentile(level_db, ONSET_PERCENTILE)
    loud = numpy.flatnonzero(level_db >= floor_db + ONSET_ABOVE_DB)
    return float(loud[0]) * ONSET_FRAME_SECONDS if len(loud) else 0.0


@dataclass(frozen=True)
class Latency:
    name: str
    onset_s: float
    latency_s: float | None  # None: no partial at all
    first_partial: str
    partials: int


def measure_latency(utterances: Sequence[Utterance], endpoint: str) -> list[Latency]:
    client = Client(endpoint)
    try:
        results = []
        for utterance in utterances:
            pcm = utterance.pcm()
            onset_s = first_speech_s(pcm)
            record = stream_pcm(client.stub, pcm, partials=True, paced=True)
            onset_chunk = min(int(onset_s * 2 * RATE) // CHUNK, len(record.sent) - 1)
            if record.partials:
                arrival, text = record.partials[0]
                latency: float | None = arrival - record.sent[onset_chunk]
            else:
                text, latency = "", None
            results.append(Latency(utterance.name, onset_s, latency, text, len(record.partials)))
        return results
    finally:
        client.close()


def print_latency(results: Sequence[Latency]) -> None:
    print("\n### Time to first partial (paced in real time, 4000-byte chunks)\n")
    print("| utterance | first speech (s) | first partial after (s) | partials | first partial |")
    print("|---|---:|---:|---:|---|")
    for r in results:
        shown = f"{r.latency_s:.3f}" if r.latency_s is not None else "none"
        print(f"| {r.name} | {r.onset_s:.2f} | {shown} | {r.partials} | {r.first_partial} |")
    latencies = [r.latency_s for r in results if r.latency_s is not None]
    if latencies:
        print(
            f"\nmedian {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s "
            f"over {len(latencies)} utterances with a partial (of {len(results)})"
        )


# -- Whisper (--engine whisper) --------------------------------------------

WHISPER_TARGET_WER = {"server 16 kHz": 0.06, "server 8 kHz": 0.07}
LIVE_TARGET_S = 1.0
CAPACITY_STREAM_S = 30.0  # audio per stream in the capacity runs
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "speech.wav"


def load_russian(directory: Path) -> list[Utterance]:
    with open(directory / "manifest.tsv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    return [
        Utterance(row["name"], row["reference_transcript"], float(row["duration_s"]), directory)
        for row in rows
        if row["language"] == "ru"
    ]


def spell_digits(text: str, language: str = "en") -> str:
    """Figures as words (num2words), so that "10" and "ten" score the same."""
    from num2words import num2words

    return re.sub(r"\d+", lambda m: f" {num2words(int(m.group()), lang=language)} ", text)


def whisper_normalize(text: str, language: str = "en") -> str:
    return normalize(spell_digits(text, language))


class DirectWhisper:
    """faster-whisper's own whole-utterance decoding (the padded 30 s API), beam 5, int8."""

    def __init__(self, model: str) -> None:
        from sttcli.server import whisper_models

        whisper_models.prepare_offline()
        spec = whisper_models.tiny_en() if model == "tiny.en" else whisper_models.base()
        assert spec is not None, f"{model} is not installed"
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(spec.path), device="cpu", compute_type="int8", cpu_threads=1)

    def decode(self, pcm: bytes, rate: int, language: str) -> str:
        samples = numpy.frombuffer(pcm, "<i2")
        if rate != RATE:
            samples = numpy.asarray(soxr.resample(samples, rate, RATE))
        audio = samples.astype(numpy.float32) / 32768.0
        segments, _ = self.model.transcribe(
            audio, language=language, beam_size=5, condition_on_previous_text=False
        )
        return " ".join(segment.text for segment in segments)


def whisper_accuracy(english: Sequence[Utterance], russian: Sequence[Utterance]) -> None:
    references = [u.reference for u in english]
    rows: dict[str, list[str]] = {}
    segs: dict[str, list[int]] = {}
    for label, (suffix, options) in LOCAL_VARIANTS.items():
        results = recognize_local([u.path(suffix) for u in english], options, engine="whisper")
        rows[label] = [r["text"] for r in results]
        segs[label] = [len(r["utterances"]) for r in results]
    direct = DirectWhisper("tiny.en")
    rows["direct 16 kHz whole (tiny.en)"] = [direct.decode(u.pcm(), RATE, "en") for u in english]
    rows["direct 8k->16k whole (tiny.en)"] = [
        direct.decode(u.pcm("8k.pcm"), 8000, "en") for u in english
    ]
    print("\n### Accuracy, English (WER, 12 utterances, Whisper tiny.en)\n")
    print("| audio, path | WER | errors / words |")
    print("|---|---:|---:|")
    scores = {}
    for label, hypotheses in rows.items():
        result = score(references, [whisper_normalize(h) for h in hypotheses])
        scores[label] = result
        print(f"| {label} | {result.wer:.1%} | {result.errors} / {result.words} |")
    for label, target in WHISPER_TARGET_WER.items():
        wer = scores[label].wer
        print(f"\nTarget: {label} WER <= {target:.0%}: {'met' if wer <= target else 'MISSED'}")
    print("\nWhere the server's 16 kHz text differs from direct decoding:\n")
    for i, utterance in enumerate(english):
        server = whisper_normalize(rows["server 16 kHz"][i])
        whole = whisper_normalize(rows["direct 16 kHz whole (tiny.en)"][i])
        if server != whole:
            print(f"- {utterance.name} ({segs['server 16 kHz'][i]} finals)")
            print(f"  - ref:    {utterance.reference}\n  - server: {server}\n  - whole:  {whole}")
    if not russian:
        return
    ru_refs = [u.reference for u in russian]
    ru_rows: dict[str, list[str]] = {}
    for label, (suffix, options) in LOCAL_VARIANTS.items():
        results = recognize_local(
            [u.path(suffix) for u in russian], (*options, "-l", "ru-RU"), engine="whisper"
        )
        ru_rows[label] = [r["text"] for r in results]
    base = DirectWhisper("base")
    ru_rows["direct 16 kHz whole (base)"] = [base.decode(u.pcm(), RATE, "ru") for u in russian]
    print(f"\n### Accuracy, Russian ({len(russian)} utterances, Whisper base)\n")
    print("| audio, path | WER | CER |")
    print("|---|---:|---:|")
    for label, hypotheses in ru_rows.items():
        normalized = [whisper_normalize(h, "ru") for h in hypotheses]
        wer = jiwer.wer(ru_refs, normalized)
        cer = jiwer.cer(ru_refs, normalized)
        print(f"| {label} | {wer:.1%} | {cer:.1%} |")
    for i, utterance in enumerate(russian):
        print(f"- {utterance.name}: ref `{utterance.reference}`")
        print(f"  server `{whisper_normalize(ru_rows['server 16 kHz'][i], 'ru')}`")


def last_speech_s(pcm: bytes) -> float:
    """End of the last 10 ms frame >= 20 dB above the 10th-percentile frame RMS."""
    frame = int(RATE * ONSET_FRAME_SECONDS)
    samples = numpy.frombuffer(pcm, "<i2").astype(numpy.float64)
    count = len(samples) // frame
    frames = samples[: count * frame].reshape(count, frame)
    level_db = 20 * numpy.log10(numpy.maximum(numpy.sqrt((frames**2).mean(axis=1)), 1.0))
    loud = numpy.flatnonzero(level_db >= numpy.percentile(level_db, ONSET_PERCENTILE) + 20)
    return float(loud[-1] + 1) * ONSET_FRAME_SECONDS if len(loud) else len(samples) / RATE


def whisper_live(utterances: Sequence[Utterance]) -> None:
    """One utterance at a time, paced at real time, partials on, 1 worker."""
    with Server(1, engine="whisper") as server:
        client = Client(server.endpoint)
        try:
            rows = []
            for utterance in utterances:
                pcm = utterance.pcm()
                record = stream_pcm(client.stub, pcm, partials=True, paced=True)
                start = record.sent[0]
                onset = start + first_speech_s(pcm)
                end = start + last_speech_s(pcm)
                first = next((t for t, _ in record.partials if t >= onset), None)
                final = record.final_arrivals[-1] if record.final_arrivals else None
                times = [t for t, _ in record.partials]
                gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
                rows.append(
                    (
                        utterance.name,
                        None if first is None else first - onset,
                        None if final is None else final - end,
                        statistics.median(gaps) if gaps else None,
                        len(record.partials),
                    )
                )
        finally:
            client.close()

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    print("\n### Live, paced at real time (1 stream, partials on)\n")
    print(
        "| utterance | first partial after speech start (s) | final after speech end (s) "
        "| partial refresh, median (s) | partials |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, first, final, gap, count in rows:
        print(f"| {name} | {shown(first)} | {shown(final)} | {shown(gap)} | {count} |")
    for column, label in ((1, "first partial"), (2, "final")):
        values = [row[column] for row in rows if row[column] is not None]
        median = statistics.median(values)  # type: ignore[type-var]
        verdict = "met" if median <= LIVE_TARGET_S else "MISSED"  # type: ignore[operator]
        print(
            f"\n{label}: median {median:.2f} s, max {max(values):.2f} s "  # type: ignore[type-var]
            f"(target <= {LIVE_TARGET_S} s: {verdict})"
        )
    gaps = [row[3] for row in rows if row[3] is not None]
    print(f"partial refresh: median of medians {statistics.median(gaps):.2f} s")  # type: ignore[type-var]


def capacity_audio(utterances: Sequence[Utterance]) -> tuple[bytes, list[tuple[float, float]]]:
    """Utterances one after another with 1 s of silence, up to CAPACITY_STREAM_S."""
    parts: list[bytes] = []
    spans: list[tuple[float, float]] = []  # (speech start, speech end) in the stream
    position = 0.0
    for utterance in utterances:
        pcm = utterance.pcm()
        if position + len(pcm) / (2 * RATE) > CAPACITY_STREAM_S and parts:
            break
        spans.append((position + first_speech_s(pcm), position + last_speech_s(pcm)))
        parts += [pcm, bytes(2 * RATE)]
        position += len(pcm) / (2 * RATE) + 1.0
    return b"".join(parts), spans


def whisper_capacity(utterances: Sequence[Utterance]) -> None:
    """N paced streams at once on `serve --workers N`: do finals keep coming in time?"""
    pcm, _ = capacity_audio(utterances)
    audio_s = len(pcm) / (2 * RATE)
    print(f"\n### Capacity: N streams at once, each {audio_s:.1f} s paced at real time\n")
    print(
        "| streams (workers) | partials | server CPU per audio s | final after speech end, "
        "median / max (s) | finals late > 2 s | end of stream lag (s) |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for streams, partials in ((1, False), (1, True), (2, True), (3, True)):
        with Server(streams, engine="whisper") as server:
            client = Client(server.endpoint)
            try:
                before = server.cpu_times()
                with ThreadPoolExecutor(max_workers=streams) as pool:
                    records = list(
                        pool.map(
                            lambda stub: stream_pcm(stub, pcm, partials=partials, paced=True),  # noqa: B023
                            [client.stub] * streams,
                        )
                    )
                cpu = cpu_delta(before, server.cpu_times())
            finally:
                client.close()
        latencies: list[float] = []
        lags = []
        for record in records:
            start = record.sent[0]
            for end, arrival in zip(record.final_ends, record.final_arrivals, strict=True):
                if end is not None:
                    latencies.append(arrival - (start + end))
            lags.append(record.closed - record.sent[-1])
        late = sum(1 for x in latencies if x > 2.0)
        print(
            f"| {streams} | {'on' if partials else 'off'} | {cpu / (audio_s * streams):.3f} "
            f"| {statistics.median(latencies):.2f} / {max(latencies):.2f} "
            f"| {late} of {len(latencies)} | {max(lags):.2f} |"
        )
    print(
        "\n(a final's latency: its arrival minus when the audio up to the end of its last "
        "word was sent, from the word timings; a stream keeps real time when its finals stay "
        "within about a second and a half and the lag at its end does not grow)"
    )


def whisper_startup(repeat: int) -> None:
    serve_times = []
    for _ in range(repeat):
        with Server(2, engine="whisper") as server:
            serve_times.append(server.startup_s)
    local_times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(
            [STTCLI, "recognize", "--local", str(SAMPLE)],
            capture_output=True,
            text=True,
            check=False,
        )
        local_times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
    print("\n### Start-up\n")
    print(
        f"- `serve --workers 2` (launch to 'listening on'): median "
        f"{statistics.median(serve_times):.2f} s (runs: "
        f"{', '.join(f'{t:.2f}' for t in serve_times)})"
    )
    median = statistics.median(local_times)
    print(
        f"- `sttcli recognize --local samples/speech.wav` (7.9 s of audio), the whole command: "
        f"median {median:.2f} s (runs: {', '.join(f'{t:.2f}' for t in local_times)}); "
        f"target <= 3 s: {'met' if median <= 3.0 else 'MISSED'}"
    )


def whisper_main(corpus: Path, parts: set[str], repeat: int) -> None:
    english = load_corpus(corpus)
    russian = load_russian(corpus)
    print(f"# sttcli Whisper engine benchmark: {len(english)} English, {len(russian)} Russian")
    print(f"python {sys.version.split()[0]}, {STTCLI}; {load_line('at start')}")
    if "wer" in parts:
        section("Accuracy", lambda: whisper_accuracy(english, russian))
    if "latency" in parts:
        section("Live", lambda: whisper_live(english))
    if "capacity" in parts:
        section("Capacity", lambda: whisper_capacity(english))
    if "startup" in parts:
        section("Start-up", lambda: whisper_startup(repeat))


# -- main ------------------------------------------------------------------


def load_line(when: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def section(title: str, run: Callable[[], None]) -> None:
    print(f"\n## {title}  [{load_line('at start')}]", flush=True)
    started = time.perf_counter()
    run()
    print(f"\n[{title}: {time.perf_counter() - started:.0f} s; {load_line('at end')}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="the corpus directory (holds manifest.tsv)")
    parser.add_argument("--repeat", type=int, default=3, help="speed rounds (median)")
    parser.add_argument(
        "--parts",
        default=None,
        help="comma-separated: wer, speed, latency (pocketsphinx); "
        "wer, latency, capacity, startup (whisper)",
    )
    parser.add_argument("--engine", choices=("whisper", "pocketsphinx"), default="whisper")
    args = parser.parse_args()
    known = (
        {"wer", "latency", "capacity", "startup"}
        if args.engine == "whisper"
        else {"wer", "speed", "latency"}
    )
    parts = set(args.parts.split(",")) if args.parts else known
    unknown = parts - known
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    # SIGTERM unwinds like Ctrl-C, so every `with Server` stops its server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if args.engine == "whisper":
        whisper_main(args.corpus, parts, args.repeat)
        return

    utterances = load_corpus(args.corpus)
    audio_s = sum(u.duration_s for u in utterances)
    print(f"# sttcli offline server benchmark: {len(utterances)} utterances, {audio_s:.2f} s")
    print(f"python {sys.version.split()[0]}, {STTCLI}; {load_line('at start')}")
    decoder = DirectDecoder()

    if "wer" in parts:
        section(
            "Accuracy", lambda: print_accuracy(utterances, measure_accuracy(utterances, decoder))
        )

    if "speed" in parts:

        def speed() -> None:
            pcms = [u.pcm() for u in utterances]
            rounds: list[SpeedRound] = []
            for n in range(args.repeat):
                rounds.append(measure_speed_round(pcms, decoder))
                print(f"  round {n + 1}/{args.repeat} done; {load_line('now')}", flush=True)
            print_speed(rounds, audio_s)

        section("Speed", speed)

    if "latency" in parts:

        def latency() -> None:
            with Server(SERVER_WORKERS) as server:
                print_latency(measure_latency(utterances, server.endpoint))

        section("Time to first partial", latency)


if __name__ == "__main__":
    main()
