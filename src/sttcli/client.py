"""Channels and calls: the only module of the client that talks to grpc.aio.

`StreamCall` wraps one StreamingRecognize call. Its one job beyond grpc.aio's
own is to report the status the server sent: when a write fails because the
server has just ended the call, grpc.aio replaces the server's status with
INTERNAL "Internal error from Core" (grpc/grpc#36066), and a script would see
exit 7 instead of, say, exit 3 with the server's reason. A done-callback
records every status the call is given, and the first real one wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import grpc.aio

from sttcli import wire
from sttcli._proto import stt_service_pb2_grpc
from sttcli.auth.credentials import MASK, is_secret_header
from sttcli.auth.secrets import learned
from sttcli.errors import RequestIds, ServiceError, UsageError

T = TypeVar("T")

# Keepalive for long, mostly quiet streams (a microphone): a ping every 5
# minutes finds a dead connection, and 5 minutes is the shortest interval
# gRPC servers accept by default (faster pings get the connection closed with
# "too_many_pings" once the server has sent nothing for a while).
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
)

_SYNTHETIC_DETAILS = "Internal error from Core"
# How long to wait for the server's status behind grpc's own: 0.5 s at most.
_TRUE_STATUS_POLLS = 50
_TRUE_STATUS_POLL_S = 0.01


def open_channel(
    endpoint: str, *, insecure: bool = False, ca_file: str | None = None
) -> grpc.aio.Channel:
    """A channel to `endpoint`; must be called with an event loop running."""
    if insecure:
        return grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
    roots = None
    if ca_file:
        try:
            with open(ca_file, "rb") as file:
                roots = file.read()
        except OSError as exc:
            raise UsageError(f"--ca-file {ca_file}: {exc.strerror or exc}") from None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.aio.secure_channel(endpoint, credentials, options=CHANNEL_OPTIONS)


def service_error(
    code: grpc.StatusCode,
    details: str | None,
    *,
    endpoint: str = "",
    ids: RequestIds | None = None,
) -> ServiceError:
    return ServiceError(str(code.name), details or "", endpoint=endpoint, ids=ids or RequestIds())


@dataclass(frozen=True)
class _Status:
    code: grpc.StatusCode
    details: str
    ids: RequestIds

    @property
    def synthetic(self) -> bool:
        return self.code is grpc.StatusCode.INTERNAL and self.details == _SYNTHETIC_DETAILS


class StreamCall:
    """One StreamingRecognize call: write requests, read responses, learn the true status."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        metadata: Sequence[tuple[str, str]],
        *,
        timeout: float | None,
        endpoint: str,
    ) -> None:
        # The generated grpc module has no type stubs; the call is typed as Any below.
        stub = stt_service_pb2_grpc.SttServiceStub(channel)  # type: ignore[no-untyped-call]
        self.endpoint = endpoint
        # What we sent as credentials, so that a server repeating it in an
        # error message does not make us print it.
        self._secrets = _secret_values(metadata)
        self._call: Any = stub.StreamingRecognize(metadata=tuple(metadata), timeout=timeout)
        self._statuses: list[_Status] = []
        self._call.add_done_callback(self._record_status)
        self.config_sent = False  # the transport took the first message: we are connected
        self.responses_seen = 0

    def _record_status(self, call: Any) -> None:
        code = _settled(call.code())
        if code is None:
            return
        metadata = list(_settled(call.initial_metadata()) or ()) + list(
            _settled(call.trailing_metadata()) or ()
        )
        details = self._scrub(_settled(call.details()) or "")
        self._statuses.append(_Status(code, details, _request_ids(metadata)))

    def _scrub(self, text: str) -> str:
        for secret in learned(self._secrets):
            text = text.replace(secret, MASK)
        return text

    def status(self) -> _Status | None:
        """The server's status if the call has ended: the first one that is not grpc's own."""
        for status in self._statuses:
            if not status.synthetic:
                return status
        return self._statuses[0] if self._statuses else None

    def error(self) -> ServiceError | None:
        status = self.status()
        if status is None or status.code is grpc.StatusCode.OK:
            return None
        return service_error(status.code, status.details, endpoint=self.endpoint, ids=status.ids)

    async def write(self, request: wire.Request) -> bool:
        """Send one message; False if the call has ended (its status tells why)."""
        if self._call.done():
            return False
        try:
            await self._call.write(request)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return False
        self.config_sent = True
        return True

    async def done_writing(self) -> None:
        if self._call.done():
            return
        try:
            await self._call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass

    async def responses(self) -> AsyncIterator[wire.Response]:
        """Responses until the server ends the call; its error is raised as ServiceError."""
        try:
            async for response in self._call:
                self.responses_seen += 1
                yield response
        except grpc.aio.AioRpcError as exc:
            await self._await_true_status()
            error = self.error()
            if error is None:
                details = self._scrub(exc.details() or "")
                error = service_error(exc.code(), details, endpoint=self.endpoint)
            raise error from None
        await self._await_true_status()
        error = self.error()
        if error is not None:
            raise error

    async def _await_true_status(self) -> None:
        """While grpc's own INTERNAL is all the call has said, wait briefly for the server's.

        The server's status replaces grpc's a moment later; taking grpc's
        would retry a request the server rejected (and repeat its finals).
        """
        for _ in range(_TRUE_STATUS_POLLS):
            status = self.status()
            if status is None or not status.synthetic:
                return
            self._record_status(self._call)
            if not self._statuses[-1].synthetic:
                return
            await asyncio.sleep(_TRUE_STATUS_POLL_S)

    def cancel(self) -> None:
        self._call.cancel()


def _secret_values(metadata: Sequence[tuple[str, str]]) -> list[str]:
    values: set[str] = set()
    for name, value in metadata:
        if is_secret_header(name):
            values.add(value)
            values.add(value.partition(" ")[2])
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def _request_ids(metadata: Sequence[tuple[str, Any]]) -> RequestIds:
    values = {key: value for key, value in metadata if isinstance(value, str)}
    return RequestIds(values.get("x-request-id"), values.get("x-server-trace-id"))


def _settled(coroutine: Coroutine[Any, Any, T]) -> T | None:
    """The value of a coroutine that finishes without waiting, such as a finished call's accessors.

    The done-callback that records a status runs synchronously, and the status
    it sees may be overwritten a moment later (see the module docstring).
    """
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coroutine.close()
    return None
