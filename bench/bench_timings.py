"""How far the timings in sttcli's results are from where the speech really is.

Two kinds of audio whose true positions are known by construction:

1. Synthetic "words" (runs of marker samples, the synthetic engine's
   vocabulary): 60 utterances of one to four 0.2-0.5 s words, 1-3 s apart,
   about 3 minutes at 16 kHz. Every word's position is exact.
2. Speech made with espeak-ng: 12 sentences, each trimmed to its first and
   last loud 10 ms frame (-50 dBFS) and placed after 0.8-2.4 s of silence,
   about 45 s. Each sentence's span is exact; its words' are not known.
   pocketsphinx misrecognizes much of espeak's voice and drops first and
   last words, which moves an utterance's edges: that is the engine's error,
   not the timeline's, and it is in these figures.

Each goes through sttcli's library client against sttcli's own servicer on a
loopback port: the synthetic engine, and pocketsphinx (one worker). Two
variants of each server: words on every final (what `sttcli serve` does), and
no words (SpeechKit's streaming API need not send them), where sttcli
estimates each utterance's span itself. The client runs unpaced and paced
(`--speed 4` for the synthetic engine, `--speed 1` for pocketsphinx, which
on this shared machine decodes little faster than real time), in one session
and rotating sessions every 20 s.

Error: |reported - true| for each utterance start and end (and word start
and end, when words come), in seconds: mean, 95th percentile and max. An
utterance is matched to the true sentence or utterance its middle falls in;
unmatched ones are counted.

    python bench/bench_timings.py [--parts synthetic,espeak]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import struct
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc.aio

from sttcli.audio.sources import open_source
from sttcli.options import RecognitionSettings, SessionPolicy, StreamSettings
from sttcli.results import InputResult
from sttcli.server.app import create_server
from sttcli.server.engine import Engine, EngineEvent, EngineSession, Final
from sttcli.server.synthetic import WORDS, SyntheticEngine, marker
from sttcli.session import Connection, InputRecognizer

RATE = 16000
SENTENCES = [
    "please call me back at ten thirty tomorrow morning",
    "the weather is nice today",
    "we will meet at the station after lunch",
    "send the report to the whole team",
    "turn left at the second traffic light",
    "the meeting has been moved to friday",
    "could you repeat the last number",
    "i would like a cup of coffee with milk",
    "the train leaves from platform four",
    "thank you for calling have a good day",
    "our office opens at nine in the morning",
    "please check the address before sending",
]


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    words: tuple[tuple[float, float], ...] = ()


# -- audio with known positions ----------------------------------------------------


def synthetic_talk(seed: int = 7) -> tuple[bytes, list[Span]]:
    rng = random.Random(seed)
    parts, truth, at = [], [], 0.5
    parts.append(bytes(int(at * RATE) * 2))
    for n in range(60):
        words = []
        for k in range(rng.randint(1, 4)):
            if k:
                gap = round(rng.uniform(0.05, 0.15), 2)
                parts.append(bytes(int(gap * RATE) * 2))
                at += gap
            length = round(rng.uniform(0.2, 0.5), 2)
            value = marker(WORDS[(n + k) % len(WORDS)])
            parts.append(struct.pack("<h", value) * int(length * RATE))
            words.append((at, at + length))
            at += length
        truth.append(Span(words[0][0], words[-1][1], tuple(words)))
        pause = round(rng.uniform(1.0, 3.0), 2)
        parts.append(bytes(int(pause * RATE) * 2))
        at += pause
    return b"".join(parts), truth


def espeak_talk(seed: int = 11) -> tuple[bytes, list[Span]]:
    import numpy
    import soxr

    rng = random.Random(seed)
    parts, truth, at = [], [], 0.0
    with tempfile.TemporaryDirectory() as directory:
        for index, sentence in enumerate(SENTENCES):
            path = Path(directory) / f"{index}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), sentence], check=True)
            with wave.open(str(path)) as file:
                rate = file.getframerate()
                samples = numpy.frombuffer(file.readframes(file.getnframes()), dtype="<i2")
            pcm = soxr.resample(samples.astype(numpy.float32), rate, RATE)
            frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
            level = 10 * numpy.log10((frames**2).mean(axis=1) / 32768**2 + 1e-12)
            loud = numpy.flatnonzero(level > -50)
            speech = pcm[loud[0] * 160 : (loud[-1] + 1) * 160]
            pause = round(rng.uniform(0.8, 2.4), 2)
            parts.append(numpy.zeros(int(pause * RATE), dtype=numpy.float32))
            at += pause
            parts.append(speech)
            truth.append(Span(at, at + len(speech) / RATE))
            at += len(speech) / RATE
        parts.append(numpy.zeros(RATE, dtype=numpy.float32))
    audio = numpy.concatenate(parts).clip(-32768, 32767).astype("<i2").tobytes()
    return audio, truth


# -- servers -----------------------------------------------------------------------


class Wordless:
    """An engine whose finals carry no word timings, as SpeechKit's may not."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.languages = inner.languages

    def open(self, sample_rate: int, *, partials: bool, language: str = "") -> EngineSession:
        return _WordlessSession(self.inner.open(sample_rate, partials=partials, language=language))

    def close(self) -> None:
        self.inner.close()


class _WordlessSession:
    def __init__(self, inner: EngineSession) -> None:
        self.inner = inner

    def _strip(self, events: list[EngineEvent]) -> list[EngineEvent]:
        return [Final(e.text, (), e.confidence) if isinstance(e, Final) else e for e in events]

    def feed(self, pcm: bytes) -> list[EngineEvent]:
        return self._strip(self.inner.feed(pcm))

    def finish(self) -> list[EngineEvent]:
        return self._strip(self.inner.finish())

    def close(self) -> None:
        self.inner.close()


async def recognize(path: Path, address: str, *, speed: float, session_s: float) -> InputResult:
    connection = Connection(
        endpoint=address, channel_factory=lambda: grpc.aio.insecure_channel(address)
    )
    source = await open_source(str(path), rate=RATE, encoding="lpcm")
    recognizer = InputRecognizer(
        source,
        settings=RecognitionSettings(raw_results=True),
        connection=connection,
        stream=StreamSettings(speed=speed),
        policy=SessionPolicy(max_session_seconds=session_s),
    )
    try:
        await recognizer.run()
        return recognizer.result()
    finally:
        source.close()
        await connection.close()


# -- errors ------------------------------------------------------------------------


@dataclass
class Errors:
    edges: list[float]
    words: list[float]
    unmatched: int
    utterances: int


def measure(result: InputResult, truth: Sequence[Span]) -> Errors:
    """Each true span against the utterances whose middles fall in it (merged when split)."""
    errors = Errors([], [], 0, len(result.utterances))
    claimed: dict[int, list[int]] = {}
    for index, utterance in enumerate(result.utterances):
        middle = (utterance.start_s + utterance.end_s) / 2
        home = next(
            (i for i, t in enumerate(truth) if t.start - 0.5 <= middle <= t.end + 0.5), None
        )
        if home is None:
            errors.unmatched += 1
        else:
            claimed.setdefault(home, []).append(index)
    for home, indexes in claimed.items():
        found = [result.utterances[i] for i in indexes]
        true = truth[home]
        errors.edges.append(abs(found[0].start_s - true.start))
        errors.edges.append(abs(found[-1].end_s - true.end))
        words = [w for u in found for w in u.words]
        if true.words and len(words) == len(true.words):
            for word, (start, end) in zip(words, true.words, strict=True):
                errors.words += [abs(word.start_s - start), abs(word.end_s - end)]
    return errors


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{statistics.fmean(values):.3f} / {p95:.3f} / {max(values):.3f}"


def run_part(
    name: str, audio: bytes, truth: list[Span], engines: dict[str, Engine], *, speed: float
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "talk.pcm"
        path.write_bytes(audio)
        print(f"\n## {name}: {len(audio) / 2 / RATE:.0f} s, {len(truth)} utterances")
        print(f"load average: {os.getloadavg()[0]:.2f}")
        print(
            "| server | client | sessions | utterances (unmatched) | "
            "span edges: mean / p95 / max (s) | words: mean / p95 / max (s) |"
        )
        print("|---|---|---:|---:|---|---|")
        for label, engine in engines.items():
            server, port, _ = create_server("127.0.0.1:0", engine, workers=2)
            try:
                for pace, session_s in ((0.0, 290.0), (speed, 290.0), (speed, 20.0)):
                    result = asyncio.run(
                        recognize(path, f"127.0.0.1:{port}", speed=pace, session_s=session_s)
                    )
                    assert result.ok, result.error
                    errors = measure(result, truth)
                    client = "unpaced" if pace == 0 else f"--speed {pace:g}"
                    if session_s < 290:
                        client += f", {session_s:g} s sessions"
                    print(
                        f"| {label} | {client} | {result.sessions} | "
                        f"{errors.utterances} ({errors.unmatched}) | {summary(errors.edges)} | "
                        f"{summary(errors.words)} |"
                    )
            finally:
                server.stop(grace=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="synthetic,espeak")
    parts = parser.parse_args().parts.split(",")
    if "synthetic" in parts:
        audio, truth = synthetic_talk()
        run_part(
            "Synthetic words",
            audio,
            truth,
            {
                "synthetic, words": SyntheticEngine(),
                "synthetic, no words (estimated)": Wordless(SyntheticEngine()),
            },
            speed=4.0,
        )
    if "espeak" in parts:
        from sttcli.server.sphinx import SphinxEngine

        audio, truth = espeak_talk()
        engine = SphinxEngine(workers=1)
        try:
            run_part(
                "espeak-ng speech, pocketsphinx",
                audio,
                truth,
                {
                    "pocketsphinx, words": engine,
                    "pocketsphinx, no words (estimated)": Wordless(engine),
                },
                speed=1.0,  # real time: pocketsphinx on a shared machine is not much faster
            )
        finally:
            engine.close()


if __name__ == "__main__":
    main()
