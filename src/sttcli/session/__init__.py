"""One input through as many streaming sessions as it takes.

`recognizer` runs an input's sessions; the rules it follows each have a part
of their own: `rotation` (where a session ends near its limit), `retry`
(backoff and the input's deadline), `resume` (where a session starts again
after a broken one), and `connection` (the channel, credentials and the
stream-start limiter that all inputs share).
"""

from sttcli.session.connection import Clockwork, Connection, StartLimiter
from sttcli.session.recognizer import EventSink, InputRecognizer

__all__ = ["Clockwork", "Connection", "EventSink", "InputRecognizer", "StartLimiter"]
