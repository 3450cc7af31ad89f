"""The secrets this process has seen, so that whatever it prints can be scrubbed of them.

Flags and the environment are known when a command starts; tokens, JWTs and
private keys of the credential chain only once they are read or fetched.
Every scrubber consults this registry when it scrubs, so a token learned in
the middle of a batch is masked in the very next line.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

MASK = "****"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


class SecretRegistry:
    """A growing, thread-safe set of secret values (IAM tokens are fetched in threads)."""

    def __init__(self) -> None:
        self._values: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def learn(self, *values: str | None) -> None:
        fresh = {v.strip() for v in values if v and len(v.strip()) >= MIN_SECRET_LENGTH}
        if not fresh <= self._values:
            with self._lock:
                self._values = self._values | fresh

    def learn_pem(self, pem: str) -> None:
        """A private key: whole, and each line of its body, which is what a snippet would show."""
        lines = [line.strip() for line in pem.splitlines()]
        self.learn(pem, *(line for line in lines if line and not line.startswith("-----")))

    def values(self) -> frozenset[str]:
        return self._values

    def forget_all(self) -> None:
        """A new command starts with what it is given (tests run many in one process)."""
        with self._lock:
            self._values = frozenset()


KNOWN = SecretRegistry()


def scrubbed(text: str) -> str:
    """`text` with every secret learned so far masked: for what a server or `yc` says."""
    for secret in learned():
        text = text.replace(secret, MASK)
    return text


def learned(extra: Iterable[str] = ()) -> list[str]:
    """The registry's secrets and `extra`, longest first: a secret containing another goes whole."""
    values = set(KNOWN.values()) | {v for v in extra if len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)
