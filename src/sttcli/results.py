"""What recognition produces, as plain values for renderers and library users.

These never hold protobuf messages (`sttcli.wire` converts), and their JSON
forms are the documented output schemas that scripts rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sttcli.errors import ServiceError, SttError


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float  # from the start of the input, not of the session
    end_s: float
    confidence: float = 0.0


@dataclass(frozen=True)
class Alternative:
    text: str
    confidence: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class ChunkEvent:
    """One SpeechRecognitionChunk of a response, placed on the input's timeline."""

    final: bool
    end_of_utterance: bool
    alternatives: tuple[Alternative, ...]
    audio_sent_s: float  # audio seconds sent when the chunk arrived
    session: int = 1

    @property
    def text(self) -> str:
        return self.alternatives[0].text if self.alternatives else ""

    @property
    def finalizes(self) -> bool:
        """The server is done with the audio this chunk covers."""
        return self.final or self.end_of_utterance

    def to_json(self, input_name: str) -> dict[str, Any]:
        return {
            "input": input_name,
            "final": self.final,
            "end_of_utterance": self.end_of_utterance,
            "alternatives": [
                {"text": alt.text, "confidence": _round(alt.confidence)}
                for alt in self.alternatives
            ],
            "audio_sent_s": _round(self.audio_sent_s),
            "session": self.session,
        }


@dataclass(frozen=True)
class Utterance:
    text: str
    # End of the last word when the server gives word timings, else the audio
    # position sent when the final arrived (never earlier than the true end).
    audio_end_s: float


@dataclass(frozen=True)
class ErrorInfo:
    code: str  # gRPC status name, or BAD_INPUT / USAGE / INTERRUPTED / INTERNAL_ERROR
    message: str
    exit_code: int
    request_id: str | None = None
    server_trace_id: str | None = None

    @classmethod
    def from_error(cls, error: SttError) -> ErrorInfo:
        if isinstance(error, ServiceError):
            return cls(
                error.code,
                error.message,
                int(error.exit_code),
                error.ids.request_id,
                error.ids.server_trace_id,
            )
        return cls(error.code, error.message, int(error.exit_code))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "exit_code": self.exit_code,
        }
        if self.request_id:
            data["request_id"] = self.request_id
        if self.server_trace_id:
            data["server_trace_id"] = self.server_trace_id
        return data


@dataclass(frozen=True)
class SourceInfo:
    """What an input held, before anything was done to it for the wire."""

    format: str  # "WAV", "MP3", "Ogg Opus", "raw LPCM"...
    codec: str  # FFmpeg's codec name: "pcm_s16le", "mp3", "opus"...
    rate: int
    channels: int
    decoded: bool  # False: sent as it is (zero-copy)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "codec": self.codec,
            "rate": self.rate,
            "channels": self.channels,
            "decoded": self.decoded,
        }


@dataclass(frozen=True)
class InputResult:
    """Everything recognized for one input, and how it ended."""

    input: str
    utterances: tuple[Utterance, ...] = ()
    audio_duration_s: float = 0.0
    error: ErrorInfo | None = None
    sessions: int = 0
    retries: int = 0
    source: SourceInfo | None = None

    @property
    def text(self) -> str:
        return " ".join(u.text for u in self.utterances if u.text)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "text": self.text,
            "utterances": [
                {"text": u.text, "audio_end_s": _round(u.audio_end_s)} for u in self.utterances
            ],
            "audio_duration_s": _round(self.audio_duration_s),
            "error": self.error.to_json() if self.error else None,
            "sessions": self.sessions,
            "retries": self.retries,
            "source": self.source.to_json() if self.source else None,
        }


def _round(value: float) -> float:
    # Millisecond resolution: enough for audio positions, stable in golden files.
    return round(value, 3)
