"""The SttService servicer: SpeechKit's v2 streaming contract over any `Engine`.

It checks what SpeechKit checks (credentials, the config, the audio format,
session limits), decodes Ogg Opus, runs the engine, applies the text options,
and turns engine events into response chunks. One thread per stream; the
engine session is closed however the stream ends, the client's going away
included.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from sttcli._proto import stt_service_pb2 as pb
from sttcli._proto import stt_service_pb2_grpc as rpc
from sttcli.audio.sniff import DEFAULT_RATE, OPUS_RATE, SUPPORTED_RATES
from sttcli.safe_text import bounded
from sttcli.server.engine import (
    Engine,
    EngineError,
    EngineEvent,
    EngineSession,
    EngineStartError,
    EngineStopped,
    Final,
    LanguageRouter,
    Partial,
)
from sttcli.server.idle import IdleLimitedRequests, IdleTimeout
from sttcli.server.opus import OggOpusDecoder, OpusDecodeError
from sttcli.server.text import TextOptions

log = logging.getLogger("sttcli.server")

MODELS = ("", "general")
Spec = pb.RecognitionSpec
# The longest language_code, model and folder_id accepted. Real ones are far
# shorter ("ru-RU", "general", 20-character folder ids); a longer one is a
# mistake or an attack, refused with INVALID_ARGUMENT and quoted only in part.
MAX_FIELD_LENGTH = 64


@dataclass(frozen=True)
class Limits:
    """SpeechKit's per-stream limits; `serve` can lower them for tests."""

    max_seconds: float = 300.0
    max_bytes: int = 10 * 1024 * 1024
    # SpeechKit ends a stream that sends no audio for 5 seconds.
    idle_seconds: float = 5.0


@dataclass(frozen=True)
class Auth:
    """Accepted `authorization` values; with none, any or no credentials pass."""

    api_keys: tuple[str, ...] = field(default=(), repr=False)
    iam_tokens: tuple[str, ...] = field(default=(), repr=False)

    def accepted(self) -> set[str]:
        return {f"Api-Key {k}" for k in self.api_keys} | {f"Bearer {t}" for t in self.iam_tokens}

    def check(self, metadata: dict[str, str]) -> str | None:
        """Why the call is refused, or None."""
        accepted = self.accepted()
        if not accepted:
            return None
        presented = metadata.get("authorization")
        if presented is None:
            return "missing 'authorization' metadata (Api-Key or Bearer)"
        if presented not in accepted:
            return "the API key or IAM token is not valid"
        return None


class _Rejected(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Stream:
    """What the servicer knows of one stream while it runs."""

    request_id: str
    rate: int = 0
    opus: OggOpusDecoder | None = None
    text: TextOptions = field(default_factory=TextOptions)
    partials: bool = False
    single_utterance: bool = False
    bytes_in: int = 0
    seconds_in: float = 0.0
    finals: int = 0
    last_partial: str = ""
    done: bool = False  # single utterance: its final was sent


class SttServicer(rpc.SttServiceServicer):
    def __init__(
        self, engine: Engine, *, limits: Limits | None = None, auth: Auth | None = None
    ) -> None:
        self.engine = engine
        self.limits = limits or Limits()
        self.auth = auth or Auth()
        self._active = 0
        self._lock = threading.Lock()

    @property
    def active_streams(self) -> int:
        return self._active

    def StreamingRecognize(  # noqa: N802 - the gRPC method name
        self, request_iterator: Iterator[pb.StreamingRecognitionRequest], context: Any
    ) -> Iterator[pb.StreamingRecognitionResponse]:
        stream = _Stream(request_id=uuid.uuid4().hex[:16])
        context.send_initial_metadata((("x-request-id", stream.request_id),))
        started = time.monotonic()
        session: EngineSession | None = None
        requests = IdleLimitedRequests(request_iterator, self.limits.idle_seconds)
        with self._lock:
            self._active += 1
        try:
            refusal = self.auth.check(dict(context.invocation_metadata()))
            if refusal:
                raise _Rejected(grpc.StatusCode.UNAUTHENTICATED, refusal)
            first = next(requests, None)
            if first is None:
                raise _Rejected(
                    grpc.StatusCode.INVALID_ARGUMENT, "the stream ended before its config"
                )
            if not first.HasField("config"):
                raise _Rejected(
                    grpc.StatusCode.INVALID_ARGUMENT, "the first message must carry the config"
                )
            self._configure(stream, first.config)
            try:
                for request in requests:
                    if request.HasField("config"):
                        raise _Rejected(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            "only the first message may carry a config; later ones carry audio",
                        )
                    pcm = self._admit(stream, request.audio_content)
                    if not stream.done and pcm:
                        # A decoder is taken with the first audio, not with the
                        # config: a stream that never sends audio holds none.
                        if session is None:
                            session = self.engine.open(
                                stream.rate,
                                partials=stream.partials,
                                language=stream.text.language,
                            )
                        yield from self._respond(stream, session.feed(pcm))
            except IdleTimeout:
                # Finals of the audio that came are the client's: send them, then end.
                if session is not None and not stream.done:
                    yield from self._respond(stream, session.finish())
                raise _Rejected(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no audio for {self.limits.idle_seconds:g} s: a stream ends when its "
                    "audio stops; send silence to keep it open",
                ) from None
            if session is not None and not stream.done:
                yield from self._respond(stream, session.finish())
            log.info(
                "stream %s: done, %.1f s of audio, %d final(s), %.1f s",
                stream.request_id,
                stream.seconds_in,
                stream.finals,
                time.monotonic() - started,
            )
        except IdleTimeout:
            message = f"no config within {self.limits.idle_seconds:g} s"
            log.info("stream %s: DEADLINE_EXCEEDED: %s", stream.request_id, message)
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, message)
        except _Rejected as rejection:
            log.info(
                "stream %s: %s: %s",
                stream.request_id,
                rejection.code.name,
                bounded(rejection.message, 300),
            )
            context.abort(rejection.code, rejection.message)
        except EngineStopped:
            log.info("stream %s: the server is stopping", stream.request_id)
            context.abort(grpc.StatusCode.UNAVAILABLE, "the server is stopping")
        except EngineStartError as error:  # the client is told; a server log says it once
            log.info("stream %s: %s", stream.request_id, error)
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        except EngineError as error:
            log.warning("stream %s: engine failed: %s", stream.request_id, error)
            context.abort(grpc.StatusCode.INTERNAL, f"recognition failed: {error}")
        except grpc.RpcError:
            # Reading the next request failed: the client cancelled, its
            # connection broke, or the server is shutting down.
            log.info("stream %s: the client went away", stream.request_id)
        finally:
            requests.close()
            if session is not None:
                session.close()
            with self._lock:
                self._active -= 1

    def _configure(self, stream: _Stream, config: pb.RecognitionConfig) -> None:
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        spec = config.specification
        for field_name, value in (
            ("language_code", spec.language_code),
            ("model", spec.model),
            ("folder_id", config.folder_id),
        ):
            if len(value) > MAX_FIELD_LENGTH:
                raise _Rejected(
                    invalid,
                    f"{field_name} is {len(value)} characters long; at most "
                    f"{MAX_FIELD_LENGTH} are accepted",
                )
        encoding = spec.audio_encoding
        if encoding == Spec.MP3:
            raise _Rejected(
                invalid, "MP3 is not supported for streaming; send LINEAR16_PCM or OGG_OPUS"
            )
        if encoding == Spec.OGG_OPUS:
            try:
                stream.opus = OggOpusDecoder()
            except OpusDecodeError as error:
                raise _Rejected(grpc.StatusCode.UNIMPLEMENTED, str(error)) from None
            stream.rate = OPUS_RATE
        elif encoding in (Spec.LINEAR16_PCM, Spec.AUDIO_ENCODING_UNSPECIFIED):
            rate = spec.sample_rate_hertz or DEFAULT_RATE
            if rate not in SUPPORTED_RATES:
                raise _Rejected(
                    invalid,
                    f"sample_rate_hertz {rate} is not supported for LINEAR16_PCM; "
                    "use 8000, 16000 or 48000",
                )
            stream.rate = rate
        else:
            raise _Rejected(invalid, f"unknown audio_encoding {encoding}")
        if spec.audio_channel_count > 1:
            raise _Rejected(invalid, "audio_channel_count must be 1: only mono audio is supported")
        languages = self.engine.languages
        language = spec.language_code or languages[0]
        if isinstance(self.engine, LanguageRouter):
            problem = self.engine.language_problem(spec.language_code)
            if problem:
                raise _Rejected(invalid, problem)
        elif language.lower() not in {lang.lower() for lang in languages}:
            raise _Rejected(
                invalid,
                f"language_code {bounded(spec.language_code)!r} is not available here; "
                f"this server has: {', '.join(languages)}",
            )
        if spec.model not in MODELS:
            raise _Rejected(
                invalid, f"model {bounded(spec.model)!r} is not available; use 'general'"
            )
        stream.partials = spec.partial_results
        stream.single_utterance = spec.single_utterance
        stream.text = TextOptions(
            language=language,
            raw_results=spec.raw_results,
            profanity_filter=spec.profanity_filter,
            literature_text=spec.literature_text,
        )
        log.info(
            "stream %s: %s %d Hz, %s, partials %s",
            stream.request_id,
            Spec.AudioEncoding.Name(encoding or Spec.LINEAR16_PCM),
            stream.rate,
            language,
            "on" if stream.partials else "off",
        )

    def _admit(self, stream: _Stream, audio: bytes) -> bytes:
        """Count the audio against the limits; decode Ogg Opus to PCM."""
        stream.bytes_in += len(audio)
        if stream.bytes_in > self.limits.max_bytes:
            raise _Rejected(
                grpc.StatusCode.OUT_OF_RANGE,
                f"session limit reached: more than {self.limits.max_bytes} bytes of audio in one "
                "stream; start a new stream for the rest",
            )
        pcm = audio
        if stream.opus is not None:
            try:
                pcm = stream.opus.feed(audio)
            except OpusDecodeError as error:
                raise _Rejected(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
        stream.seconds_in += len(pcm) / (2 * stream.rate)
        if stream.seconds_in > self.limits.max_seconds:
            raise _Rejected(
                grpc.StatusCode.OUT_OF_RANGE,
                f"session limit reached: more than {self.limits.max_seconds:g} s of audio in one "
                "stream; start a new stream for the rest",
            )
        return pcm

    def _respond(
        self, stream: _Stream, events: list[EngineEvent]
    ) -> Iterator[pb.StreamingRecognitionResponse]:
        for event in events:
            if stream.done:
                return
            if isinstance(event, Partial):
                if not stream.partials:
                    continue
                text = stream.text.apply(event.text, final=False)
                if text == stream.last_partial:
                    continue
                stream.last_partial = text
                yield _response(text, final=False)
            elif isinstance(event, Final):
                text = stream.text.apply(event.text)
                stream.last_partial = ""
                if not text:
                    continue
                stream.finals += 1
                yield _response(text, final=True, event=event, options=stream.text)
                if stream.single_utterance:
                    stream.done = True


def _response(
    text: str, *, final: bool, event: Final | None = None, options: TextOptions | None = None
) -> pb.StreamingRecognitionResponse:
    alternative = pb.SpeechRecognitionAlternative(text=text)
    if event is not None:
        alternative.confidence = event.confidence
        for word in event.words:
            shown = options.word(word.text) if options is not None else word.text
            info = alternative.words.add(word=shown, confidence=word.confidence)
            info.start_time.FromNanoseconds(round(word.start_s * 1e9))
            info.end_time.FromNanoseconds(round(word.end_s * 1e9))
    chunk = pb.SpeechRecognitionChunk(
        alternatives=[alternative], final=final, end_of_utterance=final
    )
    return pb.StreamingRecognitionResponse(chunks=[chunk])
