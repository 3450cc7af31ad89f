"""The boundary between the gRPC servicer and a recognizer.

A recognizer is an `Engine`: it opens a session for a sample rate, takes PCM
(16-bit little-endian mono, any split, even mid-sample) and answers with
events: a partial hypothesis as it grows, a final text when an utterance ends.
The servicer never sees more of it, so another engine (Vosk, a cloud proxy)
plugs in without touching gRPC code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class EngineWord:
    text: str
    start_s: float  # from the start of the session's audio
    end_s: float
    confidence: float = 0.0


@dataclass(frozen=True)
class Partial:
    text: str


@dataclass(frozen=True)
class Final:
    text: str
    words: tuple[EngineWord, ...] = ()
    confidence: float = 0.0


EngineEvent = Partial | Final


class EngineError(RuntimeError):
    """The recognizer failed; the stream ends with INTERNAL."""


class EngineStopped(EngineError):
    """The engine was closed under a running stream: the server is stopping, nothing failed."""


class EngineStartError(EngineError):
    """The recognizer could not start (a broken install or model): FAILED_PRECONDITION.

    Retrying would not help, unlike a recognizer that failed mid-stream.
    """


class EngineSession(Protocol):
    def feed(self, pcm: bytes) -> list[EngineEvent]:
        """Audio in; events out. Partials are only sent when their text changes."""
        ...

    def finish(self) -> list[EngineEvent]:
        """End of audio: the last utterance's final, if any."""
        ...

    def close(self) -> None:
        """Give the session's resources back; called however the stream ended."""
        ...


class Engine(Protocol):
    name: str
    languages: tuple[str, ...]  # the first is the default

    def open(self, sample_rate: int, *, partials: bool, language: str = "") -> EngineSession:
        """A session for audio at `sample_rate` in `language`; may wait for a free decoder."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LanguageRouter(Protocol):
    """An engine whose languages depend on what is installed says why one is not available."""

    def language_problem(self, language: str) -> str | None: ...


@runtime_checkable
class Described(Protocol):
    """An engine that names its model for the server's first log line."""

    def describe(self) -> str: ...
