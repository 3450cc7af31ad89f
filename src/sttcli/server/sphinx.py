"""The pocketsphinx engine: decoders in worker processes, one stream each at a time.

Worker processes, not threads: pocketsphinx holds the GIL while it decodes,
so threads would decode one stream at a time whatever the core count. Each
worker builds its two decoders once (about a second) and then serves stream
after stream; `open()` waits for an idle one. A worker that dies fails its
stream with INTERNAL and is replaced (see workers.py).
"""

from __future__ import annotations

import importlib.util
import signal
from multiprocessing.connection import Connection

from sttcli.errors import UsageError
from sttcli.server.workers import Worker, WorkerEngine, serve_streams

REQUIRED = ("pocketsphinx", "soxr", "numpy")


def require_local_extra() -> None:
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"the pocketsphinx engine needs {', '.join(missing)}: "
            "pip install 'sttcli[pocketsphinx]'"
        )


class SphinxEngine(WorkerEngine):
    name = "pocketsphinx"
    languages: tuple[str, ...] = ("en-US",)

    def __init__(self, workers: int = 1) -> None:
        require_local_extra()
        super().__init__(workers)

    def _new_worker(self) -> Worker:
        return Worker(self._context, worker_main, (), "sttcli-pocketsphinx")

    def describe(self) -> str:
        return "engine pocketsphinx, its US-English model"


def worker_main(connection: Connection) -> None:
    """A worker process: build the decoders once, then serve streams."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop
    from sttcli.server.sphinx_decoder import StreamDecoder, make_decoders

    try:
        live, final = make_decoders()
    except Exception as error:  # a broken install: say why, once
        connection.send(("error", f"{type(error).__name__}: {error}"))
        return

    def start(rate: int, partials: bool, language: str = "") -> StreamDecoder:
        return StreamDecoder(live, final, rate, partials=partials)

    serve_streams(connection, start)
