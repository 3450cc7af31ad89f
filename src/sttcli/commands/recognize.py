"""`sttcli recognize`: the program behind the options, without error handling.

`sttcli.cli` parses and guards; this module turns options into settings,
inputs into sources, and runs them through the batch runner on an event loop
that turns Ctrl-C into a clean cancellation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO, TypeVar

from sttcli import stdio, wire
from sttcli.audio.plan import describe
from sttcli.audio.sniff import OPUS_RATE, AudioFormat, Encoding, RateSource
from sttcli.audio.sources import AudioSource, Conversion, open_source
from sttcli.auth.chain import (
    ChainOptions,
    Resolution,
    check_flags,
    is_speechkit,
    resolve_chain,
)
from sttcli.auth.credentials import (
    CredentialSource,
    build_metadata,
    known_secrets,
    masked,
    parse_header,
)
from sttcli.batch import BatchOutcome, run_batch
from sttcli.commands import preflight
from sttcli.diagnostics import Diagnostics
from sttcli.errors import BadInput, ExitCode, Interrupted, UsageError
from sttcli.loopback import is_loopback_endpoint
from sttcli.options import DEFAULT_ENDPOINT, RecognitionSettings, SessionPolicy, StreamSettings
from sttcli.output.files import ResultFiles, result_paths
from sttcli.output.render import (
    Emit,
    InputRef,
    JsonLinesRenderer,
    JsonRenderer,
    LiveRenderer,
    Observer,
    Observers,
    ProgressView,
    SubtitleRenderer,
    TextRenderer,
    live_console,
    same_terminal,
    stderr_console,
    writer,
)
from sttcli.output.report import InputLines, summary
from sttcli.output.safe import SafeObserver, for_json, for_text
from sttcli.output.subtitles import FORMATS as SUBTITLE_FORMATS
from sttcli.output.subtitles import MAX_LINE_WIDTH, MAX_LINES
from sttcli.results import ErrorInfo, InputResult
from sttcli.session import Connection, InputRecognizer, StartLimiter
from sttcli.stop_signals import StopSignals

T = TypeVar("T")
log = logging.getLogger("sttcli")


@dataclass(frozen=True)
class Plan:
    """Everything the options decide, checked before any input is opened."""

    inputs: tuple[str, ...]
    output_format: str
    settings: RecognitionSettings
    stream: StreamSettings
    policy: SessionPolicy
    connection: Connection
    encoding: str
    rate: int | None
    conversion: Conversion
    jobs: int
    max_rps: float
    fail_fast: bool
    output: str | None
    output_dir: Path | None
    skip_existing: bool
    dry_run: bool
    local: bool
    timestamps: bool = False
    max_line_width: int = MAX_LINE_WIDTH
    max_lines: int = MAX_LINES
    local_engine: str = "whisper"
    local_model_dir: str | None = None


def run_recognize(params: dict[str, Any]) -> int:
    diagnostics = Diagnostics(
        secrets=known_secrets(params),
        quiet=params["quiet"],
        verbose=params["verbose"],
        server_label="local server" if params["local"] else "",
    )
    diagnostics.install_logging()
    # From here on SIGINT and SIGTERM only ask the run to stop: a signal while
    # the local server starts must not land in the middle of starting it.
    with StopSignals() as stopping, ExitStack() as stack:
        plan = make_plan(params, stdout_is_terminal=_is_terminal(sys.stdout))
        if plan.output is None and plan.output_dir is None and "stdout" in stdio.closed:
            raise UsageError("stdout is closed: nowhere to write results (use -o or --output-dir)")
        if plan.local and not plan.dry_run:
            plan = stack.enter_context(_local_server(plan))
        out: TextIO = sys.stdout
        name = "stdout"
        if plan.output:
            try:
                out = open(plan.output, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise UsageError(f"-o {plan.output}: {exc.strerror or exc}") from None
            stack.callback(_close_quietly, out)
            name = plan.output
        out = stdio.GuardedOutput(out, name)  # type: ignore[assignment]
        if plan.dry_run:
            return _run_loop(_dry_run(plan, out, diagnostics), stopping)
        return _run_loop(_recognize_all(plan, out, diagnostics), stopping)


def _close_quietly(file: TextIO) -> None:
    """Close -o; what it could not take was reported when writing failed."""
    try:
        file.close()
    except OSError:
        pass


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False


def make_plan(params: dict[str, Any], *, stdout_is_terminal: bool) -> Plan:
    inputs = _inputs(params)
    output_dir = Path(params["output_dir"]) if params["output_dir"] else None
    output_format = params["output_format"] or (
        "live"
        if stdout_is_terminal and not params["output"] and not output_dir and len(inputs) == 1
        else "text"
    )
    if output_dir is not None:
        if params["output"]:
            raise UsageError("-o and --output-dir exclude each other")
        preflight.prepare_output_dir(output_dir, create=False)
        # Two inputs, one file; or a result file that is an input: fail now.
        preflight.refuse_outputs_that_are_inputs(
            inputs, result_paths(inputs, output_dir, output_format)
        )
    elif params["skip_existing"]:
        raise UsageError("--skip-existing needs --output-dir")
    _check_timing_options(params, output_format, several=len(inputs) > 1, to_dir=bool(output_dir))
    if params["output"]:
        preflight.refuse_outputs_that_are_inputs(inputs, [Path(params["output"])])
    partial = params["partial"]
    if partial is None:
        partial = output_format == "live"
    if params["local"] and params["endpoint_given"]:
        raise UsageError("--local and --endpoint exclude each other")
    if params.get("local_model_dir") and not params["local"]:
        raise UsageError("--local-model-dir needs --local")
    endpoint = params["endpoint"]
    if not params["local"]:
        preflight.check_endpoint(endpoint)
    headers = tuple(parse_header(h) for h in params["headers"])
    chain = _credentials(params)
    credentials = chain.provider or CredentialSource(environ={})
    # Values given as flags or variables: checked even with --local, which sends none.
    preflight.check_credential(CredentialSource(params["iam_token"], params["api_key"]).resolve())
    authorized = chain.found or any(name == "authorization" for name, _ in headers)
    if not params["local"] and not authorized and not is_speechkit(endpoint):
        log.info(
            "no credentials named for %s: a yc profile or the metadata service is used unasked "
            "only for %s (--profile, --metadata-credentials name them)",
            endpoint,
            DEFAULT_ENDPOINT,
        )
    if not params["local"] and is_speechkit(endpoint) and not authorized:
        problem = (
            f"{chain.missing_message()}; for {DEFAULT_ENDPOINT} set one of them "
            "(YC_API_KEY is the simplest), or use --local to recognize offline"
        )
        if not params["dry_run"]:
            raise UsageError(problem)
        log.warning("%s; a real run would stop here", problem)
    settings = RecognitionSettings(
        language=params["lang"],
        model=params["model"],
        profanity_filter=params["profanity_filter"],
        partial_results=partial,
        single_utterance=params["single_utterance"],
        raw_results=params["raw_results"],
        literature_text=params["literature_text"],
        folder_id=params["folder_id"] or chain.folder_id,
    )
    stream = StreamSettings(
        chunk_size=params["chunk_size"],
        speed=params["speed"],
        keepalive_silence=params["keepalive_silence"],
        send_as=params.get("send_as", "lpcm"),
    )
    policy = SessionPolicy(
        max_session_seconds=params["max_session_seconds"],
        max_session_bytes=params["max_session_bytes"],
        retries=params["retries"],
        timeout=params["timeout"],
    )
    connection = Connection(
        endpoint=endpoint,
        credentials=credentials,
        headers=headers,
        normalize_partials=params["normalize_partials"],
        insecure=params["insecure"],
        ca_file=params["ca_file"],
    )
    if params["ca_file"]:
        preflight.check_ca_file(params["ca_file"])
    preflight.check_metadata_size(
        build_metadata(
            credentials.preview(), headers, normalize_partials=params["normalize_partials"]
        )
    )
    if params["max_rps"] <= 0:
        raise UsageError("--max-rps must be positive")
    if connection.insecure and not params["local"] and not is_loopback_endpoint(endpoint):
        if chain.found:
            log.warning(
                "--insecure to %s: the credentials go over the network in clear text", endpoint
            )
    if output_dir is not None and not params["dry_run"]:
        preflight.prepare_output_dir(output_dir, create=True)  # the last check: it creates
    return Plan(
        inputs=inputs,
        output_format=output_format,
        settings=settings,
        stream=stream,
        policy=policy,
        connection=connection,
        encoding=params["encoding"],
        rate=int(params["rate"]) if params["rate"] else None,
        conversion=Conversion(
            send_rate=int(params["send_rate"]) if params.get("send_rate") else None,
            channels=params.get("channels"),
            session_seconds=policy.max_session_seconds,
            session_bytes=policy.max_session_bytes,
        ),
        jobs=params["jobs"],
        max_rps=params["max_rps"],
        fail_fast=params["fail_fast"],
        output=params["output"],
        output_dir=output_dir,
        skip_existing=params["skip_existing"],
        dry_run=params["dry_run"],
        local=params["local"],
        timestamps=bool(params.get("timestamps")),
        max_line_width=params.get("max_line_width") or MAX_LINE_WIDTH,
        max_lines=params.get("max_lines") or MAX_LINES,
        local_engine=params.get("local_engine") or "whisper",
        local_model_dir=params.get("local_model_dir"),
    )


def _check_timing_options(
    params: dict[str, Any], output_format: str, *, several: bool, to_dir: bool
) -> None:
    """Options that would be silently ignored are usage errors instead."""
    subtitles = output_format in SUBTITLE_FORMATS
    if params.get("timestamps") and output_format not in ("text", "live"):
        raise UsageError(f"--timestamps is for text output, not -f {output_format}")
    for name in ("max_line_width", "max_lines"):
        if params.get(name) is not None and not subtitles:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} is for subtitles (-f srt or -f vtt)")
    if subtitles and several and not to_dir:
        raise UsageError(
            f"-f {output_format} with several inputs needs --output-dir: "
            "one subtitle file per input"
        )


def _credentials(params: dict[str, Any]) -> Resolution:
    """The credential chain's answer; --local sends none (its server is this process's own)."""
    options = ChainOptions.from_params(params)
    if params["local"]:
        check_flags(options)
        return Resolution(None, "", "", "")
    return resolve_chain(options, endpoint=params["endpoint"])


@contextmanager
def _local_server(plan: Plan) -> Iterator[Plan]:
    """--local: the offline server in this process, on a free loopback port, for this run."""
    from sttcli.commands.serve import make_engine
    from sttcli.server.app import create_server

    # Each worker is 200-300 MB and a core's worth of decoding: more workers
    # than cores would not decode faster. Streams beyond them wait for a decoder.
    workers = max(1, min(plan.jobs, os.cpu_count() or 1))
    # STTCLI_LOCAL_ENGINE=synthetic: the deterministic engine, for tests of the CLI itself.
    synthetic = os.environ.get("STTCLI_LOCAL_ENGINE") == "synthetic"
    name = "synthetic" if synthetic else plan.local_engine
    model_dir = None if synthetic else plan.local_model_dir
    engine = make_engine(name, workers, model_dir=model_dir, wait=False)
    try:
        server, port, _ = create_server("127.0.0.1:0", engine, workers=workers)
        try:
            connection = replace(
                plan.connection,
                endpoint=f"127.0.0.1:{port}",
                insecure=True,
                credentials=CredentialSource(environ={}),
            )
            yield replace(plan, connection=connection)
        finally:
            # Streams end before the engine does: a decoder closed under a
            # running stream would look like a crash.
            server.stop(grace=None).wait(5)
    finally:
        engine.close()


def _inputs(params: dict[str, Any]) -> tuple[str, ...]:
    inputs = list(params["audio"])
    listed = params["from_file"]
    if listed:
        inputs += _read_list(listed)
        if not inputs:
            raise UsageError(f"--from-file {listed}: no inputs listed")
    elif not inputs:
        inputs = ["-"]
    if inputs.count("-") > 1:
        raise UsageError("'-' (stdin) can be given once at most")
    if listed == "-" and "-" in inputs:
        raise UsageError("stdin cannot be both the list of inputs (--from-file -) and audio")
    if "-" in inputs and "stdin" in stdio.closed:
        raise UsageError("stdin is closed: give AUDIO files, or pipe audio to stdin")
    return tuple(inputs)


def _read_list(listed: str) -> list[str]:
    if listed == "-" and "stdin" in stdio.closed:
        raise UsageError("--from-file -: stdin is closed")
    try:
        if listed == "-":
            content = sys.stdin.buffer.read()
        else:
            with open(listed, "rb") as file:
                content = file.read()
    except OSError as exc:
        raise UsageError(f"--from-file {listed}: {exc.strerror or exc}") from None
    if b"\0" in content:
        raise UsageError(f"--from-file {listed}: not a list of paths (it holds binary data)")
    # Paths are bytes to the system: decode them as the command line is decoded,
    # so that a name that is not UTF-8 opens the file it names.
    lines = os.fsdecode(content).splitlines()
    entries = [line.strip() for line in lines]
    return [entry for entry in entries if entry and not entry.startswith("#")]


@dataclass
class _Run:
    """One `recognize` run: its inputs, what watches them, and what came of them."""

    plan: Plan
    out: TextIO
    diagnostics: Diagnostics
    refs: list[InputRef]
    results: dict[int, InputResult]
    skipped: int = 0

    @property
    def several(self) -> bool:
        return len(self.refs) > 1


async def _recognize_all(plan: Plan, out: TextIO, diagnostics: Diagnostics) -> int:
    started = time.monotonic()
    if plan.connection.credentials.refreshable:
        # The first token now: a key or profile that IAM refuses is one error, not one per input.
        await plan.connection.session_metadata()
    run = _Run(plan, out, diagnostics, [InputRef(i, n) for i, n in enumerate(plan.inputs)], {})
    runnable = await _set_aside(run)
    not_run = 0
    if plan.fail_fast and run.results:  # an input already failed its checks
        not_run, runnable = len(runnable), []
    view = _progress_view(run)
    observer = Observers(_observers(run, view))
    for ref in run.refs:  # inputs that failed their checks report now, in order
        if ref.index in run.results:
            observer.done(ref, run.results[ref.index])
    limiter = StartLimiter(plan.max_rps)
    refresher = asyncio.ensure_future(_refresh(view)) if view else None
    try:
        outcome = await run_batch(
            runnable,
            lambda ref: _open_recognizer(plan, ref, observer, diagnostics, limiter),
            observer,
            jobs=plan.jobs,
            fail_fast=plan.fail_fast,
        )
    finally:
        if refresher is not None:
            refresher.cancel()
        observer.close()
        await plan.connection.close()
    outcome.results.update(run.results)
    outcome.not_run += not_run
    _report(run, outcome, time.monotonic() - started)
    return outcome.exit_code


async def _set_aside(run: _Run) -> list[InputRef]:
    """Inputs to run: those with results already on disk, or bad on a cheap look, are not."""
    plan = run.plan
    paths = (
        result_paths(plan.inputs, plan.output_dir, plan.output_format) if plan.output_dir else []
    )
    runnable = []
    for ref in run.refs:
        if plan.skip_existing and paths[ref.index].exists():
            run.skipped += 1
            log.info("skipped %s: %s exists", ref.name, paths[ref.index])  # -v; the summary counts
            continue
        problem = await _precheck(plan, ref.name) if run.several else None
        if problem is not None:
            run.results[ref.index] = InputResult(ref.name, error=ErrorInfo.from_error(problem))
        else:
            runnable.append(ref)
    return runnable


async def _precheck(plan: Plan, name: str) -> BadInput | None:
    """Open and sniff a file, then close it: 1000 inputs must not hold 1000 descriptors.

    Only regular files and missing paths: a pipe or FIFO read now would not
    be there to read again.
    """
    path = Path(name)
    if name == "-" or (path.exists() and not path.is_file() and not path.is_dir()):
        return None
    try:
        source = await _open(plan, name)
    except BadInput as problem:
        return problem
    source.close()
    return None


def _progress_view(run: _Run) -> ProgressView | None:
    """The progress view: several inputs, a person watching stderr, not asked to be quiet."""
    if not run.several or run.diagnostics.quiet or not sys.stderr.isatty():
        return None
    return ProgressView(stderr_console(), len(run.refs))


def _observers(run: _Run, view: ProgressView | None) -> list[Observer]:
    """Renderers, result files and progress, each behind `SafeObserver`.

    Every result passes the secret scrubber on its way out; what is text
    (text and live output, .txt files, stderr lines) also loses control
    characters and line breaks; JSON escapes those itself.
    """
    plan = run.plan
    scrub = run.diagnostics.scrub
    as_text, as_json = for_text(scrub), for_json(scrub)
    results_clean = as_json if plan.output_format in ("json", "jsonl") else as_text
    observers: list[Observer] = []
    if plan.output_dir is not None:
        paths = result_paths(plan.inputs, plan.output_dir, plan.output_format)
        files = ResultFiles(
            dict(enumerate(paths)),
            plan.output_format,
            timestamps=plan.timestamps,
            max_line_width=plan.max_line_width,
            max_lines=plan.max_lines,
        )
        observers.append(SafeObserver(files, results_clean))
    else:
        emit: Emit = writer(run.out)
        if view is not None and same_terminal(run.out):
            emit = view.print_above
        observers.append(SafeObserver(_renderer(plan, run, emit), results_clean))
    if run.several:
        # Failures always get their line; -q and a person's view drop the "ok" ones.
        say = view.print_above if view is not None else run.diagnostics.write
        lines = InputLines(say, successes=view is None and not run.diagnostics.quiet)
        observers.append(SafeObserver(lines, as_text))
    if view is not None:
        observers.append(SafeObserver(view, as_text))
    return observers


def _renderer(plan: Plan, run: _Run, emit: Emit) -> Observer:
    if plan.output_format == "live" and not run.several:
        return LiveRenderer(live_console(run.out), timestamps=plan.timestamps)
    if plan.output_format in SUBTITLE_FORMATS:
        return SubtitleRenderer(
            emit,
            plan.output_format,
            max_line_width=plan.max_line_width,
            max_lines=plan.max_lines,
        )
    if plan.output_format == "jsonl":
        return JsonLinesRenderer(emit)
    if plan.output_format == "json":
        return JsonRenderer(emit)
    return TextRenderer(emit, prefixed=run.several, timestamps=plan.timestamps)


async def _refresh(view: ProgressView) -> None:
    while True:
        view.refresh()
        await asyncio.sleep(0.25)


def _report(run: _Run, outcome: BatchOutcome, wall_seconds: float) -> None:
    diagnostics = run.diagnostics
    if outcome.interrupted:
        diagnostics.error(Interrupted().message)
    if not run.several:
        for result in outcome.results.values():
            if result.error is not None and not outcome.interrupted:
                diagnostics.error(result.error.message)
        return
    if not diagnostics.quiet:
        diagnostics.write(
            summary(
                list(outcome.results.values()),
                wall_seconds=wall_seconds,
                skipped=run.skipped,
                not_run=outcome.not_run,
            )
        )


async def _open_recognizer(
    plan: Plan,
    ref: InputRef,
    observer: Observer,
    diagnostics: Diagnostics,
    limiter: StartLimiter,
) -> InputRecognizer:
    source = await _open(plan, ref.name)
    _rate_notice(plan, source, diagnostics)
    return InputRecognizer(
        source,
        settings=plan.settings,
        connection=plan.connection,
        stream=plan.stream,
        policy=plan.policy,
        on_event=lambda event: observer.event(ref, event),
        limiter=limiter,
    )


def _rate_notice(
    plan: Plan, source: AudioSource, diagnostics: Diagnostics, *, dry_run: bool = False
) -> None:
    """The plan for an input (with -v, or always with --dry-run), and a default rate's notice."""
    if dry_run:
        diagnostics.notice(describe(source, plan.stream.send_as))
    else:
        log.info("%s", describe(source, plan.stream.send_as))
    if source.format.rate_source is RateSource.DEFAULT:
        diagnostics.notice(
            f"{source.name}: raw audio and no --rate: the API default of 48000 Hz applies"
        )


async def _open(plan: Plan, name: str) -> AudioSource:
    return await open_source(
        name,
        encoding=plan.encoding,
        rate=plan.rate,
        keepalive_silence=plan.stream.keepalive_silence,
        conversion=plan.conversion,
    )


async def _dry_run(plan: Plan, out: TextIO, diagnostics: Diagnostics) -> int:
    # --local sends no credentials: its server is this process's own.
    metadata = () if plan.local else plan.connection.preview_metadata()
    for name in plan.inputs:
        source = await _open(plan, name)
        _rate_notice(plan, source, diagnostics, dry_run=True)
        try:
            on_wire = source.format
            if plan.stream.send_as == "oggopus" and on_wire.encoding is Encoding.LPCM:
                on_wire = AudioFormat(Encoding.OGG_OPUS, OPUS_RATE, RateSource.OPUS)
            document = {
                "input": for_json(diagnostics.scrub)(name),
                "source": source.origin.to_json(),
                "endpoint": "(local)" if plan.local else plan.connection.endpoint,
                "metadata": masked(metadata),
                "config": wire.config_to_dict(wire.config_request(plan.settings, on_wire)),
            }
        finally:
            source.close()
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    out.flush()
    return int(ExitCode.OK)


def _run_loop(main: Coroutine[Any, Any, T], stopping: StopSignals) -> T:
    """Run `main`; the first SIGINT or SIGTERM cancels it (it finishes cleanly)."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)

    # The signal handler runs between bytecodes of the main thread, possibly
    # while the loop sleeps in select(): wake it through its own channel.
    def cancel() -> None:
        loop.call_soon_threadsafe(task.cancel)

    stopping.on_stop(cancel)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if stopping.stopping:  # a signal before or after the batch itself (opening, sniffing)
            raise Interrupted() from None
        raise
    finally:
        stopping.on_stop(None)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
