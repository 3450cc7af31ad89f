"""Streaming recognition with Whisper: VAD-cut utterances, re-decoded for partials.

Whisper is not a streaming model: it hears a window of audio and writes it
down. So a stream is cut into utterances by a voice-activity detector
(Silero VAD, shipped with faster-whisper as an ONNX model, run 32 ms frame
by frame with its state carried), and

- the final of an utterance is one decode of the whole utterance (beam 5),
  with word timings from the model's cross-attention alignment;
- partials re-decode the open utterance (greedy) while it grows, no more
  often than the CPU allows (a decode is started only after at least as
  much wall time as the previous one took), and only what two decodes in a
  row agree on becomes the partial's stable prefix, so earlier words do not
  flicker; only the tail after it may change.

Why not faster-whisper's `transcribe()`: it pads every window to 30 s, so each
call costs the encoder of 30 s of audio (0.6-0.8 s of CPU for tiny.en).
Here CTranslate2's model is called directly with the utterance, at least 5 s
of silence after it, and at least 15 s in all. Shorter windows make the
decoder repeat itself or stop early. Measured on the reference corpus
(tiny.en, beam 5), whole files: 75 % WER with 1 s of tail, 26 % with 2 s,
4.9 % with 4 s or more, as with the padded API, at a third of its CPU; but
VAD-cut utterances of 1-3 s still repeat ("and so my fellow Americans" four
times) with a 5 s tail: 18.1 % WER; windows of at least 10 s: 13.2 %; of at
least 15 s: 4.9 %, at 0.09 s of CPU per second of audio; of 30 s: 6.3 % at
twice the CPU.

Whisper's failure on silence and noise is to write something anyway ("Thank
you."): only audio the VAD calls speech is decoded, and a decode whose
no-speech probability is high (or whose text is unlikely) is dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy

from sttcli.server.engine import EngineEvent, EngineWord, Final, Partial
from sttcli.server.text import plain
from sttcli.server.whisper_models import WhisperModelSpec

MODEL_RATE = 16000
FRAME = 512  # Silero VAD's frame at 16 kHz: 32 ms
_CONTEXT = 64  # samples of the previous frame that Silero sees with each frame
SPEECH_ON = 0.5  # VAD probability that starts speech
SPEECH_OFF = 0.35  # below this, a frame is silence
# Silero (16 kHz only here) is less sure of telephone-band audio brought up
# from 8 kHz: in speech it often says 0.2-0.4 where 16 kHz audio gets 0.9.
NARROWBAND_ON = 0.2
NARROWBAND_OFF = 0.1
HANGOVER_S = 0.6  # silence that ends an utterance: longer than a comma's pause
PREROLL_S = 0.25  # audio kept before speech starts (the VAD is a little late)
KEEP_AFTER_S = 0.45  # and after it ends (the VAD lets go of a fading word early)
MIN_SPEECH_S = 0.25  # shorter bursts (a click, a cough) are not decoded
MAX_UTTERANCE_S = 24.0  # a monologue still gets finals, and fits Whisper's 30 s
TAIL_SILENCE_S = 5.0  # appended to each window: with 2 s or less the decoder loops
MIN_WINDOW_S = 15.0  # shorter windows make the decoder repeat a short utterance
_MAX_FRAMES = 3000  # Whisper's encoder takes at most 30 s
PARTIAL_STEP_S = 0.3  # at least this much new audio between partial decodes
NO_SPEECH_DROP = 0.6  # with a low average log-probability: not speech
UNLIKELY_LOGPROB = -1.0
DETECTION_SURE = 0.8  # `auto`: a language this likely holds for the rest of the stream


@dataclass(frozen=True)
class Decoded:
    text: str  # Whisper's text, punctuation and capitals included
    words: tuple[EngineWord, ...]
    no_speech_prob: float
    avg_logprob: float
    language: str | None = None  # detected with confidence, when none was given

    @property
    def dropped(self) -> bool:
        return not self.text or (
            self.no_speech_prob > NO_SPEECH_DROP and self.avg_logprob < UNLIKELY_LOGPROB
        )


def plain_word(word: str) -> str:
    """A word as a timing carries it: lower-case, no punctuation around it."""
    return plain(word)


class WhisperRecognizer:
    """One loaded model (CTranslate2 via faster-whisper) and the calls we make on it."""

    def __init__(self, spec: WhisperModelSpec, *, threads: int) -> None:
        from faster_whisper import WhisperModel

        self.spec = spec
        self.model = WhisperModel(
            str(spec.path),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            local_files_only=True,
        )
        self._tokenizers: dict[str | None, Any] = {}

    def tokenizer(self, language: str | None) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        key = language if self.spec.multilingual else "en"
        if key not in self._tokenizers:
            self._tokenizers[key] = Tokenizer(
                self.model.hf_tokenizer,
                self.spec.multilingual,
                task="transcribe",
                language=key if self.spec.multilingual else "en",
            )
        return self._tokenizers[key]

    def detect(self, encoded: Any) -> tuple[str, float]:
        """The most likely language of a window, and its probability."""
        token, probability = self.model.model.detect_language(encoded)[0][0]
        return str(token).strip("<|>"), float(probability)

    def decode(
        self, audio: Any, language: str | None, *, beam: int, words: bool, offset_s: float = 0.0
    ) -> Decoded:
        """Text (and word timings from `offset_s`) of a float32 16 kHz window."""
        padded = max(len(audio) + TAIL_SILENCE_S * MODEL_RATE, MIN_WINDOW_S * MODEL_RATE)
        tail = numpy.zeros(int(padded) - len(audio), dtype=numpy.float32)
        features = self.model.feature_extractor(numpy.concatenate([audio, tail]))
        features = features[:, :_MAX_FRAMES]
        content_frames = min(features.shape[-1] - 1, len(audio) // 160)
        encoded = self.model.encode(features)
        sure: str | None = None
        if language is None and self.spec.multilingual:
            language, probability = self.detect(encoded)
            sure = language if probability >= DETECTION_SURE else None
        tokenizer = self.tokenizer(language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        result = self.model.model.generate(
            encoded,
            [prompt],
            beam_size=beam,
            max_length=min(448, 40 + int(len(audio) / MODEL_RATE * 12)),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = tokenizer.decode(tokens).strip()
        avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
        timed: tuple[EngineWord, ...] = ()
        if words and tokens and text:
            timed = self._timings(tokenizer, tokens, encoded, content_frames, offset_s)
        return Decoded(text, timed, float(result.no_speech_prob), avg_logprob, sure)

    def _timings(
        self, tokenizer: Any, tokens: list[int], encoded: Any, frames: int, offset_s: float
    ) -> tuple[EngineWord, ...]:
        from faster_whisper.transcribe import merge_punctuations

        alignment = self.model.find_alignment(tokenizer, [tokens], encoded, frames)[0]
        merge_punctuations(alignment, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
        duration = frames / 100
        timed = []
        for timing in alignment:
            text = plain_word(timing["word"])
            if not text:
                continue
            start = min(float(timing["start"]), duration)
            end = min(max(float(timing["end"]), start), duration)
            timed.append(
                EngineWord(
                    text,
                    round(offset_s + start, 3),
                    round(offset_s + end, 3),
                    round(float(timing["probability"]), 3),
                )
            )
        return tuple(timed)


class VoiceActivity:
    """Silero VAD over a stream, frame by frame, its recurrent state carried."""

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self.reset()

    def reset(self) -> None:
        self._state = (
            numpy.zeros((1, 1, 128), dtype=numpy.float32),
            numpy.zeros((1, 1, 128), dtype=numpy.float32),
        )
        self._context = numpy.zeros(_CONTEXT, dtype=numpy.float32)

    def __call__(self, frames: Any) -> Any:
        """Speech probabilities of whole 512-sample frames (float32, shape (n, 512))."""
        batch = numpy.empty((len(frames), FRAME + _CONTEXT), dtype=numpy.float32)
        context = self._context
        for index, frame in enumerate(frames):
            batch[index, :_CONTEXT] = context
            batch[index, _CONTEXT:] = frame
            context = frame[-_CONTEXT:]
        self._context = numpy.array(context)
        h, c = self._state
        # The model carries its state across the rows of one batch itself.
        output, h, c = self._session.run(None, {"input": batch, "h": h, "c": c})
        self._state = h, c
        return numpy.asarray(output).reshape(-1)


class WhisperStream:
    """One stream's recognition (see the module docstring)."""

    def __init__(
        self,
        recognizer: WhisperRecognizer,
        vad: VoiceActivity,
        rate: int,
        language: str | None,
        *,
        partials: bool,
        clock: Any = time.monotonic,
    ) -> None:
        from sttcli.server.sphinx_decoder import _Resampler

        self.recognizer = recognizer
        self.vad = vad
        vad.reset()
        self.language = language
        self.partials = partials
        self.clock = clock
        self.resample = _Resampler(rate) if rate != MODEL_RATE else None
        narrow = rate < MODEL_RATE
        self.speech_on = NARROWBAND_ON if narrow else SPEECH_ON
        self.speech_off = NARROWBAND_OFF if narrow else SPEECH_OFF
        self._odd = b""
        self._pending = numpy.zeros(0, dtype=numpy.float32)  # less than a frame
        self._position = 0  # samples at 16 kHz seen by the VAD
        self._history: list[Any] = []  # the last frames before speech (pre-roll)
        self._utterance: list[Any] = []
        self._start = 0  # sample where the open utterance starts
        self._speech_frames = 0
        self._silent_frames = 0
        self._in_speech = False
        self._since_partial = 0
        self._partial_ready_at = 0.0
        self._stable: list[str] = []
        self._previous: list[str] = []
        self._last_partial = ""

    # -- audio in

    def feed(self, pcm: bytes) -> list[EngineEvent]:
        data = self._odd + pcm
        cut = len(data) - len(data) % 2
        self._odd = data[cut:]
        if self.resample is not None:
            data = self.resample(data[:cut])
        else:
            data = data[:cut]
        return self._frames(data)

    def finish(self) -> list[EngineEvent]:
        events: list[EngineEvent] = []
        if self.resample is not None:
            events += self._frames(self.resample(b"", last=True))
        if len(self._pending) and self._in_speech:
            self._utterance.append(self._pending)
        self._pending = numpy.zeros(0, dtype=numpy.float32)
        events += self._close_utterance()
        return events

    def abort(self) -> None:
        self._utterance = []
        self._in_speech = False

    def _frames(self, pcm16: bytes) -> list[EngineEvent]:
        samples = numpy.frombuffer(pcm16, dtype="<i2").astype(numpy.float32) / 32768.0
        audio = numpy.concatenate([self._pending, samples])
        whole = len(audio) - len(audio) % FRAME
        self._pending = audio[whole:]
        if not whole:
            return []
        frames = audio[:whole].reshape(-1, FRAME)
        events: list[EngineEvent] = []
        for frame, probability in zip(frames, self.vad(frames), strict=True):
            events += self._frame(frame, float(probability))
            self._position += FRAME
        if self.partials and self._in_speech:
            events += self._partial()
        return events

    def _frame(self, frame: Any, probability: float) -> list[EngineEvent]:
        if not self._in_speech:
            self._history.append(frame)
            keep = int(PREROLL_S * MODEL_RATE / FRAME) + 1
            del self._history[:-keep]
            if probability >= self.speech_on:
                self._in_speech = True
                self._utterance = list(self._history)
                self._start = self._position + FRAME - FRAME * len(self._history)
                self._history = []
                self._speech_frames = 1
                self._silent_frames = 0
                self._since_partial = len(self._utterance) * FRAME
            return []
        self._utterance.append(frame)
        self._since_partial += FRAME
        if probability < self.speech_off:
            self._silent_frames += 1
        else:
            self._silent_frames = 0
            if probability >= self.speech_on:
                self._speech_frames += 1
        if self._silent_frames * FRAME >= HANGOVER_S * MODEL_RATE:
            return self._close_utterance()
        if len(self._utterance) * FRAME >= MAX_UTTERANCE_S * MODEL_RATE:
            return self._close_utterance(cut=True)
        return []

    # -- results out

    def _close_utterance(self, *, cut: bool = False) -> list[EngineEvent]:
        utterance, self._utterance = self._utterance, []
        speech_frames = self._speech_frames
        # Trailing silence adds nothing to decode: keep a little of it.
        trim = max(0, self._silent_frames * FRAME - int(KEEP_AFTER_S * MODEL_RATE))
        start = self._start
        self._in_speech = cut  # a cut monologue goes on as the next utterance
        self._start = start + len(utterance) * FRAME
        self._speech_frames = 0
        self._silent_frames = 0
        self._since_partial = 0
        self._stable, self._previous, self._last_partial = [], [], ""
        if not utterance or speech_frames * FRAME < MIN_SPEECH_S * MODEL_RATE:
            return []
        audio = numpy.concatenate(utterance)
        audio = audio[: max(len(audio) - trim, FRAME)]
        decoded = self.recognizer.decode(
            audio, self.language, beam=5, words=True, offset_s=start / MODEL_RATE
        )
        if decoded.dropped:
            return []
        if self.language is None:
            # `auto`: the first utterance whose language is clear sets it for the
            # stream; until then each utterance is detected on its own.
            self.language = decoded.language
        confidence = (
            sum(w.confidence for w in decoded.words) / len(decoded.words) if decoded.words else 0.0
        )
        return [Final(decoded.text, decoded.words, round(confidence, 3))]

    def _partial(self) -> list[EngineEvent]:
        if self._since_partial < PARTIAL_STEP_S * MODEL_RATE:
            return []
        if self.clock() < self._partial_ready_at:
            return []  # the CPU is busy enough: skip this one
        if self._speech_frames * FRAME < MIN_SPEECH_S * MODEL_RATE:
            return []
        self._since_partial = 0
        started = self.clock()
        decoded = self.recognizer.decode(
            numpy.concatenate(self._utterance), self.language, beam=1, words=False
        )
        self._partial_ready_at = self.clock() + (self.clock() - started)
        if decoded.dropped:
            return []
        words = decoded.text.split()
        self._stable = stable_prefix(self._stable, self._previous, words)
        self._previous = words
        shown = " ".join(self._stable + words[len(self._stable) :])
        if shown == self._last_partial:
            return []
        self._last_partial = shown
        return [Partial(shown)]


def stable_prefix(stable: list[str], previous: list[str], current: list[str]) -> list[str]:
    """The words two hypotheses in a row agree on, after those already stable."""
    agreed = list(stable)
    for before, now in zip(previous[len(stable) :], current[len(stable) :], strict=False):
        if plain_word(before) != plain_word(now):
            break
        agreed.append(now)
    return agreed
