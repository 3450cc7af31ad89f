"""IAM tokens that sttcli obtains itself: kept in memory only, and fetched again before they expire.

A token is fetched again when it is older than an hour or has less than 10 %
of its life left, checked before each new session and each retry, so that a
batch running for longer than a token lives never sends an expired one. The
clock is injected: tests run hours of token life in no time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sttcli.auth.secrets import KNOWN
from sttcli.errors import SttError

log = logging.getLogger("sttcli.auth")

IAM_TOKENS_URL = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
DEFAULT_TOKEN_LIFETIME = 12 * 3600.0  # IAM tokens live 12 hours at most
MAX_AGE_SECONDS = 3600.0  # Yandex's advice: get a new IAM token every hour
MIN_LIFE_LEFT = 0.10  # and never let one run into its last tenth


@dataclass(frozen=True)
class IssuedToken:
    """An IAM token and when it stops working, on the same clock as `issued_at`."""

    value: str = field(repr=False)
    issued_at: float
    expires_at: float

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.issued_at

    def due(self, now: float) -> bool:
        """Time to get a new one?"""
        too_old = now - self.issued_at >= MAX_AGE_SECONDS
        return too_old or self.expires_at - now < MIN_LIFE_LEFT * self.lifetime

    def valid(self, now: float) -> bool:
        return now < self.expires_at


Fetch = Callable[[float], IssuedToken]  # given the clock's now, a new token


class RefreshingToken:
    """One token shared by every session and input; fetched by the first that finds it due.

    Thread-safe: inputs fetch in worker threads (the fetch blocks), and the
    others wait for that one fetch rather than each making their own.
    """

    def __init__(self, fetch: Fetch, *, clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self.clock = clock
        self._token: IssuedToken | None = None
        self._lock = threading.Lock()
        self._warned = False
        self.fetches = 0

    def current(self) -> IssuedToken:
        """A token that is not due, fetching one if needed.

        A failed fetch while the held token is still valid is a warning and
        that token is used; with none valid, the failure is raised.
        """
        with self._lock:
            now = self.clock()
            held = self._token
            if held is not None and not held.due(now):
                return held
            try:
                fresh = self._fetch(now)
            except SttError as error:
                if held is None or not held.valid(now):
                    raise
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "cannot get a new IAM token (%s); using the current one, valid for %s more",
                        error.message,
                        _duration(held.expires_at - now),
                    )
                return held
            KNOWN.learn(fresh.value)
            self.fetches += 1
            self._warned = False
            self._token = fresh
            log.info(
                "got a new IAM token, valid until %s (%s)",
                _wall_time(fresh.expires_at, now),
                _duration(fresh.lifetime),
            )
            return fresh

    def reject(self, value: str) -> None:
        """The service refused `value`: the next `current()` fetches, unless another did already."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None


def parse_rfc3339(text: str) -> float:
    """`2026-12-03T19:04:38.123456789Z` (IAM's nanoseconds included) as a POSIX timestamp."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    date, sep, rest = value.partition("T")
    if not sep:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    zone_at = max(rest.rfind("+"), rest.rfind("-"))
    clock, zone = (rest[:zone_at], rest[zone_at:]) if zone_at > 0 else (rest, "+00:00")
    whole, dot, fraction = clock.partition(".")
    micro = (fraction[:6]).ljust(6, "0") if dot else ""
    normalized = f"{date}T{whole}{'.' + micro if micro else ''}{zone}"
    return datetime.fromisoformat(normalized).timestamp()


def _wall_time(at: float, now: float) -> str:
    """`at` on the wall clock, for messages (the injected clock may not be the wall's)."""
    real = time.time() + (at - now)
    return datetime.fromtimestamp(real, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
