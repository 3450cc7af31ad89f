"""Tokens sttcli fetches stay fresh: over rotated sessions, across a batch, after a refusal.

The rules run on an injected clock; the end-to-end runs use tokens that
expire every couple of seconds, against `sttcli serve`'s servicer that
accepts only tokens the fake IAM issued and that are still valid.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.audio import markers, ramp, wav
from support.cli import against
from support.iam import FakeIam, IssuedTokensAuth, TestKey, TokenAuthority
from support.scripted import ScriptedServer
from support.servers import running_server

from sttcli.auth.chain import ChainOptions, FetchedCredentials, resolve_chain
from sttcli.auth.tokens import IssuedToken, RefreshingToken, parse_rfc3339
from sttcli.errors import CredentialRefused, CredentialUnreachable
from sttcli.server.synthetic import WORDS, SyntheticEngine


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    """A fetch that hands out numbered tokens of a given lifetime, or fails when told."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.count = 0
        self.failure: Exception | None = None

    def __call__(self, now: float) -> IssuedToken:
        if self.failure is not None:
            raise self.failure
        self.count += 1
        return IssuedToken(f"token-{self.count}", issued_at=now, expires_at=now + self.lifetime)


# -- the rules ------------------------------------------------------------------


def test_a_token_is_reused_until_an_hour_has_passed() -> None:
    clock, issuer = Clock(), Issuer(12 * 3600)
    tokens = RefreshingToken(issuer, clock=clock)
    assert tokens.current().value == "token-1"
    clock.now = 3599.0
    assert tokens.current().value == "token-1"
    clock.now = 3600.0
    assert tokens.current().value == "token-2"


def test_a_token_is_replaced_with_a_tenth_of_its_life_left() -> None:
    clock, issuer = Clock(), Issuer(100.0)
    tokens = RefreshingToken(issuer, clock=clock)
    tokens.current()
    clock.now = 89.9
    assert tokens.current().value == "token-1"
    clock.now = 90.1
    assert tokens.current().value == "token-2"
    assert issuer.count == 2


def test_a_failed_refresh_with_a_valid_token_left_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, issuer = Clock(), Issuer(100.0)
    tokens = RefreshingToken(issuer, clock=clock)
    tokens.current()
    issuer.failure = CredentialUnreachable("cannot reach IAM endpoint x: refused")
    clock.now = 95.0
    with caplog.at_level(logging.WARNING, logger="sttcli"):
        assert tokens.current().value == "token-1"
        assert tokens.current().value == "token-1"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once, not once per session
    assert "cannot get a new IAM token" in warnings[0].getMessage()
    clock.now = 100.0  # none valid left: the failure is the caller's
    with pytest.raises(CredentialUnreachable):
        tokens.current()


def test_a_rejected_token_is_fetched_again_but_only_once(tmp_path: Path) -> None:
    clock, issuer = Clock(), Issuer(3600.0)
    tokens = RefreshingToken(issuer, clock=clock)
    tokens.current()
    tokens.reject("token-1")
    assert tokens.current().value == "token-2"
    tokens.reject("token-1")  # another session refused the old one: already replaced
    assert tokens.current().value == "token-2"


def test_sessions_that_find_the_token_due_together_share_one_fetch() -> None:
    clock = Clock()
    fetched: list[int] = []

    def slow_fetch(now: float) -> IssuedToken:
        time.sleep(0.05)
        fetched.append(1)
        return IssuedToken(f"token-{len(fetched)}", issued_at=now, expires_at=now + 100)

    tokens = RefreshingToken(slow_fetch, clock=clock)
    seen: list[str] = []
    threads = [
        threading.Thread(target=lambda: seen.append(tokens.current().value)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fetched) == 1 and seen == ["token-1"] * 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T19:04:38Z", 1796324678.0),
        ("2026-12-03T19:04:38.123456789Z", 1796324678.123456),
        ("2026-12-03T22:04:38.5+03:00", 1796324678.5),
    ],
)
def test_iam_expiry_times_are_read_with_their_nanoseconds(text: str, expected: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(expected, abs=1e-6)


def test_a_key_files_token_survives_an_iam_outage_while_it_is_valid(
    fake_iam: FakeIam,
    authority: TokenAuthority,
    test_key: TestKey,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    authority.lifetime = 12 * 3600.0
    key = test_key.write(tmp_path / "key.json")
    resolution = resolve_chain(ChainOptions(sa_key_file=str(key)), clock=clock)
    provider = resolution.provider
    assert isinstance(provider, FetchedCredentials)
    first = provider.resolve().value
    fake_iam.refuse = (503, "IAM is down")
    clock.now = 3600.0  # an hour on: due, and still valid for 11 more
    with caplog.at_level(logging.WARNING, logger="sttcli"):
        assert provider.resolve().value == first
    assert "HTTP 503: IAM is down" in caplog.text
    clock.now = 12 * 3600.0  # expired: nothing left to fall back on
    with pytest.raises(CredentialUnreachable) as caught:
        provider.resolve()
    assert caught.value.exit_code == 6
    fake_iam.refuse = (401, "key deleted")
    with pytest.raises(CredentialRefused):
        provider.resolve()


# -- end to end, tokens that expire every two seconds --------------------------------


@pytest.fixture
def guarded_server(authority: TokenAuthority) -> Iterator[str]:
    """sttcli's own server on the synthetic engine, accepting only valid issued tokens."""
    with running_server(SyntheticEngine(), auth=IssuedTokensAuth(authority=authority)) as address:
        yield address


def speech(directory: Path, name: str, words: list[str]) -> Path:
    path = directory / name
    path.write_bytes(wav(markers(*words)))
    return path


def test_tokens_are_refreshed_across_rotated_sessions(
    guarded_server: str,
    fake_iam: FakeIam,
    authority: TokenAuthority,
    test_key: TestKey,
    tmp_path: Path,
) -> None:
    authority.lifetime = 2.0
    key = test_key.write(tmp_path / "key.json")
    spoken = [WORDS[n % len(WORDS)] for n in range(20)]  # 16 s of audio, a word at a time
    path = speech(tmp_path, "long.wav", spoken)
    result = against(
        guarded_server,
        "--sa-key-file",
        str(key),
        "--speed",
        "4",
        "--max-session-seconds",
        "2",
        "-f",
        "json",
        str(path),
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["text"] == " ".join(spoken)
    assert document["sessions"] >= 6 and document["retries"] == 0
    assert authority.refused == []  # no session ever sent an expired token
    assert len(fake_iam.jwts) >= 2  # the 4 s run outlived the first token


def test_a_batch_shares_its_tokens_and_never_sends_an_expired_one(
    guarded_server: str,
    fake_iam: FakeIam,
    authority: TokenAuthority,
    test_key: TestKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authority.lifetime = 2.0
    monkeypatch.setenv("YC_SERVICE_ACCOUNT_KEY_FILE", str(test_key.write(tmp_path / "k.json")))
    inputs = [
        speech(tmp_path, f"in{n}.wav", [WORDS[(n + i) % len(WORDS)] for i in range(5)])
        for n in range(9)
    ]
    result = against(
        guarded_server,
        "-j",
        "3",
        "--speed",
        "4",
        "--max-session-seconds",
        "1",
        "-f",
        "json",
        *map(str, inputs),
    )
    assert result.exit_code == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["error"] for d in documents] == [None] * 9
    assert all(d["retries"] == 0 for d in documents)
    sessions = sum(d["sessions"] for d in documents)
    assert authority.refused == [] and authority.checked == sessions
    assert 2 <= len(fake_iam.jwts) < sessions  # refreshed, and shared by the sessions


def test_with_no_valid_token_left_a_failed_refresh_fails_the_input(
    guarded_server: str,
    fake_iam: FakeIam,
    authority: TokenAuthority,
    test_key: TestKey,
    tmp_path: Path,
) -> None:
    authority.lifetime = 1.0
    fake_iam.issue_limit = 1  # the key is deleted after the first exchange
    key = test_key.write(tmp_path / "key.json")
    first = speech(tmp_path, "first.wav", ["alpha bravo charlie delta"])  # 1.3 s
    second = speech(tmp_path, "second.wav", ["echo"])
    result = against(
        guarded_server,
        "--sa-key-file",
        str(key),
        "--speed",
        "1",
        "-f",
        "json",
        str(first),
        str(second),
    )
    assert result.exit_code == 4
    ok, failed = (json.loads(line) for line in result.stdout.splitlines())
    assert ok["error"] is None and ok["text"] == "alpha bravo charlie delta"
    assert failed["error"]["exit_code"] == 4
    assert "the key has been deleted" in failed["error"]["message"]
    assert authority.refused == []


# -- UNAUTHENTICATED: one more try, with a new token, for tokens the chain fetched ------


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    path.write_bytes(wav(ramp(8000)))
    return path


def test_a_refused_chain_token_is_retried_once_with_a_new_one(
    stt_server: ScriptedServer,
    fake_iam: FakeIam,
    authority: TokenAuthority,
    test_key: TestKey,
    tmp_path: Path,
    audio: Path,
) -> None:
    revoked: set[str] = set()

    def authorize(metadata: dict[str, str]) -> str | None:
        if not revoked:  # the first token is revoked as soon as it is used
            revoked.add(metadata["authorization"])
        if metadata["authorization"] in revoked:
            return "the token has been revoked"
        return authority.refusal(metadata)

    stt_server.servicer.authorize = authorize
    key = test_key.write(tmp_path / "key.json")
    result = against(stt_server.address, "--sa-key-file", str(key), "-f", "json", str(audio))
    assert result.exit_code == 0, result.stderr
    first, second = (call.metadata["authorization"] for call in stt_server.calls)
    assert first != second and len(fake_iam.jwts) == 2
    assert json.loads(result.stdout)["retries"] == 1


def test_a_chain_token_refused_twice_fails_after_one_retry(
    stt_server: ScriptedServer, fake_iam: FakeIam, test_key: TestKey, tmp_path: Path, audio: Path
) -> None:
    stt_server.servicer.authorize = lambda metadata: "no access to this folder"
    key = test_key.write(tmp_path / "key.json")
    result = against(stt_server.address, "--sa-key-file", str(key), str(audio))
    assert result.exit_code == 4
    assert len(stt_server.calls) == 2 and len(fake_iam.jwts) == 2


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_token_the_user_gave_is_not_retried(
    stt_server: ScriptedServer, audio: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    stt_server.servicer.authorize = lambda metadata: "the token has expired"
    args = ["--iam-token", "t1.usertoken00"] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("YC_IAM_TOKEN", "t1.usertoken00")
    result = against(stt_server.address, *args, str(audio))
    assert result.exit_code == 4
    assert len(stt_server.calls) == 1
