"""The credential chain: every link, which one wins, and what each failure says.

Real servers on loopback: a fake IAM that checks the JWT as IAM does, a fake
metadata service, a fake `yc` on PATH, a yc config in a temporary HOME, and a
recognition server that accepts only the tokens those issued.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from support.audio import ramp, wav
from support.cli import against, run_cli
from support.iam import (
    FakeIam,
    FakeMetadata,
    FakeYc,
    TestKey,
    TokenAuthority,
    profile_with_key,
    write_yc_config,
)
from support.scripted import ScriptedServer

from sttcli.auth import metadata
from sttcli.auth.chain import is_speechkit


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    path.write_bytes(wav(ramp(8000)))
    return path


@pytest.fixture
def key_file(tmp_path: Path, test_key: TestKey) -> Path:
    return test_key.write(tmp_path / "key.json")


@pytest.fixture
def guarded(stt_server: ScriptedServer, authority: TokenAuthority) -> ScriptedServer:
    """The recognition server, accepting only valid tokens of the authority."""
    stt_server.servicer.authorize = authority.refusal
    return stt_server


@pytest.fixture
def speechkit(guarded: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    """The guarded server standing in for SpeechKit's own endpoint.

    A run that names no --endpoint goes to stt.api.cloud.yandex.net:443, the
    one endpoint the machine's own credentials (the current yc profile, the
    metadata service) are used for; its channel opens to this server instead.
    """
    from sttcli.session import connection

    stays_here = connection.open_channel  # conftest's: refuses anything off this machine

    def open_channel(endpoint: str, **options: Any) -> Any:
        if is_speechkit(endpoint):
            return stays_here(guarded.address, insecure=True)
        return stays_here(endpoint, **options)

    monkeypatch.setattr(connection, "open_channel", open_channel)
    return guarded


def auth_json(*args: str) -> dict[str, object]:
    result = run_cli("auth", "-f", "json", *args)
    assert result.exit_code == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def sent_token(server: ScriptedServer, call: int = 0) -> str:
    return server.calls[call].metadata["authorization"].removeprefix("Bearer ")


# -- each link, end to end -----------------------------------------------------


def test_a_key_file_flag_is_exchanged_for_a_token_the_service_accepts(
    guarded: ScriptedServer,
    fake_iam: FakeIam,
    authority: TokenAuthority,
    key_file: Path,
    audio: Path,
) -> None:
    result = against(guarded.address, "--sa-key-file", str(key_file), str(audio))
    assert result.exit_code == 0, result.stderr
    assert sent_token(guarded) in authority.issued
    assert len(fake_iam.jwts) == 1


def test_a_ci_job_with_only_the_key_file_variable_just_works(
    guarded: ScriptedServer,
    fake_iam: FakeIam,
    authority: TokenAuthority,
    key_file: Path,
    audio: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("YC_SERVICE_ACCOUNT_KEY_FILE", str(key_file))
    result = against(guarded.address, "-v", str(audio))
    assert result.exit_code == 0, result.stderr
    assert sent_token(guarded) in authority.issued
    assert "using IAM token from YC_SERVICE_ACCOUNT_KEY_FILE" in result.stderr


def test_a_profile_with_a_service_account_key_is_exchanged_by_sttcli_itself(
    speechkit: ScriptedServer,
    fake_iam: FakeIam,
    authority: TokenAuthority,
    test_key: TestKey,
    home: Path,
    audio: Path,
) -> None:
    write_yc_config(
        home,
        f"current: ci\nprofiles:\n  ci:\n{profile_with_key(test_key, folder='b1gci')}\n",
    )
    result = run_cli("recognize", str(audio))  # no yc on PATH: none needed
    assert result.exit_code == 0, result.stderr
    assert sent_token(speechkit) in authority.issued
    assert speechkit.calls[0].config.folder_id == "b1gci"  # the profile's folder-id


def test_a_laptop_with_only_a_yc_profile_gets_its_token_from_yc(
    speechkit: ScriptedServer,
    fake_yc: FakeYc,
    authority: TokenAuthority,
    home: Path,
    audio: Path,
) -> None:
    oauth = "y0_AgAAAAoauthsecret0123456789"
    write_yc_config(
        home,
        f"current: dev\nprofiles:\n  dev:\n    token: {oauth}\n    folder-id: b1gdev\n",
    )
    token, _ = authority.issue()
    fake_yc.tokens([token])
    result = run_cli("recognize", "-vv", str(audio))
    assert result.exit_code == 0, result.stderr
    assert sent_token(speechkit) == token
    assert fake_yc.argvs == [repr(["iam", "create-token", "--profile", "dev"])]  # no secret
    assert speechkit.calls[0].config.folder_id == "b1gdev"
    assert oauth not in result.stderr and token not in result.stderr


def test_an_explicit_folder_id_wins_over_the_profiles(
    speechkit: ScriptedServer, fake_yc: FakeYc, authority: TokenAuthority, home: Path, audio: Path
) -> None:
    write_yc_config(home, "current: dev\nprofiles:\n  dev:\n    folder-id: b1gdev\n")
    fake_yc.tokens([authority.issue()[0]])
    result = run_cli("recognize", "--folder-id", "b1gmine", str(audio))
    assert result.exit_code == 0, result.stderr
    assert speechkit.calls[0].config.folder_id == "b1gmine"


@pytest.mark.parametrize("how", ["flag", "env", "vendor"])
def test_a_vm_with_only_its_metadata_service_just_works(
    speechkit: ScriptedServer,
    fake_metadata: FakeMetadata,
    authority: TokenAuthority,
    audio: Path,
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    how: str,
) -> None:
    args = []
    if how == "flag":
        args = ["--metadata-credentials"]
    elif how == "env":
        monkeypatch.setenv("YC_METADATA_CREDENTIALS", "1")
    else:
        (home / "sys_vendor").write_text("Yandex\n")
    result = run_cli("recognize", *args, str(audio))
    assert result.exit_code == 0, result.stderr
    assert sent_token(speechkit) in authority.issued
    ((method, path, headers),) = fake_metadata.requests
    assert method == "GET" and path == metadata.TOKEN_PATH
    assert headers["Metadata-Flavor"] == "Google"


def test_off_a_yandex_vm_the_metadata_service_is_not_asked(
    fake_metadata: FakeMetadata, audio: Path
) -> None:
    result = run_cli("recognize", str(audio))
    assert result.exit_code == 2
    assert fake_metadata.requests == []
    assert result.stderr.count("\n") == 1
    for looked_for in (
        "--sa-key-file",
        "YC_API_KEY",
        "YC_SERVICE_ACCOUNT_KEY_FILE",
        "a yc profile in",
        "the metadata service",
        "--metadata-credentials",
    ):
        assert looked_for in result.stderr


def test_the_sys_vendor_check_reads_the_dmi_file(tmp_path: Path) -> None:
    vendor = tmp_path / "sys_vendor"
    assert not metadata.on_yandex_cloud(vendor)  # missing
    vendor.write_text("Yandex\n")
    assert metadata.on_yandex_cloud(vendor)
    vendor.write_text("QEMU\n")
    assert not metadata.on_yandex_cloud(vendor)


def test_the_metadata_address_comes_from_the_environment() -> None:
    assert metadata.token_url({}).startswith("http://169.254.169.254/computeMetadata/")
    assert metadata.token_url({"YC_METADATA_ADDR": "127.0.0.1:8080"}) == (
        "http://127.0.0.1:8080" + metadata.TOKEN_PATH
    )


def test_the_test_environment_cannot_reach_the_real_services() -> None:
    """Every test runs with IAM and the metadata service on a refusing loopback port."""
    for name in ("YC_METADATA_ADDR", "YC_IAM_ENDPOINT"):
        assert "127.0.0.1:" in os.environ[name]
    assert not metadata.on_yandex_cloud()
    # and sttcli as a child process (which conftest's patches do not reach) is told the same
    assert "QEMU" in Path(os.environ[metadata.SYS_VENDOR_VARIABLE]).read_text()


# -- precedence ------------------------------------------------------------------


@pytest.fixture
def everything(
    tmp_path: Path, test_key: TestKey, home: Path, fake_yc: FakeYc, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every link has something: the test takes away what it needs gone."""
    key = test_key.write(tmp_path / "env-key.json")
    for name, value in {
        "YC_API_KEY": "AQVNenvkey0000000",
        "YC_IAM_TOKEN": "t1.envtoken000000",
        "IAM_TOKEN": "t1.iamtoken000000",
        "YC_SERVICE_ACCOUNT_KEY_FILE": str(key),
        "YC_PROFILE": "env",
        "YC_METADATA_CREDENTIALS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    write_yc_config(
        home,
        "current: cur\nprofiles:\n"
        f"  cur:\n{profile_with_key(test_key, folder='b1gcur')}\n"
        f"  env:\n{profile_with_key(test_key, folder='b1genv')}\n"
        "  flag:\n    token: y0_flagprofile\n    folder-id: b1gflag\n",
    )
    return tmp_path / "flag-key.json"


@pytest.mark.parametrize(
    ("args", "unset", "source"),
    [
        (["--api-key", "AQVNflagkey0000"], [], "flag --api-key"),
        (["--iam-token", "t1.flagtoken0000"], [], "flag --iam-token"),
        (["--sa-key-file", "FLAG_KEY"], [], "flag --sa-key-file"),
        ([], [], "env YC_API_KEY"),
        ([], ["YC_API_KEY"], "env YC_IAM_TOKEN"),
        ([], ["YC_API_KEY", "YC_IAM_TOKEN"], "env IAM_TOKEN"),
        (
            [],
            ["YC_API_KEY", "YC_IAM_TOKEN", "IAM_TOKEN"],
            "env YC_SERVICE_ACCOUNT_KEY_FILE",
        ),
        (
            ["--profile", "flag"],
            ["YC_API_KEY", "YC_IAM_TOKEN", "IAM_TOKEN", "KEY"],
            'yc profile "flag"',
        ),
        ([], ["YC_API_KEY", "YC_IAM_TOKEN", "IAM_TOKEN", "KEY"], 'yc profile "env"'),
        ([], ["YC_API_KEY", "YC_IAM_TOKEN", "IAM_TOKEN", "KEY", "YC_PROFILE"], 'yc profile "cur"'),
        (
            [],
            ["YC_API_KEY", "YC_IAM_TOKEN", "IAM_TOKEN", "KEY", "YC_PROFILE", "CONFIG"],
            "metadata",
        ),
    ],
)
def test_the_first_link_with_something_wins(
    everything: Path,
    test_key: TestKey,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    unset: list[str],
    source: str,
) -> None:
    for name in unset:
        if name == "KEY":
            monkeypatch.delenv("YC_SERVICE_ACCOUNT_KEY_FILE")
        elif name == "CONFIG":
            (home / ".config" / "yandex-cloud" / "config.yaml").unlink()
        else:
            monkeypatch.delenv(name)
    test_key.write(everything)
    args = [str(everything) if a == "FLAG_KEY" else a for a in args]
    document = auth_json(*args)
    assert document["source"] == source
    assert document["fetched"] is False  # saying what would be used fetches nothing


@pytest.mark.parametrize(
    "flags",
    [
        ["--api-key", "AQVNk0000", "--iam-token", "t1.t0000"],
        ["--api-key", "AQVNk0000", "--sa-key-file", "key.json"],
        ["--iam-token", "t1.t0000", "--sa-key-file", "key.json"],
    ],
)
@pytest.mark.parametrize("command", ["recognize", "auth"])
def test_more_than_one_credential_flag_is_a_usage_error(
    audio: Path, flags: list[str], command: str
) -> None:
    args = [*flags, str(audio)] if command == "recognize" else flags
    result = run_cli(command, *args)
    assert result.exit_code == 2
    assert "mutually exclusive" in result.stderr
    assert "k0000" not in result.stderr and "t0000" not in result.stderr


def test_more_than_one_credential_flag_is_an_error_with_local_too(audio: Path) -> None:
    result = run_cli("recognize", "--local", "--api-key", "k", "--sa-key-file", "x", str(audio))
    assert result.exit_code == 2


def test_local_recognition_looks_at_no_link_of_the_chain(
    fake_yc: FakeYc, home: Path, audio: Path
) -> None:
    write_yc_config(home, "current: dev\nprofiles:\n  dev:\n    token: y0_x\n")
    result = run_cli("recognize", "--local", "--dry-run", str(audio))
    assert result.exit_code == 0, result.stderr
    assert fake_yc.argvs == []


def test_dry_run_shows_a_masked_bearer_and_fetches_nothing(
    fake_iam: FakeIam, key_file: Path, audio: Path
) -> None:
    result = run_cli(
        "recognize", "--sa-key-file", str(key_file), "--dry-run", "-f", "json", str(audio)
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metadata"]["authorization"] == "Bearer ****"
    assert fake_iam.requests == []


# -- failures and their exit codes ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("DIR", "is a directory"),
        (b"\xff\xfe not text", "cannot read it"),
        ('{"id": "x",\n  oops}', "not JSON (line 2"),
        ("[1, 2]", "expected a JSON object"),
        ("REMOVE id", 'field "id" is missing'),
        ("REMOVE service_account_id", 'field "service_account_id" is missing'),
        ("REMOVE private_key", 'field "private_key" is missing'),
        ("BAD private_key", 'field "private_key" is not an unencrypted PEM private key'),
        ("EMPTY id", 'field "id" is not a non-empty string'),
    ],
)
@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_bad_key_file_is_a_usage_error_naming_the_file_and_the_field(
    tmp_path: Path,
    test_key: TestKey,
    audio: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str | bytes | None,
    expected: str,
    how: str,
) -> None:
    path = tmp_path / "key.json"
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None and content.startswith(("REMOVE ", "BAD ", "EMPTY ")):
        verb, field = content.split()
        value = {"REMOVE": None, "BAD": "-----BEGIN PRIVATE KEY-----\nnope\n", "EMPTY": ""}[verb]
        test_key.write(path, **{field: value})
    elif content is not None:
        path.write_text(content)
    if how == "flag":
        result = run_cli("recognize", "--sa-key-file", str(path), str(audio))
        name = f"--sa-key-file {path}"
    else:
        monkeypatch.setenv("YC_SERVICE_ACCOUNT_KEY_FILE", str(path))
        result = run_cli("recognize", str(audio))
        name = f"YC_SERVICE_ACCOUNT_KEY_FILE {path}"
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"sttcli: {name}: ")
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_key_that_is_not_rsa_is_refused(tmp_path: Path, test_key: TestKey, audio: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = test_key.write(tmp_path / "key.json", private_key=other.decode())
    result = run_cli("recognize", "--sa-key-file", str(path), str(audio))
    assert result.exit_code == 2
    assert "not an RSA key" in result.stderr


@pytest.mark.parametrize(("status", "message"), [(401, "key revoked"), (403, "no access")])
def test_iam_refusing_the_key_is_exit_4_with_its_message(
    fake_iam: FakeIam, key_file: Path, audio: Path, status: int, message: str
) -> None:
    fake_iam.refuse = (status, message)
    result = run_cli("recognize", "-j", "2", "--sa-key-file", str(key_file), str(audio), str(audio))
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1  # once, not once per input
    assert f"HTTP {status}: {message}" in result.stderr
    assert fake_iam.url in result.stderr


def test_a_jwt_that_iam_would_not_accept_is_refused(
    fake_iam: FakeIam, tmp_path: Path, test_key: TestKey, audio: Path
) -> None:
    # Another key's id: the fake IAM checks `kid` as IAM does.
    path = test_key.write(tmp_path / "key.json", id="ajeotherkey")
    result = run_cli("recognize", "--sa-key-file", str(path), str(audio))
    assert result.exit_code == 4
    assert "invalid JWT" in result.stderr


def test_an_unreachable_iam_is_exit_6_naming_it(key_file: Path, audio: Path) -> None:
    endpoint = os.environ["YC_IAM_ENDPOINT"]  # the refusing port
    result = run_cli("recognize", "--sa-key-file", str(key_file), str(audio))
    assert result.exit_code == 6
    assert f"cannot reach IAM endpoint {endpoint}" in result.stderr
    assert result.stderr.count("\n") == 1


def test_iam_endpoint_flag_wins_over_the_environment(
    fake_iam: FakeIam, key_file: Path, refusing_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YC_IAM_ENDPOINT", f"http://127.0.0.1:{refusing_port}/")
    document = auth_json("--sa-key-file", str(key_file), "--iam-endpoint", fake_iam.url, "--check")
    assert document["iam_endpoint"] == fake_iam.url
    assert document["check"] == {"ok": True, "note": "got an IAM token", "error": None}


def test_an_iam_endpoint_that_is_not_a_url_is_a_usage_error(key_file: Path) -> None:
    result = run_cli("auth", "--sa-key-file", str(key_file), "--iam-endpoint", "iam.local")
    assert result.exit_code == 2
    assert "--iam-endpoint iam.local: expected an http:// or https:// URL" in result.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_http_iam_endpoint_off_this_machine_is_refused(
    key_file: Path, audio: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The JWT is as good as a token for an hour: it never crosses a network in clear text."""
    url = "http://iam.example.com/iam/v1/tokens"
    args = ["--iam-endpoint", url] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("YC_IAM_ENDPOINT", url)
    for command in (["auth", "--check"], ["recognize", str(audio)]):
        result = run_cli(*command, "--sa-key-file", str(key_file), *args)
        assert result.exit_code == 2
        option = "--iam-endpoint" if how == "flag" else "YC_IAM_ENDPOINT"
        assert result.stderr.startswith(f"sttcli: {option} {url}: http:// would send")
        assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/iam/v1/tokens",
        "http://localhost/iam",
        "http://[::1]:9/iam",
        "https://iam.example.com/iam/v1/tokens",
    ],
)
def test_http_to_loopback_and_https_anywhere_are_accepted(url: str) -> None:
    from sttcli.auth.http import check_url

    assert check_url(url, option="--iam-endpoint") == url


def test_an_iam_that_does_not_answer_in_time_is_unavailable(
    fake_iam: FakeIam, test_key: TestKey, key_file: Path
) -> None:
    from sttcli.auth.keyfile import load_key_file, token_fetcher
    from sttcli.errors import CredentialUnreachable

    fake_iam.delay = 1.0
    fetch = token_fetcher(load_key_file(str(key_file), origin="key"), fake_iam.url, timeout=0.2)
    with pytest.raises(CredentialUnreachable, match="did not answer in 0.2 s") as caught:
        fetch(0.0)
    assert caught.value.exit_code == 6


def test_an_unreachable_metadata_service_is_exit_6(audio: Path) -> None:
    result = run_cli("recognize", "--metadata-credentials", str(audio))
    assert result.exit_code == 6
    assert "cannot reach metadata service http://127.0.0.1:" in result.stderr


def test_yc_failing_is_exit_4_with_the_last_line_of_its_stderr(
    fake_yc: FakeYc, home: Path, audio: Path
) -> None:
    write_yc_config(home, "current: dev\nprofiles:\n  dev:\n    token: y0_x\n")
    fake_yc.fail("ERROR: the OAuth token has expired; run yc init\n")
    result = run_cli("recognize", str(audio))
    assert result.exit_code == 4
    assert result.stderr == (
        "sttcli: yc iam create-token --profile dev failed: "
        "ERROR: the OAuth token has expired; run yc init\n"
    )


def test_a_profile_without_a_key_and_no_yc_is_passed_over(home: Path, audio: Path) -> None:
    write_yc_config(home, "current: dev\nprofiles:\n  dev:\n    token: y0_x\n")
    result = run_cli("recognize", str(audio))
    assert result.exit_code == 2
    assert 'yc profile "dev"' in result.stderr and "needs yc on PATH" in result.stderr


def test_a_named_profile_without_a_key_and_no_yc_is_an_error(home: Path, audio: Path) -> None:
    write_yc_config(home, "current: dev\nprofiles:\n  dev:\n    token: y0_x\n")
    result = run_cli("recognize", "--profile", "dev", str(audio))
    assert result.exit_code == 2
    assert "yc, which could give its token, is not on PATH" in result.stderr


def test_a_config_that_does_not_parse_is_exit_2_naming_it_and_the_line(
    home: Path, audio: Path
) -> None:
    config = write_yc_config(
        home, "current: dev\nprofiles:\n  dev:\n    token: y0_secret\n   folder-id: [b1g\n"
    )
    result = run_cli("recognize", str(audio))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"sttcli: {config}: not valid YAML at line 5")
    assert "y0_secret" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--profile", "nope"], {}, "--profile nope: not in"),
        ([], {"YC_PROFILE": "nope"}, "YC_PROFILE nope: not in"),
    ],
)
def test_a_profile_asked_for_that_is_not_there_is_a_usage_error(
    home: Path,
    audio: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    write_yc_config(home, "current: dev\nprofiles:\n  dev:\n    folder-id: b1g\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run_cli("recognize", *args, str(audio))
    assert result.exit_code == 2
    assert expected in result.stderr and "(profiles there: dev)" in result.stderr


def test_a_named_profile_without_any_config_is_a_usage_error(audio: Path) -> None:
    result = run_cli("recognize", "--profile", "ci", str(audio))
    assert result.exit_code == 2
    assert "--profile ci: no yc config at" in result.stderr


def test_xdg_config_home_is_where_the_config_is_looked_for(
    tmp_path: Path, test_key: TestKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "xdg"
    write_yc_config(xdg.parent / "unused", "")
    config = xdg / "yandex-cloud" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"current: x\nprofiles:\n  x:\n{profile_with_key(test_key)}\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert auth_json()["source"] == 'yc profile "x"'


def test_as_a_process_of_its_own_the_key_file_variable_is_all_it_takes(
    guarded: ScriptedServer,
    fake_iam: FakeIam,
    authority: TokenAuthority,
    key_file: Path,
    audio: Path,
) -> None:
    import subprocess
    import sys

    env = {
        name: value
        for name, value in os.environ.items()
        if name in ("PATH", "HOME", "PYTHONPATH", "GRPC_VERBOSITY", "YC_METADATA_ADDR")
        or name == metadata.SYS_VENDOR_VARIABLE
    }
    env["YC_IAM_ENDPOINT"] = fake_iam.url
    env["YC_SERVICE_ACCOUNT_KEY_FILE"] = str(key_file)
    done = subprocess.run(
        [sys.executable, "-m", "sttcli", "recognize", "--endpoint", guarded.address]
        + ["--insecure", "-f", "json", str(audio)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["error"] is None
    assert sent_token(guarded) in authority.issued


# -- the machine's own credentials go to SpeechKit only ----------------------------------


@pytest.fixture
def a_yandex_vm_with_a_yc_profile(
    home: Path,
    test_key: TestKey,
    fake_iam: FakeIam,
    fake_metadata: FakeMetadata,
    fake_yc: FakeYc,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Everything a machine may hold without being told to use it for a run."""
    (home / "sys_vendor").write_text("Yandex\n")
    write_yc_config(
        home,
        "current: cur\nprofiles:\n"
        f"  cur:\n{profile_with_key(test_key, folder='b1gcur')}\n"
        "  oauth:\n    token: y0_AgAAAAlaptopsecret00000\n",
    )
    return home


@pytest.mark.parametrize("unasked", ["current profile", "YC_PROFILE", "vendor"])
def test_another_endpoint_gets_none_of_the_machines_own_credentials(
    a_yandex_vm_with_a_yc_profile: Path,
    stt_server: ScriptedServer,
    fake_iam: FakeIam,
    fake_metadata: FakeMetadata,
    fake_yc: FakeYc,
    audio: Path,
    monkeypatch: pytest.MonkeyPatch,
    unasked: str,
) -> None:
    """The README's `serve` + `--endpoint 127.0.0.1:P` on a VM or a laptop: no token leaves."""
    config = a_yandex_vm_with_a_yc_profile / ".config" / "yandex-cloud" / "config.yaml"
    if unasked == "YC_PROFILE":
        monkeypatch.setenv("YC_PROFILE", "oauth")
    elif unasked == "vendor":
        config.unlink()
    result = against(stt_server.address, "-v", str(audio))
    assert result.exit_code == 0, result.stderr
    assert "authorization" not in stt_server.calls[0].metadata
    assert (fake_metadata.requests, fake_iam.requests, fake_yc.argvs) == ([], [], [])
    assert "no credentials named for" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "source"),
    [
        (["--profile", "cur"], {}, 'yc profile "cur"'),
        (["--metadata-credentials"], {}, "metadata"),
        ([], {"YC_METADATA_CREDENTIALS": "1"}, "metadata"),
        ([], {"YC_SERVICE_ACCOUNT_KEY_FILE": "KEY"}, "env YC_SERVICE_ACCOUNT_KEY_FILE"),
    ],
)
def test_another_endpoint_gets_the_credentials_named_for_the_run(
    a_yandex_vm_with_a_yc_profile: Path,
    guarded: ScriptedServer,
    authority: TokenAuthority,
    key_file: Path,
    audio: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    source: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, str(key_file) if value == "KEY" else value)
    result = against(guarded.address, *args, str(audio))
    assert result.exit_code == 0, result.stderr
    assert sent_token(guarded) in authority.issued
    assert auth_json("--endpoint", guarded.address, *args)["source"] == source


def test_sttcli_endpoint_naming_speechkit_is_speechkit(
    a_yandex_vm_with_a_yc_profile: Path,
    speechkit: ScriptedServer,
    authority: TokenAuthority,
    audio: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STTCLI_ENDPOINT", "STT.api.cloud.yandex.net:443")
    result = run_cli("recognize", str(audio))
    assert result.exit_code == 0, result.stderr
    assert sent_token(speechkit) in authority.issued


@pytest.mark.parametrize(
    ("endpoint", "speechkit"),
    [
        ("stt.api.cloud.yandex.net:443", True),
        ("STT.API.CLOUD.YANDEX.NET:443", True),
        ("stt.api.cloud.yandex.net.:443", True),
        ("stt.api.cloud.yandex.net:8443", False),
        ("stt.api.cloud.yandex.net.evil.example:443", False),
        ("127.0.0.1:50051", False),
        ("localhost:443", False),
    ],
)
def test_which_endpoint_is_speechkits_own(endpoint: str, speechkit: bool) -> None:
    assert is_speechkit(endpoint) is speechkit


def test_auth_describes_the_chain_for_speechkit_unless_told_another_endpoint(
    a_yandex_vm_with_a_yc_profile: Path, fake_metadata: FakeMetadata
) -> None:
    assert auth_json()["source"] == 'yc profile "cur"'
    result = run_cli("auth", "-f", "json", "--endpoint", "127.0.0.1:50051")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["source"] is None and document["endpoint"] == "127.0.0.1:50051"
    assert document["error"]["exit_code"] == 2
    assert "a yc profile named with --profile" in document["error"]["message"]
    assert fake_metadata.requests == []


def test_on_a_yandex_vm_a_client_of_a_local_server_does_not_ask_the_metadata_service(
    stt_server: ScriptedServer,
    fake_metadata: FakeMetadata,
    home: Path,
    audio: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a process of its own, where conftest's patches do not reach: the README's example."""
    import subprocess

    from support.cli import spawn_against

    (home / "sys_vendor").write_text("Yandex\n")
    process = spawn_against(
        stt_server.address, str(audio), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert fake_metadata.requests == []
    assert "authorization" not in stt_server.calls[0].metadata
