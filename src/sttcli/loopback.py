"""Is an address this machine? One answer for gRPC endpoints and HTTP URLs alike."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (brackets allowed): nothing sent there leaves the machine."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_endpoint(endpoint: str) -> bool:
    """The same for a gRPC `HOST:PORT` (`[ADDRESS]:PORT` for IPv6)."""
    host = endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint
    return is_loopback_host(host)
