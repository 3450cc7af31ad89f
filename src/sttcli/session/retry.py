"""Retry: how long to wait before trying a failed session again, and for how long at all.

Waits grow exponentially with full jitter (a random wait between 0 and the
ceiling), so that many clients cut off together do not come back together;
`--timeout` bounds an input's sessions and waits together.
"""

from __future__ import annotations

from collections.abc import Callable

from sttcli.errors import ServiceError
from sttcli.options import SessionPolicy


def backoff_delay(policy: SessionPolicy, attempt: int, random: Callable[[], float]) -> float:
    """The wait before retry `attempt + 1` of an incident."""
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2.0**attempt)
    return random() * ceiling


class Deadline:
    """The --timeout of one input, counted on the injected clock."""

    def __init__(self, timeout: float, clock: Callable[[], float], *, endpoint: str) -> None:
        self.timeout = timeout
        self.clock = clock
        self.endpoint = endpoint
        self.at = clock() + timeout

    def remaining(self) -> float:
        """Seconds left; DEADLINE_EXCEEDED once there are none."""
        remaining = self.at - self.clock()
        if remaining <= 0:
            raise ServiceError(
                "DEADLINE_EXCEEDED",
                f"--timeout of {self.timeout:g} s reached",
                endpoint=self.endpoint,
            )
        return remaining
