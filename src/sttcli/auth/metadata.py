"""The metadata service of a Yandex Cloud VM or serverless container: the attached account's token.

It is asked only where it can exist: when the machine says it is a Yandex
Cloud VM (`/sys/class/dmi/id/sys_vendor`), or when the user asks for it
(`--metadata-credentials`, `YC_METADATA_CREDENTIALS=1`). Elsewhere a request
to a link-local address would only hang or, worse, reach something else.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from sttcli.auth.http import request_json
from sttcli.auth.secrets import KNOWN
from sttcli.auth.tokens import DEFAULT_TOKEN_LIFETIME, IssuedToken
from sttcli.errors import CredentialError, CredentialUnreachable

DEFAULT_ADDRESS = "169.254.169.254"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
SYS_VENDOR_PATH = Path("/sys/class/dmi/id/sys_vendor")
# For tests only: another file in its place, so that sttcli run as a process of
# its own is told "not a Yandex Cloud VM" (or "one") by the test, not the host.
SYS_VENDOR_VARIABLE = "STTCLI_SYS_VENDOR_PATH"
METADATA_TIMEOUT_SECONDS = 5.0


def on_yandex_cloud(vendor_path: Path | None = None) -> bool:
    """Does the machine say it is a Yandex Cloud VM? (The path is injectable for tests.)"""
    override = os.environ.get(SYS_VENDOR_VARIABLE, "")
    path = vendor_path or (Path(override) if override else SYS_VENDOR_PATH)
    try:
        vendor = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "yandex" in vendor.lower()


def asked_for(flag: bool, environ: Mapping[str, str]) -> bool:
    value = environ.get("YC_METADATA_CREDENTIALS", "").strip().lower()
    return flag or value in ("1", "true", "yes", "on")


def token_url(environ: Mapping[str, str]) -> str:
    """The token's URL at `YC_METADATA_ADDR` (host or host:port; default 169.254.169.254)."""
    address = environ.get("YC_METADATA_ADDR", "").strip() or DEFAULT_ADDRESS
    if "://" in address or "/" in address:
        raise CredentialError(f"YC_METADATA_ADDR {address}: expected HOST or HOST:PORT")
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6 and not address.startswith("["):
            address = f"[{address}]"
    except ValueError:
        pass  # a name
    return f"http://{address}{TOKEN_PATH}"


def token_fetcher(
    url: str, *, timeout: float = METADATA_TIMEOUT_SECONDS
) -> Callable[[float], IssuedToken]:
    """A `Fetch` reading `{"access_token": ..., "expires_in": ...}` from the metadata service."""
    what = f"metadata service {url.split('/computeMetadata')[0]}"

    def fetch(now: float) -> IssuedToken:
        answer = request_json(
            url,
            what=what,
            headers={"Metadata-Flavor": "Google"},
            timeout=timeout,
            use_proxy=False,
        )
        value = answer.get("access_token")
        if not isinstance(value, str) or not value:
            raise CredentialUnreachable(f"{what} answered without an access_token")
        KNOWN.learn(value)
        expires_in = answer.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, (int, float)) and expires_in > 0
            else DEFAULT_TOKEN_LIFETIME
        )
        return IssuedToken(value, issued_at=now, expires_at=now + lifetime)

    return fetch
