"""The secrets sweep: no failure of the credential chain shows a secret, anywhere.

Every path below is run with -vv where it takes it, against careless servers
that quote what they were sent in their errors; then stdout, stderr and every
file the run left behind are searched for any 8-character piece of any secret
the run involved: the private key, the JWTs, the OAuth token, every IAM token
issued. The files the user wrote (the key file, the yc config) are the only
ones allowed to hold them: tokens stay in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from click.testing import Result
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

WINDOW = 8  # sttcli shows at most 4 characters of a token ("t1.f****")
OAUTH = "y0_AgAAAAOAuthSecretOfTheDeveloper0123456789"
API_KEY = "AQVNapikeysecret0123456789"
USER_TOKEN = "t1.9euelZuserTokenSecret0123456789"


@dataclass
class World:
    """What a path may use: the fakes, and where the run's files go."""

    tmp: Path
    home: Path
    key: TestKey
    iam: FakeIam
    metadata: FakeMetadata
    yc: FakeYc
    authority: TokenAuthority
    server: ScriptedServer
    audio: Path
    env: pytest.MonkeyPatch
    extra_secrets: list[str] = field(default_factory=list)

    @property
    def key_file(self) -> Path:
        return self.tmp / "key.json"

    @property
    def out(self) -> Path:
        return self.tmp / "out" / "result.json"

    def recognize(self, *args: str) -> Result:
        return against(
            self.server.address, "-vv", "-f", "json", "-o", str(self.out), *args, str(self.audio)
        )

    def careless_server(self) -> None:
        """The recognition server refuses every call, quoting the credential it got."""
        self.server.servicer.authorize = lambda metadata: (
            f"rejected {metadata.get('authorization')}"
        )

    def profile(self, body: str) -> None:
        write_yc_config(self.home, f"current: p\nprofiles:\n  p:\n{body}\n")

    def secrets(self) -> list[str]:
        values = [self.key.pem, *self.key.secret_parts(), OAUTH, API_KEY, USER_TOKEN]
        values += self.authority.issued + self.extra_secrets
        for body in self.iam.bodies:
            values.append(json.loads(body)["jwt"])
        return values


Path_ = Callable[[World], Result]


def _key_refused_by_a_careless_iam(w: World) -> Result:
    w.iam.refuse, w.iam.careless = (401, "bad key"), True
    return w.recognize("--sa-key-file", str(w.key_file))


def _key_and_iam_failing(w: World) -> Result:
    w.iam.refuse, w.iam.careless = (500, "internal"), True
    return w.recognize("--sa-key-file", str(w.key_file))


def _key_and_iam_unreachable(w: World) -> Result:
    return w.recognize("--sa-key-file", str(w.key_file), "--iam-endpoint", "http://127.0.0.1:1/")


def _key_token_refused_by_the_service(w: World) -> Result:
    w.careless_server()
    return w.recognize("--sa-key-file", str(w.key_file))


def _key_token_failed_by_the_service(w: World) -> Result:
    w.server.servicer.authorize = lambda metadata: (
        grpc.StatusCode.INTERNAL,
        f"careless: {metadata.get('authorization')}",
    )
    return w.recognize("--sa-key-file", str(w.key_file), "--retries", "1")


def _key_file_with_broken_json(w: World) -> Result:
    text = json.dumps(w.key.fields())
    w.key_file.write_text(text[: len(text) - 40])  # cut inside the private key
    return w.recognize("--sa-key-file", str(w.key_file))


def _key_file_with_a_garbled_private_key(w: World) -> Result:
    garbled = w.key.pem.replace("A", "*")
    w.extra_secrets += [line for line in garbled.splitlines() if "---" not in line]
    w.key.write(w.key_file, private_key=garbled)
    return w.recognize("--sa-key-file", str(w.key_file))


def _key_file_without_an_id(w: World) -> Result:
    w.key.write(w.key_file, id=None)
    return w.recognize("--sa-key-file", str(w.key_file))


def _key_file_from_the_environment_refused(w: World) -> Result:
    w.iam.refuse, w.iam.careless = (403, "denied"), True
    w.env.setenv("YC_SERVICE_ACCOUNT_KEY_FILE", str(w.key_file))
    return w.recognize()


def _profile_key_refused(w: World) -> Result:
    w.iam.refuse, w.iam.careless = (401, "bad key"), True
    w.profile(profile_with_key(w.key))
    return w.recognize()


def _profile_config_broken(w: World) -> Result:
    w.profile(f"    token: {OAUTH}\n   folder-id: [oops")
    return w.recognize()


def _profile_config_broken_inside_the_key(w: World) -> Result:
    w.profile(profile_with_key(w.key).replace("      private_key: |", "      private_key: |\n  ]"))
    return w.recognize()


def _yc_failing_and_quoting_the_oauth_token(w: World) -> Result:
    w.profile(f"    token: {OAUTH}")
    w.yc.fail(f"ERROR: OAuth token {OAUTH} has expired\n")
    return w.recognize()


def _yc_token_refused_by_the_service(w: World) -> Result:
    w.profile(f"    token: {OAUTH}")
    w.yc.tokens([w.authority.issue()[0], w.authority.issue()[0]])
    w.careless_server()
    return w.recognize()


def _metadata_unreachable(w: World) -> Result:
    return w.recognize("--metadata-credentials")


def _metadata_failing(w: World) -> Result:
    w.env.setenv("YC_METADATA_ADDR", w.metadata.address)
    w.metadata.status = 500
    return w.recognize("--metadata-credentials")


def _metadata_token_refused_by_the_service(w: World) -> Result:
    w.env.setenv("YC_METADATA_ADDR", w.metadata.address)
    w.careless_server()
    return w.recognize("--metadata-credentials")


def _batch_whose_token_expires_after_its_first_input(w: World, *options: str) -> Result:
    """A key-file batch: its long first input at real time outlives the token (0.3 s)."""
    w.authority.lifetime = 0.3
    long = w.tmp / "long.wav"
    long.write_bytes(wav(ramp(16000)))  # 0.5 s at real time
    return against(
        w.server.address,
        *options,
        "-f",
        "json",
        "-o",
        str(w.out),
        "--speed",
        "1",
        "--sa-key-file",
        str(w.key_file),
        str(long),
        str(w.audio),
    )


def _batch_whose_key_is_deleted_half_way(w: World) -> Result:
    w.iam.issue_limit = 1
    return _batch_whose_token_expires_after_its_first_input(w, "-vv")


def _batch_whose_refresh_meets_a_careless_iam(w: World) -> Result:
    w.iam.issue_limit, w.iam.careless = 1, True
    return _batch_whose_token_expires_after_its_first_input(w)


def _user_token_refused(w: World) -> Result:
    w.careless_server()
    return w.recognize("--iam-token", USER_TOKEN)


def _api_key_from_the_environment_refused(w: World) -> Result:
    w.careless_server()
    w.env.setenv("YC_API_KEY", API_KEY)
    return w.recognize()


def _three_credential_flags(w: World) -> Result:
    return w.recognize("--api-key", API_KEY, "--iam-token", USER_TOKEN, "--sa-key-file", "k")


def _dry_run_with_a_key(w: World) -> Result:
    return run_cli("recognize", "-vv", "--dry-run", "--sa-key-file", str(w.key_file), str(w.audio))


def _auth_check_refused_text(w: World) -> Result:
    w.iam.refuse, w.iam.careless = (401, "bad key"), True
    return run_cli("auth", "-v", "--check", "--sa-key-file", str(w.key_file))


def _auth_check_refused_json(w: World) -> Result:
    w.iam.refuse, w.iam.careless = (401, "bad key"), True
    return run_cli("auth", "-v", "--check", "-f", "json", "--sa-key-file", str(w.key_file))


def _auth_check_ok_json(w: World) -> Result:
    return run_cli("auth", "-v", "--check", "-f", "json", "--sa-key-file", str(w.key_file))


def _auth_check_yc_failing(w: World) -> Result:
    w.profile(f"    token: {OAUTH}")
    w.yc.fail(f"ERROR: {OAUTH}\n")
    return run_cli("auth", "--check", "-f", "json")


def _auth_user_token(w: World) -> Result:
    return run_cli("auth", "--iam-token", USER_TOKEN, "-f", "json")


PATHS: list[Path_] = [
    _key_refused_by_a_careless_iam,
    _key_and_iam_failing,
    _key_and_iam_unreachable,
    _key_token_refused_by_the_service,
    _key_token_failed_by_the_service,
    _key_file_with_broken_json,
    _key_file_with_a_garbled_private_key,
    _key_file_without_an_id,
    _key_file_from_the_environment_refused,
    _profile_key_refused,
    _profile_config_broken,
    _profile_config_broken_inside_the_key,
    _yc_failing_and_quoting_the_oauth_token,
    _yc_token_refused_by_the_service,
    _metadata_unreachable,
    _metadata_failing,
    _metadata_token_refused_by_the_service,
    _batch_whose_key_is_deleted_half_way,
    _batch_whose_refresh_meets_a_careless_iam,
    _user_token_refused,
    _api_key_from_the_environment_refused,
    _three_credential_flags,
    _dry_run_with_a_key,
    _auth_check_refused_text,
    _auth_check_refused_json,
    _auth_check_ok_json,
    _auth_check_yc_failing,
    _auth_user_token,
]


def pieces(secret: str) -> set[str]:
    return {secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}


def leaks(text: str, secrets: list[str]) -> set[str]:
    forbidden = set().union(*(pieces(s) for s in secrets))
    return {text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1)} & forbidden


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.__name__.strip("_"))
def test_no_path_shows_a_secret(
    path: Path_,
    tmp_path: Path,
    home: Path,
    test_key: TestKey,
    fake_iam: FakeIam,
    authority: TokenAuthority,
    fake_yc: FakeYc,
    stt_server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metadata = FakeMetadata(authority)
    try:
        audio = tmp_path / "a.wav"
        audio.write_bytes(wav(ramp(8000)))
        (tmp_path / "out").mkdir()
        world = World(
            tmp_path,
            home,
            test_key,
            fake_iam,
            metadata,
            fake_yc,
            authority,
            stt_server,
            audio,
            monkeypatch,
        )
        test_key.write(world.key_file)
        result = path(world)
    finally:
        metadata.stop()
    assert result.exit_code != 1, result.stderr  # a failure sttcli knows, not a crash
    secrets = world.secrets()
    assert not leaks(result.stdout, secrets), result.stdout
    assert not leaks(result.stderr, secrets), result.stderr
    written = [
        p
        for root in (tmp_path, home)
        for p in root.rglob("*")
        if p.is_file() and p.name not in ("key.json", "config.yaml")
    ]
    for file in written:
        assert not leaks(file.read_text(errors="replace"), secrets), file


def test_the_sweep_covers_every_path() -> None:
    """The count the issue asks for: each path is a parametrized case above."""
    assert len(PATHS) == 28
