"""Typed settings for one recognition: what the server is asked, how audio is sent.

Each is a frozen dataclass validated on construction, so a bad value fails where
it is made, with a message a user can act on (the CLI shows it as a usage error).
"""

from __future__ import annotations

from dataclasses import dataclass

from sttcli.errors import UsageError

DEFAULT_ENDPOINT = "stt.api.cloud.yandex.net:443"
DEFAULT_CHUNK_SIZE = 4000
# gRPC servers refuse messages over 4 MiB by default; leave room for framing.
MAX_CHUNK_SIZE = 4 * 1024 * 1024 - 1024


@dataclass(frozen=True)
class RecognitionSettings:
    """The RecognitionSpec fields that do not depend on the audio, plus folder_id."""

    language: str = ""
    model: str = ""
    profanity_filter: bool = False
    partial_results: bool = False
    single_utterance: bool = False
    raw_results: bool = False
    literature_text: bool = False
    folder_id: str = ""


@dataclass(frozen=True)
class StreamSettings:
    """How the audio of one session is cut into messages and paced."""

    chunk_size: int = DEFAULT_CHUNK_SIZE
    # 0: as fast as the server takes it; 1: real time; 2: twice real time.
    speed: float = 0.0
    # Seconds a stalled stdin may stay silent before sttcli sends silence for
    # it (SpeechKit drops a stream after 5 s without audio); 0 disables.
    keepalive_silence: float = 3.0
    # What goes on the wire for PCM: "lpcm" as it is, or "oggopus" encoded by
    # the client (each session a fresh Ogg stream). Ogg Opus input stays as it is.
    send_as: str = "lpcm"

    def __post_init__(self) -> None:
        if self.send_as not in ("lpcm", "oggopus"):
            raise UsageError("--send-as must be lpcm or oggopus")
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise UsageError(f"--chunk-size must be between 1 and {MAX_CHUNK_SIZE} bytes")
        if self.speed < 0:
            raise UsageError("--speed must be 0 (unpaced) or a positive factor")
        if self.keepalive_silence < 0:
            raise UsageError("--keepalive-silence must be 0 (off) or a positive number of seconds")


@dataclass(frozen=True)
class SessionPolicy:
    """Limits of one stream, and what to do when a stream fails.

    The defaults keep a margin below SpeechKit's limits of 5 minutes and 10 MB
    per stream, and bound the default worst-case backoff (3 retries) under 10 s.
    """

    max_session_seconds: float = 290.0
    max_session_bytes: int = 9_500_000
    retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 5.0
    # The shortest run of quiet audio that counts as a pause to cut or resume at.
    min_pause: float = 0.2
    # Deadline for the whole input, all of its sessions and waits together.
    timeout: float | None = None

    def __post_init__(self) -> None:
        # A session must carry some audio, or rotation would never move on.
        if self.max_session_seconds < 1:
            raise UsageError("--max-session-seconds must be at least 1")
        if self.max_session_bytes < 32_000:
            raise UsageError("--max-session-bytes must be at least 32000 (1 s at 16 kHz)")
        if self.retries < 0:
            raise UsageError("--retries must be 0 or more")
        if self.timeout is not None and self.timeout <= 0:
            raise UsageError("--timeout must be positive")
