"""One input through as many streaming sessions as it takes.

A session is one StreamingRecognize call. An input needs more than one when
it is longer than a session may be (SpeechKit: 5 minutes, 10 MB) and when a
session fails in a way worth retrying. The rules:

- Rotation: near the session limit, the client looks for a pause in the audio
  it is about to send, half-closes the stream right inside it, drains the last
  results, and starts the next session there. Nothing is sent twice, no word
  is split. With no pause before the limit, the cut is at the limit.
- Retry: UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, INTERNAL (and a server
  that ends a stream early with OK) are retried with exponential backoff and
  full jitter, `retries` times per incident; an incident ends when a session
  makes progress. A broken session's unfinalized audio is lost on the server,
  so the next one starts again at the end of the last final: at the end of
  its last word when the server gives word timings, otherwise at the last
  pause before the point the client had sent when that final arrived.
- Ogg Opus stays one session: pauses cannot be found without decoding it.

Clock, sleep, randomness, the channel and the stream-start limiter are
injected, so tests run all of this without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc.aio

from sttcli import wire
from sttcli.audio import conversion_hint
from sttcli.client import StreamCall, open_channel
from sttcli.credentials import CredentialSource, build_metadata
from sttcli.errors import BadInput, ServiceError, SessionLimitError
from sttcli.ogg import OpusTimeline
from sttcli.options import RecognitionSettings, SessionPolicy, StreamSettings
from sttcli.pauses import Pause, PauseFinder
from sttcli.results import ChunkEvent, ErrorInfo, InputResult, Utterance
from sttcli.sources import AudioSource
from sttcli.streaming import Pacer, request_stream

log = logging.getLogger(__name__)

EventSink = Callable[[ChunkEvent], None]
# The rotation window: pauses are looked for this close to the session limit
# (at most this many seconds, at most this share of the limit). The first pause
# in it ends the session: a smaller window makes fewer, longer sessions, a
# larger one makes a pause more certain to be found.
_ROTATION_WINDOW_SECONDS = 30.0
_ROTATION_WINDOW_SHARE = 0.25
# How far past a final's position a pause may end and still be "at" it.
_RESUME_LOOKAHEAD_SECONDS = 0.5


_REFUSALS = frozenset(
    {"RESOURCE_EXHAUSTED", "UNAUTHENTICATED", "PERMISSION_DENIED", "UNIMPLEMENTED", "NOT_FOUND"}
)


@dataclass
class Clockwork:
    """Time and chance, replaceable in tests."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    random: Callable[[], float] = random.random


class StartLimiter:
    """Starts streams no faster than `rate` per second (SpeechKit's quota is 40)."""

    def __init__(self, rate: float, clockwork: Clockwork | None = None) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._time = clockwork or Clockwork()
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = self._time.clock()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
            if wait > 0:
                await self._time.sleep(wait)


@dataclass
class Connection:
    """Where sessions go and with what credentials; the channel is shared by all inputs."""

    endpoint: str
    credentials: CredentialSource = field(default_factory=CredentialSource)
    headers: Sequence[tuple[str, str]] = ()
    normalize_partials: bool = False
    insecure: bool = False
    ca_file: str | None = None
    channel_factory: Callable[[], grpc.aio.Channel] | None = None
    _channel: grpc.aio.Channel | None = field(default=None, init=False, repr=False)
    _announced: str | None = field(default=None, init=False, repr=False)

    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            factory = self.channel_factory
            self._channel = (
                factory()
                if factory
                else open_channel(self.endpoint, insecure=self.insecure, ca_file=self.ca_file)
            )
        return self._channel

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata, with credentials read anew: a refreshed token is picked up."""
        credential = self.credentials.resolve()
        described = credential.describe() if credential else "no credentials"
        if described != self._announced:
            log.info("using %s", described)
            self._announced = described
        return build_metadata(credential, self.headers, normalize_partials=self.normalize_partials)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


class _End(enum.Enum):
    EOF = "end of input"
    ROTATE = "session limit"
    STOPPED = "single utterance"
    CALL_ENDED = "call ended"


@dataclass
class _Ending:
    """How a session's audio ended, and where the next session starts after a rotation."""

    end: _End = _End.STOPPED
    cut: int | None = None
    half_closed: bool = False  # all of the session's audio went out


@dataclass
class _FinalMark:
    sent: int  # payload bytes sent when the final arrived
    words_end: int | None  # end of its last word, when the server gives timings


class InputRecognizer:
    """Recognizes one audio source; `result()` tells what came of it, even half-way."""

    def __init__(
        self,
        source: AudioSource,
        *,
        settings: RecognitionSettings,
        connection: Connection,
        stream: StreamSettings | None = None,
        policy: SessionPolicy | None = None,
        on_event: EventSink | None = None,
        clockwork: Clockwork | None = None,
        limiter: StartLimiter | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.connection = connection
        self.stream = stream or StreamSettings()
        self.policy = policy or SessionPolicy()
        self.on_event = on_event or (lambda event: None)
        self.time = clockwork or Clockwork()
        self.limiter = limiter
        self.audio = source.format
        self.bytes_per_second = self.audio.bytes_per_second  # None for Ogg Opus
        self.config = wire.config_request(settings, self.audio)
        self.pacer = Pacer(self.stream.speed, self.time.clock)
        self.utterances: list[Utterance] = []
        self.sessions = 0
        self.retries = 0
        self._session_number = 0
        self._session_start = 0
        self._sent = 0  # payload position sent so far, in the current session
        self._read_until = 0  # furthest payload position read
        self._timeline = OpusTimeline()
        self._final_mark: _FinalMark | None = None
        self._last_word_end = -1.0
        # After a retry, finals whose words all end before this were delivered
        # by the failed session (only when resuming had to go back that far).
        self._replay_until = -1.0
        self._deadline: float | None = None

    # -- results ---------------------------------------------------------

    @property
    def audio_seconds(self) -> float:
        if self.bytes_per_second:
            return self._read_until / self.bytes_per_second
        return self._timeline.seconds

    @property
    def total_seconds(self) -> float | None:
        """The input's length, when a file tells it (LPCM)."""
        length = self.source.length
        if length is None or not self.bytes_per_second:
            return None
        return length / self.bytes_per_second

    def result(self, error: ErrorInfo | None = None) -> InputResult:
        return InputResult(
            input=self.source.name,
            utterances=tuple(self.utterances),
            audio_duration_s=self.audio_seconds,
            error=error,
            sessions=self.sessions,
            retries=self.retries,
        )

    # -- the input -------------------------------------------------------

    async def run(self) -> None:
        """Stream the whole input; raise SttError when it cannot be finished."""
        if self.policy.timeout is not None:
            self._deadline = self.time.clock() + self.policy.timeout
        if not await self.source.read(1):
            raise BadInput(f"{self.source.name}: no audio in the input")
        start = 0
        attempt = 0  # failed attempts in the current incident
        while True:
            try:
                end, cut = await self._run_session(start)
            except ServiceError as error:
                if not error.retryable or not self.policy.retries:
                    raise
                resume = await self._resume_point(error)
                if resume > start:
                    attempt = 0  # the failed session still finalized something
                if attempt >= self.policy.retries:
                    raise
                delay = self._backoff(attempt)
                attempt += 1
                self.retries += 1
                log.info(
                    "%s: session %d failed (%s); retry %d of %d in %.2f s, from %.2f s",
                    self.source.name,
                    self._session_number,
                    error.status,
                    attempt,
                    self.policy.retries,
                    delay,
                    self._seconds(resume),
                )
                await self.time.sleep(delay)
                start = resume
                self._replay_until = self._last_word_end
                continue
            attempt = 0
            self._replay_until = -1.0
            if end is not _End.ROTATE:
                return
            assert cut is not None
            log.info(
                "%s: session %d reached its limit; session %d starts at %.2f s",
                self.source.name,
                self._session_number,
                self._session_number + 1,
                self._seconds(cut),
            )
            start = cut

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.policy.backoff_cap, self.policy.backoff_base * 2.0**attempt)
        delay = self.time.random() * ceiling
        return min(delay, self._remaining()) if self._deadline is not None else delay

    def _remaining(self) -> float:
        if self._deadline is None:
            return float("inf")
        remaining = self._deadline - self.time.clock()
        if remaining <= 0:
            raise ServiceError(
                "DEADLINE_EXCEEDED",
                f"--timeout of {self.policy.timeout:g} s reached",
                endpoint=self.connection.endpoint,
            )
        return remaining

    def _seconds(self, position: int) -> float:
        if self.bytes_per_second:
            return position / self.bytes_per_second
        return self._timeline.seconds

    # -- one session -----------------------------------------------------

    async def _run_session(self, start: int) -> tuple[_End, int | None]:
        if self.limiter is not None:
            await self.limiter.acquire()
        remaining = self._remaining()
        await self.source.seek(start)
        self.source.release(start)
        self._session_number += 1
        self._session_start = start
        self._sent = start
        self._final_mark = None
        if not self.bytes_per_second:
            self._timeline = OpusTimeline()
        call = StreamCall(
            self.connection.channel(),
            self.connection.metadata(),
            timeout=None if remaining == float("inf") else remaining,
            endpoint=self.connection.endpoint,
        )
        stop = asyncio.Event()
        ending = _Ending()
        reader = asyncio.ensure_future(self._read(call, stop))
        writer = asyncio.ensure_future(self._write(call, start, stop, ending))
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer in done and writer.exception() is not None:
                call.cancel()
                raise writer.exception()  # type: ignore[misc]
            await reader  # raises the server's error
            if stop.is_set():
                return _End.STOPPED, None
            if not ending.half_closed or ending.end is _End.CALL_ENDED:
                # An OK before we were done: the rest of the audio went unheard.
                raise ServiceError(
                    "ABORTED",
                    "the server ended the stream before the audio was all sent",
                    endpoint=self.connection.endpoint,
                )
            await writer
            return ending.end, ending.cut
        finally:
            for task in (reader, writer):
                if not task.done():
                    task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            if not call.status():
                call.cancel()
            if self._counts_as_session(call):
                self.sessions += 1

    @staticmethod
    def _counts_as_session(call: StreamCall) -> bool:
        """Did the stream get past its config? A refusal at the start does not count.

        A refusal is a quota, credential or unknown-method status before any
        response; a break (UNAVAILABLE, INTERNAL...) after the config was sent
        counts, since the server may have heard audio.
        """
        if call.responses_seen:
            return True
        status = call.status()
        refused = status is not None and status.code.name in _REFUSALS
        return call.config_sent and not refused

    async def _read(self, call: StreamCall, stop: asyncio.Event) -> None:
        offset = self._seconds(self._session_start)
        async for response in call.responses():
            for event in wire.chunk_events(
                response,
                audio_sent_s=self._seconds(self._sent),
                session=self._session_number,
                offset_s=offset,
            ):
                self._deliver(event)
                if event.finalizes and self.settings.single_utterance:
                    stop.set()

    def _deliver(self, event: ChunkEvent) -> None:
        if event.finalizes:
            words = event.alternatives[0].words if event.alternatives else ()
            words_end = max((w.end_s for w in words), default=None)
            if words_end is not None and words_end <= self._replay_until:
                return  # resent audio recognized again: its final was delivered already
            self._final_mark = _FinalMark(
                self._sent,
                None if words_end is None else self._position_at(words_end),
            )
            if words_end is not None:
                self._last_word_end = max(self._last_word_end, words_end)
            if event.final:
                end = words_end if words_end is not None else event.audio_sent_s
                self.utterances.append(Utterance(event.text, end))
        self.on_event(event)

    def _position_at(self, seconds: float) -> int:
        bps = self.bytes_per_second or 0
        return int(seconds * bps) & ~1

    async def _write(
        self, call: StreamCall, start: int, stop: asyncio.Event, ending: _Ending
    ) -> None:
        async with contextlib.aclosing(self._session_audio(start, stop, ending)) as audio:
            async for request in request_stream(self.config, audio):
                if not await call.write(request):
                    ending.end = _End.CALL_ENDED
                    return
        ending.half_closed = True
        await call.done_writing()

    async def _session_audio(
        self, start: int, stop: asyncio.Event, ending: _Ending
    ) -> AsyncGenerator[bytes, None]:
        """The chunks of one session, paced, up to where it must end (told in `ending`).

        Code after each `yield` runs once the chunk has been written, so
        `_sent` is what the transport has taken.
        """
        limit = _SessionLimit(self, start)
        resendable = self.policy.retries > 0
        position = start
        while not stop.is_set():
            chunk = await self.source.read(self.stream.chunk_size)
            if not chunk:
                ending.end = _End.EOF
                return
            delay = self.pacer.delay(self._seconds(position))
            if delay > 0:
                await self.time.sleep(delay)
            self._read_until = max(self._read_until, position + len(chunk))
            if not self.bytes_per_second:
                self._timeline.feed(chunk)  # its pages count against the limit before it goes
            chunk, cut = limit.check(chunk, position)
            if chunk:
                yield chunk
                position += len(chunk)
                self._sent = position
                if not resendable:
                    self.source.release(position)
            if cut is not None:
                ending.end, ending.cut = _End.ROTATE, cut
                return
        ending.end = _End.STOPPED

    # -- resuming --------------------------------------------------------

    async def _resume_point(self, error: ServiceError) -> int:
        """Where the next session starts after this one failed (see the module docstring)."""
        start = self._session_start
        mark = self._final_mark
        if mark is None:
            return start  # nothing was finalized: send it all again
        if not self.bytes_per_second:
            raise error  # Ogg Opus: a second session would need the headers again
        lookahead = int(_RESUME_LOOKAHEAD_SECONDS * self.bytes_per_second) & ~1
        scan_end = mark.sent + lookahead
        if mark.words_end is not None:
            after = max(start, mark.words_end)
            pauses = await self._pauses(after, scan_end)
            first = pauses[0] if pauses else None
            point = max(after, first.cut_point()) if first else after
            return min(point, self._sent)
        pauses = [p for p in await self._pauses(start, scan_end) if p.start <= mark.sent]
        if not pauses:
            log.info(
                "%s: no pause found before the last final; resuming where it arrived "
                "(audio after the utterance but before that point is lost)",
                self.source.name,
            )
            return mark.sent
        return min(pauses[-1].cut_point(), self._sent)

    async def _pauses(self, start: int, end: int) -> list[Pause]:
        assert self.bytes_per_second
        finder = PauseFinder(self.bytes_per_second, self.policy.min_pause, position=start)
        pauses: list[Pause] = []
        async for block in self.source.region(start, end):
            pauses += finder.feed(block)
        return pauses


class _SessionLimit:
    """Decides, chunk by chunk, where the current session must end."""

    def __init__(self, recognizer: InputRecognizer, start: int) -> None:
        self.name = recognizer.source.name
        self.policy = recognizer.policy
        self.bps = recognizer.bytes_per_second
        self.recognizer = recognizer
        self.start = start
        self.finder: PauseFinder | None = None
        if self.bps:
            by_time = int(self.policy.max_session_seconds * self.bps)
            self.limit = min(by_time, self.policy.max_session_bytes) & ~1
            window = int(
                min(_ROTATION_WINDOW_SECONDS * self.bps, self.limit * _ROTATION_WINDOW_SHARE)
            )
            self.window_start = start + self.limit - window
        else:
            self.limit = self.policy.max_session_bytes

    def check(self, chunk: bytes, position: int) -> tuple[bytes, int | None]:
        """The part of `chunk` to send, and where the session ends if it ends in it."""
        end = position + len(chunk)
        if not self.bps:
            return self._check_ogg(chunk, end), None
        if end <= self.window_start:
            return chunk, None
        if self.finder is None:
            self.finder = PauseFinder(self.bps, self.policy.min_pause, position=position)
        for pause in self.finder.feed(chunk):
            cut = max(pause.cut_point(), position)
            if cut <= self.start + self.limit:
                return chunk[: cut - position], cut
        hard_end = self.start + self.limit
        if end > hard_end:
            log.warning(
                "%s: no pause in the last %.0f s before the session limit; "
                "cutting at the limit (a word may be split)",
                self.name,
                (hard_end - self.window_start) / self.bps,
            )
            return chunk[: hard_end - position], hard_end
        return chunk, None

    def _check_ogg(self, chunk: bytes, end: int) -> bytes:
        seconds = self.recognizer.audio_seconds
        if end - self.start > self.limit or seconds > self.policy.max_session_seconds:
            raise SessionLimitError(
                f"{self.name}: Ogg Opus input is longer than one session may be "
                f"({self.policy.max_session_seconds:g} s, {self.policy.max_session_bytes} bytes), "
                "and sttcli cannot split Ogg Opus between sessions; to stream it whole, "
                + conversion_hint(self.name)
            )
        return chunk
