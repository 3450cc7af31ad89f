"""Building and running the server: `create_server()` (tests, --local) and `serve()` (the CLI)."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from typing import Any

import grpc

from sttcli._proto import stt_service_pb2_grpc as rpc
from sttcli.server.engine import Engine
from sttcli.server.servicer import Auth, Limits, SttServicer

log = logging.getLogger("sttcli.server")

# Accept keepalive pings from clients of long, quiet streams.
SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    # gRPC shares ports by default: a second server on a taken port would
    # start, say it listens, and split the clients with the first.
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
)
GRACE_SECONDS = 5.0
STREAM_THREADS = 128


class BindError(OSError):
    """The address cannot be listened on: taken, or not this machine's.

    Its own class, so that only a failed bind is reported as one: an OSError
    while stopping (SIGTERM during running streams) is something else.
    """


def create_server(
    address: str,
    engine: Engine,
    *,
    workers: int = 4,
    limits: Limits | None = None,
    auth: Auth | None = None,
) -> tuple[grpc.Server, int, SttServicer]:
    """A started server on `address` ("host:0" picks a port); returns it, the port, the servicer."""
    servicer = SttServicer(engine, limits=limits, auth=auth)
    # Streams beyond the engine's capacity wait for a decoder in their thread:
    # leave room for them rather than refusing them. A stream holds its thread
    # while it runs, a quiet one too (for at most `limits.idle_seconds`), so
    # the pool is much larger than the decoders: idle streams cannot fill it
    # before they time out. An idle thread costs little memory.
    pool = futures.ThreadPoolExecutor(
        max_workers=max(STREAM_THREADS, workers * 4), thread_name_prefix="stream"
    )
    server = grpc.server(pool, options=SERVER_OPTIONS)
    rpc.add_SttServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:  # grpc's way of saying the bind failed
        raise BindError(f"cannot listen on {address}") from error
    if port == 0:
        raise BindError(f"cannot listen on {address}")
    server.start()
    return server, port, servicer


def serve(
    host: str,
    port: int,
    engine: Engine,
    *,
    workers: int,
    limits: Limits,
    auth: Auth,
    announce: Any,
) -> None:
    """Run until SIGINT or SIGTERM; running streams get a grace period to finish."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        server, bound, servicer = create_server(
            f"{host}:{port}", engine, workers=workers, limits=limits, auth=auth
        )
        display_host = f"[{host}]" if ":" in host else host
        announce(f"listening on {display_host}:{bound}")
        stop.wait()
        log.info(
            "stopping: no new streams; %d running get %.0f s",
            servicer.active_streams,
            GRACE_SECONDS,
        )
        server.stop(grace=GRACE_SECONDS).wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.close()
