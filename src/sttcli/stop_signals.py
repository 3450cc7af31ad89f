"""SIGINT (Ctrl-C) and SIGTERM as a request to stop, from the first moment of a run.

Python's default turns SIGINT into a KeyboardInterrupt wherever the main
thread happens to be, such as halfway through starting a decoder process,
and SIGTERM into death with nothing written. Here both only record that the
run must stop and cancel it through its event loop once there is one: the
run then ends the way Ctrl-C always ended it, with what was recognized kept
and written. A second signal stops at once, as users expect of a second
Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from sttcli.errors import stop_signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """A context in which SIGINT and SIGTERM call `on_stop` (once) instead of killing."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._on_stop: Callable[[], None] | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        stop_signal.terminated = False
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                # Ignored by whoever started us (`nohup`, `cmd &` in a script): keep it so.
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def stopping(self) -> bool:
        return self.received is not None

    def on_stop(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` when a signal comes; at once if one came already."""
        self._on_stop = callback
        if callback is not None and self.received is not None:
            callback()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # the second one: stop now
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            raise KeyboardInterrupt
        self.received = signum
        stop_signal.terminated = signum == signal.SIGTERM
        if self._on_stop is not None:
            self._on_stop()
