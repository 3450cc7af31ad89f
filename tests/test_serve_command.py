"""The `sttcli serve` command: what it refuses to start with, and how it stops."""

from __future__ import annotations

import errno
import signal
import subprocess
import threading
import time

import grpc
import pytest
from support.audio import markers
from support.cli import run_cli, spawn
from support.servers import requests

from sttcli._proto import stt_service_pb2_grpc as rpc
from sttcli.server import app


@pytest.mark.parametrize("option", ["--api-key", "--iam-token"])
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_credential_is_refused_rather_than_turning_auth_off(
    option: str, value: str
) -> None:
    result = run_cli("serve", "--engine", "synthetic", "--port", "0", option, value)
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"sttcli: {option} is empty: give the credential, or leave the option out\n"
    )


def test_serve_refuses_a_taken_port_and_a_foreign_address() -> None:
    first = spawn(
        "serve", "--engine", "synthetic", "--port", "0", stderr=subprocess.PIPE, text=True
    )
    assert first.stderr is not None
    port = first.stderr.readline().split(":")[-1].strip()
    try:
        for args in (["--port", port], ["--host", "999.1.1.1", "--port", "0"]):
            second = run_cli("serve", "--engine", "synthetic", *args)
            assert second.exit_code == 2, second.stderr
            assert "cannot listen on" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)


def test_only_a_failed_bind_says_cannot_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    def stops_badly(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(app, "serve", stops_badly)
    result = run_cli("serve", "--engine", "synthetic", "--port", "0")
    assert "cannot listen" not in result.stderr
    assert result.stderr.count("\n") <= 2  # one line, and the -v hint of an internal error


def test_sigterm_during_running_streams_stops_cleanly() -> None:
    server = spawn(
        "serve", "--engine", "synthetic", "--port", "0", stderr=subprocess.PIPE, text=True
    )
    assert server.stderr is not None
    address = server.stderr.readline().split()[-1]
    hold = threading.Event()

    def slow_stream() -> object:
        yield from requests(markers("alpha"))
        hold.wait(10)

    with grpc.insecure_channel(address) as channel:
        stub = rpc.SttServiceStub(channel)
        calls = [stub.StreamingRecognize(slow_stream()) for _ in range(3)]
        time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
        hold.set()
        for call in calls:
            call.cancel()
    assert server.returncode == 0, err
    assert "cannot listen" not in err and "Traceback" not in err


@pytest.mark.engine
def test_a_pocketsphinx_session_closed_under_a_stream_says_the_server_is_stopping() -> None:
    from sttcli.server.engine import EngineStopped
    from sttcli.server.sphinx import SphinxEngine

    engine = SphinxEngine(workers=1)
    engine.wait_ready()
    session = engine.open(16000, partials=False)
    engine.close()
    with pytest.raises(EngineStopped):
        session.feed(bytes(3200))
    with pytest.raises(EngineStopped):
        engine.open(16000, partials=False)
