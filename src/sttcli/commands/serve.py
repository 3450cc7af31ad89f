"""`sttcli serve`: a SpeechKit-compatible server on an offline engine."""

from __future__ import annotations

import logging
import os
from typing import Any

from sttcli.diagnostics import Diagnostics
from sttcli.errors import ExitCode, UsageError
from sttcli.server.engine import Described, Engine, EngineError
from sttcli.server.workers import WorkerEngine


def make_engine(
    name: str,
    workers: int,
    *,
    model_dir: str | None = None,
    verify_all: bool = False,
    wait: bool = True,
) -> Engine:
    """The engine, its workers started and, with `wait`, ready (or a clear UsageError).

    Without `wait` the workers load their models while the caller goes on;
    the first stream waits for one (--local: the client starts meanwhile).
    """
    if model_dir is not None and name != "whisper":
        raise UsageError("--model-dir needs --engine whisper")
    if name == "synthetic":
        from sttcli.server.synthetic import SyntheticEngine

        return SyntheticEngine()
    engine: WorkerEngine
    if name == "pocketsphinx":
        from sttcli.server.sphinx import SphinxEngine

        engine = SphinxEngine(workers)
    else:
        from sttcli.server.whisper import WhisperEngine

        engine = WhisperEngine(workers, model_dir=model_dir, verify_all=verify_all)
    try:
        if wait:
            engine.wait_ready()
    except EngineError as error:
        engine.close()
        raise UsageError(f"the {name} engine did not start: {error}") from None
    return engine


def describe(engine: Engine) -> str | None:
    """The server's first line: the engine, its model and the hash prefix of its weights."""
    return engine.describe() if isinstance(engine, Described) else None


def run_serve(params: dict[str, Any]) -> int:
    from sttcli.server.app import BindError, serve
    from sttcli.server.servicer import Auth, Limits

    diagnostics = Diagnostics(quiet=params["quiet"], verbose=params["verbose"])
    diagnostics.install_logging()
    if not params["quiet"]:
        # Per-stream lines are the point of a server's log: on without -v.
        logging.getLogger("sttcli").setLevel(
            logging.DEBUG if params["verbose"] >= 2 else logging.INFO
        )
    if params["max_session_seconds"] <= 0 or params["max_session_bytes"] <= 0:
        raise UsageError("--max-session-seconds and --max-session-bytes must be positive")
    for option in ("api_key", "iam_token"):
        _check_credential(option, params[option])
    workers = params["workers"] or os.cpu_count() or 1
    engine = make_engine(params["engine"], workers, model_dir=params["model_dir"], verify_all=True)
    description = describe(engine)
    if description:
        diagnostics.write(description)
    auth = Auth(
        api_keys=(params["api_key"],) if params["api_key"] else (),
        iam_tokens=(params["iam_token"],) if params["iam_token"] else (),
    )
    limits = Limits(params["max_session_seconds"], params["max_session_bytes"])
    try:
        serve(
            params["host"],
            params["port"],
            engine,
            workers=workers,
            limits=limits,
            auth=auth,
            announce=diagnostics.write,
        )
    except BindError:
        raise UsageError(
            f"cannot listen on {params['host']}:{params['port']}: "
            "the address is taken or not this machine's"
        ) from None
    return int(ExitCode.OK)


def _check_credential(option: str, value: str | None) -> None:
    """An empty credential (an unset variable: `--api-key "$KEY"`) would switch auth off."""
    flag = "--" + option.replace("_", "-")
    if value is None:
        return
    if not value.strip():
        raise UsageError(f"{flag} is empty: give the credential, or leave the option out")
    if not value.isascii() or not value.isprintable() or " " in value:
        raise UsageError(f"{flag}: the value must be printable ASCII without spaces")
