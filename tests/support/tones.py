"""Audio that survives lossy codecs and resampling, an engine that hears it, and encoders.

The synthetic engine names words by exact sample values, which no codec or
resampler keeps. Here a "word" is a tone instead: word k of the NATO alphabet
(k = 1..8) is a sine at k * 250 Hz, named back from its zero crossings, which
MP3, AAC, Vorbis, Opus and every resampler keep. Fixtures are made with PyAV,
as a user's tools would make them.
"""

from __future__ import annotations

import math
import os
import tempfile
from array import array
from pathlib import Path
from typing import Any

import av

from sttcli.server.engine import EngineEvent, EngineWord, Final

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
STEP_HZ = 250
_LOUD = 2000  # a 10 ms frame is sound when its peak reaches this


def tones(
    *utterances: str,
    rate: int = 16000,
    word: float = 0.3,
    space: float = 0.1,
    gap: float = 0.8,
    lead: float = 0.2,
    channels: int = 1,
) -> bytes:
    """16-bit PCM (interleaved when `channels` > 1) the tone engine hears as `utterances`."""
    samples = array("h")

    def silence(seconds: float) -> None:
        samples.extend([0] * round(seconds * rate))

    def tone(name: str) -> None:
        frequency = (WORDS.index(name) + 1) * STEP_HZ
        count = round(word * rate)
        for n in range(count):
            fade = min(1.0, n / (0.01 * rate), (count - n) / (0.01 * rate))
            samples.append(round(12000 * fade * math.sin(2 * math.pi * frequency * n / rate)))

    silence(lead)
    for utterance in utterances:
        for index, name in enumerate(utterance.split()):
            if index:
                silence(space)
            tone(name)
        silence(gap)
    if channels > 1:
        mixed = array("h")
        for value in samples:
            mixed.extend([value] * channels)
        samples = mixed
    return samples.tobytes()


class ToneEngine:
    name = "tones"
    languages: tuple[str, ...] = ("en-US",)

    def open(self, sample_rate: int, *, partials: bool, language: str = "") -> ToneSession:
        return ToneSession(sample_rate)

    def close(self) -> None:
        pass


class ToneSession:
    """Words are runs of loud 10 ms frames; a 0.4 s quiet run ends the utterance."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.frame = rate // 100
        self._pending = bytearray()
        self._index = 0
        self._word: list[int] | None = None
        self._word_start = 0
        self._quiet = 0
        self._words: list[EngineWord] = []

    def feed(self, pcm: bytes) -> list[EngineEvent]:
        self._pending += pcm
        events: list[EngineEvent] = []
        size = self.frame * 2
        while len(self._pending) >= size:
            frame = array("h")
            frame.frombytes(bytes(self._pending[:size]))
            del self._pending[:size]
            self._feed_frame(frame, events)
        return events

    def finish(self) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        self._end_word()
        self._end_utterance(events)
        return events

    def close(self) -> None:
        pass

    def _feed_frame(self, frame: array[int], events: list[EngineEvent]) -> None:
        if max(abs(s) for s in frame) >= _LOUD:
            if self._word is None:
                self._word = []
                self._word_start = self._index
            self._word.extend(frame)
            self._quiet = 0
        else:
            self._end_word()
            self._quiet += 1
            if self._quiet == 40:
                self._end_utterance(events)
        self._index += 1

    def _end_word(self) -> None:
        if self._word is None:
            return
        samples, self._word = self._word, None
        if len(samples) < self.rate // 20:
            return  # a click, not a word
        crossings = sum(1 for a, b in zip(samples, samples[1:], strict=False) if (a < 0) != (b < 0))
        frequency = crossings / 2 / (len(samples) / self.rate)
        index = round(frequency / STEP_HZ) - 1
        text = WORDS[index] if 0 <= index < len(WORDS) else "noise"
        self._words.append(EngineWord(text, self._word_start / 100, self._index / 100, 1.0))

    def _end_utterance(self, events: list[EngineEvent]) -> None:
        if self._words:
            words, self._words = tuple(self._words), []
            events.append(Final(" ".join(w.text for w in words), words, 1.0))


def encode(
    pcm: bytes,
    path: Path | None,
    *,
    container: str,
    codec: str,
    rate: int = 16000,
    out_rate: int | None = None,
    layout: str = "mono",
    in_channels: int = 1,
    video: bool = False,
    options: dict[str, str] | None = None,
    bit_rate: int | None = None,
) -> bytes:
    """Encode 16-bit PCM with PyAV into `container`; write it to `path` too when given."""
    # A real file: some muxers go back over what they wrote (MP4's faststart).
    scratch = tempfile.NamedTemporaryFile(suffix=".bin", delete=False)  # noqa: SIM115
    scratch.close()
    output = av.open(scratch.name, "w", format=container, options=options or {})
    stream: Any = output.add_stream(codec, rate=out_rate or rate, layout=layout)
    if bit_rate:
        stream.codec_context.bit_rate = bit_rate
    if codec == "vorbis":
        stream.codec_context.options = {"strict": "experimental"}
    picture: Any = None
    if video:
        picture = output.add_stream("mpeg4", rate=5)
        picture.width, picture.height, picture.pix_fmt = 32, 32, "yuv420p"
    target = stream.codec_context.codec.audio_formats[0].name
    resampler = av.AudioResampler(format=target, layout=layout, rate=out_rate or rate)
    in_layout = {1: "mono", 2: "stereo"}[in_channels]
    frame = av.AudioFrame(format="s16", layout=in_layout, samples=len(pcm) // 2 // in_channels)
    frame.planes[0].update(pcm)
    frame.sample_rate = rate
    frame.pts = 0
    for converted in [*resampler.resample(frame), *resampler.resample(None)]:
        for packet in stream.encode(converted):
            output.mux(packet)
    for packet in stream.encode(None):
        output.mux(packet)
    if picture is not None:
        for index in range(int(len(pcm) / 2 / in_channels / rate * 5)):
            image = av.VideoFrame(32, 32, "yuv420p")
            image.pts = index
            for packet in picture.encode(image):
                output.mux(packet)
        for packet in picture.encode(None):
            output.mux(packet)
    output.close()
    data = Path(scratch.name).read_bytes()
    os.unlink(scratch.name)
    if path is not None:
        path.write_bytes(data)
    return data
