"""Running many inputs: in parallel within the service's limits, each failing alone.

Observers (renderers, result files, progress) hear of each input as it
starts, each response chunk, and each result; the order of output never
depends on the order of completion, because every observer gets the input's
place on the command line (`InputRef.index`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sttcli.errors import ExitCode, Interrupted, SttError
from sttcli.output.render import InputRef, Observer
from sttcli.results import ErrorInfo, InputResult
from sttcli.session import InputRecognizer

MAX_JOBS = 60  # SpeechKit's limit of concurrent streams

OpenRecognizer = Callable[[InputRef], Awaitable[InputRecognizer]]

_FAIL_FAST = ErrorInfo(
    "CANCELLED", "cancelled by --fail-fast after another input failed", int(ExitCode.SERVER_FAILURE)
)


@dataclass
class BatchOutcome:
    results: dict[int, InputResult] = field(default_factory=dict)  # by InputRef.index
    interrupted: bool = False
    not_run: int = 0  # never started: --fail-fast or Ctrl-C came first
    cancelled: set[int] = field(default_factory=set)  # stopped by --fail-fast, not failed

    @property
    def exit_code(self) -> int:
        """Ctrl-C, else the exit code of the first failed input in command-line order."""
        if self.interrupted:
            return int(Interrupted().exit_code)
        for index in sorted(self.results):
            result = self.results[index]
            if result.error is not None and index not in self.cancelled:
                return result.error.exit_code
        return int(ExitCode.OK)


async def recognize_one(
    ref: InputRef, open_recognizer: OpenRecognizer, observer: Observer
) -> InputResult:
    """Run one input to its end; its failure is its result, not an exception."""
    recognizer: InputRecognizer | None = None

    def result_with(error: SttError | ErrorInfo) -> InputResult:
        info = error if isinstance(error, ErrorInfo) else ErrorInfo.from_error(error)
        return recognizer.result(info) if recognizer else InputResult(ref.name, error=info)

    try:
        recognizer = await open_recognizer(ref)
        observer.started(ref, recognizer)
        await recognizer.run()
        result = recognizer.result()
    except SttError as error:
        result = result_with(error)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not getattr(task, "sttcli_silent", False):  # not when the run itself broke
            reason = getattr(task, "sttcli_reason", None) or Interrupted()
            observer.done(ref, result_with(reason))
        raise
    finally:
        if recognizer is not None:
            recognizer.source.close()
    observer.done(ref, result)
    return result


async def run_batch(
    refs: Sequence[InputRef],
    open_recognizer: OpenRecognizer,
    observer: Observer,
    *,
    jobs: int = 1,
    fail_fast: bool = False,
) -> BatchOutcome:
    results: dict[int, InputResult] = {}
    semaphore = asyncio.Semaphore(max(1, min(jobs, MAX_JOBS)))
    stop = asyncio.Event()  # --fail-fast: an input failed
    started: set[int] = set()
    tasks: dict[int, asyncio.Task[Any]] = {}
    # What observers were told of inputs stopped by a signal: counted as interrupted.
    stopped: dict[int, InputResult] = {}

    def told(ref: InputRef, result: InputResult) -> None:
        if result.error is not None and result.error.code == Interrupted.code:
            stopped[ref.index] = result

    async def worker(ref: InputRef) -> None:
        async with semaphore:
            if stop.is_set():
                return
            started.add(ref.index)
            result = await recognize_one(ref, open_recognizer, _Tap(observer, told))
            results[ref.index] = result
            if result.error is not None and fail_fast and not stop.is_set():
                stop.set()
                for index, task in tasks.items():
                    if index != ref.index and not task.done():
                        task.sttcli_reason = _FAIL_FAST  # type: ignore[attr-defined]
                        task.cancel()

    crashed: list[BaseException] = []

    def on_done(task: asyncio.Task[Any]) -> None:
        # Not an input's failure but a bug or a closed stdout: stop everything.
        if not task.cancelled() and task.exception() is not None and not crashed:
            crashed.append(task.exception())  # type: ignore[arg-type]
            for other in tasks.values():
                other.sttcli_silent = True  # type: ignore[attr-defined]
                other.cancel()

    for ref in refs:
        tasks[ref.index] = asyncio.ensure_future(worker(ref))
        tasks[ref.index].add_done_callback(on_done)
    outcome = BatchOutcome()
    try:
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    except asyncio.CancelledError:
        outcome.interrupted = True
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    if crashed:
        raise crashed[0]
    for ref in refs:
        if ref.index in results:
            outcome.results[ref.index] = results[ref.index]
        elif ref.index in stopped:
            outcome.results[ref.index] = stopped[ref.index]
        elif ref.index in started and getattr(tasks[ref.index], "sttcli_reason", None):
            outcome.cancelled.add(ref.index)
            outcome.results[ref.index] = InputResult(ref.name, error=_FAIL_FAST)
        else:
            outcome.not_run += 1
    return outcome


class _Tap:
    """An observer that passes everything on and lets the batch hear of each result too."""

    def __init__(self, inner: Observer, on_done: Callable[[InputRef, InputResult], None]) -> None:
        self.inner = inner
        self.on_done = on_done

    def started(self, ref: InputRef, running: Any) -> None:
        self.inner.started(ref, running)

    def event(self, ref: InputRef, event: Any) -> None:
        self.inner.event(ref, event)

    def done(self, ref: InputRef, result: InputResult) -> None:
        self.on_done(ref, result)
        self.inner.done(ref, result)

    def close(self) -> None:
        self.inner.close()
