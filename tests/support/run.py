"""Running the library directly: one input through `InputRecognizer`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc.aio

from sttcli.audio.sources import open_source
from sttcli.errors import SttError
from sttcli.options import RecognitionSettings, SessionPolicy, StreamSettings
from sttcli.results import ChunkEvent, ErrorInfo, InputResult
from sttcli.session import Clockwork, Connection, InputRecognizer


async def recognize_path(
    path: Path | str,
    address: str,
    *,
    settings: RecognitionSettings | None = None,
    stream: StreamSettings | None = None,
    policy: SessionPolicy | None = None,
    clockwork: Clockwork | None = None,
    **open_kwargs: Any,
) -> tuple[InputResult, list[ChunkEvent]]:
    events: list[ChunkEvent] = []
    connection = Connection(
        endpoint=address, channel_factory=lambda: grpc.aio.insecure_channel(address)
    )
    if stream is not None:
        open_kwargs.setdefault("keepalive_silence", stream.keepalive_silence)
    source = await open_source(str(path), **open_kwargs)
    recognizer = InputRecognizer(
        source,
        settings=settings or RecognitionSettings(),
        connection=connection,
        stream=stream,
        policy=policy,
        on_event=events.append,
        clockwork=clockwork,
    )
    try:
        await recognizer.run()
        result = recognizer.result()
    except SttError as error:
        result = recognizer.result(ErrorInfo.from_error(error))
    finally:
        source.close()
        await connection.close()
    return result, events
