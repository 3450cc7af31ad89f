"""Credentials and call metadata, and how they are shown: never in full.

Values are read through `CredentialSource` at the start of every session, so
a long transcription picks up a token that its environment has refreshed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sttcli.auth.secrets import MASK as MASK  # re-exported: where masking lives
from sttcli.errors import UsageError

Metadata = tuple[tuple[str, str], ...]

_HEADER_NAME = re.compile(r"^[0-9a-z_.-]+$")
_SECRET_NAME_PARTS = ("authorization", "token", "key", "secret", "password", "cookie")


@dataclass(frozen=True)
class Credential:
    kind: str  # "IAM token" or "API key"
    source: str  # the flag or environment variable it came from
    value: str = field(repr=False)

    @property
    def scheme(self) -> str:
        return "Bearer" if self.kind == "IAM token" else "Api-Key"

    def header(self) -> tuple[str, str]:
        return ("authorization", f"{self.scheme} {self.value}")

    def describe(self) -> str:
        return f"{self.kind} from {self.source}"


class CredentialProvider(Protocol):
    """What sessions ask for credentials: `sttcli.auth.chain` builds one from the chain."""

    @property
    def refreshable(self) -> bool:
        """Fetched by sttcli (a key, a profile, the metadata service): it can get a new one."""
        ...

    def resolve(self) -> Credential | None:
        """The credential for a new session; may block while a token is fetched."""
        ...

    def preview(self) -> Credential | None:
        """What `resolve()` would give, without fetching anything (--dry-run)."""
        ...

    def reject(self, value: str) -> None:
        """The service refused `value`: do not hand it out again."""
        ...


@dataclass(frozen=True)
class CredentialSource:
    """Credentials given as values: flags, else the environment, read anew each call."""

    iam_token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    environ: Mapping[str, str] = field(
        default_factory=lambda: os.environ, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.iam_token and self.api_key:
            raise UsageError("--iam-token and --api-key are mutually exclusive; give one")

    def resolve(self) -> Credential | None:
        if self.iam_token:
            return Credential("IAM token", "--iam-token", self.iam_token)
        if self.api_key:
            return Credential("API key", "--api-key", self.api_key)
        # As in the vendor's SDK, an API key in the environment wins over a token.
        for variable, kind in (
            ("YC_API_KEY", "API key"),
            ("YC_IAM_TOKEN", "IAM token"),
            ("IAM_TOKEN", "IAM token"),
        ):
            value = self.environ.get(variable, "").strip()
            if value:
                return Credential(kind, variable, value)
        return None

    @property
    def refreshable(self) -> bool:
        return False  # the user's own value: sttcli has no other to try

    def preview(self) -> Credential | None:
        return self.resolve()

    def reject(self, value: str) -> None:
        pass


def known_secrets(params: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """Every credential a command could send, for scrubbing what it prints.

    From the flags, the environment, and -H headers whose names say secret
    (`-H 'x-client-request-id: run-42'` is not one).
    """
    environ = os.environ if environ is None else environ
    values = [params.get("iam_token"), params.get("api_key")]
    values += [environ.get(v) for v in ("YC_API_KEY", "YC_IAM_TOKEN", "IAM_TOKEN")]
    # Key files, profiles and fetched tokens join `sttcli.auth.secrets.KNOWN` when read.
    for header in params.get("headers") or ():
        name, _, value = header.partition(":")
        if is_secret_header(name.strip().lower()):
            values += [value.strip(), value.strip().partition(" ")[2]]
    return [v.strip() for v in values if v and v.strip()]


def parse_header(text: str) -> tuple[str, str]:
    """`NAME: VALUE` from -H, checked against what gRPC metadata accepts."""
    name, sep, value = text.partition(":")
    name = name.strip().lower()
    value = value.strip()
    if not sep or not name:
        # The text is not echoed: a mistyped header may well be a token.
        raise UsageError("-H expects 'NAME: VALUE'")
    if not _HEADER_NAME.match(name) or name.startswith("grpc-") or name.endswith("-bin"):
        raise UsageError(
            f"-H: {name!r} is not a usable metadata name "
            "(lowercase letters, digits, '-', '_', '.'; not grpc-*, not *-bin)"
        )
    if not value.isprintable() or not value.isascii():
        raise UsageError(f"-H {name}: the value must be printable ASCII")
    return name, value


def is_secret_header(name: str) -> bool:
    return any(part in name for part in _SECRET_NAME_PARTS)


def mask_value(name: str, value: str) -> str:
    if not is_secret_header(name):
        return value
    scheme, _, rest = value.partition(" ")
    if rest and scheme in ("Bearer", "Api-Key"):
        return f"{scheme} {MASK}"
    return MASK


def masked(metadata: Sequence[tuple[str, str]]) -> dict[str, str]:
    return {name: mask_value(name, value) for name, value in metadata}


def build_metadata(
    credential: Credential | None,
    headers: Sequence[tuple[str, str]] = (),
    *,
    normalize_partials: bool = False,
) -> Metadata:
    metadata: list[tuple[str, str]] = []
    if credential is not None:
        metadata.append(credential.header())
    if normalize_partials:
        metadata.append(("x-normalize-partials", "true"))
    metadata.extend(headers)
    return tuple(metadata)
