"""The one place that converts between sttcli's values and protobuf messages."""

from __future__ import annotations

from typing import Any

from google.protobuf.duration_pb2 import Duration

from sttcli._proto import stt_service_pb2 as pb
from sttcli.audio.sniff import AudioFormat, Encoding
from sttcli.options import RecognitionSettings
from sttcli.results import Alternative, ChunkEvent, Word

Request = pb.StreamingRecognitionRequest
Response = pb.StreamingRecognitionResponse

_ENCODINGS = {
    Encoding.LPCM: pb.RecognitionSpec.LINEAR16_PCM,
    Encoding.OGG_OPUS: pb.RecognitionSpec.OGG_OPUS,
}


def config_request(settings: RecognitionSettings, audio: AudioFormat) -> Request:
    spec = pb.RecognitionSpec(
        audio_encoding=_ENCODINGS[audio.encoding],
        language_code=settings.language,
        model=settings.model,
        profanity_filter=settings.profanity_filter,
        partial_results=settings.partial_results,
        single_utterance=settings.single_utterance,
        raw_results=settings.raw_results,
        literature_text=settings.literature_text,
    )
    if audio.encoding is Encoding.LPCM:
        spec.sample_rate_hertz = audio.sample_rate
    return Request(config=pb.RecognitionConfig(specification=spec, folder_id=settings.folder_id))


def audio_request(chunk: bytes) -> Request:
    return Request(audio_content=chunk)


def chunk_events(
    response: Response, *, audio_sent_s: float, session: int, offset_s: float
) -> list[ChunkEvent]:
    """Events for a response; `offset_s` moves session-relative word times onto the input."""
    return [
        ChunkEvent(
            final=chunk.final,
            end_of_utterance=chunk.end_of_utterance,
            alternatives=tuple(
                Alternative(
                    text=alt.text,
                    confidence=alt.confidence,
                    words=tuple(
                        Word(
                            w.word,
                            offset_s + _seconds(w.start_time),
                            offset_s + _seconds(w.end_time),
                            w.confidence,
                        )
                        for w in alt.words
                    ),
                )
                for alt in chunk.alternatives
            ),
            audio_sent_s=audio_sent_s,
            session=session,
        )
        for chunk in response.chunks
    ]


def config_to_dict(request: Request) -> dict[str, Any]:
    """The config with every field shown, snake_case, numbers as numbers (for --dry-run)."""
    config = request.config
    return {
        "specification": _message_fields(config.specification),
        "folder_id": config.folder_id,
    }


def _message_fields(message: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.enum_type is not None:
            value = field.enum_type.values_by_number[value].name
        fields[field.name] = value
    return fields


def _seconds(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9
