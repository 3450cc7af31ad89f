"""Checks that `recognize` makes before it opens a connection or reads audio.

Each failure here is a usage error (exit 2) with its reason, found before
any work is done: an output that would overwrite an input, an output
directory that cannot be written, an endpoint or a CA file that cannot
work, credentials or headers that gRPC would refuse mid-call.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from sttcli.auth.credentials import Credential
from sttcli.errors import UsageError

# gRPC servers refuse a request whose metadata is over 8 KiB (HPACK counts 32
# bytes per entry besides the name and the value).
MAX_METADATA_BYTES = 8 * 1024
_ENTRY_OVERHEAD = 32
_PEM_MARKER = b"-----BEGIN CERTIFICATE-----"
_MAX_CA_FILE = 4 * 1024 * 1024


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def refuse_outputs_that_are_inputs(inputs: Iterable[str], outputs: Sequence[Path]) -> None:
    """An output file that is one of the inputs (same file, by inode) would destroy it."""
    existing = {ident: path for path in outputs if (ident := _identity(path)) is not None}
    if not existing:
        return
    for name in inputs:
        if name == "-":
            continue
        ident = _identity(name)
        if ident is not None and ident in existing:
            raise UsageError(
                f"{existing[ident]} is an input ({name}): writing results there would destroy it"
            )


def prepare_output_dir(directory: Path, *, create: bool) -> None:
    """Make --output-dir (with its parents) and check now that files can be written in it."""
    where = f"--output-dir {directory}"
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{where}: not a directory")
    if not create:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{where}: cannot create it: {error.strerror or error}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".sttcli-probe-"):
            pass
    except OSError as error:
        raise UsageError(f"{where}: cannot write in it: {error.strerror or error}") from None


def check_endpoint(endpoint: str) -> None:
    """HOST:PORT (or a gRPC target such as dns:///host:port or unix:path): refuse what cannot be."""
    text = endpoint.strip()
    if not text:
        raise UsageError("--endpoint is empty: give HOST:PORT")
    if not text.isprintable() or not text.isascii() or " " in text:
        raise UsageError("--endpoint: HOST:PORT must be printable ASCII without spaces")
    if "://" in text or text.startswith("unix:"):
        return  # a gRPC target URI: gRPC checks it
    if text.startswith("["):  # [IPv6]:PORT
        end = text.find("]")
        if end == -1 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            raise UsageError(f"--endpoint {text}: expected [ADDRESS]:PORT")
        host, port = text[: end + 1], text[end + 2 :]
        if not text[end + 1 :]:
            return
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        return  # no port (gRPC's default applies), or a bare IPv6 address
    if not host:
        raise UsageError(f"--endpoint {text}: no host before the port")
    if not port.isdigit():
        raise UsageError(f"--endpoint {text}: the port must be a number from 1 to 65535")
    if not 1 <= int(port) <= 65535:
        raise UsageError(f"--endpoint {text}: port {int(port)} is not in 1..65535")


def check_ca_file(path: str) -> None:
    """--ca-file must be readable PEM certificates: a wrong file would fail only when connecting."""
    try:
        with open(path, "rb") as file:
            content = file.read(_MAX_CA_FILE + 1)
    except OSError as error:
        raise UsageError(f"--ca-file {path}: cannot read it: {error.strerror or error}") from None
    if len(content) > _MAX_CA_FILE or _PEM_MARKER not in content:
        raise UsageError(
            f"--ca-file {path}: not PEM certificates (no '-----BEGIN CERTIFICATE-----')"
        )


def check_credential(credential: Credential | None) -> None:
    """A credential gRPC can send: printable ASCII without spaces. Its value is never shown."""
    if credential is None:
        return
    value = credential.value
    if not value.isascii() or not value.isprintable() or " " in value:
        raise UsageError(
            f"{credential.source}: the {credential.kind} must be printable ASCII without spaces "
            "(a control or non-ASCII character was found)"
        )


def check_metadata_size(metadata: Sequence[tuple[str, str]]) -> None:
    size = sum(len(name) + len(value.encode()) + _ENTRY_OVERHEAD for name, value in metadata)
    if size > MAX_METADATA_BYTES:
        raise UsageError(
            f"call metadata of {size} bytes (credentials and -H headers) is over the "
            f"{MAX_METADATA_BYTES} bytes gRPC servers accept"
        )
