"""What counts as this machine: where credentials may go in clear text, and no proxy is used."""

from __future__ import annotations

import pytest

from sttcli.loopback import is_loopback_endpoint, is_loopback_host


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("localhost:443", True),
        ("[::1]:50051", True),
        ("stt.api.cloud.yandex.net:443", False),
        ("[2001:db8::1]:443", False),
    ],
)
def test_loopback_endpoints(endpoint: str, loopback: bool) -> None:
    assert is_loopback_endpoint(endpoint) is loopback
