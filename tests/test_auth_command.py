"""`sttcli auth`: which credential is in use, in one screen or one JSON object; --check fetches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import run_cli
from support.iam import FakeIam, FakeMetadata, FakeYc, TestKey, TokenAuthority, write_yc_config


@pytest.fixture
def key_file(tmp_path: Path, test_key: TestKey) -> Path:
    return test_key.write(tmp_path / "key.json")


def test_a_key_file_is_described_without_fetching_anything(
    fake_iam: FakeIam, key_file: Path
) -> None:
    result = run_cli("auth", "--sa-key-file", str(key_file))
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert lines["source"].strip() == "flag --sa-key-file"
    assert lines["credential"].strip() == "service account key"
    assert lines["service account"].strip() == "ajetestserviceaccount"
    assert lines["key id"].strip() == "ajetestkey0000000001"
    assert lines["IAM endpoint"].strip() == fake_iam.url
    assert lines["token"].strip().startswith("fetched when used")
    assert fake_iam.requests == [] and result.stderr == ""


def test_check_fetches_a_token_and_says_when_it_expires(
    fake_iam: FakeIam, authority: TokenAuthority, key_file: Path
) -> None:
    result = run_cli("auth", "--sa-key-file", str(key_file), "--check", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["fetched"] is True
    assert document["check"] == {"ok": True, "note": "got an IAM token", "error": None}
    (token,) = authority.issued
    assert document["token"] == token[:4] + "****"
    assert 3590 <= document["expires_in_s"] <= 3600
    assert document["expires_at"].endswith("Z")


def test_the_json_object_has_every_field_always(key_file: Path) -> None:
    result = run_cli("auth", "--sa-key-file", str(key_file), "-f", "json")
    assert result.exit_code == 0
    assert set(json.loads(result.stdout)) == {
        "source",
        "kind",
        "service_account_id",
        "key_id",
        "from",
        "iam_endpoint",
        "token",
        "expires_at",
        "expires_in_s",
        "folder_id",
        "folder_id_from",
        "fetched",
        "check",
        "endpoint",
        "error",
    }


@pytest.mark.parametrize("output_format", ["text", "json"])
def test_a_failed_check_reports_the_failure_and_exits_with_its_code(
    fake_iam: FakeIam, key_file: Path, output_format: str
) -> None:
    fake_iam.refuse = (403, "permission denied for the key")
    result = run_cli("auth", "--sa-key-file", str(key_file), "--check", "-f", output_format)
    assert result.exit_code == 4
    assert result.stderr.endswith("HTTP 403: permission denied for the key\n")
    if output_format == "json":
        error = json.loads(result.stdout)["check"]["error"]
        assert error["exit_code"] == 4 and error["code"] == "UNAUTHENTICATED"
    else:
        assert "check:" in result.stdout and "FAILED (exit 4)" in result.stdout


def test_check_against_an_unreachable_iam_exits_6(key_file: Path) -> None:
    result = run_cli("auth", "--sa-key-file", str(key_file), "--check")
    assert result.exit_code == 6
    assert "cannot reach IAM endpoint" in result.stderr


def test_an_api_key_is_shown_masked_and_check_has_nothing_to_fetch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("YC_API_KEY", "AQVNsecretkey0123456789")
    result = run_cli("auth", "--check", "-f", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["source"] == "env YC_API_KEY" and document["kind"] == "API key"
    assert document["token"] == "AQVN****"
    assert document["check"]["ok"] is None and "nothing to fetch" in document["check"]["note"]
    assert "secretkey" not in result.stdout


def test_a_users_token_without_a_folder_says_it_needs_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YC_IAM_TOKEN", "t1.usertoken0123456789")
    result = run_cli("auth")
    assert "needs one: --folder-id or YC_FOLDER_ID" in result.stdout


def test_a_yc_profile_shows_its_folder_and_how_its_token_is_got(
    fake_yc: FakeYc, authority: TokenAuthority, home: Path
) -> None:
    write_yc_config(
        home, "current: dev\nprofiles:\n  dev:\n    token: y0_abc0123456\n    folder-id: b1gdev\n"
    )
    fake_yc.tokens([authority.issue()[0]])
    result = run_cli("auth", "--check", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["source"] == 'yc profile "dev"'
    assert document["from"] == "yc iam create-token --profile dev"
    assert document["folder_id"] == "b1gdev" and document["folder_id_from"] == 'yc profile "dev"'
    assert document["fetched"] is True


def test_the_metadata_service_is_described_and_checked(
    fake_metadata: FakeMetadata,
) -> None:
    described = json.loads(run_cli("auth", "--metadata-credentials", "-f", "json").stdout)
    assert described["source"] == "metadata" and fake_metadata.requests == []
    checked = run_cli("auth", "--metadata-credentials", "--check", "-f", "json")
    assert checked.exit_code == 0
    assert json.loads(checked.stdout)["fetched"] is True and len(fake_metadata.requests) == 1


def test_nothing_found_is_exit_2_with_what_was_looked_for() -> None:
    result = run_cli("auth")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("sttcli: no credentials: looked for --api-key")


def test_nothing_found_with_json_still_prints_the_document_with_the_error() -> None:
    """CI parses stdout: a failing chain is a JSON object too, and the exit code stays."""
    result = run_cli("auth", "-f", "json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["source"] is None and document["fetched"] is False
    assert document["error"]["exit_code"] == 2
    assert document["error"]["message"].startswith("no credentials: looked for --api-key")
    assert result.stderr.startswith("sttcli: no credentials: looked for --api-key")


def test_a_bad_key_file_with_json_prints_the_document_with_the_error(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text("[1, 2]")
    result = run_cli("auth", "--sa-key-file", str(key), "-f", "json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["exit_code"] == 2 and str(key) in error["message"]
    assert result.stderr.count("\n") == 1


def test_a_failed_check_is_the_documents_error_too(key_file: Path) -> None:
    result = run_cli("auth", "--sa-key-file", str(key_file), "--check", "-f", "json")
    assert result.exit_code == 6
    document = json.loads(result.stdout)
    assert document["error"] == document["check"]["error"]
    assert document["error"]["exit_code"] == 6
