"""The credential chain: which credential a run uses, decided once, before the first connection.

    1. flags        --api-key, --iam-token, --sa-key-file (one at most)
    2. environment  YC_API_KEY, then YC_IAM_TOKEN / IAM_TOKEN, then YC_SERVICE_ACCOUNT_KEY_FILE
    3. yc profile   --profile, else YC_PROFILE, else the config's current profile
    4. metadata     on a Yandex Cloud VM, or when asked (--metadata-credentials)

The first link that has something wins. What the machine merely has (the
current or YC_PROFILE's yc profile, a Yandex Cloud VM's metadata service) is
used only for SpeechKit's own endpoint: a server elsewhere (loopback, a test
double, someone else's) gets only credentials named for the run: flags,
credential variables, `--profile`, `--metadata-credentials`.

API keys and IAM tokens given as values are sent as they are (the environment
is read again for each session, so a token that the environment refreshes
keeps working); a key, a profile or the metadata service give IAM tokens that
sttcli fetches and refreshes (`sttcli.auth.tokens`). Resolving reads files
and the config but fetches nothing: that happens when the first session asks,
or `sttcli auth --check`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sttcli.auth import metadata, yc_profile
from sttcli.auth.credentials import MASK, Credential, CredentialProvider, CredentialSource
from sttcli.auth.http import check_url
from sttcli.auth.tokens import IAM_TOKENS_URL, Fetch, IssuedToken, RefreshingToken
from sttcli.errors import CredentialError
from sttcli.options import DEFAULT_ENDPOINT

KEY_FILE_VARIABLE = "YC_SERVICE_ACCOUNT_KEY_FILE"  # the name Yandex's Terraform provider reads
ENV_VALUES = ("YC_API_KEY", "YC_IAM_TOKEN", "IAM_TOKEN")


@dataclass(frozen=True)
class ChainOptions:
    """The credential options of `recognize` and `auth`."""

    api_key: str | None = field(default=None, repr=False)
    iam_token: str | None = field(default=None, repr=False)
    sa_key_file: str | None = None
    profile: str | None = None
    iam_endpoint: str | None = None
    metadata_credentials: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ChainOptions:
        return cls(
            api_key=params.get("api_key") or None,
            iam_token=params.get("iam_token") or None,
            sa_key_file=params.get("sa_key_file") or None,
            profile=params.get("profile") or None,
            iam_endpoint=params.get("iam_endpoint") or None,
            metadata_credentials=bool(params.get("metadata_credentials")),
        )


class FetchedCredentials:
    """IAM tokens sttcli fetches itself (a key, a profile, the metadata service), kept fresh."""

    refreshable = True

    def __init__(self, token: RefreshingToken, *, source: str) -> None:
        self.token = token
        self.source = source

    def resolve(self) -> Credential:
        return Credential("IAM token", self.source, self.token.current().value)

    def preview(self) -> Credential:
        return Credential("IAM token", self.source, MASK)

    def reject(self, value: str) -> None:
        self.token.reject(value)

    def current(self) -> IssuedToken:
        return self.token.current()


@dataclass(frozen=True)
class Resolution:
    """What the chain found: the provider, and what `sttcli auth` tells about it."""

    provider: CredentialProvider | None
    source: str  # "flag --sa-key-file", "env YC_API_KEY", 'yc profile "ci"', "metadata"; or ""
    kind: str  # "API key", "IAM token", "service account key", "yc profile", "metadata service"
    iam_endpoint: str
    folder_id: str = ""  # the profile's folder-id
    service_account_id: str | None = None
    key_id: str | None = None
    detail: str = ""  # the file, the profile's config, yc's command, the metadata URL
    looked_for: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.provider is not None

    def missing_message(self) -> str:
        return "no credentials: looked for " + "; ".join(self.looked_for)


def is_speechkit(endpoint: str) -> bool:
    """Is `endpoint` SpeechKit's own, the one server the machine's own credentials are for?"""
    host, _, port = endpoint.strip().rpartition(":")
    default_host, _, default_port = DEFAULT_ENDPOINT.rpartition(":")
    return host.lower().rstrip(".") == default_host and port == default_port


def check_flags(options: ChainOptions) -> None:
    """More than one credential flag is a usage error: which one was meant?"""
    given = [
        flag
        for flag, value in (
            ("--api-key", options.api_key),
            ("--iam-token", options.iam_token),
            ("--sa-key-file", options.sa_key_file),
        )
        if value
    ]
    if len(given) > 1:
        raise CredentialError(f"{' and '.join(given)} are mutually exclusive; give one")


def resolve_chain(
    options: ChainOptions,
    environ: Mapping[str, str] | None = None,
    *,
    vendor_path: Path | None = None,
    clock: Callable[[], float] = time.time,
    endpoint: str = DEFAULT_ENDPOINT,
) -> Resolution:
    """Walk the chain for a run against `endpoint`; the first link with something wins.

    Fetches nothing. Off SpeechKit's endpoint the implicit links are passed over.
    """
    environ = os.environ if environ is None else environ
    ambient = is_speechkit(endpoint)  # may the machine's own credentials go there?
    from_env = environ.get("YC_IAM_ENDPOINT", "").strip()
    iam_endpoint = check_url(
        options.iam_endpoint or from_env or IAM_TOKENS_URL,
        option="--iam-endpoint" if options.iam_endpoint else "YC_IAM_ENDPOINT",
    )

    def fetched(fetch: Fetch, source: str) -> FetchedCredentials:
        return FetchedCredentials(RefreshingToken(fetch, clock=clock), source=source)

    def key_resolution(path: str, source: str, origin: str) -> Resolution:
        from sttcli.auth import keyfile

        key = keyfile.load_key_file(path, origin=origin)
        return Resolution(
            fetched(keyfile.token_fetcher(key, iam_endpoint), origin),
            source,
            "service account key",
            iam_endpoint,
            service_account_id=key.service_account_id,
            key_id=key.key_id,
            detail=path,
        )

    # 1. Flags: one at most.
    check_flags(options)
    if options.sa_key_file:
        path = options.sa_key_file
        return key_resolution(path, "flag --sa-key-file", f"--sa-key-file {path}")
    values = CredentialSource(options.iam_token, options.api_key, environ)
    # 2. The environment (and flags given as values, which CredentialSource puts first).
    static = values.resolve()
    if static is not None:
        origin = "flag" if static.source.startswith("--") else "env"
        return Resolution(values, f"{origin} {static.source}", static.kind, iam_endpoint)
    key_file = environ.get(KEY_FILE_VARIABLE, "").strip()
    if key_file:
        return key_resolution(
            key_file, f"env {KEY_FILE_VARIABLE}", f"{KEY_FILE_VARIABLE} {key_file}"
        )
    looked_for = [
        "--api-key, --iam-token, --sa-key-file",
        f"{', '.join(ENV_VALUES)}, {KEY_FILE_VARIABLE}",
    ]
    # 3. A yc profile: named with --profile; YC_PROFILE's or the current one
    # only for SpeechKit (YC_PROFILE is yc's own shell-wide choice, not a
    # request to send that account's token to this endpoint).
    name, chosen_by = options.profile, "--profile"
    if not name and environ.get("YC_PROFILE", "").strip():
        name, chosen_by = environ["YC_PROFILE"].strip(), "YC_PROFILE"
    config = yc_profile.config_path(environ)
    profile = None
    if ambient or options.profile:
        profile = yc_profile.find_profile(
            name, chosen_by=chosen_by if name else "current", environ=environ
        )
    if profile is not None and profile.sa_key is not None:
        from sttcli.auth import keyfile

        key = profile.sa_key
        return Resolution(
            fetched(keyfile.token_fetcher(key, iam_endpoint), profile.label),
            profile.label,
            "yc profile with a service account key",
            iam_endpoint,
            folder_id=profile.folder_id,
            service_account_id=key.service_account_id,
            key_id=key.key_id,
            detail=str(profile.config),
        )
    if profile is not None and profile.yc is not None:
        return Resolution(
            fetched(yc_profile.yc_token_fetcher(profile), profile.label),
            profile.label,
            "yc profile (token from yc)",
            iam_endpoint,
            folder_id=profile.folder_id,
            detail=f"yc iam create-token --profile {profile.name}",
        )
    if profile is not None:
        if name:
            raise CredentialError(
                f"{profile.label} has no service-account-key, and yc, which could give its "
                "token, is not on PATH"
            )
        looked_for.append(f"{profile.label} in {config} (it needs yc on PATH, not found)")
    elif ambient:
        looked_for.append(f"a yc profile in {config}")
    else:
        looked_for.append(f"a yc profile named with --profile (others are for {DEFAULT_ENDPOINT})")
    # 4. The metadata service, only where it can exist, and unasked only for SpeechKit.
    asked = metadata.asked_for(options.metadata_credentials, environ)
    if asked or (ambient and metadata.on_yandex_cloud(vendor_path)):
        url = metadata.token_url(environ)
        return Resolution(
            fetched(metadata.token_fetcher(url), "the metadata service"),
            "metadata",
            "metadata service",
            iam_endpoint,
            detail=url,
        )
    looked_for.append(
        "the metadata service (not a Yandex Cloud VM; --metadata-credentials asks it anyway)"
        if ambient
        else f"the metadata service (unasked only for {DEFAULT_ENDPOINT}; "
        "--metadata-credentials asks it)"
    )
    return Resolution(None, "", "", iam_endpoint, looked_for=tuple(looked_for))
