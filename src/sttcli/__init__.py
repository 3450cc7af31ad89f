"""sttcli: a streaming client for Yandex SpeechKit speech recognition (gRPC API v2).

The package is a library as well as a command: `sttcli.session.InputRecognizer`
streams one input with retries and session rotation, `sttcli.server` is an offline
SpeechKit-compatible server. Nothing heavy is imported here, so `sttcli --version`
stays fast.
"""

__version__ = "0.1.0"
