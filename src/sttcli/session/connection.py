"""Where sessions go, with what credentials, and how fast new ones may start.

Time and chance (`Clockwork`) are injected everywhere, so tests run retries,
backoff and pacing without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc.aio

from sttcli.auth.credentials import (
    Credential,
    CredentialProvider,
    CredentialSource,
    Metadata,
    build_metadata,
)
from sttcli.client import open_channel

log = logging.getLogger("sttcli.session")
T = TypeVar("T")


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
    credentials: CredentialProvider = field(default_factory=CredentialSource)
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

    def metadata(self) -> Metadata:
        """Call metadata, with credentials read anew: a refreshed token is picked up."""
        return self._build(self.credentials.resolve())

    async def session_metadata(self) -> Metadata:
        """`metadata()` for a new session or retry; a token due for refresh is fetched in a thread.

        Checked before every session, so no session starts with a token near its end.
        """
        if self.credentials.refreshable:
            return self._build(await in_daemon_thread(self.credentials.resolve))
        return self.metadata()

    def preview_metadata(self) -> Metadata:
        """What `metadata()` would send, fetching nothing (--dry-run)."""
        return self._build(self.credentials.preview(), announce=False)

    def renew(self, metadata: Metadata) -> bool:
        """A session sent `metadata` and was told UNAUTHENTICATED: can a new token be tried?

        Only for tokens sttcli fetched itself; a token or key the user gave
        would only be refused again.
        """
        if not self.credentials.refreshable:
            return False
        for name, value in metadata:
            if name == "authorization":
                self.credentials.reject(value.partition(" ")[2])
        return True

    def _build(self, credential: Credential | None, *, announce: bool = True) -> Metadata:
        if credential is not None:
            described = credential.describe()
        elif any(name == "authorization" for name, _ in self.headers):
            described = "the authorization header from -H"
        else:
            described = "no credentials"
        if announce and described != self._announced:
            log.info("using %s", described)
            self._announced = described
        return build_metadata(credential, self.headers, normalize_partials=self.normalize_partials)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


async def in_daemon_thread(call: Callable[[], T]) -> T:
    """`call()` in a daemon thread, awaited; cancelling the wait abandons the thread.

    Not `asyncio.to_thread`: the loop's executor is joined when `asyncio.run`
    ends, so Ctrl-C during a token fetch would wait out the fetch's timeout
    (15 s for IAM, 60 s for yc). A daemon thread is left behind instead, and
    its answer, if one comes, is dropped.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        try:
            result = call()
        except BaseException as error:  # the awaiting task gets it, whatever it is
            _hand_over(loop, answer, answer.set_exception, error)
        else:
            _hand_over(loop, answer, answer.set_result, result)

    threading.Thread(target=work, name="sttcli-token-fetch", daemon=True).start()
    return await answer


def _hand_over(
    loop: asyncio.AbstractEventLoop,
    answer: asyncio.Future[Any],
    settle: Callable[[Any], None],
    value: Any,
) -> None:
    """From the worker thread: settle `answer` on its loop, unless it was cancelled or is gone."""

    def settle_if_awaited() -> None:
        if not answer.done():
            settle(value)

    try:
        loop.call_soon_threadsafe(settle_if_awaited)
    except RuntimeError:
        pass  # the loop is closed: nobody waits any more
