"""Fakes of what the credential chain talks to, on loopback: IAM, the metadata service, `yc`.

`TokenAuthority` issues IAM tokens with a lifetime the test chooses and says
which are valid now; the fake IAM endpoint and the fake metadata service issue
from it, and a recognition server can accept only what it issued
(`IssuedTokensAuth`). The fake IAM verifies the JWT the way IAM does: the
signature with the key's public key, `kid`, `iss`, `aud`, and an `exp` at
most an hour after `iat`.
"""

from __future__ import annotations

import json
import secrets
import stat
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from sttcli.auth.keyfile import JWT_AUDIENCE
from sttcli.auth.metadata import TOKEN_PATH
from sttcli.server.servicer import Auth

# -- keys -------------------------------------------------------------------


@dataclass(frozen=True)
class TestKey:
    """A service account's authorized key, made up for the test session."""

    private: RSAPrivateKey
    key_id: str = "ajetestkey0000000001"
    service_account_id: str = "ajetestserviceaccount"

    __test__ = False  # not a test class for pytest

    @classmethod
    def generate(cls) -> TestKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def fields(self) -> dict[str, str]:
        """What `yc iam key create -o key.json` writes (yc's marker line included)."""
        return {
            "id": self.key_id,
            "service_account_id": self.service_account_id,
            "created_at": "2026-01-01T00:00:00Z",
            "key_algorithm": "RSA_2048",
            "public_key": self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode(),
            "private_key": "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID "
            f"<{self.key_id}>\n{self.pem}",
        }

    def write(self, path: Path, **changes: Any) -> Path:
        fields: dict[str, Any] = self.fields()
        fields.update(changes)
        path.write_text(json.dumps({k: v for k, v in fields.items() if v is not None}))
        return path

    def secret_parts(self) -> list[str]:
        """Pieces of the private key that must never be shown: its body lines."""
        return [line for line in self.pem.splitlines() if not line.startswith("-----")]


# -- tokens -------------------------------------------------------------------


class TokenAuthority:
    """Issues IAM tokens and knows which are valid now (on the wall clock)."""

    def __init__(self) -> None:
        self.lifetime = 3600.0
        self.checked = 0  # calls a recognition server asked about
        self.refused: list[str] = []  # and why it refused some
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, lifetime: float | None = None) -> tuple[str, float]:
        """A new token and when it expires."""
        token = f"t1.fake-{secrets.token_urlsafe(24)}"
        expires = time.time() + (self.lifetime if lifetime is None else lifetime)
        with self._lock:
            self._expiry[token] = expires
        return token, expires

    def valid(self, token: str) -> bool:
        with self._lock:
            expires = self._expiry.get(token)
        return expires is not None and time.time() < expires

    def refusal(self, metadata: dict[str, str]) -> str | None:
        """For a recognition server: why these call metadata are refused, or None."""
        scheme, _, token = metadata.get("authorization", "").partition(" ")
        reason = None
        if scheme != "Bearer":
            reason = "an IAM token is required"
        elif token not in self._expiry:
            reason = "this IAM token was not issued here"
        elif not self.valid(token):
            reason = "the IAM token has expired"
        with self._lock:
            self.checked += 1
            if reason is not None:
                self.refused.append(reason)
        return reason

    @property
    def issued(self) -> list[str]:
        with self._lock:
            return list(self._expiry)


@dataclass(frozen=True)
class IssuedTokensAuth(Auth):
    """`sttcli serve`'s Auth, accepting exactly the tokens an authority issued and still valid."""

    authority: TokenAuthority = field(default_factory=TokenAuthority)

    def check(self, metadata: dict[str, str]) -> str | None:
        return self.authority.refusal(metadata)


def rfc3339(at: float) -> str:
    """As IAM writes it: nanoseconds and a Z."""
    moment = datetime.fromtimestamp(at, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}123Z"


# -- HTTP fakes ----------------------------------------------------------------


class _FakeHttp:
    """An HTTP server on 127.0.0.1:0 in a thread; subclasses answer in `answer()`."""

    def __init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self._reply()

            def do_POST(self) -> None:  # noqa: N802
                self._reply()

            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.bodies.append(body)
                status, document = fake.answer(self.command, self.path, dict(self.headers), body)
                if fake.delay:
                    time.sleep(fake.delay)
                data = json.dumps(document).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.delay = 0.0
        self.bodies: list[bytes] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeIam(_FakeHttp):
    """POST /iam/v1/tokens {"jwt"} -> {"iamToken", "expiresAt"}, checking the JWT as IAM does."""

    def __init__(self, key: TestKey, authority: TokenAuthority) -> None:
        self.key = key
        self.authority = authority
        self.refuse: tuple[int, str] | None = None  # (status, message) to answer instead
        self.issue_limit: int | None = None  # refuse with 401 after this many exchanges
        self.careless = False  # a refusal quotes the request, JWT and all
        self.jwts: list[str] = []
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/iam/v1/tokens"

    def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        self.requests.append((method, path, headers))
        if method != "POST" or path != "/iam/v1/tokens":
            return 404, {"message": "not found"}
        if self.refuse is None and self.issue_limit is not None:
            if len(self.jwts) >= self.issue_limit:
                self.refuse = (401, "the key has been deleted")
        if self.refuse is not None:
            message = self.refuse[1]
            if self.careless:
                message += f" (request: {body.decode(errors='replace')})"
            return self.refuse[0], {"code": 16, "message": message}
        try:
            token = json.loads(body)["jwt"]
            self.jwts.append(token)
            self._verify(token)
        except (ValueError, KeyError, jwt.PyJWTError) as error:
            return 401, {"code": 16, "message": f"invalid JWT: {error}"}
        issued, expires = self.authority.issue()
        return 200, {"iamToken": issued, "expiresAt": rfc3339(expires)}

    def _verify(self, token: str) -> None:
        header = jwt.get_unverified_header(token)
        if header.get("kid") != self.key.key_id or header.get("alg") != "PS256":
            raise ValueError(f"unexpected header {header}")
        claims = jwt.decode(
            token,
            self.key.private.public_key(),
            algorithms=["PS256"],
            audience=JWT_AUDIENCE,
            options={"require": ["iss", "aud", "iat", "exp"]},
        )
        if claims["iss"] != self.key.service_account_id:
            raise ValueError("iss is not the key's service account")
        if not 0 < claims["exp"] - claims["iat"] <= 3600:
            raise ValueError("exp must be at most an hour after iat")


class FakeMetadata(_FakeHttp):
    """GET .../service-accounts/default/token with Metadata-Flavor: Google."""

    def __init__(self, authority: TokenAuthority) -> None:
        self.authority = authority
        self.status = 200
        super().__init__()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        self.requests.append((method, path, headers))
        if path != TOKEN_PATH:
            return 404, {"error": "not found"}
        if headers.get("Metadata-Flavor") != "Google":
            return 403, {"error": "missing Metadata-Flavor: Google"}
        if self.status != 200:
            return self.status, {"error": "the metadata service is unwell"}
        token, expires = self.authority.issue()
        return 200, {
            "access_token": token,
            "expires_in": int(round(expires - time.time())),
            "token_type": "Bearer",
        }


# -- yc ------------------------------------------------------------------------

_FAKE_YC = """#!{python}
import pathlib, sys
here = pathlib.Path({here!r})
with open(here / "argv.log", "a") as log:
    log.write(repr(sys.argv[1:]) + "\\n")
failure = here / "fail"
if failure.exists():
    sys.stderr.write("WARNING: something else first\\n" + failure.read_text())
    sys.exit(1)
tokens = (here / "tokens").read_text().split()
count = len((here / "argv.log").read_text().splitlines())
print(tokens[min(count, len(tokens)) - 1])
"""


class FakeYc:
    """An executable `yc` in a directory of its own: prints the tokens it is given, in turn."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "yc"
        self.path.write_text(_FAKE_YC.format(python=sys.executable, here=str(directory)))
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)
        self.tokens([])

    def tokens(self, values: list[str]) -> None:
        (self.directory / "tokens").write_text("\n".join(values) + "\n")

    def fail(self, stderr: str) -> None:
        (self.directory / "fail").write_text(stderr)

    @property
    def argvs(self) -> list[str]:
        log = self.directory / "argv.log"
        return log.read_text().splitlines() if log.exists() else []


def write_yc_config(home: Path, text: str) -> Path:
    path = home / ".config" / "yandex-cloud" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def profile_with_key(key: TestKey, *, folder: str = "b1gfolder") -> str:
    """A yc profile holding a service account key, indented as yc writes it."""
    fields = key.fields()
    lines = ["    service-account-key:"]
    for name in ("id", "service_account_id", "created_at", "key_algorithm"):
        lines.append(f"      {name}: {fields[name]}")
    for name in ("public_key", "private_key"):
        lines.append(f"      {name}: |")
        lines += [f"        {line}" for line in fields[name].splitlines()]
    lines.append(f"    folder-id: {folder}")
    return "\n".join(lines)


def running(fake: _FakeHttp) -> Iterator[Any]:
    try:
        yield fake
    finally:
        fake.stop()
