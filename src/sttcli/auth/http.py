"""JSON over HTTP for the IAM endpoint and the metadata service, failures mapped to exit codes.

Plain `urllib`: two small requests do not justify a dependency. A refusal
(401, 403) is `CredentialRefused` with the server's own message; a server that
cannot be reached or does not answer in time is `CredentialUnreachable`
naming it. Loopback and the metadata service are never reached through a
proxy: the one is this machine and the other is link-local.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sttcli.auth.secrets import scrubbed
from sttcli.errors import CredentialError, CredentialRefused, CredentialUnreachable
from sttcli.loopback import is_loopback_host

if TYPE_CHECKING:
    import urllib.error

_MAX_BODY = 1 << 20  # an answer larger than this is not a token


def request_json(
    url: str,
    *,
    what: str,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float,
    use_proxy: bool = True,
) -> dict[str, Any]:
    """GET (or POST `body` as JSON) and return the JSON object answered.

    `what` names the server in messages, e.g. "IAM endpoint https://...".
    """
    # urllib.request pulls in ssl and email: only for a run that fetches a token.
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    handlers = (
        []
        if use_proxy and not is_loopback_host(urlsplit(url).hostname or "")
        else [urllib.request.ProxyHandler({})]
    )
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            raw = response.read(_MAX_BODY)
    except urllib.error.HTTPError as error:
        message = _error_message(error)
        if error.code in (401, 403):
            raise CredentialRefused(f"{what} refused: HTTP {error.code}: {message}") from None
        if error.code >= 500 or error.code == 429:
            raise CredentialUnreachable(f"{what} failed: HTTP {error.code}: {message}") from None
        raise CredentialRefused(f"{what} answered HTTP {error.code}: {message}") from None
    except TimeoutError:
        raise CredentialUnreachable(f"{what} did not answer in {timeout:g} s") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise CredentialUnreachable(f"{what} did not answer in {timeout:g} s") from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise CredentialUnreachable(f"cannot reach {what}: {text}") from None
    except (OSError, ValueError) as error:  # a reset connection, a malformed URL
        raise CredentialUnreachable(f"cannot reach {what}: {error}") from None
    try:
        document = json.loads(raw)
    except ValueError:
        raise CredentialUnreachable(f"{what} answered something that is not JSON") from None
    if not isinstance(document, dict):
        raise CredentialUnreachable(f"{what} answered JSON that is not an object")
    return document


def check_url(url: str, *, option: str) -> str:
    """An https URL with a host (http only to loopback), or a usage error naming the option.

    The JWT POSTed there is as good as a token for an hour: in clear text it
    may cross nothing but this machine.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CredentialError(f"{option} {url}: expected an http:// or https:// URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise CredentialError(
            f"{option} {url}: http:// would send the key's JWT in clear text; use https:// "
            "(http:// only to this machine)"
        )
    return url


def _error_message(error: urllib.error.HTTPError) -> str:
    """The server's own words: IAM answers {"message": ...}, others plain text."""
    try:
        raw = error.read(4096).decode("utf-8", "replace")
    except OSError:
        raw = ""
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if isinstance(document, dict):
        for key in ("message", "error_description", "error"):
            if isinstance(document.get(key), str) and document[key]:
                return scrubbed(str(document[key]))
    text = " ".join(scrubbed(raw).split())
    return text[:200] if text else (error.reason or "no details")
