"""`InputRecognizer`: one input through as many streaming sessions as it takes.

A session is one StreamingRecognize call. An input needs more than one when
it is longer than a session may be (SpeechKit: 5 minutes, 10 MB) and when a
session fails in a way worth retrying. The recognizer runs the sessions and
keeps the input's results; where a session ends (`rotation`), when and how
often to try again (`retry`) and where to start again (`resume`) are parts of
their own. UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, INTERNAL and a server
that ends a stream early with OK are retried, `retries` times per incident;
an incident ends when a session makes progress. Ogg Opus input sent as it
is stays one session: pauses cannot be found without decoding it (a file
longer than a session is decoded instead, see `sttcli.audio.sources`).

The source always gives PCM or passthrough Ogg Opus; with --send-as oggopus
each session's PCM is encoded on its way out (`sttcli.audio.encode`), so
rotation and resume work on the PCM, before encoding, exactly as with LPCM.
Positions are PCM bytes of the source; `_seconds()` is the one place that
turns them into seconds of the input.

Clock, sleep, randomness, the channel and the stream-start limiter are
injected, so tests run all of this without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, replace

from sttcli import wire
from sttcli.audio.ogg import OpusTimeline
from sttcli.audio.sniff import OPUS_RATE, AudioFormat, Encoding, RateSource
from sttcli.audio.sources import AudioSource
from sttcli.audio.speech import SpeechTracker
from sttcli.auth.credentials import Metadata
from sttcli.client import StreamCall
from sttcli.errors import BadInput, ServiceError, SessionLimitError
from sttcli.options import RecognitionSettings, SessionPolicy, StreamSettings
from sttcli.results import ChunkEvent, ErrorInfo, InputResult, Timing, Utterance
from sttcli.session.connection import Clockwork, Connection, StartLimiter
from sttcli.session.resume import FinalMark, resume_point
from sttcli.session.retry import Deadline, backoff_delay
from sttcli.session.rotation import SessionLimit
from sttcli.session.timing import utterance_of
from sttcli.streaming import Pacer, request_stream

log = logging.getLogger("sttcli.session")

EventSink = Callable[[ChunkEvent], None]


_REFUSALS = frozenset(
    {"RESOURCE_EXHAUSTED", "UNAUTHENTICATED", "PERMISSION_DENIED", "UNIMPLEMENTED", "NOT_FOUND"}
)


class _End(enum.Enum):
    EOF = "end of input"
    ROTATE = "session limit"
    STOPPED = "single utterance"
    CALL_ENDED = "call ended"
    OVERFLOW = "Ogg Opus past a session's limit"


@dataclass
class _Ending:
    """How a session's audio ended, and where the next session starts after a rotation."""

    end: _End = _End.STOPPED
    cut: int | None = None
    half_closed: bool = False  # all of the session's audio went out
    overflow: SessionLimitError | None = None  # raised once the session's finals are in


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
        # PCM encoded by the client for the wire (--send-as oggopus).
        self.encodes = self.stream.send_as == "oggopus" and self.audio.encoding is Encoding.LPCM
        on_wire = AudioFormat(Encoding.OGG_OPUS, OPUS_RATE, RateSource.OPUS)
        self.config = wire.config_request(settings, on_wire if self.encodes else self.audio)
        self.pacer = Pacer(self.stream.speed, self.time.clock)
        self.utterances: list[Utterance] = []
        self.sessions = 0
        self.retries = 0
        self._session_number = 0
        self._session_start = 0
        self._sent = 0  # payload position sent so far, in the current session
        self._read_until = 0  # furthest payload position read
        self._timeline = OpusTimeline()
        self._final_mark: FinalMark | None = None
        self._last_word_end = -1.0
        # After a retry, finals whose words all end before this were delivered
        # by the failed session (only when resuming had to go back that far).
        self._replay_until = -1.0
        self._deadline: Deadline | None = None
        # Where speech was in the audio sent: spans for finals without word timings.
        self._speech = SpeechTracker(self.bytes_per_second) if self.bytes_per_second else None
        self._all_sent = False  # the current session's audio went out whole
        self._said_estimated = False
        self._overflow: SessionLimitError | None = None
        self._metadata: Metadata = ()  # what the current session sent

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
            source=self.source.origin,
        )

    # -- the input -------------------------------------------------------

    async def run(self) -> None:
        """Stream the whole input; raise SttError when it cannot be finished."""
        if self.policy.timeout is not None:
            self._deadline = Deadline(
                self.policy.timeout, self.time.clock, endpoint=self.connection.endpoint
            )
        if not await self.source.read(1):
            raise BadInput(f"{self.source.name}: no audio in the input")
        start = 0
        attempt = 0  # failed attempts in the current incident
        renewed = False  # a new token was tried after UNAUTHENTICATED
        while True:
            try:
                end, cut = await self._run_session(start)
            except ServiceError as error:
                if not renewed and self._renewable(error):
                    # A token sttcli fetched may have been revoked or cut short: one
                    # more try with a new one, at once (no backoff: nothing is busy).
                    renewed = True
                    self.retries += 1
                    log.info(
                        "%s: session %d was refused (%s); trying once more with a new token",
                        self.source.name,
                        self._session_number,
                        error.status,
                    )
                    start = await self._resume_point(error)
                    self._replay_until = self._last_word_end
                    continue
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
            renewed = False
            self._replay_until = -1.0
            if end is _End.OVERFLOW and self._overflow is not None:
                raise self._overflow
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

    def _renewable(self, error: ServiceError) -> bool:
        return error.status == "UNAUTHENTICATED" and self.connection.renew(self._metadata)

    def _backoff(self, attempt: int) -> float:
        delay = backoff_delay(self.policy, attempt, self.time.random)
        return min(delay, self._remaining()) if self._deadline is not None else delay

    def _remaining(self) -> float:
        if self._deadline is None:
            return float("inf")
        return self._deadline.remaining()

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
        self._all_sent = False
        if self._speech is not None:
            self._speech.forget(self._seconds(start))  # no final of this session is in there
        if not self.bytes_per_second:
            self._timeline = OpusTimeline()
        self._metadata = await self.connection.session_metadata()
        call = StreamCall(
            self.connection.channel(),
            self._metadata,
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
            self._overflow = ending.overflow
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
            self._final_mark = FinalMark(
                self._sent,
                None if words_end is None else self._position_at(words_end),
            )
            if words_end is not None:
                self._last_word_end = max(self._last_word_end, words_end)
            if event.final:
                utterance = utterance_of(
                    event,
                    previous=self.utterances[-1] if self.utterances else None,
                    speech=self._speech,
                    all_sent=self._all_sent,
                )
                self.utterances.append(utterance)
                event = replace(event, utterance=utterance)
                if utterance.timing == Timing.SERVER:
                    # The server times its words: no estimates needed, and following
                    # the audio would cost unpaced streaming a good part of its speed.
                    self._speech = None
                if utterance.timing == Timing.ESTIMATED and not self._said_estimated:
                    self._said_estimated = True
                    log.info(
                        "%s: the server sends no word timings; utterance spans are estimated "
                        "from the audio%s",
                        self.source.name,
                        " (unpaced, they may run into the next utterance: try --speed)"
                        if not self.stream.speed
                        else "",
                    )
        self.on_event(event)

    def _position_at(self, seconds: float) -> int:
        bps = self.bytes_per_second or 0
        return int(seconds * bps) & ~1

    async def _write(
        self, call: StreamCall, start: int, stop: asyncio.Event, ending: _Ending
    ) -> None:
        pcm = self._session_audio(start, stop, ending)
        wire_audio = self._encoded(pcm) if self.encodes else pcm
        async with contextlib.aclosing(wire_audio) as audio:
            async for request in request_stream(self.config, audio):
                if not await call.write(request):
                    ending.end = _End.CALL_ENDED
                    return
        ending.half_closed = True
        self._all_sent = True
        await call.done_writing()

    def _encoded(self, pcm: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        """One session's PCM as a fresh Ogg Opus stream (headers first), encoded off the loop."""
        from sttcli.audio.encode import encode_as_opus

        # A chunk at a time, as LPCM goes: the server hears the stream in the
        # same steps (pocketsphinx's segmentation depends on them).
        return encode_as_opus(pcm, self.audio.sample_rate, batch_bytes=self.stream.chunk_size)

    async def _session_audio(
        self, start: int, stop: asyncio.Event, ending: _Ending
    ) -> AsyncGenerator[bytes, None]:
        """The chunks of one session, paced, up to where it must end (told in `ending`).

        Code after each `yield` runs once the chunk has been written, so
        `_sent` is what the transport has taken.
        """
        limit = SessionLimit(self, start)
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
            if limit.overflow is not None:
                # End the session cleanly: what was sent still gets its finals.
                ending.end, ending.overflow = _End.OVERFLOW, limit.overflow
                return
            if chunk:
                yield chunk
                if self._speech is not None:
                    self._speech.feed(chunk, position)
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
        """Where the next session starts after this one failed (see `sttcli.session.resume`)."""
        mark = self._final_mark
        if mark is None:
            return self._session_start  # nothing was finalized: send it all again
        if not self.bytes_per_second:
            raise error  # Ogg Opus: a second session would need the headers again
        return await resume_point(
            self.source,
            bytes_per_second=self.bytes_per_second,
            min_pause=self.policy.min_pause,
            session_start=self._session_start,
            mark=mark,
            sent=self._sent,
        )
