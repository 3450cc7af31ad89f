"""Streaming recognition with pocketsphinx: live partials, accurate finals.

Why two decoders. pocketsphinx normalizes features by their cepstral mean
(CMN). In its default "batch" mode the mean is taken over the audio of each
`process_raw()` call, so audio fed 4000 bytes at a time is normalized
chunk by chunk, with means from an eighth of a second each: on the
reference corpus that alone costs about 20 points of WER (48.6 % against
27.8 % decoding each utterance in one call). "live" mode keeps a running
mean instead, but it starts from a generic guess and only learns the
speaker's mean seconds later, so the first utterance of a stream still
suffers.

So each utterance is decoded twice:
- a cheap live pass (live CMN, forward tree search only, a tight HMM
  budget) as the audio arrives, for partial results;
- when the endpointer hears the utterance end, one pass over the whole
  utterance in batch mode, whose CMN is the utterance's own mean, for the
  final text and word timings.
The live pass runs only when partials are asked for; the final pass costs
what decoding each utterance in one call costs.

Every stream starts from the same state: both decoders' feature modules are
rebuilt (`reinit_feat()`, cheap) at the start of a stream and before each
final pass, so a pooled decoder does not remember what it heard before.
"""

from __future__ import annotations

from typing import Any

from sttcli.server.engine import EngineEvent, EngineWord, Final, Partial

MODEL_RATE = 16000
_BYTES_PER_SECOND = MODEL_RATE * 2
# Partials: decode at least this much new speech between hypotheses.
_LIVE_STEP_BYTES = _BYTES_PER_SECOND // 10
# An utterance with no pause this long is cut: it bounds memory and latency.
_MAX_UTTERANCE_BYTES = 30 * _BYTES_PER_SECOND
_FILLERS = frozenset({"<s>", "</s>", "<sil>"})


def make_decoders() -> tuple[Any, Any]:
    """The live (partials) and final decoders; each costs ~0.5 s and ~65 MB."""
    from pocketsphinx import Decoder

    live = Decoder(loglevel="FATAL", cmn="live", fwdflat=False, bestpath=False, maxhmmpf=3000)
    final = Decoder(loglevel="FATAL")
    return live, final


class _Resampler:
    """Any accepted rate to the model's 16 kHz, streaming, with libsoxr."""

    def __init__(self, rate: int) -> None:
        import numpy
        import soxr

        self._numpy = numpy
        self._stream = soxr.ResampleStream(rate, MODEL_RATE, 1, dtype="int16", quality="HQ")

    def __call__(self, pcm: bytes, last: bool = False) -> bytes:
        samples = self._numpy.frombuffer(pcm, dtype="<i2")
        out = self._stream.resample_chunk(samples, last=last)
        return bytes(out.astype("<i2").tobytes())


class StreamDecoder:
    """One stream's recognition on a pair of decoders (see the module docstring)."""

    def __init__(self, live: Any, final: Any, rate: int, *, partials: bool) -> None:
        from pocketsphinx import Endpointer

        self.live = live
        self.final = final
        self.partials = partials
        self.resample = _Resampler(rate) if rate != MODEL_RATE else None
        self.endpointer = Endpointer(sample_rate=MODEL_RATE)
        self.frame_bytes: int = self.endpointer.frame_bytes
        self._odd = b""  # half a sample, waiting for its other byte
        self._pending = bytearray()  # 16 kHz audio not yet a whole endpointer frame
        self._utterance = bytearray()  # speech of the current utterance
        self._utterance_start = 0.0
        self._in_utterance = False
        self._continued = False  # the next utterance continues a cut one
        self._live_fed = 0
        self._last_partial = ""
        for decoder in (live, final):
            decoder.reinit_feat()

    def feed(self, pcm: bytes) -> list[EngineEvent]:
        if self._odd:
            pcm = self._odd + pcm
        cut = len(pcm) & ~1
        self._odd = pcm[cut:]
        pcm = pcm[:cut]
        if self.resample is not None:
            pcm = self.resample(pcm)
        self._pending += pcm
        events: list[EngineEvent] = []
        frame = self.frame_bytes
        whole = len(self._pending) - len(self._pending) % frame
        for offset in range(0, whole, frame):
            speech = self.endpointer.process(bytes(self._pending[offset : offset + frame]))
            self._take(speech, events)
        del self._pending[:whole]
        self._decode_live(events)
        return events

    def finish(self) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        if self.resample is not None:
            self._pending += self.resample(b"", last=True)
        frame = self.frame_bytes
        while len(self._pending) >= frame:
            self._take(self.endpointer.process(bytes(self._pending[:frame])), events)
            del self._pending[:frame]
        # end_stream() refuses an empty frame: one sample of silence stands in.
        self._take(self.endpointer.end_stream(bytes(self._pending) or b"\x00\x00"), events)
        self._pending.clear()
        if self._in_utterance:
            self._end_utterance(events)
        return events

    def abort(self) -> None:
        """Drop the stream half-way (its client went away): leave the decoders reusable."""
        if self._in_utterance and self.partials:
            self.live.end_utt()
        self._in_utterance = False

    def _take(self, speech: bytes | None, events: list[EngineEvent]) -> None:
        if speech is not None:
            if not self._in_utterance:
                self._start_utterance()
            self._utterance += speech
            if len(self._utterance) >= _MAX_UTTERANCE_BYTES:
                self._end_utterance(events)
                self._continued = True  # the speech goes on: so does its timeline
        if not self.endpointer.in_speech:
            self._continued = False
            if self._in_utterance:
                self._end_utterance(events)

    def _start_utterance(self) -> None:
        self._in_utterance = True
        if not self._continued:  # after a cut, _end_utterance moved the start on
            self._utterance_start = float(self.endpointer.speech_start)
        self._continued = False
        self._utterance.clear()
        self._live_fed = 0
        self._last_partial = ""
        if self.partials:
            self.live.start_utt()

    def _decode_live(self, events: list[EngineEvent]) -> None:
        if not (self.partials and self._in_utterance):
            return
        if len(self._utterance) - self._live_fed < _LIVE_STEP_BYTES:
            return
        self.live.process_raw(bytes(self._utterance[self._live_fed :]))
        self._live_fed = len(self._utterance)
        hypothesis = self.live.hyp()
        text = hypothesis.hypstr if hypothesis is not None else ""
        if text and text != self._last_partial:
            self._last_partial = text
            events.append(Partial(text))

    def _end_utterance(self, events: list[EngineEvent]) -> None:
        if self.partials:
            self.live.end_utt()
        self._in_utterance = False
        audio = bytes(self._utterance)
        self._utterance.clear()
        start = self._utterance_start
        self._utterance_start += len(audio) / _BYTES_PER_SECOND  # a cut utterance goes on
        final = self.final
        final.reinit_feat()
        final.start_utt()
        final.process_raw(audio, full_utt=True)
        final.end_utt()
        hypothesis = final.hyp()
        text = hypothesis.hypstr if hypothesis is not None else ""
        if not text:
            return
        words = tuple(
            EngineWord(
                _base_word(segment.word),
                start + segment.start_frame / 100.0,
                start + (segment.end_frame + 1) / 100.0,
            )
            for segment in final.seg()
            if _is_word(segment.word)
        )
        events.append(Final(" ".join(w.text for w in words) or text, words))


def _is_word(token: str) -> bool:
    return token not in _FILLERS and not token.startswith("[")


def _base_word(token: str) -> str:
    """`and(2)` is the second pronunciation of `and`."""
    return token.split("(", 1)[0]
