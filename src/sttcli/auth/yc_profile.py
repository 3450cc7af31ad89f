"""A `yc` CLI profile as the credential: its service-account key, or `yc iam create-token`.

The config is `yc`'s own, `$XDG_CONFIG_HOME/yandex-cloud/config.yaml`
(`~/.config/...` by default): `current: NAME` and `profiles: {NAME: {...}}`.
A profile that holds a `service-account-key` is exchanged by sttcli itself,
with no `yc` needed; any other (OAuth, federation) asks `yc iam create-token
--profile NAME`, whose argv carries no secret, and reads the token from its
stdout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sttcli.auth.secrets import KNOWN, scrubbed
from sttcli.auth.tokens import DEFAULT_TOKEN_LIFETIME, IssuedToken
from sttcli.errors import CredentialError, CredentialRefused

if TYPE_CHECKING:
    from sttcli.auth.keyfile import ServiceAccountKey

YC_TIMEOUT_SECONDS = 60.0  # a federation may wait for a browser: long, but not forever
# Profile fields whose values are secrets, learned by the scrubber when read.
_SECRET_FIELDS = ("token", "service-account-key")


@dataclass(frozen=True)
class Profile:
    name: str
    chosen_by: str  # "--profile", "YC_PROFILE" or "current" (the config's)
    config: Path
    folder_id: str
    sa_key: ServiceAccountKey | None = field(default=None, repr=False)
    yc: str | None = None  # the `yc` executable, for profiles without a key

    @property
    def label(self) -> str:
        return f'yc profile "{self.name}"'


def config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME", "~"), ".config")
    return Path(os.path.expanduser(base)) / "yandex-cloud" / "config.yaml"


def find_profile(name: str | None, *, chosen_by: str, environ: Mapping[str, str]) -> Profile | None:
    """The profile to use, or None when there is no config or no profile to pick.

    A profile asked for by name (`--profile`, `YC_PROFILE`) that is not there is
    an error; so is a config that does not parse.
    """
    path = config_path(environ)
    asked = f"{chosen_by} {name}" if name else ""
    if not path.is_file():
        if name:
            raise CredentialError(f"{asked}: no yc config at {path}")
        return None
    config = _read_config(path)
    profiles = config.get("profiles")
    profiles = profiles if isinstance(profiles, dict) else {}
    if not name:
        current = config.get("current")
        if not isinstance(current, str) or not current:
            return None
        name = current
    entry = profiles.get(name)
    if entry is None:
        where = asked or f'the current profile "{name}"'
        known = ", ".join(sorted(str(p) for p in profiles)) or "none"
        raise CredentialError(f"{where}: not in {path} (profiles there: {known})")
    if not isinstance(entry, dict):
        raise CredentialError(f'{path}: profile "{name}" is not a mapping')
    _learn_secrets(entry)
    folder = entry.get("folder-id")
    folder_id = str(folder) if isinstance(folder, (str, int)) else ""
    key_fields = entry.get("service-account-key")
    origin = f'{path} profile "{name}" service-account-key'
    if key_fields is not None:
        if not isinstance(key_fields, dict):
            raise CredentialError(f"{origin}: expected a mapping of the key's fields")
        from sttcli.auth.keyfile import key_from_fields  # PyJWT and cryptography: only now

        key = key_from_fields(key_fields, origin=origin)
        return Profile(name, chosen_by, path, folder_id, sa_key=key)
    yc = shutil.which("yc", path=environ.get("PATH"))
    return Profile(name, chosen_by, path, folder_id, yc=yc)


def _read_config(path: Path) -> dict[str, Any]:
    import yaml  # only where there is a config to read

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise CredentialError(f"{path}: cannot read it: {reason}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        # PyYAML's own message quotes the offending line, which may hold a token:
        # only the problem and its place are shown.
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise CredentialError(f"{path}: not valid YAML at {where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CredentialError(f"{path}: line 1: expected a mapping (current:, profiles:)")
    return data


def _learn_secrets(entry: Mapping[str, Any]) -> None:
    for name in _SECRET_FIELDS:
        value = entry.get(name)
        if isinstance(value, str):
            KNOWN.learn(value)
        elif isinstance(value, dict) and isinstance(value.get("private_key"), str):
            KNOWN.learn_pem(value["private_key"])


def yc_token_fetcher(
    profile: Profile,
    *,
    timeout: float = YC_TIMEOUT_SECONDS,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> Callable[[float], IssuedToken]:
    """A `Fetch` that asks `yc iam create-token --profile NAME` (no secret in its argv)."""
    assert profile.yc is not None
    argv = [profile.yc, "iam", "create-token", "--profile", profile.name]
    shown = f"yc iam create-token --profile {profile.name}"

    def fetch(now: float) -> IssuedToken:
        try:
            done = run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CredentialRefused(f"{shown}: no token after {timeout:g} s") from None
        except OSError as error:
            raise CredentialRefused(f"{shown}: cannot run it: {error.strerror or error}") from None
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines:
            KNOWN.learn(*lines)
            errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            last = errors[-1] if errors else f"exit status {done.returncode}, no message"
            raise CredentialRefused(f"{shown} failed: {scrubbed(last)}")
        token = lines[-1]
        KNOWN.learn(token)
        # yc does not say when its token expires: IAM tokens live 12 hours, and
        # the hourly refresh comes long before that.
        return IssuedToken(token, issued_at=now, expires_at=now + DEFAULT_TOKEN_LIFETIME)

    return fetch
