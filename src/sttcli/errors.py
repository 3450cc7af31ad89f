"""Every failure sttcli reports, with the exit code it ends the process with.

    SttError                      .exit_code
    ├── UsageError                2   bad flags or combinations, missing credentials
    ├── BadInput                  2   missing/unreadable/empty input, unsupported audio
    ├── CredentialError           2   a key file or yc config that cannot be used
    │   ├── CredentialRefused     4   IAM (or yc) refused to issue a token
    │   └── CredentialUnreachable 6   IAM or the metadata service did not answer
    ├── SessionLimitError         3   input that cannot be split into sessions (Ogg Opus on a pipe)
    ├── ServiceError              3-7 a gRPC status: see EXIT_CODE_BY_STATUS
    └── Interrupted               130 Ctrl-C (SIGINT), 143 SIGTERM
    OutputError                   2   results cannot be written (stdout or -o closed or full)

`OutputError` is not an `SttError` on purpose: it is no input's failure, so
it is not kept as one input's result; it stops the whole run.

The module knows gRPC status codes by name only, so it imports nothing heavy;
`sttcli.client.StreamCall` turns a call's gRPC status into `ServiceError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL_ERROR = 1  # a bug in sttcli: short message, -v shows the traceback
    USAGE = 2  # also Click's own exit code for usage errors, and bad input
    REJECTED = 3
    AUTH = 4
    QUOTA = 5
    UNAVAILABLE = 6
    SERVER_FAILURE = 7
    # 128 + SIGINT, what a shell reports for a process killed by Ctrl-C; Click
    # alone would exit 1, which scripts cannot tell from a failure.
    INTERRUPTED = 130
    # 128 + SIGTERM: what `timeout`, `docker stop` and systemd send. Handled
    # as Ctrl-C is (what was recognized is kept and written), told apart by it.
    TERMINATED = 143


EXIT_CODE_BY_STATUS: dict[str, ExitCode] = {
    "INVALID_ARGUMENT": ExitCode.REJECTED,
    "FAILED_PRECONDITION": ExitCode.REJECTED,
    "OUT_OF_RANGE": ExitCode.REJECTED,
    "NOT_FOUND": ExitCode.REJECTED,
    "ALREADY_EXISTS": ExitCode.REJECTED,
    "UNIMPLEMENTED": ExitCode.REJECTED,
    "UNAUTHENTICATED": ExitCode.AUTH,
    "PERMISSION_DENIED": ExitCode.AUTH,
    "RESOURCE_EXHAUSTED": ExitCode.QUOTA,
    "UNAVAILABLE": ExitCode.UNAVAILABLE,
    "DEADLINE_EXCEEDED": ExitCode.UNAVAILABLE,
    "INTERNAL": ExitCode.SERVER_FAILURE,
    "UNKNOWN": ExitCode.SERVER_FAILURE,
    "DATA_LOSS": ExitCode.SERVER_FAILURE,
    "ABORTED": ExitCode.SERVER_FAILURE,
    "CANCELLED": ExitCode.SERVER_FAILURE,
}

# Statuses worth another attempt: the next one may well succeed. Everything
# else is final; OUT_OF_RANGE in particular is a session limit, not a quota.
RETRYABLE_STATUSES = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL"})

_AUTH_HINT = (
    "check the IAM token (YC_IAM_TOKEN) or API key (YC_API_KEY), and the folder id "
    "(YC_FOLDER_ID) that an IAM token of a user account needs"
)


class SttError(Exception):
    """Base of every error sttcli turns into a message and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR
    code: str = "INTERNAL_ERROR"

    @property
    def message(self) -> str:
        return str(self)


class UsageError(SttError):
    exit_code = ExitCode.USAGE
    code = "USAGE"


class BadInput(SttError):
    """A local input problem: the file, the stream or its audio format."""

    exit_code = ExitCode.USAGE
    code = "BAD_INPUT"


class SessionLimitError(SttError):
    exit_code = ExitCode.REJECTED
    code = "OUT_OF_RANGE"


class CredentialError(SttError):
    """A credential of the chain that cannot be used: a bad key file or yc config."""

    exit_code = ExitCode.USAGE
    code = "USAGE"


class CredentialRefused(CredentialError):
    """The IAM endpoint, the metadata service or `yc` refused to give a token."""

    exit_code = ExitCode.AUTH
    code = "UNAUTHENTICATED"


class CredentialUnreachable(CredentialError):
    """The IAM endpoint or the metadata service could not be reached in time."""

    exit_code = ExitCode.UNAVAILABLE
    code = "UNAVAILABLE"


class Interrupted(SttError):
    """Stopped by a signal: Ctrl-C (SIGINT) or SIGTERM; `stop_signal` says which came."""

    code = "INTERRUPTED"

    def __init__(self, terminated: bool | None = None) -> None:
        if terminated is None:
            terminated = stop_signal.terminated
        self.terminated = terminated
        super().__init__("terminated (SIGTERM)" if terminated else "interrupted")

    @property
    def exit_code(self) -> ExitCode:  # type: ignore[override]
        return ExitCode.TERMINATED if self.terminated else ExitCode.INTERRUPTED


class _StopSignal:
    """Which signal is stopping this run; set by the CLI's signal handling."""

    terminated = False


stop_signal = _StopSignal()


class OutputError(Exception):
    """Results cannot be written: stdout or -o is closed, full, or failing."""

    exit_code = ExitCode.USAGE

    @property
    def message(self) -> str:
        return str(self)


@dataclass(frozen=True)
class RequestIds:
    """Identifiers a server attaches to a call; support asks for them."""

    request_id: str | None = None
    server_trace_id: str | None = None

    def describe(self) -> str:
        parts = [
            f"{name}: {value}"
            for name, value in (
                ("x-request-id", self.request_id),
                ("x-server-trace-id", self.server_trace_id),
            )
            if value
        ]
        return f" ({', '.join(parts)})" if parts else ""


class ServiceError(SttError):
    """The server (or the channel to it) ended a call with a non-OK status."""

    def __init__(
        self,
        status: str,
        details: str,
        *,
        endpoint: str = "",
        ids: RequestIds | None = None,
    ) -> None:
        self.status = status
        self.details = details.strip()
        self.endpoint = endpoint
        self.ids = ids or RequestIds()
        super().__init__(self._describe())

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.status

    @property
    def exit_code(self) -> ExitCode:  # type: ignore[override]
        return EXIT_CODE_BY_STATUS.get(self.status, ExitCode.SERVER_FAILURE)

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES

    def _describe(self) -> str:
        details = self.details or "no details"
        exit_code = self.exit_code
        if exit_code is ExitCode.REJECTED:
            text = f"request rejected ({self.status}): {details}"
        elif exit_code is ExitCode.AUTH:
            text = f"not authorized ({self.status}): {details}; {_AUTH_HINT}"
        elif exit_code is ExitCode.QUOTA:
            text = f"quota exceeded ({self.status}): {details}"
        elif exit_code is ExitCode.UNAVAILABLE:
            where = f" {self.endpoint}" if self.endpoint else " the server"
            text = f"cannot get an answer from{where} ({self.status}): {details}"
        else:
            text = f"server failed ({self.status}): {details}"
        return text + self.ids.describe()
