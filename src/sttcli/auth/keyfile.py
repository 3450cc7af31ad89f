"""A service account's authorized key (`yc iam key create -o key.json`) exchanged for IAM tokens.

The exchange is Yandex IAM's: a JWT signed PS256 with the key's private key
(header `kid` = the key's id; claims `iss` = the service account, `aud` = the
public IAM tokens URL, `iat`, `exp` an hour later at most) POSTed as
`{"jwt": ...}`; the answer is `{"iamToken": ..., "expiresAt": ...}`. PyJWT
signs; nothing here is hand-rolled cryptography.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from sttcli.auth.http import request_json
from sttcli.auth.secrets import KNOWN
from sttcli.auth.tokens import (
    DEFAULT_TOKEN_LIFETIME,
    IAM_TOKENS_URL,
    IssuedToken,
    parse_rfc3339,
)
from sttcli.errors import CredentialError, CredentialUnreachable

JWT_AUDIENCE = IAM_TOKENS_URL  # the audience is this URL wherever the JWT is sent
JWT_LIFETIME_SECONDS = 3600  # the most IAM accepts
IAM_TIMEOUT_SECONDS = 15.0
_FIELDS = ("id", "service_account_id", "private_key")
_HOW_TO_GET_ONE = "a service account's authorized key, as `yc iam key create -o key.json` writes"


@dataclass(frozen=True)
class ServiceAccountKey:
    key_id: str
    service_account_id: str
    private_key: RSAPrivateKey = field(repr=False)
    origin: str  # where it came from, for messages: "--sa-key-file key.json"


def load_key_file(path: str, *, origin: str) -> ServiceAccountKey:
    """Read and check a key file; every problem is a usage error naming the file and the field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialError(f"{origin}: no such file") from None
    except IsADirectoryError:
        raise CredentialError(f"{origin}: is a directory, not a key file") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise CredentialError(f"{origin}: cannot read it: {reason}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        # The message is the parser's own words and a position, never the text.
        raise CredentialError(
            f"{origin}: not JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            f"expected {_HOW_TO_GET_ONE}"
        ) from None
    if not isinstance(data, dict):
        raise CredentialError(f"{origin}: expected a JSON object, {_HOW_TO_GET_ONE}")
    return key_from_fields(data, origin=origin)


def key_from_fields(data: Mapping[str, Any], *, origin: str) -> ServiceAccountKey:
    """A key from its JSON fields (a key file, or a yc profile's `service-account-key`)."""
    pem = data.get("private_key")
    if isinstance(pem, str):
        KNOWN.learn_pem(pem)  # before anything can fail and say something about it
    for name in _FIELDS:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            problem = "is missing" if value is None else "is not a non-empty string"
            raise CredentialError(f'{origin}: field "{name}" {problem}; expected {_HOW_TO_GET_ONE}')
    return ServiceAccountKey(
        key_id=str(data["id"]).strip(),
        service_account_id=str(data["service_account_id"]).strip(),
        private_key=_private_key(str(pem), origin=origin),
        origin=origin,
    )


def _private_key(text: str, *, origin: str) -> RSAPrivateKey:
    # yc puts a line before the PEM ("PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID ...").
    start = text.find("-----BEGIN")
    pem = text[start:] if start >= 0 else text
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):  # cryptography's words could quote the key: not shown
        raise CredentialError(
            f'{origin}: field "private_key" is not an unencrypted PEM private key'
        ) from None
    except Exception:  # an unsupported algorithm, in cryptography's own exception types
        raise CredentialError(f'{origin}: field "private_key" cannot be loaded') from None
    if not isinstance(key, RSAPrivateKey):
        raise CredentialError(f'{origin}: field "private_key" is not an RSA key (PS256 needs one)')
    return key


def signed_jwt(key: ServiceAccountKey, *, now: float | None = None) -> str:
    """The JWT that IAM exchanges for a token; `now` is wall-clock time (IAM checks it)."""
    issued = int(time.time() if now is None else now)
    token = jwt.encode(
        {
            "iss": key.service_account_id,
            "aud": JWT_AUDIENCE,
            "iat": issued,
            "exp": issued + JWT_LIFETIME_SECONDS,
        },
        key.private_key,
        algorithm="PS256",
        headers={"kid": key.key_id},
    )
    KNOWN.learn(token)
    return token


def token_fetcher(
    key: ServiceAccountKey,
    endpoint: str,
    *,
    timeout: float = IAM_TIMEOUT_SECONDS,
    wall_clock: Callable[[], float] = time.time,
) -> Callable[[float], IssuedToken]:
    """A `Fetch` for `RefreshingToken`: one JWT exchange per call."""

    def fetch(now: float) -> IssuedToken:
        answer = request_json(
            endpoint,
            what=f"IAM endpoint {endpoint}",
            body={"jwt": signed_jwt(key)},
            timeout=timeout,
        )
        return issued_token(answer, now=now, wall_now=wall_clock(), what=f"IAM endpoint {endpoint}")

    return fetch


def issued_token(
    answer: Mapping[str, Any], *, now: float, wall_now: float, what: str
) -> IssuedToken:
    """IAM's answer as a token on the caller's clock (`expiresAt` is on the wall's)."""
    value = answer.get("iamToken")
    if not isinstance(value, str) or not value:
        raise CredentialUnreachable(f"{what} answered without an iamToken")
    KNOWN.learn(value)
    lifetime = DEFAULT_TOKEN_LIFETIME
    expires = answer.get("expiresAt")
    if isinstance(expires, str):
        try:
            lifetime = parse_rfc3339(expires) - wall_now
        except ValueError:
            pass  # an odd time: assume the 12 hours IAM tokens live
    return IssuedToken(value, issued_at=now, expires_at=now + lifetime)
