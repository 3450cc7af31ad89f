from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# As the CLI does: gRPC's C core would otherwise log GOAWAYs and handshakes.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from support.iam import (  # noqa: E402
    FakeIam,
    FakeMetadata,
    FakeYc,
    TestKey,
    TokenAuthority,
    running,
)
from support.scripted import ScriptedServer  # noqa: E402

from sttcli.auth import metadata  # noqa: E402

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def stt_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def refusing_port() -> Iterator[int]:
    """A loopback port that is bound and never listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, refusing_port: int
) -> Path:
    """Tests set the credentials they mean; the developer's own never leak in.

    And nothing can leave the machine: the metadata service and the IAM
    endpoint point at a refusing loopback port unless a test points them at a
    fake of its own, the machine is not a Yandex Cloud VM, HOME (and so yc's
    config) is empty, and no proxy is set.
    """
    for name in list(os.environ):
        if name.startswith(("YC_", "STTCLI_")) or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name, raising=False)
    for name in ("IAM_TOKEN", "FOLDER_ID", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("YC_METADATA_ADDR", f"127.0.0.1:{refusing_port}")
    monkeypatch.setenv("YC_IAM_ENDPOINT", f"http://127.0.0.1:{refusing_port}/iam/v1/tokens")
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    vendor = home / "sys_vendor"
    vendor.write_text("QEMU\n")
    monkeypatch.setattr(metadata, "SYS_VENDOR_PATH", vendor)
    monkeypatch.setenv(metadata.SYS_VENDOR_VARIABLE, str(vendor))  # and for child processes
    return home


@pytest.fixture(autouse=True)
def _nothing_leaves_this_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A safety net under the environment above: a channel or an HTTP request to any address
    but loopback is refused, and fails the test that tried, whatever its exit code."""
    from urllib.parse import urlsplit

    from sttcli.auth import keyfile
    from sttcli.errors import CredentialUnreachable, ServiceError
    from sttcli.session import connection

    attempts: list[str] = []
    real_open, real_request = connection.open_channel, keyfile.request_json

    def open_channel(endpoint: str, **options: Any) -> Any:
        if not _stays_here(endpoint):
            attempts.append(endpoint)
            raise ServiceError("UNAVAILABLE", "off this machine: refused by the test suite")
        return real_open(endpoint, **options)

    def request_json(url: str, **options: Any) -> Any:
        if not _is_loopback(urlsplit(url).hostname or ""):
            attempts.append(url)
            raise CredentialUnreachable(f"{url}: off this machine: refused by the test suite")
        return real_request(url, **options)

    monkeypatch.setattr(connection, "open_channel", open_channel)
    monkeypatch.setattr(keyfile, "request_json", request_json)
    monkeypatch.setattr(metadata, "request_json", request_json)
    yield
    assert not attempts, f"the test tried to reach {attempts}"


def _stays_here(target: str) -> bool:
    """Does a gRPC target reach only this machine? (`dns://AUTHORITY/...`: the DNS server.)"""
    if target.startswith("unix:"):
        return True
    if target.startswith("dns://"):
        authority, _, name = target[len("dns://") :].partition("/")
        return _is_loopback(authority.rsplit(":", 1)[0]) if authority else _stays_here(name)
    for scheme in ("ipv4:", "ipv6:"):
        if target.startswith(scheme):
            addresses = target[len(scheme) :].split(",")
            return all(_is_loopback(a.rsplit(":", 1)[0]) for a in addresses)
    return _is_loopback(target.rsplit(":", 1)[0])


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def home(_no_credentials_from_the_environment: Path) -> Path:
    """The test's HOME: yc's config goes in home/.config/yandex-cloud/config.yaml."""
    return _no_credentials_from_the_environment


# -- credentials: a key pair for the session, fakes of IAM and the metadata service


@pytest.fixture(scope="session")
def test_key() -> TestKey:
    return TestKey.generate()


@pytest.fixture
def authority() -> TokenAuthority:
    return TokenAuthority()


@pytest.fixture
def fake_iam(
    test_key: TestKey, authority: TokenAuthority, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeIam]:
    """A fake IAM endpoint, which YC_IAM_ENDPOINT points at."""
    fake = FakeIam(test_key, authority)
    monkeypatch.setenv("YC_IAM_ENDPOINT", fake.url)
    yield from running(fake)


@pytest.fixture
def fake_metadata(
    authority: TokenAuthority, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeMetadata]:
    """A fake metadata service, which YC_METADATA_ADDR points at."""
    fake = FakeMetadata(authority)
    monkeypatch.setenv("YC_METADATA_ADDR", fake.address)
    yield from running(fake)


@pytest.fixture
def fake_yc(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeYc:
    """A `yc` first on PATH."""
    fake = FakeYc(tmp_path_factory.mktemp("bin"))
    monkeypatch.setenv("PATH", f"{fake.directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return fake
