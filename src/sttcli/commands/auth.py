"""`sttcli auth`: which credential the chain resolves to, and with --check whether it gives a token.

Nothing is fetched without --check, and nothing secret is shown: values
given by the user are masked down to their first characters, fetched tokens
likewise.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from typing import Any

from sttcli.auth.chain import ChainOptions, FetchedCredentials, Resolution, resolve_chain
from sttcli.auth.credentials import MASK, known_secrets
from sttcli.diagnostics import Diagnostics
from sttcli.errors import ExitCode, SttError, UsageError
from sttcli.options import DEFAULT_ENDPOINT

SHOWN_PREFIX = 4  # "t1.9****", "AQVN****": enough to tell which one, not enough to use


def run_auth(params: dict[str, Any]) -> int:
    diagnostics = Diagnostics(secrets=known_secrets(params), verbose=params["verbose"])
    diagnostics.install_logging()
    as_json = params["output_format"] == "json"
    endpoint = params.get("endpoint") or DEFAULT_ENDPOINT
    try:
        resolution = resolve_chain(ChainOptions.from_params(params), endpoint=endpoint)
        if not resolution.found:
            raise UsageError(resolution.missing_message())
    except SttError as error:
        if as_json:  # CI parses stdout: the document, with the error; the line goes to stderr
            report = unresolved(error, endpoint=endpoint)
            sys.stdout.write(diagnostics.scrub(json.dumps(report, ensure_ascii=False)) + "\n")
            sys.stdout.flush()
        raise
    report = describe(resolution, folder_id=params["folder_id"])
    report["endpoint"] = endpoint
    failure: SttError | None = None
    if params["check"]:
        failure = check(resolution, report)
        report["error"] = None if failure is None else _error(failure)
    if as_json:
        text = json.dumps(report, ensure_ascii=False)
    else:
        text = as_text(report)
    sys.stdout.write(diagnostics.scrub(text) + "\n")
    sys.stdout.flush()
    if failure is not None:
        diagnostics.error(failure.message)
        return int(failure.exit_code)
    return int(ExitCode.OK)


def describe(resolution: Resolution, *, folder_id: str) -> dict[str, Any]:
    """The report, before any check: what was found, where, and for which account."""
    token: str | None = None
    fetched = isinstance(resolution.provider, FetchedCredentials)
    if not fetched and resolution.provider is not None:
        credential = resolution.provider.preview()
        token = mask(credential.value) if credential else None
    folder = folder_id or resolution.folder_id
    return {
        "source": resolution.source,
        "kind": resolution.kind,
        "service_account_id": resolution.service_account_id,
        "key_id": resolution.key_id,
        "from": resolution.detail or None,
        "iam_endpoint": resolution.iam_endpoint if resolution.key_id else None,
        "token": token,
        "expires_at": None,
        "expires_in_s": None,
        "folder_id": folder or None,
        "folder_id_from": ("--folder-id" if folder_id else resolution.source) if folder else None,
        "fetched": False,
        "check": None,
        "endpoint": None,
        "error": None,  # what makes the exit code non-zero: the chain's failure or the check's
    }


def unresolved(error: SttError, *, endpoint: str) -> dict[str, Any]:
    """The report when the chain itself fails (nothing found, a bad key file): every field
    there, empty, and the error."""
    report = describe(Resolution(None, "", "", ""), folder_id="")
    report.update(source=None, kind=None, endpoint=endpoint, error=_error(error))
    return report


def check(resolution: Resolution, report: dict[str, Any]) -> SttError | None:
    """--check: fetch a token where there is one to fetch; the failure is returned, not raised."""
    provider = resolution.provider
    if not isinstance(provider, FetchedCredentials):
        # "an API key", "an IAM token": given as a value, only the service can tell.
        note = f"nothing to fetch: the service checks an {resolution.kind} when it is used"
        report["check"] = {"ok": None, "note": note, "error": None}
        return None
    try:
        token = provider.current()
    except SttError as error:
        report["check"] = {"ok": False, "note": None, "error": _error(error)}
        return error
    now = provider.token.clock()
    report["token"] = mask(token.value)
    report["expires_at"] = _utc(time.time() + (token.expires_at - now))
    report["expires_in_s"] = round(token.expires_at - now)
    report["fetched"] = True
    report["check"] = {"ok": True, "note": "got an IAM token", "error": None}
    return None


def mask(value: str) -> str:
    if len(value) < 3 * SHOWN_PREFIX:
        return MASK
    return value[:SHOWN_PREFIX] + MASK


def as_text(report: dict[str, Any]) -> str:
    rows = [
        ("source", report["source"]),
        ("credential", report["kind"]),
        ("service account", report["service_account_id"]),
        ("key id", report["key_id"]),
        ("from", report["from"]),
        ("IAM endpoint", report["iam_endpoint"]),
        ("token", report["token"] or _unfetched(report)),
        ("expires", _expiry(report)),
        ("folder id", _folder(report)),
    ]
    checked = report["check"]
    if checked is not None:
        if checked["ok"]:
            rows.append(("check", "ok: " + checked["note"]))
        elif checked["ok"] is None:
            rows.append(("check", checked["note"]))
        else:
            error = checked["error"]
            rows.append(("check", f"FAILED (exit {error['exit_code']}): {error['message']}"))
    width = max(len(name) for name, value in rows if value is not None) + 1
    return "\n".join(f"{name + ':':<{width}} {value}" for name, value in rows if value is not None)


def _unfetched(report: dict[str, Any]) -> str:
    checked = report["check"]
    if checked is not None and checked["ok"] is False:
        return "none: the check failed"
    return "fetched when used (--check fetches one now)"


def _expiry(report: dict[str, Any]) -> str | None:
    if report["expires_at"] is None:
        return None
    seconds = report["expires_in_s"]
    left = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"
    return f"{report['expires_at']} (in {left}; sttcli gets a new one before then)"


def _folder(report: dict[str, Any]) -> str:
    if report["folder_id"]:
        return f"{report['folder_id']} (from {report['folder_id_from']})"
    if report["kind"] == "IAM token":
        return "none (a user account's IAM token needs one: --folder-id or YC_FOLDER_ID)"
    return "none (not needed for a service account's credentials)"


def _error(error: SttError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "exit_code": int(error.exit_code)}


def _utc(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
